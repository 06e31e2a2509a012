"""The MCP authorization flow (OAuth 2.1 with PKCE) as a persisted state machine."""
