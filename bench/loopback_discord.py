"""Just enough of Discord, on 127.0.0.1, for real bot processes to log in, sync, post polls,
answer button clicks and announce results: REST (aiohttp) and a gateway WebSocket (plain JSON
text frames).

Used by `bench/votes_loopback.py`, `bench/shards.py`, `bench/deadline_storm.py` and the live
tests. The bot under test is pointed here with Quorum's own settings, `DISCORD_API_BASE` and
`DISCORD_GATEWAY_URL`.

By default there is one guild (GUILD_ID, channel CHANNEL_ID) and one shard. With
`LoopbackDiscord(guilds, shard_count=n)` there are several guilds, each with one channel
(`channel_of(guild)`), and any number of gateway connections: a connection that identifies as
shard [i, n] gets a READY listing the guilds of shard i (`(guild_id >> 22) % n == i`, see
`guild_on_shard`) and their GUILD_CREATE, and the interactions of those guilds. Like Discord,
`enforce_nonce` with a nonce already used in the channel returns the earlier message. Every
bot token whose text starts with TOKEN is accepted; `env_for(label)` gives a process its own
variant, so each request can be traced to the process that sent it (`Post.sender`,
`syncs`).
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import json
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from aiohttp import WSMsgType, web

DISCORD_EPOCH_MS = 1420070400000
APP_ID = 1100000000000000001
GUILD_ID = 1100000000000000002
CHANNEL_ID = 1100000000000000003
EVERYONE_ROLE = GUILD_ID
BOT_ROLE = 1100000000000000004
COMMAND_ID = 1100000000000000005
CREATOR_ID = 1100000000000000006
TOKEN = "MTEwMDAwMDAwMDAwMDAwMDAwMQ.GbEnCh.bench-token-for-a-loopback-server-only"
ALL_PERMISSIONS = str((1 << 50) - 1)
MEMBER_PERMISSIONS = "1071698660929"
TIMESTAMP = "2026-01-01T00:00:00.000000+00:00"
HEARTBEAT_ACK_DELAY = 0.05
EPHEMERAL = 1 << 6
COMPONENTS_V2 = 1 << 15  # the message's components are its layout: no content or embeds beside them
_JUMP_URL = re.compile(r"/channels/\d+/\d+/(\d+)")


def user(user_id: int, name: str, *, bot: bool = False) -> dict[str, Any]:
    return {"id": str(user_id), "username": name, "discriminator": "0", "global_name": None,
            "avatar": None, "bot": bot, "public_flags": 0, "flags": 0}


def member(user_id: int, name: str, roles: list[int] | None = None) -> dict[str, Any]:
    return {"user": user(user_id, name), "roles": [str(r) for r in roles or []], "joined_at": TIMESTAMP,
            "deaf": False, "mute": False, "flags": 0, "pending": False, "nick": None, "avatar": None,
            "premium_since": None, "communication_disabled_until": None}


BOT_USER = user(APP_ID, "Bench Bot", bot=True)


def shard_of(guild_id: int, shard_count: int) -> int:
    """The shard Discord delivers a guild's events on."""
    return (guild_id >> 22) % shard_count


def guild_on_shard(shard_id: int, shard_count: int, index: int = 0) -> int:
    """A guild id on shard `shard_id` of `shard_count`; `index` picks another one (distinct ids)."""
    high = (GUILD_ID >> 22) + 1 + index * shard_count
    high += (shard_id - high) % shard_count
    return high << 22 | 2


def channel_of(guild_id: int) -> int:
    """The one text channel of a loopback guild (CHANNEL_ID for GUILD_ID)."""
    return guild_id + 1


def _json(body: Any, status: int = 200) -> web.Response:
    # discord.py parses a body only when Content-Type is exactly "application/json".
    return web.Response(body=json.dumps(body).encode(), status=status, headers={"Content-Type": "application/json"})


def _error(status: int, code: int, message: str) -> web.Response:
    return _json({"message": message, "code": code}, status=status)


