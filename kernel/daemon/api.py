"""The websocket API inside the daemon: connections, hello, limits, and the ops' dispatch.

docs/api.md is the contract; the messages are `kernel.protocol`. The server listens on
`api.sock` in the state directory, always, and on TCP when `[api] tcp` (loopback unless
`allow_remote` with TLS). Each connection:

* says `hello` with a token first (within `HELLO_TIMEOUT_S`): a wrong token is answered
  `unauthorized` and closed, and counts against its peer (`FailureLimiter`: 5 within a
  minute refuse that peer for a minute);
* then sends requests, answered in order, one at a time (so a slow one holds up only
  its own connection); each op needs its scope (`kernel.protocol.SCOPES`); requests
  past `requests_per_s` get `rate_limited`, frames that do not decode get their error,
  and either kept up closes the connection with a `bye`;
* and its ops are done by `kernel/daemon/ops.py`; subscriptions are fed by the fan-out
  (`kernel/daemon/subscribers.py`).

Stopping
(`stop`): no new connections or requests, requests in flight get their replies, then a
`bye shutdown` to everyone.
"""

from __future__ import annotations

import asyncio
import math
import os
import socket
import ssl
import struct
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

import structlog
from websockets.asyncio.server import Server, ServerConnection, broadcast, serve, unix_serve
from websockets.exceptions import ConnectionClosed

from events.log import EventLog
from kernel import protocol
from kernel.daemon.auth import FailureLimiter, TokenBucket, TokenTable
from kernel.daemon.config import ApiConfig
from kernel.daemon.hub import Hub
from kernel.daemon.ops import Ops, Session
from kernel.daemon.subscribers import Fanout
from kernel.daemon.writer import Writer
from kernel.daemon.writer_loop import WriterClosed, WriterLoop
from kernel.errors import ConfigError
from kernel.protocol import Reply, fail, ok
from kernel.reconcile import ReconcileConfig
from kernel.risk import RiskConfig

SOCKET_NAME = "api.sock"
HELLO_TIMEOUT_S = 10.0
MAX_ERRORS_IN_A_ROW = 20
STOP_GRACE_S = 5.0
#: The kernel's send buffer per connection. The fan-out writes only to a connection
#: whose buffers took everything, so this bounds how stale a slow reader's next
#: snapshot can be (the kernel's default, ~200 KiB, is a hundred small snapshots).
SEND_BUFFER = 64 * 1024
_UNIX_PATH_MAX = 107
try:
    SERVER = f"exkernel {metadata.version('exchange-kernel')}"
except metadata.PackageNotFoundError:  # a checkout run without installing
    SERVER = "exkernel"


