"""The gateway: the user's connected tools as one MCP server at ``{base_url}dodo/mcp``."""
