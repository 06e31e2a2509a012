"""Errors raised by dodo_jupyter services.

Every error a person can act on is a :class:`DodoError`. Each subclass carries the
HTTP status the REST layer answers with and a short machine-readable ``error`` code;
the message says what went wrong and how to fix it, and never contains a secret.

    DodoError
    ├── BadRequest          400  malformed input
    │   └── ValidationFailed     400  a field is missing, has the wrong type or value
    ├── Unauthorized        401  no valid credentials
    ├── Forbidden           403  authenticated, but not allowed
    │   ├── OutboundRefused      403  the SSRF guard refused an outbound URL or address
    │   └── ToolRefused          403  a tool call the governance gate did not let through
    │       └── RateLimited      429  (governance.gate) over a server's calls per minute
    ├── NotFound            404  unknown or not yours
    ├── Conflict            409  duplicate id or url
    ├── PreconditionFailed  412  If-Match names a version that is no longer current
    ├── PayloadTooLarge     413  request body over the limit
    ├── TooManyHops         429  a request passed through too many dodo gateways
    ├── UpstreamError       502  a remote server failed, timed out or answered nonsense
    │   ├── ResponseTooLarge     502  a remote answer is larger than the limit
    │   └── UpstreamTimeout      504  a remote server did not answer in time
    └── Unavailable         503  the store or vault cannot be used right now
        ├── VaultError            503  encryption keys missing or wrong
        └── HubCatalogUnavailable 503  the hub catalog service cannot be reached

:func:`error_from_remote` rebuilds the error another dodo process (the hub catalog
service) answered with, so it can be passed on unchanged.
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "BadRequest",
    "Conflict",
    "DodoError",
    "Forbidden",
    "HubCatalogUnavailable",
    "NotFound",
    "OutboundRefused",
    "PayloadTooLarge",
    "PreconditionFailed",
    "ResponseTooLarge",
    "TooManyHops",
    "Unauthorized",
    "Unavailable",
    "UpstreamError",
    "UpstreamTimeout",
    "ValidationFailed",
    "VaultError",
    "error_from_remote",
]


class DodoError(Exception):
    """Base class of every error dodo_jupyter reports to a person."""

    status: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def to_json(self) -> dict[str, Any]:
        """The body the REST API sends for this error."""
        body: dict[str, Any] = {"error": self.code, "message": self.message}
        body.update(self.details)
        return body


class BadRequest(DodoError):
    """The request could not be understood."""

    status = 400
    code = "bad_request"


class ValidationFailed(BadRequest):
    """A field is missing, has the wrong type or an unacceptable value."""

    code = "invalid"

    def __init__(self, message: str, *, fields: dict[str, str] | None = None) -> None:
        super().__init__(message, fields=fields or {})


class Unauthorized(DodoError):
    """No valid credentials were presented."""

    status = 401
    code = "unauthorized"


class Forbidden(DodoError):
    """The caller is known but may not do this."""

    status = 403
    code = "forbidden"


class OutboundRefused(Forbidden):
    """dodo_jupyter will not send a request to this URL or address (SSRF guard)."""

    code = "outbound_refused"


class NotFound(DodoError):
    """The thing does not exist, or belongs to somebody else."""

    status = 404
    code = "not_found"


class Conflict(DodoError):
    """The change would duplicate something that must be unique."""

    status = 409
    code = "conflict"


class PreconditionFailed(DodoError):
    """A conditional change (``If-Match``) of something changed since it was read."""

    status = 412
    code = "precondition_failed"


class PayloadTooLarge(DodoError):
    """The request body is larger than the configured limit."""

    status = 413
    code = "payload_too_large"


class TooManyHops(DodoError):
    """A gateway request passed through more dodo gateways than allowed (a loop)."""

    status = 429
    code = "too_many_hops"


class UpstreamError(DodoError):
    """A remote server failed, timed out or sent an answer that cannot be used."""

    status = 502
    code = "upstream_error"


class ResponseTooLarge(UpstreamError):
    """A remote server's answer is larger than the configured limit."""

    code = "upstream_too_large"


class UpstreamTimeout(UpstreamError):
    """A remote server did not answer within the time it was given."""

    status = 504
    code = "upstream_timeout"


class Unavailable(DodoError):
    """The store or another dependency cannot be used right now."""

    status = 503
    code = "unavailable"


class VaultError(Unavailable):
    """Secrets cannot be encrypted or decrypted with the configured keys."""

    code = "vault_unavailable"


class HubCatalogUnavailable(Unavailable):
    """The hub catalog service cannot be reached or answered something unusable."""

    code = "hub_catalog_unavailable"


#: Errors a dodo service may answer with that are passed on as they came (by ``error``).
_PASSED_ON: dict[str, type[DodoError]] = {
    cls.code: cls
    for cls in (
        BadRequest,
        ValidationFailed,
        Forbidden,
        NotFound,
        Conflict,
        PreconditionFailed,
        PayloadTooLarge,
    )
}


def error_from_remote(status: int, body: object, *, service: str) -> DodoError:
    """The :class:`DodoError` to raise for a 4xx/5xx JSON answer of another dodo service.

    Client errors the caller can fix (400, 403, 404, 409, 412, 413) keep their ``error`` code,
    message and details; anything else becomes an :class:`UpstreamError` naming
    ``service``.
    """
    data = body if isinstance(body, dict) else {}
    message = data.get("message")
    cls = _PASSED_ON.get(str(data.get("error")))
    if cls is None or cls.status != status or not isinstance(message, str):
        if status == 401:
            return UpstreamError(
                f"{service} refused this server's hub token (HTTP 401): restart your server "
                "from the hub home page to get a new one."
            )
        return UpstreamError(f"{service} answered HTTP {status}; its log has the details.")
    details = {k: v for k, v in data.items() if k not in ("error", "message")}
    if cls is ValidationFailed:
        fields = details.get("fields")
        return ValidationFailed(message, fields=fields if isinstance(fields, dict) else None)
    return cls(message, **details)


def dodo_error_in(error: BaseException) -> DodoError | None:
    """``error`` itself if it is a :class:`DodoError`, else the first one an exception
    group carries (depth first), else None: anyio task groups wrap what a task raised."""
    if isinstance(error, DodoError):
        return error
    if isinstance(error, BaseExceptionGroup):
        for inner in error.exceptions:
            found = dodo_error_in(inner)
            if found is not None:
                return found
    return None
