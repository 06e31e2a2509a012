/**
 * The Servers section: the approved catalog with each server's live status and
 * its Connect / Disconnect / Reconnect actions.
 */
import * as React from 'react';

import type { DodoModel } from '../model';
import { toAPIError } from '../model';
import type { ICatalogEntry, IConnection, IConnectProgress, IStepUp } from '../tokens';
import { ErrorNote, Note } from './common';
import { HeadersForm } from './HeadersForm';

/**
 * Props of `CatalogPanel`.
 */
export interface ICatalogPanelProps {
  model: DodoModel;
}

/**
 * Lists the approved MCP servers with loading, error and empty states.
 */
export function CatalogPanel({ model }: ICatalogPanelProps): React.ReactElement {
  const { catalog, freshness, me } = model;
  const visitor = me !== null && !me.is_owner;
  return (
    <div className="jp-dodo-Section" aria-busy={catalog.status === 'loading'}>
      {freshness.stale && (
        <Note kind="warn">
          <strong>The catalog may be out of date.</strong>{' '}
          {freshness.reason ?? 'The shared catalog could not be reached; showing the last copy.'}
        </Note>
      )}
      {visitor && (
        <Note>
          This server is not yours: you are signed in as <strong>{me.username}</strong>.
          MCP connections and tokens are personal: connect servers from your own Jupyter
          server.
        </Note>
      )}
      <ErrorNote title="Could not load the catalog." error={catalog.error} />
      <ErrorNote
        title="Could not load your connections."
        error={visitor ? null : model.connections.error}
      />
      <CatalogBody model={model} visitor={visitor} />
      {me && (
        <div className="jp-dodo-Footer">
          Signed in as <span className="jp-dodo-username">{me.username}</span>
          {me.is_admin && <span className="jp-dodo-badge">admin</span>}
        </div>
      )}
    </div>
  );
}

function CatalogBody({
  model,
  visitor
}: ICatalogPanelProps & { visitor: boolean }): React.ReactElement | null {
  const { catalog } = model;
  if (catalog.status === 'idle' || (catalog.status === 'loading' && catalog.value.length === 0)) {
    return <div className="jp-dodo-Message">Loading the catalog…</div>;
  }
  if (catalog.status === 'error' && catalog.value.length === 0) {
    return null;
  }
  if (catalog.value.length === 0) {
    return (
      <Note>
        <strong>No approved MCP servers yet.</strong>{' '}
        {model.me?.is_admin
          ? 'Add one in the Admin section below (or import a server.json), then connect it here.'
          : 'Ask an administrator to approve the MCP servers you need; they will appear here.'}
      </Note>
    );
  }
  return (
    <ul className="jp-dodo-CatalogList" aria-label="Approved MCP servers">
      {catalog.value.map(entry => (
        <CatalogEntry
          key={entry.id}
          model={model}
          entry={entry}
          connection={model.connectionFor(entry.id)}
          progress={model.progressFor(entry.id)}
          visitor={visitor}
        />
      ))}
    </ul>
  );
}

interface ICatalogEntryProps {
  model: DodoModel;
  entry: ICatalogEntry;
  connection: IConnection | null;
  progress: IConnectProgress | null;
  visitor: boolean;
}

const STATE_LABELS: Record<string, string> = {
  connected: 'connected',
  authenticating: 'authenticating',
  needs_auth: 'needs re-auth',
  needs_scope: 'needs more access',
  error: 'error',
  none: 'not connected'
};

