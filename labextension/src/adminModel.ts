/**
 * Administrators' model: the catalog editor and the audit log.
 *
 * The server enforces who is an administrator; the panel only hides this part
 * from everyone else.
 */
import { VDomModel } from '@jupyterlab/ui-components';

import { DodoAPIError, requestAPI } from './handler';
import { type IRemote, failed, idle, ready } from './remote';
import type { IAdminEntry, IAuditRow, ILeftOutEntry } from './tokens';

/**
 * How many audit rows the panel shows.
 */
export const AUDIT_PAGE = 50;

/**
 * Holds every catalog entry (deleted ones too) and the newest audit rows.
 */
export class AdminModel extends VDomModel {
  /**
   * Every entry, soft-deleted ones included.
   */
  get entries(): IRemote<readonly IAdminEntry[]> {
    return this._entries;
  }

  /**
   * Entries of the server's configuration that are not in the catalog, with the
   * reason (from the last fetch of the entries).
   */
  get leftOut(): readonly ILeftOutEntry[] {
    return this._leftOut;
  }

  /**
   * The newest audit log rows, newest first.
   */
  get audit(): IRemote<readonly IAuditRow[]> {
    return this._audit;
  }

  /**
   * Called after every change, so the users' view of the catalog follows.
   */
  onCatalogChanged: () => void = () => undefined;

  /**
   * Fetch the entries and the audit log again. Never rejects.
   */
  async refresh(): Promise<void> {
    this._entries = { ...this._entries, status: 'loading', error: null };
    this._audit = { ...this._audit, status: 'loading', error: null };
    this.stateChanged.emit();
    const [entries, audit] = await Promise.allSettled([
      requestAPI<{ entries: IAdminEntry[]; left_out?: ILeftOutEntry[] }>(
        'admin/approved-mcps?include_deleted=true'
      ),
      requestAPI<{ entries: IAuditRow[] }>(`admin/audit?limit=${AUDIT_PAGE}`)
    ]);
    this._entries =
      entries.status === 'fulfilled'
        ? ready(entries.value?.entries ?? [])
        : failed(this._entries, entries.reason);
    if (entries.status === 'fulfilled') {
      this._leftOut = entries.value?.left_out ?? [];
    }
    this._audit =
      audit.status === 'fulfilled'
        ? ready(audit.value?.entries ?? [])
        : failed(this._audit, audit.reason);
    this.stateChanged.emit();
  }

  /**
   * Add an entry.
   *
   * @throws {DodoAPIError} With `fields` naming each refused field.
   */
  async create(entry: Record<string, unknown>): Promise<IAdminEntry> {
    return this._change(() =>
      requestAPI<IAdminEntry>('admin/approved-mcps', {
        method: 'POST',
        body: JSON.stringify(entry)
      })
    );
  }

  /**
   * Change the fields of an entry that `changes` names; with `etag` (the entry's
   * `etag` as it was loaded) only if nobody changed the entry since.
   *
   * @throws {DodoAPIError} With `fields` naming each refused field; status 412 when
   *   the entry changed since `etag` (the entries are reloaded first).
   */
  async update(id: string, changes: Record<string, unknown>, etag?: string): Promise<IAdminEntry> {
    return this._change(() =>
      requestAPI<IAdminEntry>(`admin/approved-mcps/${encodeURIComponent(id)}`, {
        method: 'PUT',
        body: JSON.stringify(changes),
        headers: ifMatch(etag)
      })
    );
  }

  /**
   * Soft-delete an entry (it stays in the audit trail); with `etag`, only if nobody
   * changed it since.
   *
   * @throws {DodoAPIError} When the server refuses; status 412 as for `update`.
   */
  async remove(id: string, etag?: string): Promise<void> {
    await this._change(() =>
      requestAPI<void>(`admin/approved-mcps/${encodeURIComponent(id)}`, {
        method: 'DELETE',
        headers: ifMatch(etag)
      })
    );
  }

  /**
   * Import an MCP Registry `server.json` (or a registry answer, or entries).
   *
   * @throws {DodoAPIError} When the document is refused (nothing is imported).
   */
  async importDocument(document: unknown): Promise<IAdminEntry[]> {
    const body = await this._change(() =>
      requestAPI<{ entries: IAdminEntry[] }>('admin/approved-mcps/import', {
        method: 'POST',
        body: JSON.stringify(document)
      })
    );
    return body?.entries ?? [];
  }

  private async _change<T>(call: () => Promise<T>): Promise<T> {
    let result: T;
    try {
      result = await call();
    } catch (reason) {
      if (reason instanceof DodoAPIError && reason.status === 412) {
        // Somebody changed the entry since it was loaded: show it as it is now.
        await this.refresh();
      }
      throw reason;
    }
    await this.refresh();
    this.onCatalogChanged();
    return result;
  }

  private _entries: IRemote<IAdminEntry[]> = idle([]);
  private _leftOut: ILeftOutEntry[] = [];
  private _audit: IRemote<IAuditRow[]> = idle([]);
}

/**
 * The `If-Match` header for an entry's `etag`, when there is one.
 */
function ifMatch(etag: string | undefined): Record<string, string> {
  return etag ? { 'If-Match': etag } : {};
}
