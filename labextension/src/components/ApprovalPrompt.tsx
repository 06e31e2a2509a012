/**
 * The approval prompt: a JupyterLab dialog that shows a held tool call (server,
 * tool, arguments, calling agent, time left) and asks Deny, Approve once, or
 * Always for this tool in this session. Deny is the default button, so a
 * stray Enter refuses; the dialog has no close button: it ends with a decision,
 * or closes by itself when the call is gone.
 */
import { Dialog } from '@jupyterlab/apputils';
import * as React from 'react';

import type { IApprovalPrompt } from '../approvals';
import type { ApprovalDecision, ICallAgent, IWaitingCall } from '../tokens';

const DENY = 'Deny';
const ONCE = 'Approve once';
const SESSION = 'Always for this tool in this session';

const DECISIONS: Record<string, ApprovalDecision> = {
  [DENY]: 'deny',
  [ONCE]: 'once',
  [SESSION]: 'session'
};

/**
 * Show the prompt for `call`; `serverName` names its server for people.
 */
export function openApprovalPrompt(
  call: IWaitingCall,
  serverName: (id: string) => string = id => id
): IApprovalPrompt {
  const deadline = Date.now() + Math.max(0, call.expires_in) * 1000;
  const dialog = new Dialog<unknown>({
    title: `An agent wants to call ${call.tool}`,
    body: <ApprovalBody call={call} server={serverName(call.server_id)} deadline={deadline} />,
    buttons: [
      Dialog.cancelButton({ label: DENY, caption: 'Refuse this call' }),
      Dialog.okButton({ label: ONCE, caption: 'Let this one call go on' }),
      Dialog.okButton({
        label: SESSION,
        caption: 'Let every call of this tool by this agent go on, until the Jupyter server restarts'
      })
    ],
    defaultButton: 0,
    hasClose: false
  });
  dialog.addClass('jp-dodo-ApprovalDialog');
  dialog.node.dataset.callId = call.id;
  const decision = dialog.launch().then(
    result => DECISIONS[result.button.label] ?? null,
    () => null
  );
  return { decision, close: () => dialog.dispose() };
}

/**
 * Props of `ApprovalBody`.
 */
export interface IApprovalBodyProps {
  call: IWaitingCall;
  server: string;
  /**
   * When the call is refused for want of a decision (`Date.now()` time).
   */
  deadline: number;
}

/**
 * What the prompt shows about the call.
 */
export function ApprovalBody({ call, server, deadline }: IApprovalBodyProps): React.ReactElement {
  const left = useSecondsLeft(deadline);
  const agent = describeAgent(call.agent);
  const serverLabel = server === call.server_id ? server : `${server} (${call.server_id})`;
  return (
    <div className="jp-dodo-Approval" aria-label={`Held call to ${call.tool}`}>
      <dl className="jp-dodo-Approval-facts">
        <dt>Server</dt>
        <dd>{serverLabel}</dd>
        <dt>Tool</dt>
        <dd>
          <code className="jp-dodo-Code">{call.tool}</code>
        </dd>
        <dt>Agent</dt>
        <dd>
          {agent.length === 0
            ? 'Unknown (no labels)'
            : agent.map(([label, value]) => (
                <div key={label}>
                  {label}: <span className="jp-dodo-Approval-agent">{value}</span>
                </div>
              ))}
        </dd>
      </dl>
      <div className="jp-dodo-Approval-label" id={`jp-dodo-approval-${call.id}-args`}>
        Arguments
      </div>
      <pre
        className="jp-dodo-Code jp-dodo-Approval-arguments"
        aria-labelledby={`jp-dodo-approval-${call.id}-args`}
      >
        {JSON.stringify(call.arguments ?? {}, null, 2)}
      </pre>
      <div className="jp-dodo-Approval-countdown" role="timer" aria-live="off">
        {left > 0
          ? `Decide within ${left} s; after that the call is refused.`
          : 'Time is up: the call is refused.'}
      </div>
    </div>
  );
}

/**
 * The agent's labels, in reading order.
 */
export function describeAgent(agent: ICallAgent | undefined): [string, string][] {
  const rows: [string, string][] = [];
  if (agent?.client) {
    rows.push(['Client', agent.client]);
  }
  if (agent?.chat_id) {
    rows.push(['Jupyter AI chat', agent.chat_id]);
  }
  if (agent?.persona_id) {
    rows.push(['Persona', agent.persona_id]);
  }
  if (agent?.token_id) {
    const label = agent.token ? `${agent.token} (${agent.token_id})` : agent.token_id;
    rows.push(['Gateway token', label]);
  }
  if (agent?.path && agent.path !== 'gateway') {
    rows.push(['Through', agent.path]);
  }
  return rows;
}

/**
 * Whole seconds until `deadline`, updated every second.
 */
function useSecondsLeft(deadline: number): number {
  const compute = (): number => Math.max(0, Math.ceil((deadline - Date.now()) / 1000));
  const [left, setLeft] = React.useState(compute);
  React.useEffect(() => {
    const timer = window.setInterval(() => setLeft(compute()), 1000);
    return () => window.clearInterval(timer);
  }, [deadline]);
  return left;
}
