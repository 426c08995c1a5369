"""WebSockets of runs and conversations: the SSE streams' events, plus commands.

`/api/ws/runs/{id}` and `/api/ws/conversations/{id}` (docs/websocket.md has the protocol).
Authentication is the HTTP one (`get_principal` on the handshake: headers or the cookie
session), or a first message `{"type": "auth", "api_key": ...}`. A command calls the HTTP
route's own function, so it gets the same checks, services and rate limits, and its `ack`
carries what the route returns; a refusal is an `error` frame with the route's status and
code.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from fastapi import APIRouter, WebSocket
from pydantic import TypeAdapter, ValidationError
from starlette.websockets import WebSocketDisconnect, WebSocketState

from symposia.api import approvals as approvals_api
from symposia.api import conversations as conversations_api
from symposia.api import runs as runs_api
from symposia.api.approvals import Decision
from symposia.api.deps import container_from, count_request, get_principal, stream_slot
from symposia.api.errors import _field_name
from symposia.api.json_bodies import BoundedJsonRoute, check_json
from symposia.api.schemas import BotPatch, MessageCreate, ModelName, RunSay
from symposia.container import Container
from symposia.errors import BadRequestError, InvalidInputError, SymposiaError, UnauthorizedError
from symposia.observability import log_context
from symposia.security.principals import Principal
from symposia.streaming.sse import EventSource, parse_last_event_id, resume_position
from symposia.streaming.stream_slots import TooManyStreamsError
from symposia.streaming.websocket import POLICY_VIOLATION, Outbox, Session, close, receive_json

logger = logging.getLogger("symposia.ws")
router = APIRouter(route_class=BoundedJsonRoute, prefix="/api/ws", tags=["websocket"])

AUTH_WAIT_SECONDS = 10.0  # for the first message of a socket without credentials
REF_MAX_CHARS = 64
TRY_AGAIN_LATER = 1013  # the close code of a socket over MAX_STREAMS_PER_PRINCIPAL
CREDENTIAL_HEADERS = ("x-api-key", "authorization")
T = TypeVar("T")


class UnknownCommandError(BadRequestError):
    code = "unknown_command"


@dataclass
class Socket:
    """One authenticated socket, and what its commands need."""

    container: Container
    principal: Principal
    session: Session
    subject: str  # the run's or the conversation's id
    route: str
    request_id: str
    counter: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    # A subscription starts once its `ack` is sent, so the ack comes before its events.
    follow_next: tuple[EventSource, str, int] | None = None


Command = Callable[[Socket, dict[str, Any]], Awaitable[dict[str, Any]]]


# --- authentication --------------------------------------------------------------------


def _origin_allowed(websocket: WebSocket, container: Container) -> bool:
    """A browser's socket may ride its cookie only from a configured origin (CORS_ORIGINS
    or an allowed host's own): otherwise any page could open one with the user's session
    (cross-site WebSocket hijacking). Never compared with Host, which a DNS-rebinding page
    controls. A client that is no browser sends no Origin."""
    origin = websocket.headers.get("origin")
    if origin is None:
        return True
    settings = container.settings
    host = websocket.headers.get("host", "")
    return container.hosts.origin_allowed(origin, settings.cors_origins, host)


async def _handshake_principal(websocket: WebSocket, container: Container) -> Principal | None:
    """The principal of the handshake (headers or cookie), as for HTTP; None when there is
    none, or only ambient credentials from another site: the first message must then
    authenticate. Wrong credentials in the headers raise 401."""
    explicit = any(name in websocket.headers for name in CREDENTIAL_HEADERS)
    try:
        principal = await get_principal(websocket)
    except UnauthorizedError:
        if explicit:
            raise
        return None
    if not explicit and not _origin_allowed(websocket, container):
        return None
    return principal


async def _key_principal(container: Container, message: dict[str, Any]) -> Principal:
    key = message.get("api_key")
    if message.get("type") != "auth" or not isinstance(key, str) or not key:
        raise UnauthorizedError(
            "authentication required: X-API-Key or Authorization on the handshake, a "
            'session cookie from this site, or {"type": "auth", "api_key": "..."} first'
        )
    return await container.auth.principal({"x-api-key": key})


async def _accept(websocket: WebSocket, container: Container) -> Principal | None:
    """Accept the socket and learn who it is; None (after an error frame and a 1008
    close) when it cannot say, or it left."""
    try:
        principal = await _handshake_principal(websocket, container)
        await websocket.accept()
        if principal is not None:
            return principal
        outbox = Outbox(websocket, container.settings.sse_send_timeout)
        try:
            async with asyncio.timeout(AUTH_WAIT_SECONDS):
                while (message := await receive_json(websocket, outbox)) is None:
                    pass
        except TimeoutError:
            raise UnauthorizedError(f"no authentication within {AUTH_WAIT_SECONDS:g} s") from None
        principal = await _key_principal(container, message)
        await outbox.send({"type": "ack", "ref": message.get("ref"), "command": "auth"})
        return principal
    except UnauthorizedError as exc:
        if websocket.client_state is WebSocketState.CONNECTING:
            await websocket.accept()
        with contextlib.suppress(WebSocketDisconnect, RuntimeError):
            await websocket.send_json(_error(None, exc))
        await close(websocket, POLICY_VIOLATION, "unauthorized")
    except WebSocketDisconnect:
        pass
    return None


# --- frames ----------------------------------------------------------------------------


def _error(ref: Any, exc: SymposiaError) -> dict[str, Any]:
    frame = {"type": "error", "ref": ref, "status": exc.status_code, **exc.to_dict()}
    retry_after = exc.headers.get("Retry-After", "")
    if retry_after.isdigit():
        frame["retry_after"] = int(retry_after)
    return frame


def _validated(schema: type[T], value: Any, name: str) -> T:
    """`value` as `schema`, or the 422 the HTTP route gives (the field under `name`)."""
    check_json(value, name)
    try:
        return TypeAdapter(schema).validate_python(value)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = _field_name(tuple(first.get("loc", ())))
        path = name if where == "body" else f"{name}.{where}" if name else where
        raise InvalidInputError(f"{path}: {first.get('msg', 'invalid')}", path) from None


def _after(value: Any) -> int:
    """A position as `Last-Event-ID` takes it (an integer is taken as well)."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if value is not None and not isinstance(value, str):
        raise BadRequestError("after must be a non-negative integer event id")
    return parse_last_event_id(None, value)


