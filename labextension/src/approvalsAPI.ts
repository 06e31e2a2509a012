/**
 * The REST side of approvals: the long poll of held calls and the decision on one.
 */
import { POLL_WAIT_SECONDS } from './approvals';
import { requestAPI } from './handler';
import type { ApprovalDecision, IWaitingCall } from './tokens';

/**
 * `GET dodo/api/user/approvals?wait=25&seen=...`.
 */
export async function fetchWaitingCalls(
  seen: readonly string[],
  signal: AbortSignal
): Promise<IWaitingCall[]> {
  const query = `wait=${POLL_WAIT_SECONDS}&seen=${seen.map(encodeURIComponent).join(',')}`;
  const body = await requestAPI<{ calls: IWaitingCall[] }>(`user/approvals?${query}`, {
    signal,
    cache: 'no-store'
  });
  return body?.calls ?? [];
}

/**
 * `POST dodo/api/user/approvals/{id} {decision}`.
 */
export async function sendApprovalDecision(
  id: string,
  decision: ApprovalDecision
): Promise<void> {
  await requestAPI(`user/approvals/${encodeURIComponent(id)}`, {
    method: 'POST',
    body: JSON.stringify({ decision })
  });
}
