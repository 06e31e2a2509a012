/**
 * The Activity section: the owner's recent tool calls (by their agents, their
 * kernels and their own "Try"), each with its time, server and tool, outcome,
 * duration and calling agent; an outcome filter, a text filter on server and
 * tool, and an export of the calls as JSON lines.
 */
import { InputGroup } from '@jupyterlab/ui-components';
import * as React from 'react';

import { type ActivityModel, OUTCOME_LABELS } from '../activityModel';
import type { CallOutcome, IToolCallRecord } from '../tokens';
import { ErrorNote, Note } from './common';

/**
 * Props of `ActivityPanel`.
 */
export interface IActivityPanelProps {
  model: ActivityModel;
}

export function ActivityPanel({ model }: IActivityPanelProps): React.ReactElement {
  const { calls } = model;
  const shown = model.shown;
  const filtering = model.outcome !== '' || model.text.trim() !== '';
  return (
    <div className="jp-dodo-Section jp-dodo-Activity" aria-busy={calls.status === 'loading'}>
      <p className="jp-dodo-Intro">
        Tool calls by your agents, kernels and your own tries, newest first. Arguments and
        results are not kept.
      </p>
      <div className="jp-dodo-Activity-filters" role="group" aria-label="Filter the calls">
        <select
          className="jp-mod-styled jp-dodo-Input"
          aria-label="Outcome"
          value={model.outcome}
          onChange={e => void model.setOutcome(e.target.value as CallOutcome | '')}
        >
          <option value="">All outcomes</option>
          {Object.entries(OUTCOME_LABELS).map(([value, label]) => (
            <option key={value} value={value}>
              {label}
            </option>
          ))}
        </select>
        <InputGroup
          type="search"
          rightIcon="ui-components:search"
          placeholder="Server or tool"
          aria-label="Filter by server or tool"
          value={model.text}
          onChange={e => model.setText((e.target as HTMLInputElement).value)}
        />
      </div>
      <div className="jp-dodo-Actions">
        <button
          type="button"
          className="jp-mod-styled"
          disabled={model.exporting}
          title="Download your latest calls (of the chosen outcome) as JSON lines"
          onClick={() => void model.exportJsonLines()}
        >
          {model.exporting ? 'Exporting…' : 'Export JSON lines'}
        </button>
      </div>
      <ErrorNote title="Could not load your activity." error={calls.error} />
      <ErrorNote title="Could not export your calls." error={model.exportError} />
      {calls.status === 'loading' && (
        <div className="jp-dodo-Message" role="status">
          <span className="jp-dodo-Spinner" aria-hidden="true" />
          Loading…
        </div>
      )}
      {calls.status === 'ready' && calls.value.length === 0 && (
        <Note>
          {model.outcome
            ? `No call ended “${OUTCOME_LABELS[model.outcome]}” lately.`
            : 'No tool calls yet. Calls by your agents and your tries in the Tools section appear here.'}
        </Note>
      )}
      {calls.value.length > 0 && shown.length === 0 && (
        <div className="jp-dodo-Message">No call matches “{model.text}”.</div>
      )}
      {shown.length > 0 && (
        <ul className="jp-dodo-CallList" aria-label="Tool calls">
          {shown.map(call => (
            <CallRow key={call.id} call={call} />
          ))}
        </ul>
      )}
      {shown.length > 0 && filtering && (
        <div className="jp-dodo-Message">
          {shown.length} call{shown.length === 1 ? '' : 's'} shown.
        </div>
      )}
    </div>
  );
}

function CallRow({ call }: { call: IToolCallRecord }): React.ReactElement {
  const label = OUTCOME_LABELS[call.outcome] ?? call.outcome;
  return (
    <li
      className="jp-dodo-Call"
      data-outcome={call.outcome}
      data-server={call.server_id}
      data-tool={call.tool}
      aria-label={`${call.server_id}/${call.tool}: ${label}`}
    >
      <div className="jp-dodo-Call-head">
        <span className="jp-dodo-Call-name" title={`${call.server_id}/${call.tool}`}>
          <span className="jp-dodo-Call-server">{call.server_id}/</span>
          {call.tool}
        </span>
        <span className={`jp-dodo-badge jp-dodo-outcome jp-dodo-outcome-${call.outcome}`}>
          {label}
        </span>
      </div>
      <div className="jp-dodo-Call-meta">
        <time dateTime={call.at} title={call.at}>
          {formatCallTime(call.at)}
        </time>
        <span>{formatDuration(call.duration_ms)}</span>
        <span className="jp-dodo-Call-agent">{agentLabel(call)}</span>
      </div>
      {call.detail && call.outcome !== 'ok' && (
        <div className="jp-dodo-Call-detail">{call.detail}</div>
      )}
    </li>
  );
}

/**
 * Who made the call: the MCP client, or the Jupyter AI persona and chat, or
 * the way it came.
 */
export function agentLabel(call: IToolCallRecord): string {
  const parts: string[] = [];
  if (call.client) {
    parts.push(call.client);
  }
  if (call.persona_id) {
    parts.push(`persona ${call.persona_id}`);
  }
  if (call.chat_id) {
    parts.push(`chat ${call.chat_id}`);
  }
  if (parts.length > 0) {
    return parts.join(', ');
  }
  switch (call.path) {
    case 'try_it':
      return 'you (Try)';
    case 'kernel':
      return 'a kernel';
    case 'code_mode':
      return 'code mode';
    default:
      return call.token_id ? `token ${call.token_id}` : 'an unnamed agent';
  }
}

/**
 * The time of day (with seconds) for today's calls, with the date otherwise.
 */
export function formatCallTime(iso: string): string {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) {
    return iso;
  }
  const today = new Date().toDateString() === date.toDateString();
  return today
    ? date.toLocaleTimeString(undefined, { timeStyle: 'medium' })
    : date.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
}

/**
 * `35 ms`, `1.2 s`, or `—` when not measured.
 */
export function formatDuration(ms: number | null | undefined): string {
  if (typeof ms !== 'number' || Number.isNaN(ms)) {
    return '—';
  }
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`;
}