def _ref(message: dict[str, Any]) -> Any:
    ref = message.get("ref")
    if ref is None or (isinstance(ref, str) and len(ref) <= REF_MAX_CHARS):
        return ref
    if isinstance(ref, int) and not isinstance(ref, bool):
        return ref
    raise InvalidInputError(
        f"ref must be a string of at most {REF_MAX_CHARS} characters or an integer", "ref"
    )


# --- commands --------------------------------------------------------------------------


async def _auth(socket: Socket, message: dict[str, Any]) -> dict[str, Any]:
    """A key sent later: the socket acts as its principal from now on."""
    socket.principal = await _key_principal(socket.container, message)
    return {}


async def _subscribe_run(socket: Socket, message: dict[str, Any]) -> dict[str, Any]:
    after = _after(message.get("after"))
    stored = await socket.container.runs.open_stream(socket.subject, owner=socket.principal.id)
    after = await resume_position(stored, socket.container.log, socket.subject, after)
    socket.follow_next = (stored or socket.container.log, socket.subject, after)
    return {"after": after}


async def _stop_run(socket: Socket, message: dict[str, Any]) -> dict[str, Any]:
    return await runs_api.stop_run(socket.subject, socket.container.runs, socket.principal)


async def _edit_bot(socket: Socket, message: dict[str, Any]) -> dict[str, Any]:
    index = _validated(int, message.get("index"), "index")
    body = _validated(BotPatch, message.get("body") or {}, "body")
    runs = socket.container.runs
    return await runs_api.update_bot(socket.subject, index, body, runs, socket.principal)


async def _say_in_run(socket: Socket, message: dict[str, Any]) -> dict[str, Any]:
    body = _validated(RunSay, message.get("body"), "body")
    runs = socket.container.runs
    return await runs_api.say_in_run(socket.subject, body, runs, socket.principal)


async def _subscribe_reply(socket: Socket, message: dict[str, Any]) -> dict[str, Any]:
    """Like GET /api/conversations/{id}/stream: counted as a `chat` request, and it starts
    the reply to the latest user message if none is on its way."""
    after = _after(message.get("after"))
    raw_model = message.get("model")
    model = None if raw_model is None else _validated(ModelName, raw_model, "model")
    await count_request(socket.session.websocket, socket.container, socket.principal, "chat")
    stream_id, stored = await socket.container.conversations.reply_stream(
        socket.subject, model, resuming=after > 0, owner=socket.principal.id
    )
    after = await resume_position(stored, socket.container.log, stream_id, after)
    socket.follow_next = (stored or socket.container.log, stream_id, after)
    return {"after": after, "stream": stream_id}


async def _add_message(socket: Socket, message: dict[str, Any]) -> dict[str, Any]:
    """Like POST /api/conversations/{id}/messages (a `chat` request); subscribe next to
    follow the reply."""
    body = _validated(MessageCreate, message.get("body"), "body")
    await count_request(socket.session.websocket, socket.container, socket.principal, "chat")
    conversations = socket.container.conversations
    return await conversations_api.add_user_message(
        socket.subject, body, conversations, socket.principal
    )


async def _approve_in_run(socket: Socket, message: dict[str, Any]) -> dict[str, Any]:
    """Like POST /api/run/{id}/approvals/{call_id}: `call_id` and `approve`."""
    call_id = _validated(str, message.get("call_id"), "call_id")
    body = _validated(Decision, {"approve": message.get("approve")}, "")
    container = socket.container
    return await approvals_api.decide_run_call(
        socket.subject, call_id, body, container.runs, socket.principal, container
    )


