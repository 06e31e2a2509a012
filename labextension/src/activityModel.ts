/**
 * The Activity section's model: the owner's recent tool calls (the history at
 * `dodo/api/user/tool-calls`), filtered by outcome on the server and by a text
 * on server and tool here, and their export as JSON lines.
 */
import { VDomModel } from '@jupyterlab/ui-components';

import { requestAPI, requestText } from './handler';
import { type IRemote, failed, idle, ready, toAPIError } from './remote';
import type { CallOutcome, IToolCallRecord } from './tokens';

/**
 * How many calls the section lists; the text filter looks among them.
 */
export const ACTIVITY_PAGE = 200;

/**
 * How many calls an export holds at most (the server's limit).
 */
export const EXPORT_LIMIT = 1000;

/**
 * The outcomes, as people read them.
 */
export const OUTCOME_LABELS: Readonly<Record<CallOutcome, string>> = {
  ok: 'ok',
  tool_error: 'tool error',
  refused_policy: 'refused by policy',
  denied: 'denied',
  timeout: 'timed out',
  upstream_error: 'server error'
};

/**
 * Holds the calls, the filters and the export's state.
 */
export class ActivityModel extends VDomModel {
  /**
   * The latest calls of the chosen outcome, newest first.
   */
  get calls(): IRemote<readonly IToolCallRecord[]> {
    return this._calls;
  }

  /**
   * The outcome filter (`''`: every outcome), applied by the server.
   */
  get outcome(): CallOutcome | '' {
    return this._outcome;
  }

  /**
   * The text filter on server and tool.
   */
  get text(): string {
    return this._text;
  }

  /**
   * The calls whose `server/tool` contains the text filter.
   */
  get shown(): readonly IToolCallRecord[] {
    const needle = this._text.trim().toLowerCase();
    if (!needle) {
      return this._calls.value;
    }
    return this._calls.value.filter(c =>
      `${c.server_id}/${c.tool}`.toLowerCase().includes(needle)
    );
  }

  /**
   * Whether an export is being fetched.
   */
  get exporting(): boolean {
    return this._exporting;
  }

  /**
   * Why the last export failed, if it did.
   */
  get exportError(): string | null {
    return this._exportError;
  }

  /**
   * Choose the outcome to list, and fetch again.
   */
  setOutcome(outcome: CallOutcome | ''): Promise<void> {
    this._outcome = outcome;
    return this.refresh();
  }

  /**
   * Filter the listed calls by server and tool.
   */
  setText(text: string): void {
    this._text = text;
    this.stateChanged.emit();
  }

  /**
   * Fetch the calls again. Never rejects; when calls overlap, only the latest
   * one updates the model.
   */
  async refresh(): Promise<void> {
    const generation = ++this._generation;
    this._calls = { ...this._calls, status: 'loading', error: null };
    this.stateChanged.emit();
    try {
      const body = await requestAPI<{ calls: IToolCallRecord[] }>(
        `user/tool-calls?${this._query(ACTIVITY_PAGE)}`
      );
      if (generation === this._generation) {
        this._calls = ready(body?.calls ?? []);
      }
    } catch (reason) {
      if (generation === this._generation) {
        this._calls = failed(this._calls, reason);
      }
    }
    if (!this.isDisposed) {
      this.stateChanged.emit();
    }
  }

  /**
   * Download the latest calls of the chosen outcome as a JSON lines file.
   * Never rejects; a failure is in `exportError`.
   */
  async exportJsonLines(): Promise<void> {
    this._exporting = true;
    this._exportError = null;
    this.stateChanged.emit();
    try {
      const text = await requestText(
        `user/tool-calls?${this._query(EXPORT_LIMIT)}&format=jsonl`
      );
      download(text, exportFileName(new Date()));
    } catch (reason) {
      this._exportError = toAPIError(reason).message;
    } finally {
      this._exporting = false;
      if (!this.isDisposed) {
        this.stateChanged.emit();
      }
    }
  }

  private _query(limit: number): string {
    const query = new URLSearchParams({ limit: String(limit) });
    if (this._outcome) {
      query.set('outcome', this._outcome);
    }
    return query.toString();
  }

  private _calls: IRemote<IToolCallRecord[]> = idle([]);
  private _outcome: CallOutcome | '' = '';
  private _text = '';
  private _exporting = false;
  private _exportError: string | null = null;
  private _generation = 0;
}

/**
 * `tool-calls-20250101-0930.jsonl`, in local time.
 */
export function exportFileName(now: Date): string {
  const pad = (n: number): string => String(n).padStart(2, '0');
  const day = `${now.getFullYear()}${pad(now.getMonth() + 1)}${pad(now.getDate())}`;
  return `tool-calls-${day}-${pad(now.getHours())}${pad(now.getMinutes())}.jsonl`;
}

/**
 * Save `text` as a file through the browser's download.
 */
function download(text: string, fileName: string): void {
  const url = URL.createObjectURL(new Blob([text], { type: 'application/x-ndjson' }));
  const link = document.createElement('a');
  link.href = url;
  link.download = fileName;
  link.style.display = 'none';
  document.body.appendChild(link);
  link.click();
  link.remove();
  // Late enough for the browser to have started the download.
  window.setTimeout(() => URL.revokeObjectURL(url), 60000);
}
