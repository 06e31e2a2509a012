/**
 * The Agents section: the agent hosts on this server (Jupyter AI, its
 * settings file, notebook-intelligence, Claude Code), whether each uses the
 * gateway, one click to write or remove its config, and the `claude mcp add`
 * line with a token made for it.
 */
import * as React from 'react';

import type { AgentsModel } from '../agentsModel';
import type { IAgent } from '../tokens';
import { CopyButton, ErrorNote, Note } from './common';

/**
 * Props of `AgentsPanel`.
 */
export interface IAgentsPanelProps {
  model: AgentsModel;
}

const STATE_LABELS: Record<string, string> = {
  on: 'on',
  off: 'off',
  configured: 'configured',
  token_revoked: 'token revoked',
  elsewhere: 'points elsewhere',
  not_configured: 'not configured',
  invalid: 'invalid file'
};

/**
 * Lists the agents with loading, error and empty states.
 */
export function AgentsPanel({ model }: IAgentsPanelProps): React.ReactElement {
  const { agents } = model;
  return (
    <div className="jp-dodo-Section" aria-busy={agents.status === 'loading'}>
      <p className="jp-dodo-Intro">
        Agents on this server and whether they use your gateway. Writing a config gives the
        agent its own token; removing it revokes that token.
      </p>
      <ErrorNote title="Could not load the agents." error={agents.error} />
      {agents.status === 'loading' && agents.value.length === 0 && (
        <div className="jp-dodo-Message">
          <span className="jp-dodo-Spinner" aria-hidden="true" />
          Looking for agents…
        </div>
      )}
      {agents.status === 'ready' && agents.value.length === 0 && (
        <Note>No agents are known to this server.</Note>
      )}
      {agents.value.length > 0 && (
        <ul className="jp-dodo-AgentList" aria-label="Agents">
          {agents.value.map(agent => (
            <AgentRow key={agent.id} model={model} agent={agent} />
          ))}
        </ul>
      )}
    </div>
  );
}

function AgentRow({ model, agent }: { model: AgentsModel; agent: IAgent }): React.ReactElement {
  const activity = model.activityFor(agent.id);
  const busy = activity?.phase === 'writing' || activity?.phase === 'removing';
  const titleId = `jp-dodo-agent-${agent.id}-title`;
  const label = STATE_LABELS[agent.state] ?? agent.state;
  return (
    <li
      className="jp-dodo-Agent"
      data-agent-id={agent.id}
      data-state={agent.state}
      aria-labelledby={titleId}
    >
      <div className="jp-dodo-CatalogEntry-head">
        <span className="jp-dodo-CatalogEntry-name" id={titleId}>
          {agent.name}
        </span>
        <span
          className={`jp-dodo-badge ${agent.installed ? 'jp-dodo-badge-none' : ''}`}
          title={agent.installed ? 'Installed on this server' : 'Not installed on this server'}
        >
          {agent.installed ? 'installed' : 'not installed'}
        </span>
        <span
          className={`jp-dodo-status jp-dodo-agent-status-${agent.state}`}
          role="status"
          aria-label={`${agent.name}: ${label}`}
        >
          {label}
        </span>
      </div>
      {agent.path && (
        <div className="jp-dodo-CatalogEntry-url jp-dodo-Agent-path" title={agent.path}>
          {agent.path}
        </div>
      )}
      {agent.setting && (
        <div className="jp-dodo-CopyRow jp-dodo-Agent-setting">
          <code className="jp-dodo-Code">{agent.setting}</code>
          <CopyButton text={agent.setting} label={`${agent.name} setting`} />
        </div>
      )}
      <div
        className={`jp-dodo-Agent-message${agent.state === 'invalid' ? ' jp-dodo-CatalogEntry-error' : ''}`}
      >
        {agent.message}
      </div>
      {agent.kind === 'cli' && <CliLine model={model} agent={agent} />}
      {busy && (
        <div className="jp-dodo-Progress" role="status">
          <span className="jp-dodo-Spinner" aria-hidden="true" />
          {activity?.phase === 'writing'
            ? agent.kind === 'cli'
              ? 'Making a token for the line…'
              : 'Writing the config…'
            : 'Removing…'}
        </div>
      )}
      {activity?.phase === 'done' && (
        <div className="jp-dodo-Progress" role="status">
          {activity.message}
        </div>
      )}
      <ErrorNote
        title={`Could not change ${agent.name}.`}
        error={activity?.phase === 'failed' ? (activity.message ?? 'Failed.') : null}
      />
      <AgentActions model={model} agent={agent} busy={busy} />
    </li>
  );
}

function AgentActions({
  model,
  agent,
  busy
}: {
  model: AgentsModel;
  agent: IAgent;
  busy: boolean;
}): React.ReactElement | null {
  if (agent.kind === 'builtin') {
    return null;
  }
  const removable =
    agent.kind === 'cli'
      ? agent.configured
      : agent.state === 'configured' || agent.state === 'token_revoked';
  let writeLabel = agent.configured ? 'Write again' : 'Write config';
  if (agent.kind === 'cli') {
    writeLabel = agent.configured ? 'Make a new line' : 'Make the line';
  }
  return (
    <div className="jp-dodo-Actions">
      <button
        type="button"
        className="jp-mod-styled jp-mod-accept"
        aria-label={`${writeLabel}: ${agent.name}`}
        disabled={busy || agent.state === 'invalid'}
        title={agent.state === 'invalid' ? 'Fix the file first (see above)' : undefined}
        onClick={() => void model.write(agent.id)}
      >
        {writeLabel}
      </button>
      {removable && (
        <button
          type="button"
          className="jp-mod-styled jp-mod-reject"
          aria-label={`Remove: ${agent.name}`}
          disabled={busy}
          onClick={() => void model.remove(agent.id)}
        >
          Remove
        </button>
      )}
    </div>
  );
}

function CliLine({
  model,
  agent
}: {
  model: AgentsModel;
  agent: IAgent;
}): React.ReactElement | null {
  const line = model.cliLine;
  if (line) {
    return (
      <div
        className="jp-dodo-NewToken jp-dodo-Agent-line"
        role="status"
        aria-label="New Claude Code line"
      >
        <div>
          <strong>Run this in a terminal.</strong> Copy it now: its token is shown only once.
        </div>
        <pre className="jp-dodo-Code" aria-label="claude mcp add line">
          {line.command}
        </pre>
        <div className="jp-dodo-Actions">
          <CopyButton text={line.command} label="claude mcp add line" />
          <button type="button" className="jp-mod-styled" onClick={() => model.dismissCliLine()}>
            Done, hide it
          </button>
        </div>
      </div>
    );
  }
  if (!agent.command) {
    return null;
  }
  return (
    <pre className="jp-dodo-Code jp-dodo-Agent-command" aria-label="claude mcp add line template">
      {agent.command}
    </pre>
  );
}
