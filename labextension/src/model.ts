/**
 * The catalog model: the only frontend code that fetches.
 *
 * Components read its state and listen to `stateChanged`; they never call the
 * server themselves.
 */
import { VDomModel } from '@jupyterlab/ui-components';

import { DodoAPIError, requestAPI } from './handler';
import type { ICatalogEntry, ICatalogResponse, IMe, LoadStatus } from './tokens';

/**
 * Holds the approved MCP catalog and the signed-in user.
 */
export class CatalogModel extends VDomModel {
  /**
   * Approved catalog entries, in server order.
   */
  get entries(): readonly ICatalogEntry[] {
    return this._entries;
  }

  /**
   * The signed-in user, or `null` until known (or if `dodo/api/me` failed).
   */
  get me(): IMe | null {
    return this._me;
  }

  /**
   * Why the listed catalog may be out of date (the hub catalog service could
   * not be reached), or `null` when it is current.
   */
  get staleReason(): string | null {
    return this._staleReason;
  }

  /**
   * Where the last catalog fetch stands.
   */
  get status(): LoadStatus {
    return this._status;
  }

  /**
   * The last catalog fetch's error, or `null`.
   */
  get error(): DodoAPIError | null {
    return this._error;
  }

  /**
   * Fetch the catalog and the current user again.
   *
   * Never rejects: a catalog failure is kept in `error` and `status`; a
   * failure of `dodo/api/me` only hides the "Signed in as" line. When calls
   * overlap, only the latest one updates the model.
   */
  async refresh(): Promise<void> {
    const generation = ++this._generation;
    this._status = 'loading';
    this._error = null;
    this.stateChanged.emit(void 0);

    const [catalog, me] = await Promise.allSettled([
      requestAPI<ICatalogResponse>('mcp-catalog'),
      requestAPI<IMe>('me')
    ]);
    if (this.isDisposed || generation !== this._generation) {
      return;
    }

    if (catalog.status === 'fulfilled') {
      this._entries = Array.isArray(catalog.value?.entries) ? catalog.value.entries : [];
      this._staleReason = catalog.value?.catalog_stale
        ? catalog.value.catalog_stale_reason || 'The catalog may be out of date.'
        : null;
      this._status = 'ready';
    } else {
      this._entries = [];
      this._staleReason = null;
      this._error = toAPIError(catalog.reason);
      this._status = 'error';
    }

    if (me.status === 'fulfilled') {
      this._me = me.value ?? null;
    } else {
      this._me = null;
      console.warn('dodo-jupyter: could not load the current user', me.reason);
    }
    this.stateChanged.emit(void 0);
  }

  private _entries: ICatalogEntry[] = [];
  private _staleReason: string | null = null;
  private _me: IMe | null = null;
  private _status: LoadStatus = 'idle';
  private _error: DodoAPIError | null = null;
  private _generation = 0;
}

function toAPIError(reason: unknown): DodoAPIError {
  if (reason instanceof DodoAPIError) {
    return reason;
  }
  return new DodoAPIError(reason instanceof Error ? reason.message : String(reason), 0);
}
