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
 * Which calls wait for the user's approval.
 */
export type Approval = 'never' | 'destructive' | 'always';

/**
 * What agents may do with a server's tools (a catalog entry's `tool_policy`).
 */
export interface IToolPolicy {
  allow: string[];
  deny: string[];
  read_only: boolean;
  approval: Approval;
  calls_per_minute: number | null;
  review_new_tools: boolean;
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
  tool_policy?: IToolPolicy;
}

/**
 * A catalog entry as administrators see it
 * (`GET dodo/api/admin/approved-mcps?include_deleted=true`).
 */
export interface IAdminEntry extends ICatalogEntry {
  /**
   * The entry's revision as an ETag: sent back as `If-Match` so that an edit made
   * since it was loaded is not overwritten (the server answers 412 instead).
   * Absent from servers older than it.
   */
  etag?: string;
  managed_by: string;
  created_at: string | null;
  updated_at: string | null;
  deleted_at: string | null;
  /**
   * Why this server will not use the entry and what to change (it leaves it out
   * of its users' catalog, or refuses to connect to it); null when it accepts it.
   * Older servers do not send it.
   */
  not_accepted?: string | null;
}

/**
 * A configured entry that is not in the catalog (`left_out` of
 * `GET dodo/api/admin/approved-mcps`), with the reason.
 */
export interface ILeftOutEntry {
  id: string;
  reason: string;
}

/**
 * Why the catalog may be out of date, when the server says so. Newer servers
 * send `catalog_stale` as a boolean (with `catalog_stale_reason`) or as an
 * object `{stale, reason}`; older ones send neither.
 */
export type CatalogStale = boolean | { stale?: boolean; reason?: string | null };

/**
 * Body of `GET dodo/api/mcp-catalog`.
 */
