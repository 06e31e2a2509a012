/**
 * The administrator's form for one catalog entry (add or edit). The server
 * validates; its per-field messages (`fields` of the 400 answer, dotted for
 * nested fields such as `headers.0.name`) are shown next to the field.
 *
 * An edit is sent with the `etag` of the entry as the form loaded it: when
 * somebody changed the entry since, the server answers 412 and the form shows
 * its message and the entry as it is now, to apply the change again.
 */
import * as React from 'react';

import type { AdminModel } from '../adminModel';
import { toAPIError } from '../model';
import type { AuthType, IAdminEntry, IHeaderSpec } from '../tokens';
import { Field } from './common';
import { type IPolicyDraft, PolicyFields, policyBodyOf, policyDraftOf } from './PolicyFields';

/**
 * Props of `EntryEditor`.
 */
export interface IEntryEditorProps {
  model: AdminModel;
  /**
   * The entry to edit, or `null` to add one.
   */
  entry: IAdminEntry | null;
  onDone: () => void;
}

interface IDraft {
  id: string;
  display_name: string;
  description: string;
  url: string;
  transport: string;
  auth_type: AuthType;
  setup_guide: string;
  known_hosts: string;
  headers: IHeaderSpec[];
  client_id: string;
  client_secret_env: string;
  scopes: string;
  resource: string;
  send_resource: boolean;
  enabled: boolean;
  policy: IPolicyDraft;
}

function draftOf(entry: IAdminEntry | null): IDraft {
  return {
    id: entry?.id ?? '',
    display_name: entry?.display_name ?? '',
    description: entry?.description ?? '',
    url: entry?.url ?? '',
    transport: entry?.transport ?? 'streamable-http',
    auth_type: entry?.auth_type ?? 'oauth',
    setup_guide: entry?.setup_guide ?? '',
    known_hosts: (entry?.known_hosts ?? []).join(', '),
    headers: entry?.headers?.length
      ? entry.headers.map(h => ({ ...h }))
      : [{ name: '', description: '', is_secret: true }],
    client_id: entry?.oauth?.client_id ?? '',
    client_secret_env: entry?.oauth?.client_secret_env ?? '',
    scopes: (entry?.oauth?.scopes ?? []).join(' '),
    resource: entry?.oauth?.resource ?? '',
    send_resource: entry?.oauth?.send_resource ?? true,
    enabled: entry?.enabled ?? true,
    policy: policyDraftOf(entry?.tool_policy)
  };
}

/**
 * The JSON body for the admin API from a draft.
 */
function bodyOf(draft: IDraft, creating: boolean): Record<string, unknown> {
  const body: Record<string, unknown> = {
    display_name: draft.display_name.trim(),
    description: draft.description.trim(),
    url: draft.url.trim(),
    transport: draft.transport,
    auth_type: draft.auth_type,
    setup_guide: draft.setup_guide,
    known_hosts: draft.known_hosts
      .split(/[\s,]+/)
      .map(h => h.trim())
      .filter(Boolean),
    headers:
      draft.auth_type === 'static_headers'
        ? draft.headers.filter(h => h.name.trim() || h.description.trim())
        : [],
    oauth: null,
    enabled: draft.enabled,
    tool_policy: policyBodyOf(draft.policy)
  };
  if (creating) {
    body.id = draft.id.trim();
  }
  if (draft.auth_type === 'oauth') {
    const oauth = {
      client_id: draft.client_id.trim() || null,
      client_secret_env: draft.client_secret_env.trim() || null,
      scopes: draft.scopes.split(/\s+/).filter(Boolean),
      resource: draft.resource.trim() || null,
      send_resource: draft.send_resource
    };
    const defaults =
      !oauth.client_id &&
      !oauth.client_secret_env &&
      !oauth.scopes.length &&
      !oauth.resource &&
      oauth.send_resource;
    body.oauth = defaults ? null : oauth;
  }
  return body;
}

