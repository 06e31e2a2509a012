/**
 * The browser side of an OAuth sign-in: the popup window and the wait for it.
 *
 * The flow, as the Connect button runs it:
 *
 * 1. `openSignInWindow()` runs synchronously inside the click handler (browsers
 *    only allow popups there) and opens an empty popup; `null` means blocked.
 * 2. The model asks the server for the authorize URL and points the popup at it
 *    (or, when blocked, the panel offers the URL as a link that opens a tab).
 * 3. `waitForSignIn()` resolves with the first of: the callback page's
 *    `postMessage` (same origin, type `dodo:oauth-callback`); the connection
 *    turning `connected` on the server (checked every few seconds, which also
 *    covers the new-tab case); the popup closed early; the timeout.
 */

/**
 * `event.data.type` of the callback page's message
 * (`dodo_jupyter.oauth.pages.MESSAGE_TYPE`).
 */
export const CALLBACK_MESSAGE_TYPE = 'dodo:oauth-callback';

/**
 * How long a sign-in may take before the panel gives up (the server's pending
 * state lives ten minutes).
 */
export const SIGN_IN_TIMEOUT_MS = 5 * 60 * 1000;

/**
 * How a sign-in ended.
 */
export interface ISignInOutcome {
  ok: boolean;
  /**
   * `callback`: the callback page reported; `connected`: the server shows the
   * connection connected; `closed`: the window closed first; `timeout`.
   */
  reason: 'callback' | 'connected' | 'closed' | 'timeout';
  message: string;
}

/**
 * Options of `waitForSignIn`.
 */
export interface IWaitOptions {
  /**
   * The popup, or `null` when the sign-in runs in a tab we cannot watch.
   */
  popup: Window | null;
  /**
   * Asks the server whether the connection is connected now.
   */
  isConnected: () => Promise<boolean>;
  timeoutMs?: number;
  pollMs?: number;
}

/**
 * Open an empty, named sign-in popup; call it synchronously from a click.
 *
 * @returns The window, or `null` when the browser blocked it.
 */
export function openSignInWindow(name: string): Window | null {
  const width = 600;
  const height = 720;
  const left = Math.max(0, window.screenX + (window.outerWidth - width) / 2);
  const top = Math.max(0, window.screenY + (window.outerHeight - height) / 3);
  let popup: Window | null = null;
  try {
    popup = window.open(
      'about:blank',
      name,
      `popup=yes,width=${width},height=${height},left=${left},top=${top}`
    );
  } catch {
    popup = null;
  }
  if (popup) {
    try {
      popup.document.title = 'Connecting…';
      popup.document.body.textContent = 'Contacting the MCP server…';
      popup.document.body.style.font = '15px system-ui, sans-serif';
      popup.document.body.style.margin = '3em';
    } catch {
      // A reused window on another origin: nothing to write into.
    }
  }
  return popup;
}

/**
 * Wait until the sign-in finishes, fails, is abandoned or times out.
 */
export function waitForSignIn(options: IWaitOptions): Promise<ISignInOutcome> {
  const timeoutMs = options.timeoutMs ?? SIGN_IN_TIMEOUT_MS;
  const pollMs = options.pollMs ?? 1000;
  const started = Date.now();
  return new Promise<ISignInOutcome>(resolve => {
    let done = false;
    let ticks = 0;
    let checking = false;

    const finish = (outcome: ISignInOutcome): void => {
      if (done) {
        return;
      }
      done = true;
      window.removeEventListener('message', onMessage);
      window.clearInterval(timer);
      resolve(outcome);
    };

    const onMessage = (event: MessageEvent): void => {
      if (event.origin !== window.location.origin) {
        return;
      }
      const data = event.data as Record<string, unknown> | null;
      if (!data || data.type !== CALLBACK_MESSAGE_TYPE) {
        return;
      }
      const ok = data.ok === true;
      finish({
        ok,
        reason: 'callback',
        message:
          typeof data.message === 'string' && data.message
            ? data.message
            : ok
              ? 'Connected.'
              : 'The sign-in failed.'
      });
    };

    const check = async (popupClosed: boolean): Promise<void> => {
      if (checking) {
        return;
      }
      checking = true;
      let connected = false;
      try {
        connected = await options.isConnected();
      } catch {
        connected = false;
      }
      checking = false;
      if (connected) {
        finish({ ok: true, reason: 'connected', message: 'Connected.' });
      } else if (popupClosed) {
        finish({
          ok: false,
          reason: 'closed',
          message: 'The sign-in window was closed before the sign-in finished.'
        });
      }
    };

    const timer = window.setInterval(() => {
      if (done) {
        return;
      }
      ticks++;
      if (Date.now() - started > timeoutMs) {
        try {
          options.popup?.close();
        } catch {
          // ignore
        }
        finish({
          ok: false,
          reason: 'timeout',
          message: `The sign-in did not finish within ${Math.round(timeoutMs / 60000)} minutes.`
        });
        return;
      }
      let closed = false;
      try {
        closed = options.popup !== null && options.popup.closed;
      } catch {
        closed = false;
      }
      if (closed) {
        // Give a message posted just before closing a moment to arrive.
        window.setTimeout(() => void check(true), 300);
      } else if (ticks % 3 === 0) {
        void check(false);
      }
    }, pollMs);

    window.addEventListener('message', onMessage);
  });
}