export interface ICatalogResponse {
  entries: ICatalogEntry[];
  catalog_source?: string;
  catalog_stale?: CatalogStale;
  catalog_stale_reason?: string | null;
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
 * Where a connection to an MCP server stands. `needs_scope`: it works, but a
 * tool asked for more scopes than it was granted (see `step_up`).
 */
export type ConnectionState =
  | 'authenticating'
  | 'connected'
  | 'needs_auth'
  | 'needs_scope'
  | 'error';

/**
 * A pending step-up: a tool call was refused with `403 insufficient_scope`,
 * and the owner grants more scopes by opening `consent_url`.
 */
export interface IStepUp {
  /**
   * Every scope the consent asks for (those granted already and the new ones).
   */
  scopes: string[];
  /**
   * The scopes the server asked for that the connection was not granted.
   */
  missing: string[];
  consent_url: string;
  expires_at: string;
}

/**
 * One of the caller's connections (`GET dodo/api/mcp/servers`).
 */
export interface IConnection {
  id: string;
  catalog_id: string | null;
  url: string;
  auth_type: AuthType;
  state: ConnectionState;
  error: string | null;
  tool_count: number | null;
  scopes: string[];
  expires_at: string | null;
  /**
   * When a new sign-in will be needed: the access token's expiry when the server
   * gave no refresh token (the connection stays usable until then); `null` otherwise.
   */
  sign_in_needed_at?: string | null;
  /**
   * What the user is told about `sign_in_needed_at`; `null` when nothing.
   */
  warning?: string | null;
  /**
   * The pending step-up of a `needs_scope` connection; `null` otherwise.
   */
  step_up?: IStepUp | null;
}

/**
 * Answer of `POST dodo/api/mcp/start-auth`.
 */
export interface IStartAuth {
  state: ConnectionState;
  connection_id: string;
  authorize_url?: string;
}

/**
 * One aggregated tool (`GET dodo/api/mcp/tools`).
 */
export interface ITool {
  name: string;
  server_id: string;
  connection_id: string;
  original_name: string;
  description: string;
  input_schema: IJSONSchema | null;
  enabled: boolean;
  /** Why the server's tool policy keeps the tool from agents, if it does. */
  refused?: string | null;
  /** Whether agents' calls wait for the owner's approval. */
  needs_approval?: boolean;
  /** Held back until reviewed: the server changed it, or it is new. */
  quarantine?: 'changed' | 'new' | null;
  /** What to review before accepting a quarantined tool. */
  review?: IToolReview | null;
}

/**
 * The pinned parts of a tool's definition, as the MCP server sent them.
 */
export interface IToolDefinition {
  name: string;
  title?: string;
  description?: string;
  inputSchema?: unknown;
  outputSchema?: unknown;
  annotations?: Record<string, unknown>;
  [key: string]: unknown;
}

/**
 * A quarantined tool's accepted definition (`null` for a new tool), the one the
 * server gives now, and the digest to accept it with.
 */
export interface IToolReview {
  digest: string;
  before: IToolDefinition | null;
  after: IToolDefinition;
}

/**
 * The subset of JSON Schema the "Try" form understands.
 */
export interface IJSONSchema {
  type?: string | string[];
  title?: string;
  description?: string;
  properties?: Record<string, IJSONSchema>;
  required?: string[];
  enum?: unknown[];
  default?: unknown;
  items?: IJSONSchema;
  anyOf?: IJSONSchema[];
  oneOf?: IJSONSchema[];
  [key: string]: unknown;
}

/**
 * One content block of an MCP tool result.
 */
export interface IContentBlock {
  type: string;
  text?: string;
  data?: string;
  mimeType?: string;
  resource?: { uri?: string; text?: string; blob?: string; mimeType?: string };
  [key: string]: unknown;
}

/**
 * Answer of `POST dodo/api/mcp/tools/call`: an MCP `CallToolResult`.
 */
export interface IToolResult {
  content?: IContentBlock[];
  structuredContent?: unknown;
  isError?: boolean;
}

/**
 * A gateway token as listed (`GET dodo/api/user/mcp-tokens`); never the secret.
 */
export interface IGatewayToken {
  id: string;
  prefix: string;
  label: string;
  kind: string;
  created_at: string;
  last_used_at: string | null;
  /** The agent that used the token last (labels it chose itself). */
  last_used_by: ITokenUser | null;
  expires_at: string | null;
}

/**
 * Who used a gateway token last: the MCP client and, for Jupyter AI, the chat and persona.
 */
export interface ITokenUser {
  client: string | null;
  chat_id: string | null;
  persona_id: string | null;
  at: string;
}

/**
 * Answer of `POST dodo/api/user/mcp-tokens`: the only time the secret is sent.
 */
export interface INewGatewayToken extends IGatewayToken {
  token: string;
}

/**
 * One audit log row (`GET dodo/api/admin/audit`).
 */
export interface IAuditRow {
  id: number;
  at: string;
  actor: string;
  action: string;
  target: string;
  detail: Record<string, unknown> | string | null;
}

/**
 * Body of every error answer from the dodo server extension. Validation
 * errors add `fields`: field name (dotted for nested ones) to message.
 */
export interface IErrorBody {
  error: string;
  message: string;
  fields?: Record<string, string>;
}

/**
 * Where a piece of model state is in its fetch cycle.
 */
export type LoadStatus = 'idle' | 'loading' | 'ready' | 'error';

/**
 * What the Connect flow of one catalog entry is doing, for the UI.
 *
 * - `starting`: asking the server for an authorize URL.
 * - `waiting`: the sign-in window is open; waiting for its message.
 * - `blocked`: the browser blocked the popup; `authorizeUrl` is offered as a link.
 * - `failed`: the sign-in ended without a connection; `message` says why.
 */
export interface IConnectProgress {
  phase: 'starting' | 'waiting' | 'blocked' | 'failed';
  message?: string;
  authorizeUrl?: string;
  /**
   * The consent of a step-up (more scopes for a working connection), not a
   * Connect.
   */
  grant?: boolean;
}

/**
 * Where an agent stands (`state` of `IAgent`).
 */
export type AgentState =
  | 'on'
  | 'off'
  | 'configured'
  | 'token_revoked'
  | 'elsewhere'
  | 'not_configured'
  | 'invalid';

/**
 * One agent host, as listed by `GET dodo/api/user/agents`.
 */
export interface IAgent {
  id: string;
  name: string;
  /** `builtin`: a server setting; `file`: a config file; `cli`: a command line. */
  kind: 'builtin' | 'file' | 'cli';
  installed: boolean;
  configured: boolean;
  path: string | null;
  state: AgentState;
  message: string;
  token_id: string | null;
  setting: string | null;
  command: string | null;
}

/**
 * Answer of `GET dodo/api/user/agents`.
 */
export interface IAgentList {
  gateway_url: string;
  agents: IAgent[];
}

/**
 * Answer of `POST dodo/api/user/agents/{id}`; `token` and `command` only for
 * `claude-cli` (the only time that token is sent).
 */
export interface IAgentWriteReport {
  agent: IAgent;
  path?: string | null;
  backup?: string | null;
  replaced?: boolean;
  token_id: string;
  revoked_token_id?: string | null;
  token?: string;
  command?: string;
}

/**
 * Answer of `DELETE dodo/api/user/agents/{id}`.
 */
export interface IAgentRemoveReport {
  agent: IAgent;
  removed: boolean;
  path?: string | null;
  backup?: string | null;
  revoked_token_id?: string | null;
}

/**
 * The labels of the agent behind a tool call, as far as dodo knows them.
 */
export interface ICallAgent {
  /** The MCP client's name and version, e.g. `claude-code 1.0`. */
  client?: string;
  /** The Jupyter AI chat and persona that made the call. */
  chat_id?: string;
  persona_id?: string;
  /** The gateway token the agent used, and its label. */
  token_id?: string;
  token?: string;
  /** How the call came: `gateway`, `kernel`, `try_it`, `code_mode`. */
  path?: string;
}

/**
 * A tool call held until its owner decides (`GET dodo/api/user/approvals`).
 */
export interface IWaitingCall {
  id: string;
  server_id: string;
  /** The server's own tool name. */
  tool: string;
  arguments: Record<string, unknown>;
  agent: ICallAgent;
  /** Seconds left before the call is refused for want of a decision. */
  expires_in: number;
}

/**
 * The owner's answer to a held call: let this one call go on, every call of the
 * tool by the same agent until the server restarts, or refuse it.
 */
export type ApprovalDecision = 'once' | 'session' | 'deny';

/**
 * How a recorded tool call ended.
 */
export type CallOutcome =
  | 'ok'
  | 'tool_error'
  | 'refused_policy'
  | 'denied'
  | 'timeout'
  | 'upstream_error';

/**
 * One call of the owner's history (`GET dodo/api/user/tool-calls`), newest
 * first. Labels the caller did not give are empty strings.
 */
export interface IToolCallRecord {
  id: string;
  at: string;
  username: string;
  path: string;
  token_id: string | null;
  client: string | null;
  chat_id: string | null;
  persona_id: string | null;
  server_id: string;
  tool: string;
  outcome: CallOutcome;
  detail: string | null;
  duration_ms: number | null;
  arguments_bytes: number | null;
  result_bytes: number | null;
  arguments_hash: string | null;
}

/**
 * Who ran an agent notebook's session (labels from its MCP client and token).
 */
export interface IAgentNotebookAgent {
  client: string | null;
  token_label: string | null;
  token_id: string | null;
  chat_id: string | null;
  persona_id: string | null;
}

/**
 * A notebook code mode kept of one agent session's runs
 * (`GET dodo/api/user/agent-notebooks`).
 */
export interface IAgentNotebook {
  /**
   * Relative to the server's root, as the file browser opens it.
   */
  path: string;
  agent: IAgentNotebookAgent;
  started_at: string | null;
  runs: number;
  last_run_at: string | null;
  /**
   * Whether its session has a running kernel.
   */
  active: boolean;
}

/**
 * The answer of `GET dodo/api/user/agent-notebooks`.
 */
export interface IAgentNotebookList {
  /**
   * Whether code mode is on (`DodoApp.code_mode`).
   */
  enabled: boolean;
  folder: string;
  notebooks: IAgentNotebook[];
}

/**
 * One resource of the caller's servers (`GET dodo/api/mcp/resources`): MCP's
 * `Resource` under its gateway URI (`dodo://<server>/<original_uri>`).
 */
export interface IResourceInfo {
  uri: string;
  name: string;
  title?: string;
  description?: string;
  mimeType?: string;
  size?: number;
  server_id: string;
  original_uri: string;
}

/**
 * One resource template (RFC 6570 `uriTemplate`, under its gateway URI).
 */
export interface IResourceTemplateInfo {
  uriTemplate: string;
  name: string;
  title?: string;
  description?: string;
  mimeType?: string;
  server_id: string;
  original_uri_template: string;
}

/**
 * Answer of `GET dodo/api/mcp/resources`.
 */
export interface IResourceListing {
  resources: IResourceInfo[];
  templates: IResourceTemplateInfo[];
}

/**
 * One part of a read resource: `text`, or a base64 `blob`.
 */
export interface IResourceContents {
  uri: string;
  mimeType?: string;
  text?: string;
  blob?: string;
}

/**
 * Answer of `GET dodo/api/mcp/resources/read?uri=…`: an MCP `ReadResourceResult`.
 */
export interface IReadResourceResult {
  contents: IResourceContents[];
}

/**
 * One argument of a prompt (its value is text).
 */
export interface IPromptArgument {
  name: string;
  title?: string;
  description?: string;
  required?: boolean;
}

/**
 * One prompt of the caller's servers (`GET dodo/api/mcp/prompts`), named
 * `<server>__<original_name>`.
 */
export interface IPromptInfo {
  name: string;
  title?: string;
  description?: string;
  arguments?: IPromptArgument[];
  server_id: string;
  original_name: string;
}

/**
 * One message of a filled-in prompt.
 */
export interface IPromptMessage {
  role: string;
  content: IContentBlock;
}

/**
 * Answer of `POST dodo/api/mcp/prompts/get`: an MCP `GetPromptResult`.
 */
export interface IGetPromptResult {
  description?: string;
  messages: IPromptMessage[];
}
