/**
 * The Admin section (administrators only; the server enforces it anyway):
 * the catalog editor and the audit log.
 */
import { Dialog, showDialog } from '@jupyterlab/apputils';
import * as React from 'react';

import type { AdminModel } from '../adminModel';
import { toAPIError } from '../model';
import type { IAdminEntry, IAuditRow } from '../tokens';
import { ErrorNote, Note, formatTime } from './common';
import { EntryEditor } from './EntryEditor';

/**
 * Props of `AdminPanel`.
 */
export interface IAdminPanelProps {
  model: AdminModel;
}

export function AdminPanel({ model }: IAdminPanelProps): React.ReactElement {
  // `null`: no editor; `'new'`: adding; otherwise the id being edited.
  const [editing, setEditing] = React.useState<string | null>(null);
  const [error, setError] = React.useState<string | null>(null);
  const [notice, setNotice] = React.useState<string | null>(null);
  const fileInput = React.useRef<HTMLInputElement>(null);
  const { entries } = model;

  const run = async (action: () => Promise<unknown>, done?: string): Promise<void> => {
    setError(null);
    setNotice(null);
    try {
      await action();
      if (done) {
        setNotice(done);
      }
    } catch (reason) {
      setError(toAPIError(reason).message);
    }
  };

  const importFile = async (file: File): Promise<void> => {
    let document: unknown;
    try {
      document = JSON.parse(await file.text());
    } catch (e) {
      setError(`${file.name} is not valid JSON: ${(e as Error).message}`);
      return;
    }
    await run(async () => {
      const imported = await model.importDocument(document);
      setNotice(
        `Imported ${imported.length} entr${imported.length === 1 ? 'y' : 'ies'}: ` +
          imported.map(e => e.id).join(', ')
      );
    });
  };

  const remove = async (entry: IAdminEntry): Promise<void> => {
    const answer = await showDialog({
      title: `Delete “${entry.display_name || entry.id}”?`,
      body:
        'Users can no longer see or connect it. The entry stays in the audit trail, and its ' +
        'id and URL may be used again.',
      buttons: [Dialog.cancelButton(), Dialog.warnButton({ label: 'Delete' })]
    });
    if (answer.button.accept) {
      await run(() => model.remove(entry.id, entry.etag), `Deleted ${entry.id}.`);
    }
  };

  return (
    <div className="jp-dodo-Section" aria-busy={entries.status === 'loading'}>
      <h3 className="jp-dodo-Subtitle">Approved catalog</h3>
      <div className="jp-dodo-Actions">
        <button
          type="button"
          className="jp-mod-styled jp-mod-accept"
          onClick={() => setEditing('new')}
          disabled={editing === 'new'}
        >
          Add server
        </button>
        <button
          type="button"
          className="jp-mod-styled"
          onClick={() => fileInput.current?.click()}
        >
          Import server.json…
        </button>
        <input
          ref={fileInput}
          type="file"
          accept=".json,application/json"
          className="jp-dodo-visually-hidden"
          aria-label="server.json file to import"
          tabIndex={-1}
          onChange={e => {
            const file = e.target.files?.[0];
            e.target.value = '';
            if (file) {
              void importFile(file);
            }
          }}
        />
      </div>
      <ErrorNote title="The change was refused." error={error} />
      {notice && (
        <div className="jp-dodo-Note jp-dodo-Note-ok" role="status">
          {notice}
        </div>
      )}
      {editing === 'new' && (
        <EntryEditor model={model} entry={null} onDone={() => setEditing(null)} />
      )}
      <ErrorNote title="Could not load the catalog." error={entries.error} />
      {model.leftOut.length > 0 && (
        <Note kind="warn">
          <strong>Configured entries left out of the catalog</strong>
          <ul className="jp-dodo-AdminLeftOut" aria-label="Configured entries left out">
            {model.leftOut.map(item => (
              <li key={item.id} data-entry-id={item.id}>
                <span className="jp-dodo-Code">{item.id}</span>: {item.reason}
              </li>
            ))}
          </ul>
        </Note>
      )}
      {entries.status === 'ready' && entries.value.length === 0 && (
        <Note>
          The catalog is empty. Add a server, or import an MCP Registry <code>server.json</code>.
        </Note>
      )}
      <ul className="jp-dodo-AdminList" aria-label="Catalog entries">
        {entries.value.map(entry =>
          editing === entry.id ? (
            <li key={entry.id} className="jp-dodo-AdminEntry">
              <EntryEditor model={model} entry={entry} onDone={() => setEditing(null)} />
            </li>
          ) : (
            <AdminEntry
              key={entry.id + (entry.deleted_at ?? '')}
              entry={entry}
              onEdit={() => setEditing(entry.id)}
              onToggle={() =>
                void run(() => model.update(entry.id, { enabled: !entry.enabled }, entry.etag))
              }
              onDelete={() => void remove(entry)}
            />
          )
        )}
      </ul>
      <h3 className="jp-dodo-Subtitle">Audit log</h3>
      <AuditLog rows={model.audit.value} error={model.audit.error} />
    </div>
  );
}

