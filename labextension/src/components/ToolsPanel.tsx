/**
 * The Tools section: the caller's aggregated tools grouped by server, a
 * search box, the per-tool "available to agents" switch and the Try form; what
 * the server's tool policy says about each tool (refused, asks first), and the
 * review of a quarantined one (`ToolReview.tsx`).
 */
import { InputGroup } from '@jupyterlab/ui-components';
import * as React from 'react';

import type { DodoModel } from '../model';
import { toAPIError } from '../model';
import { groupByServer } from '../serverGroups';
import type { ITool } from '../tokens';
import { ErrorNote, Note } from './common';
import { ToolReview } from './ToolReview';
import { TryForm } from './TryForm';

/**
 * Props of `ToolsPanel`.
 */
export interface IToolsPanelProps {
  model: DodoModel;
}

export function ToolsPanel({ model }: IToolsPanelProps): React.ReactElement {
  const [query, setQuery] = React.useState('');
  const { tools } = model;
  const groups = groupByServer(tools.value, query, t => [
    t.name,
    t.original_name,
    t.description,
    t.server_id
  ]);
  const serverName = (id: string): string => {
    const entry = model.catalog.value.find(e => e.id === id);
    return entry ? entry.display_name || entry.name : id;
  };

  return (
    <div className="jp-dodo-Section" aria-busy={tools.status === 'loading'}>
      {tools.value.length > 0 && (
        <div className="jp-dodo-Search">
          <InputGroup
            type="search"
            rightIcon="ui-components:search"
            placeholder="Search tools"
            aria-label="Search tools"
            value={query}
            onChange={e => setQuery((e.target as HTMLInputElement).value)}
          />
        </div>
      )}
      <ErrorNote title="Could not load your tools." error={tools.error} />
      {tools.status === 'loading' && tools.value.length === 0 && (
        <div className="jp-dodo-Message">Loading tools…</div>
      )}
      {tools.status === 'ready' && tools.value.length === 0 && (
        <Note>
          <strong>No tools yet.</strong> Connect an MCP server in the Servers section; its tools
          appear here, ready to try and to share with your agents.
        </Note>
      )}
      {tools.value.length > 0 && groups.size === 0 && (
        <div className="jp-dodo-Message">No tool matches “{query}”.</div>
      )}
      {[...groups.entries()].map(([serverId, list]) => (
        <section
          key={serverId}
          className="jp-dodo-ToolGroup"
          aria-label={`Tools of ${serverName(serverId)}`}
        >
          <h3 className="jp-dodo-ToolGroup-title">
            {serverName(serverId)}{' '}
            <span className="jp-dodo-ToolGroup-count">
              {list.length} tool{list.length === 1 ? '' : 's'}
            </span>
          </h3>
          <ul className="jp-dodo-ToolList">
            {list.map(tool => (
              <ToolItem key={tool.name} model={model} tool={tool} />
            ))}
          </ul>
        </section>
      ))}
    </div>
  );
}

function ToolItem({ model, tool }: { model: DodoModel; tool: ITool }): React.ReactElement {
  const [open, setOpen] = React.useState(false);
  const [busy, setBusy] = React.useState(false);
  const [error, setError] = React.useState<string | null>(null);
  const switchId = `jp-dodo-tool-${tool.name}-switch`;

  const toggle = async (): Promise<void> => {
    setBusy(true);
    setError(null);
    try {
      await model.setToolEnabled(tool.name, !tool.enabled);
    } catch (reason) {
      setError(toAPIError(reason).message);
    } finally {
      setBusy(false);
    }
  };

  const classes = ['jp-dodo-Tool'];
  if (tool.refused) {
    classes.push('jp-mod-refused');
  }
  if (tool.quarantine) {
    classes.push('jp-mod-quarantined');
  }
  return (
    <li
      className={classes.join(' ')}
      data-tool-name={tool.name}
      data-quarantine={tool.quarantine ?? undefined}
    >
      <div className="jp-dodo-Tool-head">
        <span className="jp-dodo-Tool-name" title={tool.name}>
          {tool.original_name}
        </span>
        {tool.needs_approval && !tool.refused && (
          <span
            className="jp-dodo-badge jp-dodo-badge-asks"
            title="An agent's call to this tool waits until you approve it in JupyterLab"
          >
            asks first
          </span>
        )}
        <label className="jp-dodo-Switch" htmlFor={switchId} title="Available to agents">
          <input
            id={switchId}
            type="checkbox"
            role="switch"
            checked={tool.enabled}
            disabled={busy}
            aria-label={`${tool.original_name} available to agents`}
            onChange={() => void toggle()}
          />
          <span className="jp-dodo-Switch-track" aria-hidden="true" />
          <span className="jp-dodo-Switch-label">Agents</span>
        </label>
      </div>
      <div className="jp-dodo-Tool-fullname">{tool.name}</div>
      {tool.description && <div className="jp-dodo-Tool-description">{tool.description}</div>}
      {tool.refused && (
        <div className="jp-dodo-Tool-refused">Not offered to agents: {tool.refused}</div>
      )}
      <ToolReview model={model} tool={tool} />
      {error && (
        <div className="jp-dodo-Field-error" role="alert">
          {error}
        </div>
      )}
      <div className="jp-dodo-Actions">
        <button
          type="button"
          className="jp-mod-styled"
          aria-expanded={open}
          aria-label={`Try ${tool.original_name}`}
          onClick={() => setOpen(!open)}
        >
          {open ? 'Close' : 'Try'}
        </button>
      </div>
      {open && <TryForm model={model} tool={tool} />}
    </li>
  );
}
