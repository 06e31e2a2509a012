"""When a sign-in that cannot renew itself runs out.

A server that gives no refresh token (the MCP SDK's ``simple-auth`` example) leaves a
connection usable exactly as long as its access token: :class:`SignInEnds` turns such a
connection ``needs_auth`` when it is read after its token expired (as the token keeper
would on its next use), and remembers when the others run out, so that :meth:`tick`
can tell whatever was built from the rows (the gateway's listing) to build again at
that moment: a cheap comparison while nothing is due.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from .connection_rows import ConnectionRows, sign_in_needed_at
from .oauth.token_keeper import expired_message
from .store.models import MCPConnection, utcnow

if TYPE_CHECKING:
    from .oauth.token_keeper import TokenKeeper

__all__ = ["SignInEnds"]


class SignInEnds:
    """The sign-in ends of the connections read so far (see the module docstring).

    Parameters
    ----------
    keeper, rows:
        The token keeper (it records ``needs_auth``) and the connection rows.
    changed:
        Called once a remembered end has passed: counts a change of the rows.
    """

    def __init__(
        self, keeper: TokenKeeper, rows: ConnectionRows, changed: Callable[[], None]
    ) -> None:
        self._keeper = keeper
        self._rows = rows
        self._changed = changed
        #: When seen connections without a refresh token need a new sign-in, by id.
        self._due: dict[str, datetime] = {}

    def tick(self) -> None:
        """Count a change once a remembered sign-in end has passed."""
        if not self._due:
            return
        now = utcnow()
        due = [cid for cid, at in self._due.items() if at <= now]
        if due:
            for connection_id in due:
                del self._due[connection_id]
            self._changed()

    async def settled(self, rows: list[MCPConnection]) -> list[MCPConnection]:
        """``rows``, each one whose sign-in has run out turned ``needs_auth``; the others'
        sign-in ends are remembered for :meth:`tick`."""
        now = utcnow()
        settled = []
        for row in rows:
            due = sign_in_needed_at(row)
            if due is not None and due <= now:
                self._due.pop(row.id, None)
                await self._keeper.set_state(row.id, "needs_auth", expired_message(due))
                row = await self._rows.get(row.id) or row
            elif due is not None:
                self._due[row.id] = due
            settled.append(row)
        return settled
