/**
 * Tool calls held for the owner's approval.
 *
 * For the lab's lifetime, `ApprovalWatcher` keeps one long poll of
 * `dodo/api/user/approvals` open (which is also how the server knows a lab is
 * open), opens a prompt for each call it has not shown yet, sends the owner's
 * decision, and closes a prompt whose call is gone (decided in another lab, or
 * timed out). On errors it retries after 1 s, doubling up to 30 s; a 403 (a
 * visitor of a shared server) stops it for good.
 *
 * The prompt is `components/ApprovalPrompt.tsx` and the REST calls are in
 * `approvalsAPI.ts`; both are passed in, so this loop is unit-tested in Node.
 */
import type { ApprovalDecision, IWaitingCall } from './tokens';

/**
 * How long one poll may wait on the server, in seconds.
 */
export const POLL_WAIT_SECONDS = 25;

/**
 * The first and the longest pause after a failed poll, in milliseconds.
 */
export const FIRST_RETRY_MS = 1000;
export const MAX_RETRY_MS = 30000;

/**
 * The pause after a failed poll: 1 s, then twice the previous one, at most 30 s.
 */
export function nextRetryDelay(previous: number | null): number {
  return previous === null ? FIRST_RETRY_MS : Math.min(previous * 2, MAX_RETRY_MS);
}

/**
 * One open prompt.
 */
export interface IApprovalPrompt {
  /**
   * The owner's decision, or `null` when the prompt closed without one.
   */
  readonly decision: Promise<ApprovalDecision | null>;
  /**
   * Close the prompt without a decision (its call is gone).
   */
  close(): void;
}

/**
 * Options of `ApprovalWatcher`.
 */
export interface IApprovalWatcherOptions {
  /**
   * Show a prompt for a waiting call.
   */
  openPrompt: (call: IWaitingCall) => IApprovalPrompt;
  /**
   * Tell the owner that their decision could not be sent.
   */
  reportError: (call: IWaitingCall, decision: ApprovalDecision, message: string) => void;
  /**
   * The waiting calls, once they differ from `seen` or after the poll's wait
   * (`fetchWaitingCalls` of `approvalsAPI.ts`).
   */
  fetchCalls: (seen: readonly string[], signal: AbortSignal) => Promise<IWaitingCall[]>;
  /**
   * Send a decision (`sendApprovalDecision` of `approvalsAPI.ts`).
   */
  sendDecision: (id: string, decision: ApprovalDecision) => Promise<void>;
  /**
   * Wait `ms` milliseconds (resolves early when `signal` aborts).
   */
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
}

/**
 * Polls for held calls and prompts the owner for each.
 */
export class ApprovalWatcher {
  constructor(options: IApprovalWatcherOptions) {
    this._openPrompt = options.openPrompt;
    this._reportError = options.reportError;
    this._fetchCalls = options.fetchCalls;
    this._sendDecision = options.sendDecision;
    this._sleep = options.sleep ?? abortableSleep;
  }

  /**
   * Whether the server refused the poll (403): this user decides nothing here.
   */
  get forbidden(): boolean {
    return this._forbidden;
  }

  /**
   * Whether `dispose()` was called.
   */
  get isDisposed(): boolean {
    return this._abort.signal.aborted;
  }

  /**
   * The ids of the calls the prompts are open (or queued) for.
   */
  get prompted(): string[] {
    return [...this._prompts.keys()];
  }

  /**
   * Start polling; resolves when the watcher stops (disposed, or a 403).
   */
  start(): Promise<void> {
    if (!this._running) {
      this._running = this._run();
    }
    return this._running;
  }

  /**
   * Stop polling and close every prompt.
   */
  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    this._abort.abort();
    for (const prompt of this._prompts.values()) {
      prompt.close();
    }
    this._prompts.clear();
  }

  private async _run(): Promise<void> {
    const signal = this._abort.signal;
    let delay: number | null = null;
    while (!signal.aborted) {
      let calls: IWaitingCall[];
      try {
        calls = await this._fetchCalls(this._seen, signal);
      } catch (reason) {
        if (signal.aborted) {
          return;
        }
        if (statusOf(reason) === 403) {
          this._forbidden = true;
          return;
        }
        delay = nextRetryDelay(delay);
        await this._sleep(delay, signal);
        continue;
      }
      delay = null;
      if (!signal.aborted) {
        this._update(Array.isArray(calls) ? calls : []);
      }
    }
  }

  /**
   * Follow the server's list: close the prompts of calls that are gone, open
   * one for each new call.
   */
  private _update(calls: IWaitingCall[]): void {
    const ids = new Set(calls.map(c => c.id));
    for (const [id, prompt] of [...this._prompts]) {
      if (!ids.has(id)) {
        this._prompts.delete(id);
        prompt.close();
      }
    }
    for (const id of [...this._handled]) {
      if (!ids.has(id)) {
        this._handled.delete(id);
      }
    }
    for (const call of calls) {
      if (!this._prompts.has(call.id) && !this._handled.has(call.id)) {
        this._open(call);
      }
    }
    // What the server holds now: the next poll waits until that changes.
    this._seen = calls.map(c => c.id);
  }

  private _open(call: IWaitingCall): void {
    const prompt = this._openPrompt(call);
    this._prompts.set(call.id, prompt);
    void prompt.decision.then(
      decision => this._decide(call, prompt, decision),
      () => this._decide(call, prompt, null)
    );
  }

  private async _decide(
    call: IWaitingCall,
    prompt: IApprovalPrompt,
    decision: ApprovalDecision | null
  ): Promise<void> {
    if (this._prompts.get(call.id) !== prompt) {
      return; // closed because the call is gone
    }
    this._prompts.delete(call.id);
    // Until the server drops it, the call is in the poll's answers: no new prompt.
    this._handled.add(call.id);
    if (decision === null || this.isDisposed) {
      return;
    }
    try {
      await this._sendDecision(call.id, decision);
    } catch (reason) {
      this._reportError(call, decision, messageOf(reason));
    }
  }

  private readonly _openPrompt: IApprovalWatcherOptions['openPrompt'];
  private readonly _reportError: IApprovalWatcherOptions['reportError'];
  private readonly _fetchCalls: IApprovalWatcherOptions['fetchCalls'];
  private readonly _sendDecision: IApprovalWatcherOptions['sendDecision'];
  private readonly _sleep: NonNullable<IApprovalWatcherOptions['sleep']>;
  private readonly _abort = new AbortController();
  private readonly _prompts = new Map<string, IApprovalPrompt>();
  private readonly _handled = new Set<string>();
  private _seen: string[] = [];
  private _forbidden = false;
  private _running: Promise<void> | null = null;
}

function abortableSleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise(resolve => {
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done);
  });
}

function statusOf(reason: unknown): number | undefined {
  const status = (reason as { status?: unknown } | null)?.status;
  return typeof status === 'number' ? status : undefined;
}

function messageOf(reason: unknown): string {
  return reason instanceof Error ? reason.message : String(reason);
}
