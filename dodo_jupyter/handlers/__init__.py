"""URL routes of the dodo REST API (all under the server's ``base_url``)."""

from __future__ import annotations

from .agents import AgentHandler, AgentListHandler
from .catalog import (
    AdminAuditHandler,
    AdminEntryHandler,
    AdminEntryListHandler,
    AdminImportHandler,
    CatalogHandler,
)
from .codemode import AgentNotebookListHandler, CodeModeHandler
from .connections import (
    CallbackHandler,
    ClientMetadataHandler,
    ConfigsHandler,
    DeleteAuthHandler,
    RefreshStateHandler,
    ServerPolicyHandler,
    ServersHandler,
    StartAuthHandler,
)
from .directory import (
    PromptGetHandler,
    PromptListHandler,
    ResourceListHandler,
    ResourceReadHandler,
)
from .gateway import GatewayHandler
from .governance import (
    ApprovalHandler,
    ApprovalListHandler,
    ToolAcceptHandler,
    ToolCallHistoryHandler,
)
from .openapi import OpenAPIHandler
from .tools import ToolCallHandler, ToolHandler, ToolListHandler
from .user import MeHandler, TokenHandler, TokenListHandler

__all__ = ["routes"]

_ID = r"(?P<{}>[^/]+)"


def routes() -> list[tuple[str, type]]:
    """The (pattern, handler) pairs; ExtensionApp prefixes them with ``base_url``.

    ``dodo_jupyter/openapi.json`` documents each of them (``tests/test_openapi.py``).
    """
    return [
        (r"/dodo/api/openapi.json", OpenAPIHandler),
        (r"/dodo/api/me", MeHandler),
        (r"/dodo/api/mcp-catalog", CatalogHandler),
        (r"/dodo/api/admin/approved-mcps", AdminEntryListHandler),
        (r"/dodo/api/admin/approved-mcps/import", AdminImportHandler),
        (r"/dodo/api/admin/approved-mcps/" + _ID.format("entry_id"), AdminEntryHandler),
        (r"/dodo/api/admin/audit", AdminAuditHandler),
        (r"/dodo/api/user/mcp-tokens", TokenListHandler),
        (r"/dodo/api/user/mcp-tokens/" + _ID.format("token_id"), TokenHandler),
        (r"/dodo/api/user/agents", AgentListHandler),
        (r"/dodo/api/user/agents/" + _ID.format("agent_id"), AgentHandler),
        (r"/dodo/api/mcp/start-auth", StartAuthHandler),
        (r"/dodo/api/mcp/delete-auth", DeleteAuthHandler),
        (r"/dodo/api/mcp/refresh-state", RefreshStateHandler),
        (r"/dodo/api/mcp/servers", ServersHandler),
        (
            r"/dodo/api/mcp/servers/" + _ID.format("connection_id") + "/tool-policy",
            ServerPolicyHandler,
        ),
        (r"/dodo/api/mcp/configs", ConfigsHandler),
        (r"/dodo/oauth/callback", CallbackHandler),
        (r"/dodo/oauth/client-metadata.json", ClientMetadataHandler),
        (r"/dodo/api/mcp/tools", ToolListHandler),
        (r"/dodo/api/mcp/tools/call", ToolCallHandler),
        (r"/dodo/api/mcp/tools/" + _ID.format("name"), ToolHandler),
        (r"/dodo/api/mcp/tools/" + _ID.format("name") + "/accept", ToolAcceptHandler),
        (r"/dodo/api/mcp/resources", ResourceListHandler),
        (r"/dodo/api/mcp/resources/read", ResourceReadHandler),
        (r"/dodo/api/mcp/prompts", PromptListHandler),
        (r"/dodo/api/mcp/prompts/get", PromptGetHandler),
        (r"/dodo/api/user/tool-calls", ToolCallHistoryHandler),
        (r"/dodo/api/user/approvals", ApprovalListHandler),
        (r"/dodo/api/user/approvals/" + _ID.format("call_id"), ApprovalHandler),
        (r"/dodo/api/user/agent-notebooks", AgentNotebookListHandler),
        (r"/dodo/mcp", GatewayHandler),
        (r"/dodo/mcp/codemode", CodeModeHandler),
    ]
