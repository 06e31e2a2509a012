/**
 * The panel's model: the only frontend code that fetches.
 *
 * Components read its state and listen to `stateChanged`; they never call the
 * server themselves. Administrators' state lives in `AdminModel`
 * (`adminModel.ts`). `IRemote` and its helpers live in `remote.ts` and are
 * re-exported here for the components.
 */
import { ServerConnection } from '@jupyterlab/services';
import { URLExt } from '@jupyterlab/coreutils';
import { VDomModel } from '@jupyterlab/ui-components';

import { requestAPI } from './handler';
import { type IRemote, failed, idle, ready, toAPIError } from './remote';
import { openSignInWindow, waitForSignIn } from './signin';
import type {
  ICatalogEntry,
  ICatalogResponse,
  IConnection,
  IConnectProgress,
  IGatewayToken,
  IMe,
  INewGatewayToken,
  IStartAuth,
  ITool,
  IToolResult
} from './tokens';

export { type IRemote, failed, idle, ready, toAPIError } from './remote';

/**
 * What the catalog answer says about its own freshness (hub catalogs).
 */
export interface ICatalogFreshness {
  source: string | null;
  stale: boolean;
  reason: string | null;
}

/**
 * Holds the catalog, the caller's connections, tools and gateway tokens.
 */
export class DodoModel extends VDomModel {
  /**
   * The signed-in user, or `null` until known (or if `dodo/api/me` failed).
   */
  get me(): IMe | null {
    return this._me;
  }

  /**
   * Approved catalog entries, in server order.
   */
  get catalog(): IRemote<readonly ICatalogEntry[]> {
    return this._catalog;
  }

  /**
   * Where the catalog came from and whether it may be out of date.
   */
  get freshness(): ICatalogFreshness {
    return this._freshness;
  }

  /**
   * The caller's connections.
   */
  get connections(): IRemote<readonly IConnection[]> {
    return this._connections;
  }

  /**
   * The caller's aggregated tools.
   */
  get tools(): IRemote<readonly ITool[]> {
    return this._tools;
  }

  /**
   * The caller's gateway tokens (never their secrets).
   */
  get tokens(): IRemote<readonly IGatewayToken[]> {
    return this._tokens;
  }

  /**
   * The token created last, with its secret, until `dismissNewToken()`.
   */
  get newToken(): INewGatewayToken | null {
    return this._newToken;
  }

  /**
   * The dodo gateway's absolute URL (`{baseUrl}dodo/mcp`).
   */
  get gatewayUrl(): string {
    const base = ServerConnection.makeSettings().baseUrl;
    return URLExt.join(new URL(base, window.location.href).href, 'dodo', 'mcp');
  }

  /**
   * The connection of a catalog entry, if the caller has one.
   */
  connectionFor(catalogId: string): IConnection | null {
    return this._connections.value.find(c => c.catalog_id === catalogId) ?? null;
  }

  /**
   * What the Connect flow of an entry is doing, if anything.
   */
  progressFor(catalogId: string): IConnectProgress | null {
    return this._progress.get(catalogId) ?? null;
  }

  /**
   * Fetch who the user is, the catalog and the connections again.
   *
   * Never rejects: failures are kept in each part's `error`. When calls
   * overlap, only the latest one updates the model.
   */
  async refresh(): Promise<void> {
    const generation = ++this._generation;
    this._catalog = { ...this._catalog, status: 'loading', error: null };
    this.stateChanged.emit();

    const [catalog, me] = await Promise.allSettled([
      requestAPI<ICatalogResponse>('mcp-catalog'),
      requestAPI<IMe>('me')
    ]);
    if (this.isDisposed || generation !== this._generation) {
      return;
    }
    if (catalog.status === 'fulfilled') {
      const body = catalog.value;
      this._catalog = ready(Array.isArray(body?.entries) ? body.entries : []);
      this._freshness = readFreshness(body);
    } else {
      this._catalog = failed(this._catalog, catalog.reason);
    }
    if (me.status === 'fulfilled') {
      this._me = me.value ?? null;
    } else {
      this._me = null;
      console.warn('dodo-jupyter: could not load the current user', me.reason);
    }
    this.stateChanged.emit();
    if (this._me?.is_owner !== false) {
      await this.refreshConnections();
    }
  }

  /**
   * Fetch the caller's connections again.
   */
  async refreshConnections(): Promise<void> {
    const before = JSON.stringify(this._connections.value);
    try {
      const body = await requestAPI<{ servers: IConnection[] }>('mcp/servers');
      this._connections = ready(body?.servers ?? []);
    } catch (reason) {
      this._connections = failed(this._connections, reason);
    }
    this.stateChanged.emit();
    if (before !== JSON.stringify(this._connections.value) && this._tools.status !== 'idle') {
      void this.refreshTools();
    }
  }