function AdminEntry({
  entry,
  onEdit,
  onToggle,
  onDelete
}: {
  entry: IAdminEntry;
  onEdit: () => void;
  onToggle: () => void;
  onDelete: () => void;
}): React.ReactElement {
  const deleted = entry.deleted_at !== null;
  const name = entry.display_name || entry.id;
  return (
    <li
      className={`jp-dodo-AdminEntry${deleted || !entry.enabled ? ' jp-mod-disabled' : ''}`}
      data-entry-id={entry.id}
    >
      <div className="jp-dodo-CatalogEntry-head">
        <span className="jp-dodo-CatalogEntry-name">{name}</span>
        <span className="jp-dodo-badge">{entry.id}</span>
        {deleted ? (
          <span className="jp-dodo-badge">deleted</span>
        ) : (
          !entry.enabled && <span className="jp-dodo-badge">disabled</span>
        )}
        {entry.managed_by === 'config' && (
          <span className="jp-dodo-badge" title="Managed by the server configuration">
            config
          </span>
        )}
        {!deleted && entry.not_accepted && (
          <span className="jp-dodo-badge jp-dodo-badge-warn" title={entry.not_accepted}>
            not accepted
          </span>
        )}
      </div>
      <div className="jp-dodo-CatalogEntry-url" title={entry.url}>
        {entry.url}
      </div>
      {!deleted && entry.not_accepted && (
        <div className="jp-dodo-CatalogEntry-warning jp-dodo-AdminEntry-notAccepted" role="note">
          {entry.not_accepted}
        </div>
      )}
      {!deleted && (
        <div className="jp-dodo-Actions">
          <button
            type="button"
            className="jp-mod-styled jp-dodo-SmallButton"
            onClick={onEdit}
            aria-label={`Edit ${name}`}
          >
            Edit
          </button>
          <button
            type="button"
            className="jp-mod-styled jp-dodo-SmallButton"
            onClick={onToggle}
            aria-label={`${entry.enabled ? 'Disable' : 'Enable'} ${name}`}
          >
            {entry.enabled ? 'Disable' : 'Enable'}
          </button>
          <button
            type="button"
            className="jp-mod-styled jp-mod-reject jp-dodo-SmallButton"
            onClick={onDelete}
            aria-label={`Delete ${name}`}
          >
            Delete
          </button>
        </div>
      )}
    </li>
  );
}

function AuditLog({
  rows,
  error
}: {
  rows: readonly IAuditRow[];
  error: ReturnType<typeof toAPIError> | null;
}): React.ReactElement {
  if (error) {
    return <ErrorNote title="Could not load the audit log." error={error} />;
  }
  if (rows.length === 0) {
    return <div className="jp-dodo-Message">Nothing recorded yet.</div>;
  }
  return (
    <table className="jp-dodo-Table jp-dodo-AuditLog" aria-label="Audit log">
      <thead>
        <tr>
          <th scope="col">When</th>
          <th scope="col">Who</th>
          <th scope="col">What</th>
        </tr>
      </thead>
      <tbody>
        {rows.map(row => (
          <tr key={row.id}>
            <td>{formatTime(row.at)}</td>
            <td>{row.actor}</td>
            <td>
              <span className="jp-dodo-Code">{row.action}</span> {row.target}
              {row.detail && (typeof row.detail === 'string' || Object.keys(row.detail).length > 0) && (
                <div className="jp-dodo-AuditLog-detail">
                  {typeof row.detail === 'string' ? row.detail : JSON.stringify(row.detail)}
                </div>
              )}
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