async def _approve_in_conversation(socket: Socket, message: dict[str, Any]) -> dict[str, Any]:
    call_id = _validated(str, message.get("call_id"), "call_id")
    body = _validated(Decision, {"approve": message.get("approve")}, "")
    container = socket.container
    return await approvals_api.decide_conversation_call(
        socket.subject, call_id, body, container.conversations, socket.principal, container
    )


RUN_COMMANDS: dict[str, Command] = {
    "auth": _auth,
    "subscribe": _subscribe_run,
    "stop": _stop_run,
    "edit_bot": _edit_bot,
    "say": _say_in_run,
    "approve": _approve_in_run,
}


async def _stop_reply(socket: Socket, message: dict[str, Any]) -> dict[str, Any]:
    """Like POST /api/conversations/{id}/stop."""
    conversations = socket.container.conversations
    reply = await conversations.stop(socket.subject, owner=socket.principal.id)
    return conversations_api.stopped_view(reply)


CONVERSATION_COMMANDS: dict[str, Command] = {
    "auth": _auth,
    "subscribe": _subscribe_reply,
    "message": _add_message,
    "stop": _stop_reply,
    "approve": _approve_in_conversation,
}


async def _dispatch(socket: Socket, commands: dict[str, Command], message: dict[str, Any]) -> None:
    """Run one command and answer it: one log line and one count per command, each with
    a request id of its own (the socket's, and its number)."""
    kind = message.get("type")
    request_id = f"{socket.request_id}.{next(socket.counter)}"
    started = time.perf_counter()
    ref = message.get("ref")
    with log_context.bound(request_id=request_id):
        try:
            ref = _ref(message)
            command = commands.get(kind) if isinstance(kind, str) else None
            if command is None:
                raise UnknownCommandError(
                    f"unknown message type {str(kind)[:40]!r}; this socket takes "
                    + ", ".join(sorted(commands))
                )
            result = await command(socket, message)
            frame: dict[str, Any] = {"type": "ack", "ref": ref, "command": kind, "result": result}
            status = 200
        except SymposiaError as exc:
            frame, status = _error(ref, exc), exc.status_code
        except Exception:
            logger.exception("WebSocket command failed")
            failure = SymposiaError("internal error; it has been logged")
            frame, status = _error(ref, failure), failure.status_code
        frame["request_id"] = request_id
        label = kind if kind in commands else "unknown"
        socket.container.metrics.ws_commands.labels(socket.route, label, str(status)).inc()
        logger.info(
            "websocket command",
            extra={
                "route": socket.route,
                "command": label,
                "status": status,
                "duration_ms": round((time.perf_counter() - started) * 1000, 2),
            },
        )
        await socket.session.outbox.send(frame)
        if socket.follow_next is not None:
            socket.session.follow(*socket.follow_next)
            socket.follow_next = None


async def _serve(
    websocket: WebSocket, subject: str, route: str, commands: dict[str, Command]
) -> None:
    container = container_from(websocket)
    principal = await _accept(websocket, container)
    if principal is None:
        return
    try:
        release = stream_slot(websocket, container, principal)
    except TooManyStreamsError as exc:
        with contextlib.suppress(WebSocketDisconnect, RuntimeError):
            await websocket.send_json(_error(None, exc))
        await close(websocket, TRY_AGAIN_LATER, "too many streams")
        return
    try:
        await _session(websocket, container, principal, subject, route, commands)
    finally:
        release()


async def _session(
    websocket: WebSocket,
    container: Container,
    principal: Principal,
    subject: str,
    route: str,
    commands: dict[str, Command],
) -> None:
    settings = container.settings
    session = Session(
        websocket,
        container.sockets,
        heartbeat=settings.sse_heartbeat_seconds,
        send_timeout=settings.sse_send_timeout,
    )
    request_id = log_context.bound_fields().get("request_id", "ws")
    socket = Socket(container, principal, session, subject, route, request_id)
    after = websocket.query_params.get("after")
    first = {"type": "subscribe", "after": after} if after is not None else None

    async def handle(message: dict[str, Any]) -> None:
        await _dispatch(socket, commands, message)

    await session.serve(handle, first)


@router.websocket("/runs/{run_id}")
async def run_socket(websocket: WebSocket, run_id: str) -> None:
    """A run's events (as `/api/stream/{id}`), and stop, edit_bot and say commands."""
    await _serve(websocket, run_id, "/api/ws/runs/{run_id}", RUN_COMMANDS)


@router.websocket("/conversations/{conversation_id}")
async def conversation_socket(websocket: WebSocket, conversation_id: str) -> None:
    """A conversation's replies (as its `/stream`), and message commands."""
    await _serve(
        websocket, conversation_id, "/api/ws/conversations/{conversation_id}", CONVERSATION_COMMANDS
    )