class ApiServer:
    def __init__(self, cfg: ApiConfig, *, state_dir: Path, hub: Hub, writer_loop: WriterLoop,
                 tokens: TokenTable, reconcile: ReconcileConfig,
                 status: Callable[[], dict[str, Any]],
                 log: structlog.typing.FilteringBoundLogger | None = None,
                 limits: RiskConfig | None = None) -> None:
        """`status()` gives the daemon's part of the `status` op's result; `limits` are
        the pre-trade limits intents pass (kernel.risk)."""
        self.cfg = cfg
        self.socket_path = state_dir / SOCKET_NAME
        self.db = state_dir / "events.db"
        self.tokens = tokens
        self.log = log or structlog.get_logger("exkernel.api")
        self.limiter = FailureLimiter()
        self.fanout = Fanout(hub, max_lag_s=cfg.max_lag_s,
                             open_log=lambda: EventLog.open(self.db, readonly=True),
                             on_lagging=self._lagging, log=self.log)
        self.ops = Ops(hub=hub, writer_loop=writer_loop, fanout=self.fanout,
                       reconcile=reconcile, db=self.db, status=status,
                       bye=self._bye, log=self.log, limits=limits)
        self.tcp_port: int | None = None
        self._servers: list[Server] = []
        self._conns: dict[Session, None] = {}
        self._closers: set[asyncio.Task[None]] = set()
        self._stopping = False
        self._stopped = asyncio.Event()

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self, writer: Writer) -> None:
        """Listen (after replay). Raises ConfigError if a socket cannot be bound."""
        self.ops.writer = writer
        # No compression: it would cost CPU per frame per connection, and the fan-out
        # shares one encoding among all. The keepalive gives a silent peer at least
        # max_lag_s, so that a client that stopped reading is closed by the lag rule, as
        # `lagging`, not earlier by a missed pong.
        opts: dict[str, Any] = dict(
            max_size=self.cfg.max_frame_bytes, compression=None, max_queue=16,
            ping_interval=20, ping_timeout=max(20.0, self.cfg.max_lag_s), close_timeout=5,
            server_header=SERVER)
        path = self.socket_path
        if len(str(path).encode()) > _UNIX_PATH_MAX:
            raise ConfigError(f"{path}: a unix socket's path must be at most"
                              f" {_UNIX_PATH_MAX} bytes; use a shorter kernel.state_dir")
        if path.is_socket():
            path.unlink()  # a crashed daemon's; we hold the log's writer lock
        try:
            self._servers.append(await unix_serve(self._handle, str(path), **opts))
        except OSError as e:
            raise ConfigError(f"{path}: cannot listen on the API socket: {e.strerror}") from None
        os.chmod(path, 0o660)
        self.log.info("api listening", socket=str(path))
        if self.cfg.tcp:
            await self._listen_tcp(opts)

    async def _listen_tcp(self, opts: dict[str, Any]) -> None:
        cfg = self.cfg
        tls = None
        if cfg.tls_cert and cfg.tls_key:
            tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            try:
                tls.load_cert_chain(cfg.tls_cert, cfg.tls_key)
            except (OSError, ssl.SSLError) as e:
                raise ConfigError(f"api.tls_cert/api.tls_key: cannot load {cfg.tls_cert} and"
                                  f" {cfg.tls_key}: {e}") from None
        try:
            server = await serve(self._handle, cfg.host, cfg.port, ssl=tls, **opts)
        except OSError as e:
            raise ConfigError(f"api.port {cfg.port} on {cfg.host} is not available"
                              f" ({e.strerror}); set another port or api.tcp = false") from None
        self._servers.append(server)
        self.tcp_port = next(iter(server.sockets)).getsockname()[1]
        scheme = "wss" if tls else "ws"
        self.log.info("api listening", url=f"{scheme}://{cfg.host}:{self.tcp_port}/")

    async def serve(self) -> None:
        """Run the fan-out until `stop`."""
        fanout = asyncio.create_task(self.fanout.run(), name="api fanout")
        try:
            await self._stopped.wait()
        finally:
            self.fanout.close()
            await asyncio.gather(fanout, return_exceptions=True)

    async def stop(self) -> None:
        """Stop listening, let requests in flight finish, `bye shutdown` everyone."""
        if self._stopping:
            return
        self._stopping = True
        for server in self._servers:
            server.close(close_connections=False)
        busy = [asyncio.create_task(c.idle.wait()) for c in self._conns if not c.idle.is_set()]
        if busy:
            await asyncio.wait(busy, timeout=STOP_GRACE_S)
            for t in busy:
                t.cancel()
        await asyncio.gather(*(self._bye(c.ws, "shutdown", 1001) for c in list(self._conns)),
                             return_exceptions=True)
        for server in self._servers:
            await server.wait_closed()
        await asyncio.gather(*self._closers, return_exceptions=True)
        self.socket_path.unlink(missing_ok=True)
        self._stopped.set()

    # -- connections -------------------------------------------------------------------

    async def _handle(self, ws: ServerConnection) -> None:
        if self._stopping:
            await self._bye(ws, "shutdown", 1001)
            return
        peer = _peer(ws)
        sock = ws.transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER)
        if len(self._conns) >= self.cfg.max_connections:
            self.log.warning("api connection refused", peer=peer,
                             why=f"already {len(self._conns)} connections (max_connections)")
            await self._bye(ws, "too_many_connections", 1013)
            return
        rate = self.cfg.requests_per_s
        conn = Session(ws, peer, TokenBucket(rate, 2 * rate, time.monotonic()))
        self._conns[conn] = None
        try:
            await self._session(conn)
        except ConnectionClosed:
            pass
        finally:
            self.fanout.drop(ws)
            await conn.ended()
            del self._conns[conn]

    async def _session(self, conn: Session) -> None:
        ws = conn.ws
        while True:
            try:
                # asyncio.timeout, not wait_for: in 3.11 wait_for can swallow a cancel
                # that lands as its inner await completes, and the task runs on.
                async with asyncio.timeout(HELLO_TIMEOUT_S if conn.grant is None else None):
                    frame = await ws.recv()
            except TimeoutError:
                await self._bye(ws, "unauthorized", 1008, fail(
                    None, "unauthorized", f"no hello within {HELLO_TIMEOUT_S:g} s"))
                return
            conn.idle.clear()
            try:
                reply, close = await self._request(conn, frame)
            finally:
                conn.idle.set()
            await ws.send(protocol.encode(reply), text=True)
            if conn.after is not None:
                after, conn.after = conn.after, None
                after()
            if close is not None:
                await self._bye(ws, close, 1008)
                return

    async def _request(self, conn: Session, frame: str | bytes) -> tuple[Reply, str | None]:
        """The reply to one frame, and the reason to close the connection after it."""
        try:
            if isinstance(frame, bytes):
                raise protocol.BadRequest(fail(None, "bad_request",
                                               "a request is JSON in a text frame"))
            req = protocol.decode_request(frame)
            if conn.grant is None and not isinstance(req, protocol.Hello):
                raise protocol.BadRequest(fail(req.id, "unauthorized",
                                               "send hello with a token first"))
        except protocol.BadRequest as e:
            conn.errors += 1
            return e.reply, "too_many_errors" if conn.errors >= MAX_ERRORS_IN_A_ROW else None
        conn.errors = 0
        if not conn.bucket.take(time.monotonic()):
            conn.limited += 1
            rate = self.cfg.requests_per_s
            return (fail(req.id, "rate_limited", f"more than {rate} requests a second on this"
                         " connection: slow down"),
                    "rate_limited" if conn.limited > rate else None)
        conn.limited = 0
        if self._stopping:
            return fail(req.id, "unavailable", "the daemon is stopping"), None
        if isinstance(req, protocol.Hello):
            return self._hello(conn, req)
        assert conn.grant is not None
        op = req.__struct_config__.tag
        scope = protocol.SCOPES[str(op)]
        if scope not in conn.grant.scopes:
            return fail(req.id, "forbidden", f"{op} needs the {scope!r} scope; client"
                        f" {conn.grant.name!r} has {', '.join(sorted(conn.grant.scopes))}",
                        "op"), None
        try:
            return await self.ops.table[type(req)](conn, req), None
        except WriterClosed:
            return fail(req.id, "unavailable", "the daemon is stopping"), None
        except Exception as e:  # one request's failure is not the server's
            self.log.error("api request failed", op=op, peer=conn.peer, exc_info=e)
            return fail(req.id, "internal", f"{op} failed: {type(e).__name__}; see the"
                        " daemon's log"), None

    def _hello(self, conn: Session, req: protocol.Hello) -> tuple[Reply, str | None]:
        if conn.grant is not None:
            return fail(req.id, "invalid", "this connection has said hello already", "op"), None
        common = set(req.versions) & set(protocol.VERSIONS)
        if not common:
            return fail(req.id, "version", f"no protocol version in common: this server"
                        f" speaks {', '.join(map(str, protocol.VERSIONS))}", "versions"), \
                "version"
        now = time.monotonic()
        wait = self.limiter.blocked_for(conn.peer, now)
        if wait:
            return fail(req.id, "rate_limited", f"too many failed hellos from {conn.peer}:"
                        f" refused for another {math.ceil(wait)} s"), "rate_limited"
        grant = self.tokens.check(req.token)
        if grant is None:
            self.limiter.failed(conn.peer, now)
            self.log.warning("api hello refused", peer=conn.peer, client=req.client,
                             why="unknown token")
            return fail(req.id, "unauthorized", "unknown token", "token"), "unauthorized"
        conn.grant = grant
        self.log.info("api client connected", client_name=grant.name, peer=conn.peer,
                      client=req.client)
        state = self.ops.state()
        return ok(req.id, version=max(common), server=SERVER, name=grant.name,
                  scopes=sorted(grant.scopes), seq=state.seq, halted=state.halted), None

    async def _bye(self, ws: ServerConnection, reason: str, code: int,
                   reply: Reply | None = None) -> None:
        try:
            if reply is not None:
                await ws.send(protocol.encode(reply), text=True)
            await ws.send(_bye_frame(reason), text=True)
            await ws.close(code, reason)
        except ConnectionClosed:
            pass

    def _lagging(self, ws: ServerConnection) -> None:
        """The fan-out's verdict on a connection: closed, without awaiting it here."""
        broadcast([ws], _bye_frame("lagging"), text=True)  # queued behind what it has
        task = asyncio.create_task(ws.close(1008, "lagging"))
        self._closers.add(task)
        task.add_done_callback(self._closers.discard)


def _bye_frame(reason: str) -> bytes:
    return b'{"type":"bye","reason":"%s"}' % reason.encode()


def _peer(ws: ServerConnection) -> str:
    """Who is calling, for the failed-hello limit: the uid on the unix socket, else the IP."""
    sock = ws.transport.get_extra_info("socket")
    if sock is not None and sock.family == socket.AF_UNIX:
        creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        return f"uid {struct.unpack('3i', creds)[1]}"
    address = ws.remote_address
    return f"ip {address[0]}" if address else "unknown"
