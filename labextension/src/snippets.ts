/**
 * Copy-ready configuration snippets that point MCP clients at the gateway.
 */

/**
 * What the Agent access section shows for a client.
 */
export interface ISnippet {
  id: string;
  /**
   * The client's name.
   */
  title: string;
  /**
   * Where the text goes (a file, a terminal, a notebook cell).
   */
  where: string;
  text: string;
}

/**
 * Stands for the token when no freshly created one is on screen.
 */
export const TOKEN_PLACEHOLDER = '<your dodo_ token>';

/**
 * The name the gateway gets in clients' configurations.
 */
const SERVER_NAME = 'dodo';

/**
 * The snippets for the gateway at `url`, authenticated with `token` (or the
 * placeholder).
 */
export function buildSnippets(url: string, token: string | null): ISnippet[] {
  const secret = token ?? TOKEN_PLACEHOLDER;
  const authorization = `Bearer ${secret}`;
  const mcpServers = JSON.stringify(
    { mcpServers: { [SERVER_NAME]: { url, headers: { Authorization: authorization } } } },
    null,
    2
  );
  return [
    {
      id: 'jupyter-ai',
      title: 'Jupyter AI',
      where: '.jupyter/mcp_settings.json (in your home or project directory)',
      text: mcpServers
    },
    {
      id: 'nbi',
      title: 'Notebook Intelligence',
      where: '~/.jupyter/nbi/mcp.json',
      text: mcpServers
    },
    {
      id: 'claude-code',
      title: 'Claude Code',
      where: 'a terminal',
      text: `claude mcp add --transport http ${SERVER_NAME} ${url} \\\n  --header "Authorization: ${authorization}"`
    },
    {
      id: 'generic',
      title: 'Any MCP client (streamable HTTP)',
      where: "your client's MCP server settings",
      text: JSON.stringify(
        {
          name: SERVER_NAME,
          type: 'streamable-http',
          url,
          headers: { Authorization: authorization }
        },
        null,
        2
      )
    },
    {
      id: 'magic',
      title: '%dodo in a notebook',
      where: 'a notebook cell (kernels of this server need no token)',
      text: '%load_ext dodo_jupyter\n%dodo tools'
    }
  ];
}
