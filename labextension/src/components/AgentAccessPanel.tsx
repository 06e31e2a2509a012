/**
 * The Agent access section: the gateway URL, gateway tokens (create, shown
 * once; list; revoke) and copy-ready snippets for MCP clients.
 */
import { Dialog, showDialog } from '@jupyterlab/apputils';
import * as React from 'react';

import type { DodoModel } from '../model';
import { toAPIError } from '../model';
import { buildSnippets } from '../snippets';
import type { IGatewayToken, ITokenUser } from '../tokens';
import { CopyButton, ErrorNote, Field, Note, formatTime } from './common';

/**
 * Props of `AgentAccessPanel`.
 */
export interface IAgentAccessPanelProps {
  model: DodoModel;
}

export function AgentAccessPanel({ model }: IAgentAccessPanelProps): React.ReactElement {
  const url = model.gatewayUrl;
  const snippets = buildSnippets(url, model.newToken?.token ?? null);
  const [snippetId, setSnippetId] = React.useState(snippets[0].id);
  const snippet = snippets.find(s => s.id === snippetId) ?? snippets[0];

  if (model.me && !model.me.is_owner) {
    return (
      <div className="jp-dodo-Section">
        <Note>Gateway tokens are personal: create them on your own Jupyter server.</Note>
      </div>
    );
  }

  return (
    <div className="jp-dodo-Section">
      <p className="jp-dodo-Intro">
        Your agents reach every tool you connected, and switched on, through one MCP endpoint.
      </p>
      <div className="jp-dodo-Field">
        <label className="jp-dodo-Field-label" htmlFor="jp-dodo-gateway-url">
          Gateway URL (streamable HTTP)
        </label>
        <div className="jp-dodo-CopyRow">
          <input
            id="jp-dodo-gateway-url"
            className="jp-mod-styled jp-dodo-Input jp-dodo-Code"
            readOnly
            value={url}
            onFocus={e => e.target.select()}
          />
          <CopyButton text={url} label="gateway URL" />
        </div>
      </div>

      <h3 className="jp-dodo-Subtitle">Tokens</h3>
      {model.newToken && (
        <div className="jp-dodo-NewToken" role="status" aria-label="New token">
          <div>
            <strong>Your new token “{model.newToken.label}”.</strong> Copy it now: it is shown
            only once.
          </div>
          <div className="jp-dodo-CopyRow">
            <input
              className="jp-mod-styled jp-dodo-Input jp-dodo-Code"
              aria-label="New token"
              readOnly
              value={model.newToken.token}
              onFocus={e => e.target.select()}
            />
            <CopyButton text={model.newToken.token} label="token" />
          </div>
          <div className="jp-dodo-Actions">
            <button type="button" className="jp-mod-styled" onClick={() => model.dismissNewToken()}>
              Done, hide it
            </button>
          </div>
        </div>
      )}
      <CreateTokenForm model={model} />
      <TokenList model={model} />

      <h3 className="jp-dodo-Subtitle">Client configuration</h3>
      <Field id="jp-dodo-snippet-client" label="Client">
        {props => (
          <select
            {...props}
            className="jp-mod-styled jp-dodo-Input"
            value={snippet.id}
            onChange={e => setSnippetId(e.target.value)}
          >
            {snippets.map(s => (
              <option key={s.id} value={s.id}>
                {s.title}
              </option>
            ))}
          </select>
        )}
      </Field>
      <div className="jp-dodo-Snippet" data-snippet-id={snippet.id}>
        <div className="jp-dodo-Snippet-where">
          In {snippet.where}
          {snippet.id !== 'magic' && !model.newToken && ' — replace the placeholder with a token'}
        </div>
        <pre className="jp-dodo-Code" aria-label={`${snippet.title} configuration`}>
          {snippet.text}
        </pre>
        <CopyButton text={snippet.text} label={`${snippet.title} configuration`} />
      </div>
    </div>
  );
}

