"""One client's link to the daemon: the websocket, the requests awaiting replies, the
open streams, and the reconnects (kernel/client/client.py is the API on top).

The link's life is one task (`_run`): read frames and dispatch them (a reply to its
request, a push to its stream); when the connection drops, decide what each request in
flight becomes, reconnect with backoff (`kernel.backoff.backoff`), say `hello` again,
subscribe every open stream again from the last seq it received and resend what may be
resent. A subscribe's reply maps the server's sub id to its stream inside the reader,
before the next frame is read, so no push is lost between them. A subscribe refused as
`unavailable` (the daemon is stopping) or `rate_limited` is made again, on the next
connection or after a pause. After `unauthorized` or `version` the link stops for good:
every request and stream gets that error.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
from collections.abc import Callable, Coroutine, Iterator, Sequence
from typing import Any, TypeVar

import msgspec
import structlog
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from kernel.backoff import Rng, backoff
from kernel.client.errors import (
    FATAL,
    TRANSIENT,
    ApiError,
    ClientError,
    Closed,
    ConnectionLost,
    OutcomeUnknown,
    RequestTimeout,
    TooLarge,
    Unreachable,
    error_for,
)
from kernel.client.results import Session, Subscribed
from kernel.client.streams import Stream
from kernel.client.wire import Address, Frame, decode_frame, decode_result, encode
from kernel.protocol import VERSIONS

R = TypeVar("R")
#: Ops that only read: safe to send again after a reconnect.
READS = frozenset({"get_snapshot", "list_intents", "status"})


class _Pending:
    """A request awaiting its reply. `sent_on` is the connection it went out on: after
    a reconnect, a resendable request not sent on the new one is sent again."""

    __slots__ = ("frame", "future", "on_result", "resend", "sent_on", "text")

    def __init__(self, frame: dict[str, Any], resend: bool,
                 on_result: Callable[[Frame], None] | None = None) -> None:
        self.frame = frame
        self.text = encode(frame).decode()
        self.resend = resend
        self.on_result = on_result
        self.future: asyncio.Future[Frame] = asyncio.get_running_loop().create_future()
        self.sent_on: ClientConnection | None = None


class Link:
    def __init__(
        self,
        address: Address,
        token: str,
        *,
        client_name: str = "exkernel-client/0.1",
        reconnect: bool = True,
        request_timeout: float | None = 30.0,
        backoff_initial: float = 0.2,
        backoff_max: float = 5.0,
        rng: Rng | None = None,
        max_request_bytes: int = 65_536,
        versions: Sequence[int] = VERSIONS,
    ) -> None:
        self.address = address
        self._token = token
        self._name = client_name
        self._reconnect = reconnect
        self._timeout = request_timeout
        self._rng: Rng = rng or random.Random()
        self._backoff = (backoff_initial, backoff_max)
        self._delays()  # a meaningless schedule raises ValueError now, not at the first drop
        self._max_request = max_request_bytes
        self._versions = list(versions)
        self._ids = itertools.count(1)
        self._ws: ClientConnection | None = None
        self._connected = asyncio.Event()
        self._pending: dict[int, _Pending] = {}
        self._streams: list[Stream] = []
        self._by_sub: dict[str, Stream] = {}
        self._early: dict[str, list[Frame]] = {}  # pushes that beat their subscribe reply
        self._fatal: BaseException | None = None
        self._closed = False
        self._task: asyncio.Task[None] | None = None
        self._sends: set[asyncio.Task[None]] = set()  # fire-and-forget sends, kept alive
        self._log = structlog.get_logger("exkernel.client")
        #: The `hello` result of the current (or last) session.
        self.session: Session | None = None
        #: Successful reconnects so far, and the reason of the last `bye` the server sent.
        self.reconnects = 0
        self.last_bye: str | None = None

    async def start(self) -> None:
        """Connect and say hello (raising what `_open` raises), then keep the link up."""
        ws = await self._open()
        self._task = asyncio.get_running_loop().create_task(self._run(ws), name="api-link")

    async def close(self) -> None:
        """Close the connection. Calls in flight raise `Closed`; streams end."""
        if self._closed:
            return
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for send in list(self._sends):
            send.cancel()  # a subscribe waiting out a rate limit, a send in flight
        if self._ws is not None:
            await self._ws.close()
        self._finish(Closed("the client was closed"), end_streams=True)

    # -- requests ----------------------------------------------------------------------

    async def call(self, frame: dict[str, Any], kind: type[R], *,
                   resend: bool | None = None) -> R:
        """Send one request and decode its result as `kind`. Reads resend by default."""
        self._check_open()
        rid = next(self._ids)
        pending = _Pending({"id": rid, **frame},
                           resend=frame["op"] in READS if resend is None else resend)
        if len(pending.text.encode()) > self._max_request:
            # The daemon closes a connection that sends a frame over its limit: a resend
            # after the reconnect would do it again.
            raise TooLarge(f"{frame['op']}: the request is {len(pending.text.encode())}"
                           f" bytes, over the limit of {self._max_request}")
        self._pending[rid] = pending
        try:
            async with asyncio.timeout(self._timeout):
                await self._connected.wait()
                await self._send(pending)
                reply = await pending.future
        except TimeoutError:
            raise RequestTimeout(f"{frame['op']}: no reply within {self._timeout} s") from None
        finally:
            self._pending.pop(rid, None)
        try:
            result: R = decode_result(reply.result, kind)
        except (msgspec.DecodeError, msgspec.ValidationError) as e:
            raise ClientError(f"{frame['op']}: the daemon's result could not be read: {e}"
                              ) from None
        return result

    async def _send(self, pending: _Pending) -> None:
        ws = self._ws
        if ws is None or pending.sent_on is ws:
            return  # not connected (resent on reconnect), or sent there already
        pending.sent_on = ws
        with contextlib.suppress(ConnectionClosed):  # the reconnect decides what happens
            await ws.send(pending.text)

    def _check_open(self) -> None:
        if self._fatal is not None:
            raise self._fatal
        if self._closed:
            raise Closed("the client was closed")

    # -- streams -----------------------------------------------------------------------

    def add(self, stream: Stream) -> None:
        self._check_open()
        self._streams.append(stream)
        if self._ws is not None:
            self._subscribe(stream, self._ws)

    def _subscribe(self, stream: Stream, ws: ClientConnection) -> None:
        """Send `stream`'s subscribe on `ws`; the reply maps the server's sub id to it
        in the reader itself, before any later frame is read (none is lost)."""
        rid = next(self._ids)

        def on_result(reply: Frame) -> None:
            if not reply.ok:
                assert reply.error is not None
                code, message = reply.error.code, reply.error.message
                if self._reconnect and code in TRANSIENT and stream in self._streams:
                    # Not now, not never: a daemon that is stopping drops this connection
                    # and the next one subscribes the stream again; a rate limit passes.
                    self._log.info("api subscribe deferred", op=stream.op, code=code,
                                   error=message)
                    if code == "rate_limited":
                        self._spawn(self._subscribe_later(stream, ws))
                    return
                stream.fail(error_for(code, message, reply.error.field))
                return
            result: Subscribed = decode_result(reply.result, Subscribed)
            stream.subscribed(result)
            if stream not in self._streams:  # closed while its subscribe was in flight
                self._spawn(self._unsubscribe(stream))
                return
            self._by_sub[result.sub] = stream
            for early in self._early.pop(result.sub, []):
                self._push(early)

        pending = _Pending({"id": rid, "op": stream.op, **stream.request()}, resend=False,
                           on_result=on_result)
        self._pending[rid] = pending
        pending.sent_on = ws
        self._spawn(self._send_quietly(ws, pending.text))

    async def _subscribe_later(self, stream: Stream, ws: ClientConnection) -> None:
        """Subscribe `stream` on `ws` again after the backoff's first pause, unless the
        connection changed (the new one subscribes it) or the stream closed meanwhile."""
        await asyncio.sleep(next(self._delays()))
        if self._ws is ws and not self._closed and stream in self._streams:
            self._subscribe(stream, ws)

    def _spawn(self, send: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(send)
        self._sends.add(task)
        task.add_done_callback(self._sends.discard)

    async def _send_quietly(self, ws: ClientConnection, text: str) -> None:
        with contextlib.suppress(ConnectionClosed):  # the next connection subscribes again
            await ws.send(text)

    async def resubscribe(self, stream: Stream) -> None:
        """Start `stream` again from its last seq on this connection (after it fell
        behind and dropped pushes); without a connection, the reconnect does it."""
        await self._unsubscribe(stream)
        if self._ws is not None and not self._closed:
            self._subscribe(stream, self._ws)

    async def forget(self, stream: Stream) -> None:
        with contextlib.suppress(ValueError):
            self._streams.remove(stream)
        await self._unsubscribe(stream)

    async def _unsubscribe(self, stream: Stream) -> None:
        sub, stream.server_sub = stream.server_sub, None
        if sub is None:
            return
        self._by_sub.pop(sub, None)
        if self._ws is not None and not self._closed:
            frame = {"id": next(self._ids), "op": "unsubscribe", "sub": sub}
            await self._send_quietly(self._ws, encode(frame).decode())

    # -- the connection ----------------------------------------------------------------

    async def _open(self) -> ClientConnection:
        """Connect and say hello; the session's result in `self.session`."""
        ws = await self.address.open(self._timeout)
        rid = next(self._ids)
        hello = {"id": rid, "op": "hello", "token": self._token, "versions": self._versions,
                 "client": self._name}
        try:
            async with asyncio.timeout(self._timeout):
                await ws.send(encode(hello).decode())
                while True:
                    reply = decode_frame(await ws.recv())
                    if reply.type == "bye":
                        self.last_bye = reply.reason
                    elif reply.type is None and reply.id == rid:
                        break
        except (ConnectionClosed, TimeoutError) as e:
            await ws.close()
            why = self.last_bye or ("no hello reply in time" if isinstance(e, TimeoutError)
                                    else "the daemon closed the connection")
            raise Unreachable(f"no session with the daemon at {self.address}: {why}") from None
        if not reply.ok:
            await ws.close()
            assert reply.error is not None
            raise error_for(reply.error.code, reply.error.message, reply.error.field)
        self.session = decode_result(reply.result, Session)
        return ws

    async def _run(self, ws: ClientConnection | None) -> None:
        """The connection's life: read frames; when it drops, reconnect and resume."""
        try:
            while ws is not None:
                self._ws = ws
                self._connected.set()
                for stream in self._streams:
                    self._subscribe(stream, ws)
                for pending in list(self._pending.values()):
                    if pending.on_result is None:
                        await self._send(pending)
                await self._read(ws)
                self._lost()
                if self._closed:
                    return
                if not self._reconnect:
                    self._finish(ConnectionLost(f"the connection to {self.address} was"
                                                f" lost ({self.last_bye or 'closed'})"))
                    return
                ws = await self._reopen()
        except Exception as e:  # a task boundary: never die silently
            self._log.error("api client failed", exc_info=True)
            self._finish(Closed(f"the API client stopped: {e}"))

    async def _read(self, ws: ClientConnection) -> None:
        try:
            async for data in ws:
                try:
                    frame = decode_frame(data)
                except (msgspec.DecodeError, msgspec.ValidationError) as e:
                    # Not the protocol: say so, and keep the connection (a newer daemon's
                    # push this client cannot read must not stop the replies it can).
                    self._log.error("api frame not understood", error=str(e),
                                    frame=bytes(data[:200]) if isinstance(data, bytes)
                                    else data[:200])
                    continue
                self._dispatch(frame)
        except ConnectionClosed:
            pass

    def _lost(self) -> None:
        """The connection is gone: requests that must not be resent learn that their
        outcome is unknown; subscriptions wait for the next connection."""
        self._ws = None
        self._connected.clear()
        self._by_sub.clear()
        self._early.clear()
        for stream in self._streams:
            stream.server_sub = None
        for rid, pending in list(self._pending.items()):
            if pending.on_result is not None:
                del self._pending[rid]  # subscribes are sent again from the streams
            elif pending.sent_on is not None and not pending.resend and self._reconnect:
                del self._pending[rid]
                if pending.future.done():
                    continue
                pending.future.set_exception(OutcomeUnknown(
                    f"{pending.frame['op']}: the connection dropped before the reply; the"
                    " kernel may or may not have logged it"))

    def _delays(self) -> Iterator[float]:
        initial, max_delay = self._backoff
        return backoff(initial=initial, max_delay=max_delay, rng=self._rng)

    async def _reopen(self) -> ClientConnection | None:
        """Reconnect with backoff until a session opens; None once it cannot."""
        self._log.warning("api connection lost; reconnecting", address=str(self.address),
                          bye=self.last_bye)
        for delay in self._delays():
            await asyncio.sleep(delay)
            try:
                ws = await self._open()
            except ApiError as e:
                if e.code in FATAL:
                    self._log.error("api reconnect refused", code=e.code, error=e.message)
                    self._finish(e)
                    return None
                continue  # unavailable (starting), rate_limited: try again later
            except Unreachable:
                continue
            self.reconnects += 1
            self._log.info("api reconnected", address=str(self.address), seq=(
                self.session.seq if self.session else None))
            return ws
        return None  # unreachable: the schedule is endless

    def _finish(self, error: BaseException, *, end_streams: bool = False) -> None:
        """No more requests: every caller in flight and every stream gets `error` (or,
        when the client was closed, the streams simply end)."""
        if self._fatal is None:
            self._fatal = error
        self._connected.set()  # wake waiters; they find _fatal and raise it
        for pending in self._pending.values():
            if not pending.future.done():
                pending.future.set_exception(error)
        self._pending.clear()
        for stream in self._streams:
            stream.end() if end_streams else stream.fail(error)

    def _dispatch(self, frame: Frame) -> None:
        if frame.type is None:
            if not isinstance(frame.id, int) or frame.id not in self._pending:
                return  # a reply to an unsubscribe, or after a timeout
            pending = self._pending.pop(frame.id)
            if pending.on_result is not None:
                pending.on_result(frame)
            elif pending.future.done():
                pass  # its caller was canceled (a timeout) before the reply came
            elif frame.ok:
                pending.future.set_result(frame)
            else:
                assert frame.error is not None
                pending.future.set_exception(
                    error_for(frame.error.code, frame.error.message, frame.error.field))
        elif frame.type in ("snapshot", "event"):
            self._push(frame)
        elif frame.type == "bye":
            self.last_bye = frame.reason

    def _push(self, frame: Frame) -> None:
        if frame.sub is None:
            return
        stream = self._by_sub.get(frame.sub)
        if stream is not None:
            stream.push(frame.seq, frame.skipped,
                        frame.snapshot if frame.type == "snapshot" else frame.event)
        elif any(p.on_result is not None for p in self._pending.values()):
            # A subscribe reply is still to come: keep the push for it (bounded).
            early = self._early.setdefault(frame.sub, [])
            if len(early) < 10_000:
                early.append(frame)