def _components(components: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every component, nested ones (in a V2 container, in action rows) included."""
    out: list[dict[str, Any]] = []
    for component in components:
        out.append(component)
        out += _components(component.get("components") or [])
    return out


def answer_custom_ids(message: dict[str, Any]) -> list[str]:
    """The custom_ids of a poll message's answer buttons, in order (legacy rows or V2 layout)."""
    return [c["custom_id"] for c in _components(message["components"])
            if c.get("type") == 2 and str(c.get("custom_id", "")).startswith("quorum:vote:")]


def _refused_layout(body: dict[str, Any], *, old_flags: int) -> web.Response | None:
    """What Discord refuses of a V2 message (400 Invalid Form Body), else None."""
    flags = int(body.get("flags") or 0)
    if old_flags & COMPONENTS_V2 and "flags" in body and not flags & COMPONENTS_V2:
        return _error(400, 50035, "Invalid Form Body: the IS_COMPONENTS_V2 flag cannot be removed")
    if flags & COMPONENTS_V2 or old_flags & COMPONENTS_V2:
        if body.get("content") or body.get("embeds"):
            return _error(400, 50035, "Invalid Form Body: a V2 message cannot have content or embeds")
        if len(_components(body.get("components") or [])) > 40:
            return _error(400, 50035, "Invalid Form Body: at most 40 components")
    return None


@dataclass(frozen=True)
class Post:
    """A message POSTed to a channel (not an interaction answer)."""

    at: float  # time.perf_counter()
    channel_id: int
    message_id: int
    sender: str  # the token label of the process (see env_for); "" for TOKEN itself
    nonce: str | None
    replayed: bool  # enforce_nonce matched an earlier message: nothing new was created


@dataclass(frozen=True)
class Call:
    """A REST request, handed to `on_request` after its effect and before its answer."""

    method: str
    path: str
    body: Any
    sender: str


@dataclass(eq=False)
class Connection:
    ws: web.WebSocketResponse
    shard_id: int | None = None
    sender: str = ""
    seq: int = 0


class LoopbackDiscord:
    def __init__(self, guilds: Sequence[int] = (GUILD_ID,), *, shard_count: int = 1) -> None:
        self._last_id = 0
        self.shard_count = shard_count
        self.guilds: dict[int, int] = {g: channel_of(g) for g in guilds}  # guild -> its channel
        self.channel_guild = {c: g for g, c in self.guilds.items()}
        self.messages: dict[int, dict[str, Any]] = {}
        self.channel_messages: dict[int, list[int]] = {c: [] for c in self.channel_guild}  # ids, ascending
        self.posts: list[Post] = []
        self.syncs: list[str] = []  # the sender of every PUT .../commands
        self.acks: dict[int, tuple[float, dict[str, Any]]] = {}
        self.answers: dict[int, list[dict[str, Any]]] = {}  # interaction id -> every answer with content
        self.on_ack: Callable[[int], None] | None = None
        # Called with (interaction token, body) for every follow-up or original-response edit.
        self.on_followup: Callable[[str, dict[str, Any]], None] | None = None
        # Awaited for every REST request once it took effect, before it is answered.
        self.on_request: Callable[[Call], Awaitable[None]] | None = None
        self.edits = 0
        self.followups = 0
        self.nonce_replays = 0
        self._nonces: dict[tuple[int, str], int] = {}
        self._waiting: dict[int, asyncio.Future[str]] = {}
        self._interaction_channel: dict[int, int] = {}
        self.connections: dict[int, Connection] = {}  # shard id -> its live connection
        self._sockets: set[web.WebSocketResponse] = set()
        self._tasks: set[asyncio.Future[None]] = set()
        self._shard_ready: dict[int, asyncio.Event] = {}
        self.ready = asyncio.Event()  # some connection got its READY
        self.runner: web.AppRunner | None = None
        self.port = 0

    def next_id(self) -> int:
        # Snowflakes as Discord makes them, from the time: the bot turns times into ids
        # (searching history "after" a moment), so counting from a constant would mislead it.
        self._last_id = max(self._last_id + 1, (int(time.time() * 1000) - DISCORD_EPOCH_MS) << 22)
        return self._last_id

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_get("/ws", self.gateway)
        app.router.add_route("*", "/api/v10/{path:.*}", self.rest)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        for ws in list(self._sockets):
            await ws.close()
        if self.runner is not None:
            await self.runner.cleanup()

    @property
    def env(self) -> dict[str, str]:
        return self.env_for("")

    def env_for(self, label: str) -> dict[str, str]:
        """A bot's environment; a label gives it a token of its own (base64url characters only)."""
        return {
            "DISCORD_TOKEN": f"{TOKEN}-{label}" if label else TOKEN,
            "DISCORD_API_BASE": f"http://127.0.0.1:{self.port}/api/v10",
            "DISCORD_GATEWAY_URL": f"ws://127.0.0.1:{self.port}/ws",
        }

    @staticmethod
    def _sender(token: str) -> str:
        return token.removeprefix("Bot ").removeprefix(TOKEN).removeprefix("-")

    # ------------------------------------------------------------------ gateway

    def shard_ready(self, shard_id: int) -> asyncio.Event:
        """Set while a connection of shard `shard_id` is identified (cleared when it drops)."""
        return self._shard_ready.setdefault(shard_id, asyncio.Event())

    async def gateway(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=0)
        await ws.prepare(request)
        connection = Connection(ws)
        self._sockets.add(ws)
        try:
            await ws.send_str(json.dumps({"op": 10, "d": {"heartbeat_interval": 40000}, "s": None, "t": None}))
            async for message in ws:
                if message.type != WSMsgType.TEXT:
                    continue
                payload = json.loads(message.data)
                if payload["op"] == 1:
                    # After a network-like delay: discord.py notes a heartbeat's send time only when its
                    # thread next gets the GIL, and an instant ack can beat that on a busy machine, which
                    # it then reports as a gateway 40 s behind.
                    asyncio.get_running_loop().call_later(HEARTBEAT_ACK_DELAY, self._heartbeat_ack, ws)
                elif payload["op"] == 2:
                    await self._identify(connection, payload["d"])
                elif payload["op"] == 6:  # no sessions to resume here: identify again
                    await ws.send_str(json.dumps({"op": 9, "d": False, "s": None, "t": None}))
        finally:
            self._sockets.discard(ws)
            shard_id = connection.shard_id
            if shard_id is not None and self.connections.get(shard_id) is connection:
                del self.connections[shard_id]
                self.shard_ready(shard_id).clear()
        return ws

    def _heartbeat_ack(self, ws: web.WebSocketResponse) -> None:
        async def send() -> None:
            with contextlib.suppress(ConnectionError, RuntimeError):
                await ws.send_str(json.dumps({"op": 11, "d": None, "s": None, "t": None}))

        if not ws.closed:
            self._tasks.add(task := asyncio.ensure_future(send()))
            task.add_done_callback(self._tasks.discard)

    async def _identify(self, connection: Connection, data: dict[str, Any]) -> None:
        shard_id, count = data.get("shard") or [0, 1]
        if count != self.shard_count or not 0 <= shard_id < count:
            await connection.ws.close(code=4010, message=b"Invalid shard")
            return
        connection.shard_id, connection.sender = shard_id, self._sender(data.get("token", ""))
        self.connections[shard_id] = connection  # a newer connection of a shard replaces the older
        guilds = [g for g in self.guilds if shard_of(g, count) == shard_id]
        await self._send(connection, "READY", {
            "shard": [shard_id, count], "v": 10, "user": BOT_USER,
            "guilds": [{"id": str(g), "unavailable": True} for g in guilds],
            "session_id": f"loopback-{shard_id}-{self.next_id()}",
            "resume_gateway_url": f"ws://127.0.0.1:{self.port}/ws",
            "application": {"id": str(APP_ID), "flags": 0}, "private_channels": [],
            "relationships": [], "presences": [], "user_settings": {},
        })
        for g in guilds:
            await self._send(connection, "GUILD_CREATE", self.guild(g))
        self.shard_ready(shard_id).set()
        self.ready.set()

    async def _send(self, connection: Connection, event: str, data: dict[str, Any]) -> None:
        connection.seq += 1
        await connection.ws.send_str(json.dumps({"op": 0, "t": event, "s": connection.seq, "d": data}))

    async def dispatch(self, event: str, data: dict[str, Any], shard_id: int | None = None) -> bool:
        """Send an event on its shard's connection (by default the shard of data["guild_id"]).
        False when that shard has no live connection: like Discord, the event is not delivered."""
        if shard_id is None:
            shard_id = shard_of(int(data["guild_id"]), self.shard_count) if "guild_id" in data else 0
        connection = self.connections.get(shard_id)
        if connection is None or connection.ws.closed:
            return False
        try:
            await self._send(connection, event, data)
        except (ConnectionError, RuntimeError):  # the bot went away mid-send
            return False
        return True

    def guild(self, guild_id: int = GUILD_ID) -> dict[str, Any]:
        channel_id = self.guilds[guild_id]
        return {
            "id": str(guild_id), "name": f"Bench {guild_id}", "icon": None, "owner_id": str(CREATOR_ID),
            "unavailable": False, "member_count": 2, "large": False, "features": [],
            "verification_level": 0, "default_message_notifications": 0, "explicit_content_filter": 0,
            "mfa_level": 0, "premium_tier": 0, "nsfw_level": 0, "preferred_locale": "en-US",
            "system_channel_flags": 0, "afk_timeout": 300, "joined_at": TIMESTAMP,
            "emojis": [], "stickers": [], "voice_states": [], "presences": [], "threads": [],
            "stage_instances": [], "guild_scheduled_events": [], "soundboard_sounds": [],
            "roles": [
                {"id": str(guild_id), "name": "@everyone", "permissions": MEMBER_PERMISSIONS,
                 "position": 0, "color": 0, "hoist": False, "managed": False, "mentionable": False, "flags": 0},
                {"id": str(BOT_ROLE), "name": "Bench Bot", "permissions": ALL_PERMISSIONS, "position": 1,
                 "color": 0, "hoist": False, "managed": True, "mentionable": False, "flags": 0,
                 "tags": {"bot_id": str(APP_ID)}},
            ],
            "channels": [{"id": str(channel_id), "type": 0, "name": "polls", "position": 0,
                          "permission_overwrites": [], "nsfw": False, "topic": None, "parent_id": None,
                          "rate_limit_per_user": 0, "guild_id": str(guild_id)}],
            "members": [{**member(APP_ID, "Bench Bot", [BOT_ROLE]), "user": BOT_USER}],
        }

    # ------------------------------------------------------------------ interactions

    def interaction(self, kind: int, data: dict[str, Any], *, user_id: int,
                    message: dict[str, Any] | None = None, guild_id: int | None = None,
                    channel_id: int | None = None) -> dict[str, Any]:
        """An INTERACTION_CREATE payload: in `guild_id` (default: the message's, else the first
        guild), in `channel_id` (default: the message's, else the guild's channel)."""
        if guild_id is None:
            guild_id = int(message["guild_id"]) if message is not None else next(iter(self.guilds))
        if channel_id is None:
            channel_id = int(message["channel_id"]) if message is not None else self.guilds[guild_id]
        interaction_id = self.next_id()
        self._interaction_channel[interaction_id] = channel_id
        payload = {
            "id": str(interaction_id), "application_id": str(APP_ID), "type": kind,
            "token": f"tok-{interaction_id}", "version": 1, "guild_id": str(guild_id),
            "channel_id": str(channel_id),
            "channel": {"id": str(channel_id), "type": 0, "name": "polls", "guild_id": str(guild_id),
                        "permissions": ALL_PERMISSIONS, "position": 0, "nsfw": False, "parent_id": None},
            "member": {**member(user_id, f"voter{user_id}"), "permissions": MEMBER_PERMISSIONS},
            "data": data, "app_permissions": ALL_PERMISSIONS, "locale": "en-US", "guild_locale": "en-US",
            "entitlements": [], "authorizing_integration_owners": {"0": str(guild_id)}, "context": 0,
            "attachment_size_limit": 8 * 1024 * 1024,
        }
        if message is not None:
            payload["message"] = message
        return payload

    async def send_interaction(self, payload: dict[str, Any]) -> bool:
        """Deliver on the connection of the payload's guild's shard; False if that shard is down."""
        return await self.dispatch("INTERACTION_CREATE", payload)

    async def ask(self, payload: dict[str, Any], timeout: float = 30.0) -> str | None:
        """Send an interaction and wait for the bot's answer text: the reply, or after a defer
        the first follow-up. None: not delivered (shard down), or no answer within `timeout`."""
        interaction_id = int(payload["id"])
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._waiting[interaction_id] = future
        try:
            if not await self.send_interaction(payload):
                return None
            return await asyncio.wait_for(future, timeout)
        except TimeoutError:
            return None
        finally:
            self._waiting.pop(interaction_id, None)

    async def click(self, message: dict[str, Any], option: int, user_id: int, timeout: float = 30.0) -> str | None:
        """Click the button of answer `option` on a poll message; the bot's answer (see `ask`)."""
        data = {"custom_id": answer_custom_ids(message)[option], "component_type": 2}
        return await self.ask(self.interaction(3, data, user_id=user_id, message=message), timeout)

    async def poll_command(self, guild_id: int, subcommand: str, options: dict[str, str | int | bool], *,
                           user_id: int = CREATOR_ID, channel_id: int | None = None,
                           timeout: float = 30.0) -> str | None:
        """Run `/poll <subcommand>` in a guild; the bot's answer text (see `ask`)."""
        kinds = {bool: 5, int: 4, str: 3}
        data = {"id": str(COMMAND_ID), "name": "poll", "type": 1, "options": [
            {"name": subcommand, "type": 1, "options": [
                {"name": name, "type": kinds[type(value)], "value": value} for name, value in options.items()
            ]},
        ]}
        payload = self.interaction(2, data, user_id=user_id, guild_id=guild_id, channel_id=channel_id)
        return await self.ask(payload, timeout)

    async def create_poll(self, guild_id: int, question: str, options: Sequence[str], *,
                          duration: str | None = None, user_id: int = CREATOR_ID,
                          timeout: float = 30.0) -> dict[str, Any]:
        """`/poll create` in a guild's channel; the poll message the bot posted."""
        args: dict[str, str | int | bool] = {"question": question, "options": " | ".join(options)}
        if duration is not None:
            args["duration"] = duration
        text = await self.poll_command(guild_id, "create", args, user_id=user_id, timeout=timeout)
        found = _JUMP_URL.search(text or "")
        if found is None or int(found[1]) not in self.messages:
            raise RuntimeError(f"/poll create in guild {guild_id} was answered {text!r}")
        return self.messages[int(found[1])]

    def _answer(self, interaction_id: int, body: dict[str, Any]) -> None:
        if not body.get("content") and not body.get("embeds"):
            return
        self.answers.setdefault(interaction_id, []).append(body)
        future = self._waiting.pop(interaction_id, None)
        if future is not None and not future.done():
            future.set_result(str(body.get("content") or ""))

    # ------------------------------------------------------------------ messages

    def store_message(self, channel_id: int, body: dict[str, Any], *, message_id: int | None = None) -> dict[str, Any]:
        """Store (or replace) a message; a new one that is not ephemeral joins its channel's history."""
        new = message_id is None or message_id not in self.messages
        message_id = message_id or self.next_id()
        stored = {
            "id": str(message_id), "channel_id": str(channel_id),
            "guild_id": str(self.channel_guild.get(channel_id, GUILD_ID)),
            "author": BOT_USER, "content": body.get("content") or "", "timestamp": TIMESTAMP,
            "edited_timestamp": None, "tts": False, "mention_everyone": False, "mentions": [],
            "mention_roles": [], "attachments": [], "embeds": body.get("embeds") or [],
            "components": body.get("components") or [], "pinned": False, "type": 0,
            "flags": body.get("flags") or 0, "nonce": body.get("nonce"),
        }
        reference = body.get("message_reference")
        if reference:
            stored["type"] = 19  # a reply
            stored["message_reference"] = {k: v for k, v in reference.items() if k != "fail_if_not_exists"}
        self.messages[message_id] = stored
        if new and not stored["flags"] & EPHEMERAL and channel_id in self.channel_messages:
            bisect.insort(self.channel_messages[channel_id], message_id)
        return stored

    def channel_log(self, channel_id: int) -> list[dict[str, Any]]:
        """The messages of a channel, oldest first."""
        return [self.messages[i] for i in self.channel_messages[channel_id]]

    def replies_to(self, message_id: int) -> list[dict[str, Any]]:
        """Messages replying to `message_id` (a poll's result announcement replies to the poll)."""
        message = self.messages[message_id]
        return [m for m in self.channel_log(int(message["channel_id"]))
                if str((m.get("message_reference") or {}).get("message_id")) == str(message_id)]

    def _history(self, channel_id: int, query: Any) -> list[dict[str, Any]]:
        ids = self.channel_messages[channel_id]
        limit = max(1, min(100, int(query.get("limit", 50))))
        if "after" in query:
            start = bisect.bisect_right(ids, int(query["after"]))
            chosen = ids[start:start + limit]
        else:
            end = bisect.bisect_left(ids, int(query["before"])) if "before" in query else len(ids)
            chosen = ids[max(0, end - limit):end]
        return [self.messages[i] for i in reversed(chosen)]  # newest first, as Discord answers

    def _post_message(self, channel_id: int, body: dict[str, Any], sender: str) -> dict[str, Any]:
        nonce = body.get("nonce")
        key = (channel_id, str(nonce))
        if nonce is not None and body.get("enforce_nonce") and key in self._nonces:
            self.nonce_replays += 1
            stored = self.messages[self._nonces[key]]
            self.posts.append(Post(time.perf_counter(), channel_id, int(stored["id"]), sender, str(nonce), True))
            return stored
        stored = self.store_message(channel_id, body)
        if nonce is not None:
            self._nonces[key] = int(stored["id"])
        self.posts.append(Post(time.perf_counter(), channel_id, int(stored["id"]), sender,
                               None if nonce is None else str(nonce), False))
        return stored

    # ------------------------------------------------------------------ REST

    async def rest(self, request: web.Request) -> web.Response:
        path = "/" + request.match_info["path"]
        body: Any = None
        if request.can_read_body:
            if request.content_type.startswith("multipart/"):
                reader = await request.multipart()
                async for part in reader:
                    if part.name == "payload_json":
                        body = json.loads(await part.text())
                    else:
                        await part.read()
            else:
                body = await request.json()
        sender = self._sender(request.headers.get("Authorization", ""))
        response = self._route(request.method, path, body, sender, request.query)
        if self.on_request is not None:
            await self.on_request(Call(request.method, path, body, sender))
        return response

    def _route(self, method: str, path: str, body: Any, sender: str, query: Any) -> web.Response:
        parts = path.strip("/").split("/")
        if method == "GET" and path == "/users/@me":
            return _json(BOT_USER)
        if method == "GET" and path == "/oauth2/applications/@me":
            return _json({"id": str(APP_ID), "name": "Bench Bot", "icon": None, "description": "",
                          "bot_public": True, "bot_require_code_grant": False,
                          "verify_key": "0" * 64, "flags": 0, "owner": user(CREATOR_ID, "owner")})
        if method == "GET" and path.startswith("/gateway"):
            return _json({"url": f"ws://127.0.0.1:{self.port}/ws", "shards": self.shard_count,
                          "session_start_limit": {"total": 1000, "remaining": 1000,
                                                  "reset_after": 0, "max_concurrency": 1}})
        if method == "PUT" and parts[0] == "applications" and parts[-1] == "commands":
            self.syncs.append(sender)
            return _json([{**c, "id": str(COMMAND_ID + i), "application_id": str(APP_ID),
                           "version": "1"} for i, c in enumerate(body)])
        if method == "POST" and parts[0] == "interactions" and parts[-1] == "callback":
            interaction_id = int(parts[1])
            self.acks[interaction_id] = (time.perf_counter(), body)
            if self.on_ack is not None:
                self.on_ack(interaction_id)
            if body.get("type") in (4, 7):  # a reply or a message update, not a defer
                self._answer(interaction_id, body.get("data") or {})
            return _json({"interaction": {"id": str(interaction_id), "type": body.get("type")}})
        if parts[0] == "channels" and len(parts) >= 3 and parts[2] == "messages":
            channel_id = int(parts[1])
            if channel_id not in self.channel_messages:
                return _error(404, 10003, "Unknown Channel")
            if len(parts) == 3:
                if method == "POST":
                    return _refused_layout(body, old_flags=0) or _json(self._post_message(channel_id, body, sender))
                return _json(self._history(channel_id, query))
            message_id = int(parts[3])
            old = self.messages.get(message_id)
            if len(parts) == 4 and method == "PATCH":
                if old is None or old["channel_id"] != str(channel_id):
                    return _error(404, 10008, "Unknown Message")
                refused = _refused_layout(body, old_flags=old["flags"])
                if refused is not None:
                    return refused
                self.edits += 1
                merged = {**old, **{k: v for k, v in body.items() if k in ("content", "embeds", "components")}}
                # An edit may set the V2 flag (converting the message), never unset it.
                merged["flags"] = old["flags"] | (int(body.get("flags") or 0) & COMPONENTS_V2)
                return _json(self.store_message(channel_id, merged, message_id=message_id))
        if parts[0] == "webhooks" and method in ("POST", "PATCH"):
            self.followups += 1
            channel_id = CHANNEL_ID
            if len(parts) >= 3:
                if self.on_followup is not None:
                    self.on_followup(parts[2], body or {})
                if parts[2].startswith("tok-"):
                    interaction_id = int(parts[2][4:])
                    channel_id = self._interaction_channel.get(interaction_id, CHANNEL_ID)
                    self._answer(interaction_id, body or {})
            return _json(self.store_message(channel_id, body or {}))
        return _error(404, 0, f"no route {method} {path}")