function CreateTokenForm({ model }: { model: DodoModel }): React.ReactElement {
  const [label, setLabel] = React.useState('');
  const [days, setDays] = React.useState('90');
  const [errors, setErrors] = React.useState<Record<string, string>>({});
  const [message, setMessage] = React.useState<string | null>(null);
  const [busy, setBusy] = React.useState(false);

  const submit = async (event: React.FormEvent): Promise<void> => {
    event.preventDefault();
    const fieldErrors: Record<string, string> = {};
    if (!label.trim()) {
      fieldErrors.label = 'Give the token a name, e.g. the agent that uses it.';
    }
    const lifetime = days === '' ? null : Number(days);
    setErrors(fieldErrors);
    if (Object.keys(fieldErrors).length) {
      return;
    }
    setBusy(true);
    setMessage(null);
    try {
      await model.createToken(label.trim(), lifetime);
      setLabel('');
    } catch (reason) {
      const error = toAPIError(reason);
      setErrors({ ...error.fields });
      setMessage(Object.keys(error.fields).length ? null : error.message);
    } finally {
      setBusy(false);
    }
  };

  return (
    <form className="jp-dodo-Form" onSubmit={e => void submit(e)} aria-label="Create a token">
      <Field id="jp-dodo-token-label" label="Name" error={errors.label} required>
        {props => (
          <input
            {...props}
            className="jp-mod-styled jp-dodo-Input"
            placeholder="e.g. jupyter-ai"
            value={label}
            onChange={e => setLabel(e.target.value)}
          />
        )}
      </Field>
      <Field id="jp-dodo-token-days" label="Expires after" error={errors.expires_in_days}>
        {props => (
          <select
            {...props}
            className="jp-mod-styled jp-dodo-Input"
            value={days}
            onChange={e => setDays(e.target.value)}
          >
            <option value="7">7 days</option>
            <option value="30">30 days</option>
            <option value="90">90 days</option>
            <option value="365">1 year</option>
            <option value="">the server's default</option>
          </select>
        )}
      </Field>
      {message && (
        <div className="jp-dodo-Field-error" role="alert">
          {message}
        </div>
      )}
      <div className="jp-dodo-Actions">
        <button type="submit" className="jp-mod-styled jp-mod-accept" disabled={busy}>
          Create token
        </button>
      </div>
    </form>
  );
}

/**
 * "Claude Code 2.1 · Jupyter AI persona jupyternaut in chat 6f2c…": the labels the agent sent.
 */
export function describeUser(user: ITokenUser): string {
  const parts = [user.client ?? 'an MCP client'];
  if (user.persona_id) {
    parts.push(`Jupyter AI persona ${user.persona_id}`);
  }
  if (user.chat_id) {
    parts.push(`in chat ${user.chat_id}`);
  }
  return parts.join(' · ');
}

function TokenList({ model }: { model: DodoModel }): React.ReactElement {
  const { tokens } = model;
  const [error, setError] = React.useState<string | null>(null);

  const revoke = async (token: IGatewayToken): Promise<void> => {
    const answer = await showDialog({
      title: 'Revoke token?',
      body: `Agents using “${token.label}” (${token.prefix}…) lose access at once.`,
      buttons: [Dialog.cancelButton(), Dialog.warnButton({ label: 'Revoke' })]
    });
    if (!answer.button.accept) {
      return;
    }
    setError(null);
    try {
      await model.revokeToken(token.id);
    } catch (reason) {
      setError(toAPIError(reason).message);
    }
  };

  const own = tokens.value.filter(t => t.kind !== 'kernel');
  return (
    <div>
      <ErrorNote title="Could not load your tokens." error={tokens.error} />
      <ErrorNote title="Could not revoke the token." error={error} />
      {tokens.status === 'ready' && own.length === 0 && (
        <div className="jp-dodo-Message">
          No tokens yet. Create one for each agent or client, so you can revoke them one by one.
        </div>
      )}
      {own.length > 0 && (
        <ul className="jp-dodo-TokenList" aria-label="Your gateway tokens">
          {own.map(token => (
            <li key={token.id} className="jp-dodo-Token" data-token-id={token.id}>
              <div className="jp-dodo-Token-main">
                <div className="jp-dodo-Token-label">{token.label || '(no name)'}</div>
                <div className="jp-dodo-Token-prefix jp-dodo-Code" title="Only the prefix is kept visible">
                  {token.prefix}…
                </div>
                <div className="jp-dodo-Token-meta">
                  Last used {token.last_used_at ? formatTime(token.last_used_at) : 'never'} ·
                  expires {token.expires_at ? formatTime(token.expires_at) : 'never'}
                </div>
                {token.last_used_by && (
                  <div className="jp-dodo-Token-meta jp-dodo-Token-usedBy">
                    Last used by {describeUser(token.last_used_by)}
                  </div>
                )}
              </div>
              <button
                type="button"
                className="jp-mod-styled jp-mod-reject jp-dodo-SmallButton"
                aria-label={`Revoke token ${token.label}`}
                onClick={() => void revoke(token)}
              >
                Revoke
              </button>
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}
