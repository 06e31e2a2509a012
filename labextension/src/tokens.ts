/**
 * Types shared by the dodo-jupyter frontend.
 *
 * Each `I*` interface mirrors one JSON document served by the dodo server
 * extension under `{baseUrl}dodo/api/`; field names match the wire.
 */

/**
 * How a catalog entry authenticates against its MCP server.
 */
export type AuthType = 'oauth' | 'static_headers' | 'none';

/**
 * A header users supply for a `static_headers` server.
 */
export interface IHeaderSpec {
  name: string;
  description: string;
  is_secret: boolean;
}

/**
 * How dodo authenticates to an `oauth` server.
 */
export interface IOAuthPolicy {
  client_id: string | null;
  client_secret_env: string | null;
  scopes: string[];
  resource: string | null;
  send_resource: boolean;
}

/**
 * One approved MCP server, as listed by `GET dodo/api/mcp-catalog`.
 */
export interface ICatalogEntry {
  id: string;
  name: string;
  display_name: string;
  description: string;
  url: string;
  transport: string;
  auth_type: AuthType;
  known_hosts: string[];
  setup_guide: string;
  headers: IHeaderSpec[];
  oauth: IOAuthPolicy | null;
  enabled: boolean;
}

/**
 * Where the catalog comes from: this server's own store, or a copy of the
 * JupyterHub catalog service's catalog.
 */
export type CatalogSource = 'local' | 'hub';

/**
 * Body of `GET dodo/api/mcp-catalog`.
 */
export interface ICatalogResponse {
  entries: ICatalogEntry[];
  catalog_source?: CatalogSource;
  /**
   * True when the hub catalog service could not be asked: the entries are the
   * last good copy.
   */
  catalog_stale?: boolean;
  /**
   * Why the catalog is stale, for people; `null` when it is current.
   */
  catalog_stale_reason?: string | null;
  /**
   * When the hub catalog service last confirmed the copy (ISO 8601), or `null`.
   */
  catalog_synced_at?: string | null;
}

/**
 * Body of `GET dodo/api/me`: who the browser is signed in as.
 */
export interface IMe {
  username: string;
  mode: string;
  is_owner: boolean;
  is_admin: boolean;
}

/**
 * Body of every error answer from the dodo server extension.
 */
export interface IErrorBody {
  error: string;
  message: string;
}

/**
 * Where the catalog model is in its fetch cycle.
 */
export type LoadStatus = 'idle' | 'loading' | 'ready' | 'error';
