"""What strategies import: the asyncio client of the daemon's API and the ExecutionContext.

    from kernel.client import Client, ExecutionContext

docs/client.md is the guide; docs/api.md the protocol underneath.
"""

from kernel.client.client import Client
from kernel.client.context import Account, ExecutionContext
from kernel.client.errors import (
    ApiError,
    BadRequest,
    ClientError,
    Closed,
    Conflict,
    ConnectionLost,
    Forbidden,
    Halted,
    Internal,
    Invalid,
    NotFound,
    OutcomeUnknown,
    RateLimited,
    Rejected,
    RequestTimeout,
    TooLarge,
    Unauthorized,
    Unavailable,
    UnknownOp,
    Unreachable,
    VersionMismatch,
)
from kernel.client.results import DaemonStatus, IntentList, Logged, Session
from kernel.client.streams import EventStream, SnapshotStream

__all__ = [
    "Account", "ApiError", "BadRequest", "Client", "ClientError", "Closed", "Conflict",
    "ConnectionLost", "DaemonStatus", "EventStream", "ExecutionContext", "Forbidden",
    "Halted", "IntentList", "Internal", "Invalid", "Logged", "NotFound", "OutcomeUnknown",
    "RateLimited", "Rejected", "RequestTimeout", "Session", "SnapshotStream", "TooLarge",
    "Unauthorized", "Unavailable", "UnknownOp", "Unreachable", "VersionMismatch",
]
