/**
 * The Agent notebooks section: the notebooks code mode kept of agents' runs,
 * each with the agent that ran it, how many runs and when the last one was,
 * and whether its session is still running; a click opens it.
 */
import * as React from 'react';

import { type AgentNotebooksModel, notebookAgent, notebookName } from '../agentNotebooksModel';
import type { IAgentNotebook } from '../tokens';
import { formatCallTime } from './ActivityPanel';
import { ErrorNote, Note } from './common';

/**
 * Props of `AgentNotebooksPanel`.
 */
export interface IAgentNotebooksPanelProps {
  model: AgentNotebooksModel;
}

export function AgentNotebooksPanel({ model }: IAgentNotebooksPanelProps): React.ReactElement {
  const { list } = model;
  const { enabled, folder, notebooks } = list.value;
  return (
    <div className="jp-dodo-Section jp-dodo-AgentNotebooks" aria-busy={list.status === 'loading'}>
      <p className="jp-dodo-Intro">
        In code mode agents run Python that calls your tools; each session's runs are kept as a
        notebook{folder ? ` in ${folder}/` : ''}. Open one to see what ran, rerun it or carry
        on by hand.
      </p>
      <ErrorNote title="Could not load the agent notebooks." error={list.error} />
      {list.status === 'loading' && (
        <div className="jp-dodo-Message" role="status">
          <span className="jp-dodo-Spinner" aria-hidden="true" />
          Loading…
        </div>
      )}
      {list.status === 'ready' && !enabled && (
        <Note>
          Code mode is off on this server: set <code>c.DodoApp.code_mode = True</code> (or{' '}
          <code>DODO_CODE_MODE=1</code>) and restart Jupyter to let agents run code at{' '}
          <code>dodo/mcp/codemode</code>.
        </Note>
      )}
      {list.status === 'ready' && enabled && notebooks.length === 0 && (
        <Note>
          No agent has run code yet. Point an agent at <code>dodo/mcp/codemode</code> with a
          gateway token (Agent access).
        </Note>
      )}
      {notebooks.length > 0 && (
        <ul className="jp-dodo-CallList" aria-label="Agent notebooks">
          {notebooks.map(notebook => (
            <NotebookRow key={notebook.path} notebook={notebook} model={model} />
          ))}
        </ul>
      )}
    </div>
  );
}

function NotebookRow({
  notebook,
  model
}: {
  notebook: IAgentNotebook;
  model: AgentNotebooksModel;
}): React.ReactElement {
  const name = notebookName(notebook);
  const when = notebook.last_run_at ?? notebook.started_at;
  return (
    <li className="jp-dodo-Call jp-dodo-AgentNotebook" data-path={notebook.path}>
      <div className="jp-dodo-Call-head">
        <button
          type="button"
          className="jp-dodo-LinkButton jp-dodo-Call-name"
          title={`Open ${notebook.path}`}
          onClick={() => void model.open(notebook.path)}
        >
          {name}
        </button>
        {notebook.active && (
          <span
            className="jp-dodo-badge jp-dodo-outcome-ok"
            title="Its session has a running kernel"
          >
            running
          </span>
        )}
      </div>
      <div className="jp-dodo-Call-meta">
        <span className="jp-dodo-Call-agent">{notebookAgent(notebook)}</span>
        <span>
          {notebook.runs} run{notebook.runs === 1 ? '' : 's'}
        </span>
        {when && (
          <time dateTime={when} title={when}>
            {formatCallTime(when)}
          </time>
        )}
      </div>
    </li>
  );
}