  /**
   * Connect a catalog entry: OAuth in a popup, or directly when the server
   * needs no sign-in. Call it synchronously from a click so the popup opens.
   * Never rejects; the outcome is in `progressFor(entry.id)` and the
   * connection's state.
   */
  async connect(entry: ICatalogEntry): Promise<void> {
    const popup = entry.auth_type === 'oauth' ? openSignInWindow(`dodo-signin-${entry.id}-${Date.now()}`) : null;
    this._setProgress(entry.id, { phase: 'starting' });
    let answer: IStartAuth;
    try {
      answer = await requestAPI<IStartAuth>('mcp/start-auth', {
        method: 'POST',
        body: JSON.stringify({ catalog_id: entry.id })
      });
    } catch (reason) {
      popup?.close();
      this._setProgress(entry.id, { phase: 'failed', message: toAPIError(reason).message });
      await this.refreshConnections();
      return;
    }
    if (answer.state !== 'authenticating' || !answer.authorize_url) {
      popup?.close();
      this._setProgress(entry.id, null);
      await this.refreshConnections();
      return;
    }
    const authorizeUrl = answer.authorize_url;
    if (popup?.closed) {
      this._setProgress(entry.id, {
        phase: 'failed',
        message: 'The sign-in window was closed before the sign-in finished.'
      });
      await this.refreshConnections();
      return;
    }
    if (popup) {
      popup.location.href = authorizeUrl;
      this._setProgress(entry.id, { phase: 'waiting', authorizeUrl });
    } else {
      this._setProgress(entry.id, { phase: 'blocked', authorizeUrl });
    }
    await this.refreshConnections();
    const outcome = await waitForSignIn({
      popup,
      isConnected: async () => {
        const body = await requestAPI<{ servers: IConnection[] }>('mcp/servers');
        const row = body.servers.find(c => c.id === answer.connection_id);
        return row?.state === 'connected';
      }
    });
    if (this.isDisposed) {
      return;
    }
    this._setProgress(entry.id, outcome.ok ? null : { phase: 'failed', message: outcome.message });
    await this.refreshConnections();
  }

  /**
   * Grant a connection the scopes a tool asked for (its pending step-up): the
   * consent page in a popup, or, with `inTab`, in the tab the user's click on
   * the link opens. Call it synchronously from a click so the popup opens.
   * Never rejects; the outcome is in `progressFor(entry.id)` and the
   * connection's state (`connected` again once the consent was handled).
   */
  async grantAccess(entry: ICatalogEntry, connection: IConnection, inTab = false): Promise<void> {
    const consentUrl = connection.step_up?.consent_url;
    if (!consentUrl) {
      return;
    }
    const popup = inTab ? null : openSignInWindow(`dodo-grant-${entry.id}-${Date.now()}`);
    if (popup) {
      popup.location.href = consentUrl;
    }
    const blocked = !inTab && !popup;
    this._setProgress(entry.id, {
      phase: blocked ? 'blocked' : 'waiting',
      authorizeUrl: consentUrl,
      grant: true
    });
    const outcome = await waitForSignIn({
      popup,
      isConnected: async () => {
        const body = await requestAPI<{ servers: IConnection[] }>('mcp/servers');
        const row = body.servers.find(c => c.id === connection.id);
        return row?.state === 'connected';
      }
    });
    if (this.isDisposed) {
      return;
    }
    this._setProgress(
      entry.id,
      outcome.ok ? null : { phase: 'failed', message: outcome.message, grant: true }
    );
    await this.refreshConnections();
  }

  /**
   * Mark that the user opened the authorize URL in a tab themselves.
   */
  openedInTab(catalogId: string): void {
    const progress = this._progress.get(catalogId);
    if (progress?.phase === 'blocked') {
      this._setProgress(catalogId, { ...progress, phase: 'waiting' });
    }
  }

  /**
   * Forget a failed Connect's message.
   */
  clearProgress(catalogId: string): void {
    this._setProgress(catalogId, null);
  }

  /**
   * Disconnect: revoke upstream (best effort) and delete the connection.
   *
   * @throws {DodoAPIError} When the server refuses.
   */
  async disconnect(connectionId: string): Promise<void> {
    try {
      await requestAPI('mcp/delete-auth', {
        method: 'POST',
        body: JSON.stringify({ connection_id: connectionId })
      });
    } finally {
      await this.refreshConnections();
    }
  }

  /**
   * Store the header values of a `static_headers` entry.
   *
   * @throws {DodoAPIError} With `fields` when a value is refused.
   */
  async saveHeaders(catalogId: string, headers: Record<string, string>): Promise<void> {
    try {
      await requestAPI('mcp/configs', {
        method: 'POST',
        body: JSON.stringify({ catalog_id: catalogId, headers })
      });
      this._setProgress(catalogId, null);
    } finally {
      await this.refreshConnections();
    }
  }

  /**
   * Fetch the caller's tools again.
   */
  async refreshTools(): Promise<void> {
    this._tools = { ...this._tools, status: 'loading', error: null };
    this.stateChanged.emit();
    try {
      const body = await requestAPI<{ tools: ITool[] }>('mcp/tools');
      this._tools = ready(body?.tools ?? []);
    } catch (reason) {
      this._tools = failed(this._tools, reason);
    }
    this.stateChanged.emit();
  }