export function EntryEditor({ model, entry, onDone }: IEntryEditorProps): React.ReactElement {
  const creating = entry === null;
  // The entry as the draft was made from it: its etag goes with the edit.
  const [loaded, setLoaded] = React.useState<IAdminEntry | null>(entry);
  const [draft, setDraft] = React.useState<IDraft>(() => draftOf(entry));
  const [errors, setErrors] = React.useState<Record<string, string>>({});
  const [message, setMessage] = React.useState<string | null>(null);
  const [busy, setBusy] = React.useState(false);
  const set = (changes: Partial<IDraft>): void => setDraft({ ...draft, ...changes });
  const prefix = `jp-dodo-editor-${entry?.id ?? 'new'}`;

  const submit = async (event: React.FormEvent): Promise<void> => {
    event.preventDefault();
    setBusy(true);
    setErrors({});
    setMessage(null);
    try {
      const body = bodyOf(draft, creating);
      if (creating) {
        await model.create(body);
      } else {
        await model.update(entry.id, body, loaded?.etag);
      }
      onDone();
    } catch (reason) {
      const error = toAPIError(reason);
      if (error.status === 412 && !creating) {
        // Changed by somebody else since: show it as it is now (the model reloaded).
        const now = model.entries.value.find(e => e.id === entry.id);
        if (now) {
          setLoaded(now);
          setDraft(draftOf(now));
        }
      }
      setErrors({ ...error.fields });
      setMessage(
        Object.keys(error.fields).length ? 'Please fix the fields marked below.' : error.message
      );
    } finally {
      setBusy(false);
    }
  };

  // Messages for a field and for everything below it (e.g. `oauth.scopes`).
  const errorFor = (...names: string[]): string | undefined => {
    const found = Object.entries(errors)
      .filter(([key]) => names.some(n => key === n || key.startsWith(n + '.')))
      .map(([key, text]) => (names.includes(key) ? text : `${key}: ${text}`));
    return found.length ? found.join('; ') : undefined;
  };

  return (
    <form
      className="jp-dodo-Form jp-dodo-EntryEditor"
      onSubmit={e => void submit(e)}
      aria-label={creating ? 'Add an MCP server' : `Edit ${entry.display_name || entry.id}`}
      noValidate
    >
      <h4 className="jp-dodo-Subtitle">
        {creating ? 'Add an MCP server' : `Edit “${entry.display_name || entry.id}”`}
      </h4>
      {message && (
        <div className="jp-dodo-Field-error" role="alert">
          {message}
        </div>
      )}
      {creating && (
        <Field
          id={`${prefix}-id`}
          label="Id"
          hint="Short and stable: lowercase letters, digits and '-'. Tool names start with it."
          error={errorFor('id')}
          required
        >
          {props => (
            <input
              {...props}
              className="jp-mod-styled jp-dodo-Input"
              value={draft.id}
              onChange={e => set({ id: e.target.value })}
            />
          )}
        </Field>
      )}
      <Field id={`${prefix}-display_name`} label="Name" error={errorFor('display_name', 'name')}>
        {props => (
          <input
            {...props}
            className="jp-mod-styled jp-dodo-Input"
            value={draft.display_name}
            onChange={e => set({ display_name: e.target.value })}
          />
        )}
      </Field>
      <Field
        id={`${prefix}-description`}
        label="Description"
        hint="At most 100 characters."
        error={errorFor('description')}
      >
        {props => (
          <input
            {...props}
            className="jp-mod-styled jp-dodo-Input"
            value={draft.description}
            onChange={e => set({ description: e.target.value })}
          />
        )}
      </Field>
      <Field
        id={`${prefix}-url`}
        label="MCP endpoint URL"
        hint="https:// (plain http only for loopback in development)."
        error={errorFor('url')}
        required
      >
        {props => (
          <input
            {...props}
            className="jp-mod-styled jp-dodo-Input"
            type="url"
            value={draft.url}
            onChange={e => set({ url: e.target.value })}
          />
        )}
      </Field>
      <div className="jp-dodo-FieldRow">
        <Field id={`${prefix}-transport`} label="Transport" error={errorFor('transport')}>
          {props => (
            <select
              {...props}
              className="jp-mod-styled jp-dodo-Input"
              value={draft.transport}
              onChange={e => set({ transport: e.target.value })}
            >
              <option value="streamable-http">streamable HTTP</option>
              <option value="sse">SSE</option>
            </select>
          )}
        </Field>
        <Field id={`${prefix}-auth_type`} label="Authentication" error={errorFor('auth_type')}>
          {props => (
            <select
              {...props}
              className="jp-mod-styled jp-dodo-Input"
              value={draft.auth_type}
              onChange={e => set({ auth_type: e.target.value as AuthType })}
            >
              <option value="oauth">OAuth</option>
              <option value="static_headers">Headers (API key)</option>
              <option value="none">None</option>
            </select>
          )}
        </Field>
      </div>
      {draft.auth_type === 'static_headers' && (
        <fieldset className="jp-dodo-Fieldset">
          <legend>Headers each user supplies</legend>
          {errorFor('headers') && (
            <div className="jp-dodo-Field-error" role="alert">
              {errorFor('headers')}
            </div>
          )}
          {draft.headers.map((header, index) => (
            <div className="jp-dodo-HeaderRow" key={index}>
              <input
                className="jp-mod-styled jp-dodo-Input"
                aria-label={`Header ${index + 1} name`}
                placeholder="X-API-Key"
                value={header.name}
                onChange={e => {
                  const headers = [...draft.headers];
                  headers[index] = { ...header, name: e.target.value };
                  set({ headers });
                }}
              />
              <input
                className="jp-mod-styled jp-dodo-Input"
                aria-label={`Header ${index + 1} description`}
                placeholder="What users paste here"
                value={header.description}
                onChange={e => {
                  const headers = [...draft.headers];
                  headers[index] = { ...header, description: e.target.value };
                  set({ headers });
                }}
              />
              <label className="jp-dodo-Check">
                <input
                  type="checkbox"
                  checked={header.is_secret}
                  onChange={e => {
                    const headers = [...draft.headers];
                    headers[index] = { ...header, is_secret: e.target.checked };
                    set({ headers });
                  }}
                />
                secret
              </label>
              <button
                type="button"
                className="jp-mod-styled jp-dodo-SmallButton"
                aria-label={`Remove header ${index + 1}`}
                onClick={() => set({ headers: draft.headers.filter((_, i) => i !== index) })}
              >
                Remove
              </button>
            </div>
          ))}
          <button
            type="button"
            className="jp-mod-styled jp-dodo-SmallButton"
            onClick={() =>
              set({ headers: [...draft.headers, { name: '', description: '', is_secret: true }] })
            }
          >
            Add a header
          </button>
        </fieldset>
      )}
      <PolicyFields
        prefix={prefix}
        draft={draft.policy}
        onChange={policy => set({ policy })}
        errorFor={errorFor}
      />
      {draft.auth_type === 'oauth' && (
        <details className="jp-dodo-Fieldset" open={!!errorFor('oauth')}>
          <summary>OAuth options (pre-registered client, scopes, resource)</summary>
          {errorFor('oauth') && (
            <div className="jp-dodo-Field-error" role="alert">
              {errorFor('oauth')}
            </div>
          )}
          <Field
            id={`${prefix}-client_id`}
            label="Client id"
            hint="Only for servers without dynamic registration (e.g. GitHub)."
          >
            {props => (
              <input
                {...props}
                className="jp-mod-styled jp-dodo-Input"
                value={draft.client_id}
                onChange={e => set({ client_id: e.target.value })}
              />
            )}
          </Field>
          <Field
            id={`${prefix}-client_secret_env`}
            label="Client secret environment variable"
            hint="The variable's name; the secret itself is never stored in the catalog."
          >
            {props => (
              <input
                {...props}
                className="jp-mod-styled jp-dodo-Input"
                value={draft.client_secret_env}
                onChange={e => set({ client_secret_env: e.target.value })}
              />
            )}
          </Field>
          <Field id={`${prefix}-scopes`} label="Scopes" hint="Separated by spaces.">
            {props => (
              <input
                {...props}
                className="jp-mod-styled jp-dodo-Input"
                value={draft.scopes}
                onChange={e => set({ scopes: e.target.value })}
              />
            )}
          </Field>
          <Field id={`${prefix}-resource`} label="Resource (RFC 8707) override">
            {props => (
              <input
                {...props}
                className="jp-mod-styled jp-dodo-Input"
                value={draft.resource}
                onChange={e => set({ resource: e.target.value })}
              />
            )}
          </Field>
          <label className="jp-dodo-Check">
            <input
              type="checkbox"
              checked={draft.send_resource}
              onChange={e => set({ send_resource: e.target.checked })}
            />
            Send the resource indicator
          </label>
        </details>
      )}
      <Field
        id={`${prefix}-known_hosts`}
        label="Other hosts its sign-in uses"
        hint="E.g. its authorization server; separated by commas."
        error={errorFor('known_hosts')}
      >
        {props => (
          <input
            {...props}
            className="jp-mod-styled jp-dodo-Input"
            value={draft.known_hosts}
            onChange={e => set({ known_hosts: e.target.value })}
          />
        )}
      </Field>
      <Field
        id={`${prefix}-setup_guide`}
        label="Setup guide"
        hint="Shown to users next to the server."
        error={errorFor('setup_guide')}
      >
        {props => (
          <textarea
            {...props}
            className="jp-mod-styled jp-dodo-Input"
            rows={3}
            value={draft.setup_guide}
            onChange={e => set({ setup_guide: e.target.value })}
          />
        )}
      </Field>
      <label className="jp-dodo-Check">
        <input
          type="checkbox"
          checked={draft.enabled}
          onChange={e => set({ enabled: e.target.checked })}
        />
        Enabled (users can see and connect it)
      </label>
      {errorFor('entry') && (
        <div className="jp-dodo-Field-error" role="alert">
          {errorFor('entry')}
        </div>
      )}
      <div className="jp-dodo-Actions">
        <button type="submit" className="jp-mod-styled jp-mod-accept" disabled={busy}>
          {creating ? 'Add server' : 'Save'}
        </button>
        <button type="button" className="jp-mod-styled" onClick={onDone}>
          Cancel
        </button>
      </div>
    </form>
  );
}
