"""What went wrong with an exchange, in words a person reads (:func:`describe_failure`).

Every message that reaches a person (a REST error body, a JSON-RPC error, a tool's
error text, a connection's state in the sidebar) says what happened to the exchange:
"the connection was refused", "no answer in time", "the TLS certificate was not
accepted (self-signed certificate)". It never carries an exception's class name
(``ConnectError``), an HTTP library's wording or a validation dump: those mean nothing
to the person who must act, and they change with library versions. The caller names
the host; this module names the failure. The log keeps the details.

The transport (:mod:`.transport`) raises ``httpx2``'s exceptions with the socket's or
TLS library's error as their context, so the cause (a refused connection, a reset, a
certificate that did not verify) is read from the exception chain, not from text.
"""

from __future__ import annotations

import errno
import json
import logging
import socket
import ssl
from collections.abc import Iterator

import httpx2

from ..exceptions import DodoError
from .transport import ClosedEarly

__all__ = ["UNEXPECTED", "describe_failure"]

log = logging.getLogger(__name__)

#: The phrase for a failure dodo does not know (its details go to the log).
UNEXPECTED = "an unexpected error (the Jupyter server's log has the details)"
#: Longest description returned (a group of many failures is cut).
_MAX_CHARS = 300

_TIMEOUTS: tuple[tuple[type[BaseException], str], ...] = (
    (httpx2.ConnectTimeout, "no connection could be made in time"),
    (httpx2.WriteTimeout, "the request could not be sent in time"),
    (httpx2.PoolTimeout, "no connection was free in time"),
    (httpx2.TimeoutException, "no answer in time"),
    (TimeoutError, "no answer in time"),
)

_ERRNO: dict[int, str] = {
    errno.ECONNREFUSED: "the connection was refused (is the server running on that port?)",
    errno.ECONNRESET: "the connection was reset",
    errno.ECONNABORTED: "the connection was aborted",
    errno.EPIPE: "the server closed the connection while the request was sent",
    errno.EHOSTUNREACH: "the host is unreachable",
    errno.ENETUNREACH: "the network is unreachable",
    errno.ETIMEDOUT: "no connection could be made in time",
    errno.EADDRNOTAVAIL: "the address is not available on this machine",
}


def describe_failure(error: BaseException) -> str:
    """What went wrong, as a short phrase without any library's internals.

    A :class:`~dodo_jupyter.exceptions.DodoError` is described by its own message, and
    so is any other exception dodo_jupyter defines (their messages are written for
    people). Transport failures are named by what happened ("the connection was
    reset"); an exception group by its distinct failures. Anything else is
    :data:`UNEXPECTED`, and logged with its traceback.
    """
    if isinstance(error, BaseExceptionGroup):
        phrases = dict.fromkeys(describe_failure(e) for e in error.exceptions)
        return _bounded("; ".join(phrases))
    if isinstance(error, DodoError):
        return error.message
    phrase = _phrase(error)
    if phrase is None:
        log.warning("dodo: an unexpected failure", exc_info=error)
        return UNEXPECTED
    return _bounded(phrase)


def _phrase(error: BaseException) -> str | None:
    for kind, phrase in _TIMEOUTS:
        if isinstance(error, kind):
            return phrase
    if isinstance(error, httpx2.ConnectError):
        return _cause_phrase(error) or "the connection could not be made"
    if isinstance(error, httpx2.ReadError):
        return _cause_phrase(error) or "the connection broke while the answer was read"
    if isinstance(error, httpx2.WriteError):
        return _cause_phrase(error) or "the connection broke while the request was sent"
    if isinstance(error, ClosedEarly):
        return "the server closed the connection before its answer was complete"
    if isinstance(error, httpx2.RemoteProtocolError):
        return "the answer is not valid HTTP/1.1"
    if isinstance(error, httpx2.TooManyRedirects):
        return "too many redirects"
    if isinstance(error, httpx2.InvalidURL | httpx2.UnsupportedProtocol):
        return "the URL cannot be used"
    if isinstance(error, httpx2.SSEError):  # its messages are sentences, no internals
        text = " ".join(str(error).split()).rstrip(".")
        return text[:1].lower() + text[1:] if text else "the event stream is not valid"
    if isinstance(error, httpx2.DecodingError):
        return "the answer's body could not be decoded"
    if isinstance(error, httpx2.HTTPStatusError):
        return f"the server answered HTTP {error.response.status_code}"
    if isinstance(error, json.JSONDecodeError | UnicodeDecodeError):
        return "the answer is not valid JSON"
    if isinstance(error, OSError):
        return _os_phrase(error) or _cause_phrase(error) or "the connection failed"
    if type(error).__module__.startswith("dodo_jupyter."):
        return " ".join(str(error).split()) or None
    return _mcp_error(error)


def _cause_phrase(error: BaseException) -> str | None:
    """What the socket or TLS error behind ``error`` says happened: the first one in
    its chain of causes and contexts that is known (a wrapper such as "All connection
    attempts failed" is passed over for the refusal under it)."""
    for link in _chain(error):
        if isinstance(link, OSError):
            phrase = _os_phrase(link)
            if phrase is not None:
                return phrase
    return None


def _chain(error: BaseException) -> Iterator[BaseException]:
    seen = {id(error)}
    link = error.__cause__ or error.__context__
    while link is not None and id(link) not in seen and len(seen) < 8:
        seen.add(id(link))
        yield link
        link = link.__cause__ or link.__context__


def _os_phrase(error: OSError) -> str | None:
    if isinstance(error, ssl.SSLCertVerificationError):
        why = str(error.verify_message or "").strip().rstrip(".")
        return "the TLS certificate was not accepted" + (f" ({why})" if why else "")
    if isinstance(error, ssl.SSLError):
        if error.reason in ("WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE"):
            return "the TLS handshake failed (does the port speak TLS? try http://)"
        return "the TLS handshake failed"
    if isinstance(error, socket.gaierror):
        return "the host name did not resolve"
    if isinstance(error, TimeoutError):
        return "no connection could be made in time"
    if error.errno in _ERRNO:
        return _ERRNO[error.errno]
    if isinstance(error, ConnectionRefusedError):
        return _ERRNO[errno.ECONNREFUSED]
    if isinstance(error, ConnectionResetError):
        return _ERRNO[errno.ECONNRESET]
    if isinstance(error, ConnectionError):
        return "the connection broke"
    # asyncio's "Multiple exceptions: [Errno 111] ..." when every address failed.
    if f"[Errno {errno.ECONNREFUSED}]" in str(error):
        return _ERRNO[errno.ECONNREFUSED]
    return None


def _mcp_error(error: BaseException) -> str | None:
    """A JSON-RPC error answer (``mcp.shared.exceptions.MCPError``), in the server's
    words; imported only here: the client side of dodo loads this module lazily."""
    from mcp.shared.exceptions import MCPError

    if isinstance(error, MCPError):
        text = " ".join(str(error.message).split())[:200]
        return f"the server answered with an error: {text} (code {error.code})"
    return None


def _bounded(text: str) -> str:
    return text if len(text) <= _MAX_CHARS else text[: _MAX_CHARS - 1] + "…"