  /**
   * Expose a tool to agents, or hide it.
   *
   * @throws {DodoAPIError} When the server refuses.
   */
  async setToolEnabled(name: string, enabled: boolean): Promise<void> {
    const saved = await requestAPI<ITool>(`mcp/tools/${encodeURIComponent(name)}`, {
      method: 'PUT',
      body: JSON.stringify({ enabled })
    });
    const value = saved && typeof saved.enabled === 'boolean' ? saved.enabled : enabled;
    this._tools = {
      ...this._tools,
      value: this._tools.value.map(t => (t.name === name ? { ...t, enabled: value } : t))
    };
    this.stateChanged.emit();
  }

  /**
   * Accept the reviewed definition of a quarantined tool, then list the tools
   * again.
   *
   * @throws {DodoAPIError} When the server refuses (404: the definition
   *   changed again since the review).
   */
  async acceptTool(name: string, digest: string): Promise<void> {
    await requestAPI(`mcp/tools/${encodeURIComponent(name)}/accept`, {
      method: 'POST',
      body: JSON.stringify({ digest })
    });
    await this.refreshTools();
  }

  /**
   * Call a tool as an agent would.
   *
   * @throws {DodoAPIError} When the call could not be made at all; a tool
   *   that ran and failed answers a result with `isError`.
   */
  async callTool(name: string, args: Record<string, unknown>): Promise<IToolResult> {
    const result = await requestAPI<IToolResult>('mcp/tools/call', {
      method: 'POST',
      body: JSON.stringify({ name, arguments: args })
    });
    if (result?.isError) {
      // A refusal may have changed the server's state (say it needs more access).
      void this.refreshConnections();
    }
    return result;
  }

  /**
   * Fetch the caller's gateway tokens again.
   */
  async refreshTokens(): Promise<void> {
    this._tokens = { ...this._tokens, status: 'loading', error: null };
    this.stateChanged.emit();
    try {
      const body = await requestAPI<{ tokens: IGatewayToken[] }>('user/mcp-tokens');
      this._tokens = ready(body?.tokens ?? []);
    } catch (reason) {
      this._tokens = failed(this._tokens, reason);
    }
    this.stateChanged.emit();
  }

  /**
   * Create a gateway token; its secret is in `newToken` until dismissed.
   *
   * @throws {DodoAPIError} With `fields` when the label or lifetime is refused.
   */
  async createToken(label: string, expiresInDays: number | null): Promise<void> {
    const body: Record<string, unknown> = { label };
    if (expiresInDays !== null) {
      body.expires_in_days = expiresInDays;
    }
    this._newToken = await requestAPI<INewGatewayToken>('user/mcp-tokens', {
      method: 'POST',
      body: JSON.stringify(body)
    });
    await this.refreshTokens();
  }

  /**
   * Forget the secret of the token created last.
   */
  dismissNewToken(): void {
    this._newToken = null;
    this.stateChanged.emit();
  }

  /**
   * Revoke (delete) a gateway token.
   *
   * @throws {DodoAPIError} When the server refuses.
   */
  async revokeToken(id: string): Promise<void> {
    try {
      await requestAPI(`user/mcp-tokens/${encodeURIComponent(id)}`, { method: 'DELETE' });
      if (this._newToken?.id === id) {
        this._newToken = null;
      }
    } finally {
      await this.refreshTokens();
    }
  }

  private _setProgress(catalogId: string, progress: IConnectProgress | null): void {
    if (progress) {
      this._progress.set(catalogId, progress);
    } else {
      this._progress.delete(catalogId);
    }
    this.stateChanged.emit();
  }

  private _me: IMe | null = null;
  private _catalog: IRemote<ICatalogEntry[]> = idle([]);
  private _freshness: ICatalogFreshness = { source: null, stale: false, reason: null };
  private _connections: IRemote<IConnection[]> = idle([]);
  private _tools: IRemote<ITool[]> = idle([]);
  private _tokens: IRemote<IGatewayToken[]> = idle([]);
  private _newToken: INewGatewayToken | null = null;
  private _progress = new Map<string, IConnectProgress>();
  private _generation = 0;
}

function readFreshness(body: ICatalogResponse | undefined): ICatalogFreshness {
  const source = typeof body?.catalog_source === 'string' ? body.catalog_source : null;
  const raw = body?.catalog_stale;
  let stale = false;
  let reason: string | null = null;
  if (typeof raw === 'boolean') {
    stale = raw;
    reason = typeof body?.catalog_stale_reason === 'string' ? body.catalog_stale_reason : null;
  } else if (raw && typeof raw === 'object') {
    stale = raw.stale === true;
    reason = typeof raw.reason === 'string' ? raw.reason : null;
  }
  return { source, stale, reason };
}
