"""What the client raises: one tree, in one module.

::

    ClientError (KernelError)
     ├── ApiError               the daemon answered an error frame: `.code`, `.field`, `.message`
     │    ├── BadRequest        bad_request    the frame was not a request (a client bug)
     │    ├── UnknownOp         unknown_op
     │    ├── Invalid           invalid        a field's value (`.field` names it)
     │    ├── Unauthorized      unauthorized   a wrong token, or no hello: never reconnects
     │    ├── Forbidden         forbidden      the token's scopes lack the op's
     │    ├── VersionMismatch   version        no protocol version in common: never reconnects
     │    ├── NotFound          not_found
     │    ├── Conflict          conflict       an intent id reused with another body; a stale
     │    │                                    revision
     │    ├── Rejected          rejected       the pre-trade gate (tick, lot, symbol, notional)
     │    ├── Halted            halted         trading is halted: cancels still go through
     │    ├── RateLimited       rate_limited
     │    ├── TooLarge          too_large
     │    ├── Unavailable       unavailable    the daemon is starting or stopping
     │    └── Internal          internal
     ├── Unreachable            no daemon answered at the address (the first connect)
     ├── ConnectionLost         the connection dropped and the client does not reconnect
     ├── OutcomeUnknown         a request that changes something was sent, and the connection
     │                          dropped before its reply: it may or may not have been logged
     ├── RequestTimeout         no reply within the client's request timeout
     └── Closed                 the client was closed

`error_for(code, message, field)` builds the `ApiError` subclass for a code; a code this
client does not know (a newer server) is a plain `ApiError` carrying it.
"""

from __future__ import annotations

from kernel.errors import KernelError


class ClientError(KernelError):
    """Base of everything the API client raises on purpose."""


class ApiError(ClientError):
    """The daemon refused a request. `code` is the protocol's error code, `message` the
    kernel's own words, `field` the request field at fault (or None)."""

    code: str = "internal"

    def __init__(self, message: str, *, code: str | None = None,
                 field: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code
        self.message = message
        self.field = field

    def __str__(self) -> str:
        where = f" ({self.field})" if self.field else ""
        return f"{self.code}{where}: {self.message}"


class BadRequest(ApiError):
    code = "bad_request"


class UnknownOp(ApiError):
    code = "unknown_op"


class Invalid(ApiError):
    code = "invalid"


class Unauthorized(ApiError):
    code = "unauthorized"


class Forbidden(ApiError):
    code = "forbidden"


class VersionMismatch(ApiError):
    code = "version"


class NotFound(ApiError):
    code = "not_found"


class Conflict(ApiError):
    code = "conflict"


class Rejected(ApiError):
    code = "rejected"


class Halted(ApiError):
    code = "halted"


class RateLimited(ApiError):
    code = "rate_limited"


class TooLarge(ApiError):
    code = "too_large"


class Unavailable(ApiError):
    code = "unavailable"


class Internal(ApiError):
    code = "internal"


ERRORS: dict[str, type[ApiError]] = {
    cls.code: cls for cls in (
        BadRequest, UnknownOp, Invalid, Unauthorized, Forbidden, VersionMismatch, NotFound,
        Conflict, Rejected, Halted, RateLimited, TooLarge, Unavailable, Internal)
}

#: Codes after which reconnecting cannot help: the client stops and raises them.
FATAL = frozenset({"unauthorized", "version"})
#: Codes that say "not now": a subscribe refused with one of them is made again (on this
#: connection after a pause when rate limited; on the next one when the daemon stops).
TRANSIENT = frozenset({"unavailable", "rate_limited"})


def error_for(code: str, message: str, field: str | None = None) -> ApiError:
    cls = ERRORS.get(code, ApiError)
    return cls(message, code=code, field=field)


class Unreachable(ClientError):
    """No daemon answered at the address (a missing socket, a refused connection)."""


class ConnectionLost(ClientError):
    """The connection dropped, and this client does not reconnect (reconnect=False)."""


class OutcomeUnknown(ClientError):
    """A request that changes something (amend, halt, resume) was sent and the connection
    dropped before its reply: the kernel may or may not have logged it. Look before
    repeating (`list_intents`, the event stream). Placing and canceling intents never
    raise this: the client resends them, and the kernel answers a repeat as a duplicate."""


class RequestTimeout(ClientError):
    """No reply within the request timeout. For a place or cancel, sending it again with
    the same intent id is safe: the kernel answers a repeat as a duplicate."""


class Closed(ClientError):
    """The client was closed, or stopped after a fatal error (then `__cause__` is it)."""
