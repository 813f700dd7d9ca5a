"""What the commands that talk to a running daemon share: where its API is, the token,
one session, and the exit status and words for each way a request can fail.

The daemon's API listens on `<state dir>/api.sock` (docs/api.md). The state directory is
`--state-dir`, else the one `--config` names, else the default (`$STATE_DIRECTORY`, else
./var); `--url ws://127.0.0.1:PORT/` reaches a daemon's TCP listener instead. The token
is `--token-file`'s content, else `$EXKERNEL_API_TOKEN`.

Exit statuses (README, "The ops CLI"): 0 done; 4 the daemon refused the request (its
error code says why: invalid, rejected, conflict, not_found, halted, rate_limited); 5 the
token was refused or lacks the scope; 6 no running daemon answers at the address (or it
is starting or stopping); 7 no reply in time, or the connection dropped with the outcome
unknown; 78 no token, or a bad config.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import msgspec

from kernel.client import (
    ApiError,
    Client,
    ClientError,
    OutcomeUnknown,
    RequestTimeout,
    Unavailable,
    Unreachable,
)
from kernel.daemon.config import EXIT_CONFIG, load_config, resolve_state_dir
from kernel.errors import ConfigError

EXIT_REFUSED = 4
EXIT_DENIED = 5
EXIT_NO_DAEMON = 6
EXIT_UNKNOWN = 7
TOKEN_ENV = "EXKERNEL_API_TOKEN"
SOCKET = "api.sock"
_DENIED = frozenset({"unauthorized", "forbidden", "version"})


class Target(msgspec.Struct, frozen=True, kw_only=True):
    """A daemon to talk to: its state directory and how to reach its API."""

    state_dir: Path
    url: str | None = None

    @property
    def socket(self) -> Path:
        return self.state_dir / SOCKET

    def __str__(self) -> str:
        return self.url or f"unix:{self.socket}"


def add_target_options(p: argparse.ArgumentParser, *, json_help: str) -> None:
    p.add_argument("--state-dir", type=Path, help="the daemon's state directory (its API is"
                                                   f" {SOCKET} in it)")
    p.add_argument("--config", type=Path, help="the daemon's config, to find its state dir")
    p.add_argument("--url", help="the daemon's TCP listener instead, ws://127.0.0.1:PORT/")
    p.add_argument("--token-file", type=Path,
                   help=f"a file holding the API token (default: ${TOKEN_ENV})")
    p.add_argument("--timeout", type=float, default=10.0, metavar="S",
                   help="seconds to wait for the daemon's reply (default 10)")
    p.add_argument("--json", action="store_true", help=json_help)


def target(args: argparse.Namespace) -> Target:
    """Raises ConfigError for a config that cannot be read."""
    state_dir = getattr(args, "state_dir", None)
    if state_dir is None:
        state_dir = resolve_state_dir(load_config(getattr(args, "config", None)))
    return Target(state_dir=state_dir, url=getattr(args, "url", None))


def token(args: argparse.Namespace) -> str:
    """The API token; ConfigError naming where it was looked for if there is none."""
    path: Path | None = getattr(args, "token_file", None)
    if path is not None:
        try:
            value = path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as e:
            raise ConfigError(f"--token-file {path} cannot be read: {e}") from None
        if not value:
            raise ConfigError(f"--token-file {path} is empty")
        return value
    value = os.environ.get(TOKEN_ENV, "").strip()
    if not value:
        raise ConfigError(f"no API token: export {TOKEN_ENV}, or pass --token-file PATH")
    return value


async def connect(t: Target, token: str, *, timeout: float, reconnect: bool = False
                  ) -> Client:
    options: dict[str, Any] = {"request_timeout": timeout, "reconnect": reconnect,
                               "client_name": "exkernel-cli"}
    if t.url is not None:
        return await Client.connect(url=t.url, token=token, **options)
    return await Client.connect(unix_path=t.socket, token=token, **options)


Op = Callable[[Client], Awaitable[int]]


async def run(args: argparse.Namespace, op: Op) -> int:
    """Open a session with the daemon `args` name, run `op` in it, and turn each failure
    into its words on stderr (and, with --json, an error object on stdout) and its exit
    status."""
    try:
        t = target(args)
        secret = token(args)
    except ConfigError as e:
        return fail(args, "config", str(e), EXIT_CONFIG)
    try:
        client = await connect(t, secret, timeout=args.timeout)
    except Unreachable as e:
        return fail(args, "unreachable", str(e), EXIT_NO_DAEMON)
    except ApiError as e:
        return failed(args, e)
    try:
        return await op(client)
    except ApiError as e:
        return failed(args, e)
    except (RequestTimeout, OutcomeUnknown) as e:
        return fail(args, "unknown_outcome", str(e), EXIT_UNKNOWN)
    except ClientError as e:
        return fail(args, "connection", str(e), EXIT_UNKNOWN)
    finally:
        await client.close()


def failed(args: argparse.Namespace, e: ApiError) -> int:
    status = (EXIT_DENIED if e.code in _DENIED else EXIT_NO_DAEMON
              if isinstance(e, Unavailable) else EXIT_REFUSED)
    return fail(args, e.code, e.message, status, e.field)


def fail(args: argparse.Namespace, code: str, message: str, status: int,
         field: str | None = None) -> int:
    where = f" ({field})" if field else ""
    print(f"exkernel: {code}{where}: {message}", file=sys.stderr)
    if getattr(args, "json", False):
        out({"error": {"code": code, "message": message, "field": field}})
    return status


_encoder = msgspec.json.Encoder(decimal_format="string")


def out(value: Any) -> None:
    """One JSON document on stdout, decimals as strings."""
    sys.stdout.write(_encoder.encode(value).decode() + "\n")