function CatalogEntry(props: ICatalogEntryProps): React.ReactElement {
  const { entry, connection, progress } = props;
  const state = progress && progress.phase !== 'failed' ? 'authenticating' : (connection?.state ?? 'none');
  const authType = entry.auth_type || 'none';
  const titleId = `jp-dodo-entry-${entry.id}-title`;
  return (
    <li
      className="jp-dodo-CatalogEntry"
      data-entry-id={entry.id}
      data-state={state}
      aria-labelledby={titleId}
    >
      <div className="jp-dodo-CatalogEntry-head">
        <span className="jp-dodo-CatalogEntry-name" id={titleId}>
          {entry.display_name || entry.name}
        </span>
        <span
          className={`jp-dodo-badge jp-dodo-badge-${authType.replace(/[^a-z0-9_-]/gi, '')}`}
          title={`Authentication: ${authType.replace('_', ' ')}`}
        >
          {authType === 'static_headers' ? 'headers' : authType}
        </span>
        <span
          className={`jp-dodo-status jp-dodo-status-${state}`}
          role="status"
          aria-label={`Status: ${STATE_LABELS[state] ?? state}`}
        >
          {STATE_LABELS[state] ?? state}
        </span>
      </div>
      {entry.description && (
        <div className="jp-dodo-CatalogEntry-description">{entry.description}</div>
      )}
      <div className="jp-dodo-CatalogEntry-url" title={entry.url}>
        {entry.url}
      </div>
      {(connection?.state === 'connected' || connection?.state === 'needs_scope') &&
        connection.tool_count !== null && (
        <div className="jp-dodo-CatalogEntry-meta">
          {connection.tool_count} tool{connection.tool_count === 1 ? '' : 's'}
        </div>
      )}
      {entry.setup_guide && (
        <details className="jp-dodo-CatalogEntry-guide">
          <summary>Setup guide</summary>
          <div className="jp-dodo-CatalogEntry-guideText">{entry.setup_guide}</div>
        </details>
      )}
      {connection?.warning && connection.state === 'connected' && !progress && (
        <div className="jp-dodo-CatalogEntry-warning" role="note">
          {connection.warning}
        </div>
      )}
      {connection?.error && connection.state !== 'connected' && !progress && (
        <div className="jp-dodo-CatalogEntry-error" role="alert">
          {connection.error}
        </div>
      )}
      <EntryActions {...props} />
    </li>
  );
}

function EntryActions({
  model,
  entry,
  connection,
  progress,
  visitor
}: ICatalogEntryProps): React.ReactElement | null {
  const [busy, setBusy] = React.useState(false);
  const [error, setError] = React.useState<string | null>(null);
  const [editHeaders, setEditHeaders] = React.useState(false);
  if (visitor) {
    return null;
  }
  const name = entry.display_name || entry.name;

  const disconnect = async (): Promise<void> => {
    if (!connection) {
      return;
    }
    setBusy(true);
    setError(null);
    try {
      await model.disconnect(connection.id);
    } catch (reason) {
      setError(toAPIError(reason).message);
    } finally {
      setBusy(false);
    }
  };

  const connect = (): void => {
    setError(null);
    void model.connect(entry);
  };

  const disconnectButton = connection && (
    <button
      type="button"
      className="jp-mod-styled jp-mod-reject"
      disabled={busy}
      onClick={() => void disconnect()}
      aria-label={`Disconnect ${name}`}
    >
      Disconnect
    </button>
  );

  if (entry.auth_type === 'static_headers') {
    const showForm = !connection || editHeaders || connection.state !== 'connected';
    return (
      <div className="jp-dodo-CatalogEntry-actions-block">
        {showForm ? (
          <HeadersForm
            model={model}
            entry={entry}
            onSaved={() => setEditHeaders(false)}
            onCancel={connection ? () => setEditHeaders(false) : undefined}
          />
        ) : (
          <div className="jp-dodo-Actions">
            <button
              type="button"
              className="jp-mod-styled"
              onClick={() => setEditHeaders(true)}
              aria-label={`Change the headers of ${name}`}
            >
              Change headers
            </button>
            {disconnectButton}
          </div>
        )}
        {showForm && connection && <div className="jp-dodo-Actions">{disconnectButton}</div>}
        {error && (
          <div className="jp-dodo-CatalogEntry-error" role="alert">
            {error}
          </div>
        )}
      </div>
    );
  }

  const stepUp = !progress && connection?.state === 'needs_scope' ? connection.step_up : null;
  let primary: React.ReactNode = null;
  if (progress) {
    primary = null;
  } else if (connection && stepUp) {
    primary = (
      <button
        type="button"
        className="jp-mod-styled jp-mod-accept"
        onClick={() => void model.grantAccess(entry, connection)}
        aria-label={`Grant more access to ${name}`}
      >
        Grant access
      </button>
    );
  } else if (!connection) {
    primary = (
      <button
        type="button"
        className="jp-mod-styled jp-mod-accept"
        onClick={connect}
        aria-label={`Connect ${name}`}
      >
        Connect
      </button>
    );
  } else if (connection.state !== 'connected') {
    primary = (
      <button
        type="button"
        className="jp-mod-styled jp-mod-accept"
        onClick={connect}
        aria-label={`Reconnect ${name}`}
      >
        Reconnect
      </button>
    );
  }

  return (
    <div className="jp-dodo-CatalogEntry-actions-block">
      {progress && <ConnectProgress model={model} entry={entry} progress={progress} />}
      {connection && stepUp && (
        <StepUpNote model={model} entry={entry} connection={connection} stepUp={stepUp} />
      )}
      <div className="jp-dodo-Actions">
        {primary}
        {progress?.phase !== 'starting' && disconnectButton}
      </div>
      {error && (
        <div className="jp-dodo-CatalogEntry-error" role="alert">
          {error}
        </div>
      )}
    </div>
  );
}

/**
 * A tool of the server asked for more scopes: which ones, and the consent page
 * (the Grant access button opens it in a popup, the link in a tab).
 */
function StepUpNote({
  model,
  entry,
  connection,
  stepUp
}: {
  model: DodoModel;
  entry: ICatalogEntry;
  connection: IConnection;
  stepUp: IStepUp;
}): React.ReactElement {
  const scopes = stepUp.missing.length > 0 ? stepUp.missing : stepUp.scopes;
  return (
    <div className="jp-dodo-StepUp" role="status">
      <div>
        A tool of this server needs more access. Grant{' '}
        {scopes.map((scope, index) => (
          <React.Fragment key={scope}>
            {index > 0 && ' '}
            <code>{scope}</code>
          </React.Fragment>
        ))}
        , then call the tool again.
      </div>
      <a
        href={stepUp.consent_url}
        target="_blank"
        rel="opener"
        onClick={() => void model.grantAccess(entry, connection, true)}
      >
        Open the consent page in a new tab
      </a>
    </div>
  );
}

function ConnectProgress({
  model,
  entry,
  progress
}: {
  model: DodoModel;
  entry: ICatalogEntry;
  progress: IConnectProgress;
}): React.ReactElement {
  const link = progress.authorizeUrl && (
    <a
      href={progress.authorizeUrl}
      target="_blank"
      rel="opener"
      onClick={() => model.openedInTab(entry.id)}
    >
      Open the sign-in page in a new tab
    </a>
  );
  switch (progress.phase) {
    case 'starting':
      return (
        <div className="jp-dodo-Progress" role="status">
          <span className="jp-dodo-Spinner" aria-hidden="true" /> Contacting the server…
        </div>
      );
    case 'waiting':
      return (
        <div className="jp-dodo-Progress" role="status">
          <span className="jp-dodo-Spinner" aria-hidden="true" /> Waiting for you to approve
          in the sign-in window… {link && <span className="jp-dodo-Progress-alt">({link})</span>}
        </div>
      );
    case 'blocked':
      return (
        <div className="jp-dodo-Progress jp-dodo-Progress-blocked" role="status">
          Your browser blocked the sign-in window. {link}
        </div>
      );
    case 'failed':
      return (
        <div className="jp-dodo-CatalogEntry-error" role="alert">
          <div>{progress.message ?? 'The sign-in failed.'}</div>
          <div className="jp-dodo-Actions">
            {!progress.grant && (
              <button
                type="button"
                className="jp-mod-styled jp-mod-accept"
                onClick={() => void model.connect(entry)}
                aria-label={`Retry connecting ${entry.display_name || entry.name}`}
              >
                Retry
              </button>
            )}
            <button
              type="button"
              className="jp-mod-styled"
              onClick={() => model.clearProgress(entry.id)}
            >
              Dismiss
            </button>
          </div>
        </div>
      );
  }
}
