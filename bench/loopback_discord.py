"""Just enough of Discord, on 127.0.0.1, for a real bot process to log in, sync, post a poll and
answer button clicks: REST (aiohttp) and a gateway WebSocket (plain JSON text frames).

Used by `bench/votes_loopback.py`. The bot under test is pointed here with Quorum's own
settings, `DISCORD_API_BASE` and `DISCORD_GATEWAY_URL`.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import Callable
from typing import Any

from aiohttp import WSMsgType, web

APP_ID = 1100000000000000001
GUILD_ID = 1100000000000000002
CHANNEL_ID = 1100000000000000003
EVERYONE_ROLE = GUILD_ID
BOT_ROLE = 1100000000000000004
COMMAND_ID = 1100000000000000005
CREATOR_ID = 1100000000000000006
TOKEN = "MTEwMDAwMDAwMDAwMDAwMDAwMQ.GbEnCh.bench-token-for-a-loopback-server-only"
ALL_PERMISSIONS = str((1 << 50) - 1)
TIMESTAMP = "2026-01-01T00:00:00.000000+00:00"


def user(user_id: int, name: str, *, bot: bool = False) -> dict[str, Any]:
    return {"id": str(user_id), "username": name, "discriminator": "0", "global_name": None,
            "avatar": None, "bot": bot, "public_flags": 0, "flags": 0}


def member(user_id: int, name: str, roles: list[int] | None = None) -> dict[str, Any]:
    return {"user": user(user_id, name), "roles": [str(r) for r in roles or []], "joined_at": TIMESTAMP,
            "deaf": False, "mute": False, "flags": 0, "pending": False, "nick": None, "avatar": None,
            "premium_since": None, "communication_disabled_until": None}


BOT_USER = user(APP_ID, "Bench Bot", bot=True)


def _json(body: Any, status: int = 200) -> web.Response:
    # discord.py parses a body only when Content-Type is exactly "application/json".
    return web.Response(body=json.dumps(body).encode(), status=status, headers={"Content-Type": "application/json"})


class LoopbackDiscord:
    def __init__(self) -> None:
        self._ids = itertools.count(1200000000000000000)
        self.messages: dict[int, dict[str, Any]] = {}
        self.acks: dict[int, tuple[float, dict[str, Any]]] = {}
        self.on_ack: Callable[[int], None] | None = None
        # Called with (interaction token, body) for every follow-up or original-response edit.
        self.on_followup: Callable[[str, dict[str, Any]], None] | None = None
        self.edits = 0
        self.followups = 0
        self._ws: web.WebSocketResponse | None = None
        self._seq = 0
        self.ready = asyncio.Event()
        self.runner: web.AppRunner | None = None
        self.port = 0

    def next_id(self) -> int:
        return next(self._ids)

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
        if self._ws is not None:
            await self._ws.close()
        if self.runner is not None:
            await self.runner.cleanup()

    @property
    def env(self) -> dict[str, str]:
        return {
            "DISCORD_TOKEN": TOKEN,
            "DISCORD_API_BASE": f"http://127.0.0.1:{self.port}/api/v10",
            "DISCORD_GATEWAY_URL": f"ws://127.0.0.1:{self.port}/ws",
        }

    # ------------------------------------------------------------------ gateway

    async def gateway(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=0)
        await ws.prepare(request)
        self._ws = ws
        await ws.send_str(json.dumps({"op": 10, "d": {"heartbeat_interval": 40000}, "s": None, "t": None}))
        async for message in ws:
            if message.type != WSMsgType.TEXT:
                continue
            payload = json.loads(message.data)
            if payload["op"] == 1:
                await ws.send_str(json.dumps({"op": 11, "d": None, "s": None, "t": None}))
            elif payload["op"] == 2:
                await self.dispatch("READY", {
                    "shard": payload["d"].get("shard", [0, 1]),
                    "v": 10, "user": BOT_USER, "guilds": [{"id": str(GUILD_ID), "unavailable": True}],
                    "session_id": "bench", "resume_gateway_url": f"ws://127.0.0.1:{self.port}/ws",
                    "application": {"id": str(APP_ID), "flags": 0}, "private_channels": [],
                    "relationships": [], "presences": [], "user_settings": {},
                })
                await self.dispatch("GUILD_CREATE", self.guild())
                self.ready.set()
        return ws

    async def dispatch(self, event: str, data: dict[str, Any]) -> None:
        assert self._ws is not None
        self._seq += 1
        await self._ws.send_str(json.dumps({"op": 0, "t": event, "s": self._seq, "d": data}))

    def guild(self) -> dict[str, Any]:
        return {
            "id": str(GUILD_ID), "name": "Bench", "icon": None, "owner_id": str(CREATOR_ID),
            "unavailable": False, "member_count": 2, "large": False, "features": [],
            "verification_level": 0, "default_message_notifications": 0, "explicit_content_filter": 0,
            "mfa_level": 0, "premium_tier": 0, "nsfw_level": 0, "preferred_locale": "en-US",
            "system_channel_flags": 0, "afk_timeout": 300, "joined_at": TIMESTAMP,
            "emojis": [], "stickers": [], "voice_states": [], "presences": [], "threads": [],
            "stage_instances": [], "guild_scheduled_events": [], "soundboard_sounds": [],
            "roles": [
                {"id": str(EVERYONE_ROLE), "name": "@everyone", "permissions": "1071698660929",
                 "position": 0, "color": 0, "hoist": False, "managed": False, "mentionable": False, "flags": 0},
                {"id": str(BOT_ROLE), "name": "Bench Bot", "permissions": ALL_PERMISSIONS, "position": 1,
                 "color": 0, "hoist": False, "managed": True, "mentionable": False, "flags": 0,
                 "tags": {"bot_id": str(APP_ID)}},
            ],
            "channels": [{"id": str(CHANNEL_ID), "type": 0, "name": "polls", "position": 0,
                          "permission_overwrites": [], "nsfw": False, "topic": None, "parent_id": None,
                          "rate_limit_per_user": 0, "guild_id": str(GUILD_ID)}],
            "members": [{**member(APP_ID, "Bench Bot", [BOT_ROLE]), "user": BOT_USER}],
        }

    # ------------------------------------------------------------------ interactions

    def interaction(self, kind: int, data: dict[str, Any], *, user_id: int,
                    message: dict[str, Any] | None = None) -> dict[str, Any]:
        interaction_id = self.next_id()
        payload = {
            "id": str(interaction_id), "application_id": str(APP_ID), "type": kind,
            "token": f"tok-{interaction_id}", "version": 1, "guild_id": str(GUILD_ID),
            "channel_id": str(CHANNEL_ID),
            "channel": {"id": str(CHANNEL_ID), "type": 0, "name": "polls", "guild_id": str(GUILD_ID),
                        "permissions": ALL_PERMISSIONS, "position": 0, "nsfw": False, "parent_id": None},
            "member": {**member(user_id, f"voter{user_id}"), "permissions": "1071698660929"},
            "data": data, "app_permissions": ALL_PERMISSIONS, "locale": "en-US", "guild_locale": "en-US",
            "entitlements": [], "authorizing_integration_owners": {"0": str(GUILD_ID)}, "context": 0,
            "attachment_size_limit": 8 * 1024 * 1024,
        }
        if message is not None:
            payload["message"] = message
        return payload

    async def send_interaction(self, payload: dict[str, Any]) -> None:
        await self.dispatch("INTERACTION_CREATE", payload)

    # ------------------------------------------------------------------ REST

    def store_message(self, channel_id: int, body: dict[str, Any], *, message_id: int | None = None) -> dict[str, Any]:
        message_id = message_id or self.next_id()
        stored = {
            "id": str(message_id), "channel_id": str(channel_id), "guild_id": str(GUILD_ID),
            "author": BOT_USER, "content": body.get("content") or "", "timestamp": TIMESTAMP,
            "edited_timestamp": None, "tts": False, "mention_everyone": False, "mentions": [],
            "mention_roles": [], "attachments": [], "embeds": body.get("embeds") or [],
            "components": body.get("components") or [], "pinned": False, "type": 0,
            "flags": body.get("flags") or 0, "nonce": body.get("nonce"),
        }
        self.messages[message_id] = stored
        return stored

    async def rest(self, request: web.Request) -> web.Response:
        path = "/" + request.match_info["path"]
        parts = path.strip("/").split("/")
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
        method = request.method
        if method == "GET" and path == "/users/@me":
            return _json(BOT_USER)
        if method == "GET" and path == "/oauth2/applications/@me":
            return _json({"id": str(APP_ID), "name": "Bench Bot", "icon": None, "description": "",
                                      "bot_public": True, "bot_require_code_grant": False,
                                      "verify_key": "0" * 64, "flags": 0, "owner": user(CREATOR_ID, "owner")})
        if method == "GET" and path.startswith("/gateway"):
            return _json({"url": f"ws://127.0.0.1:{self.port}/ws", "shards": 1,
                                      "session_start_limit": {"total": 1000, "remaining": 1000,
                                                              "reset_after": 0, "max_concurrency": 1}})
        if method == "PUT" and parts[0] == "applications" and parts[-1] == "commands":
            return _json([{**c, "id": str(COMMAND_ID + i), "application_id": str(APP_ID),
                                       "version": "1"} for i, c in enumerate(body)])
        if method == "POST" and parts[0] == "interactions" and parts[-1] == "callback":
            interaction_id = int(parts[1])
            self.acks[interaction_id] = (time.perf_counter(), body)
            if self.on_ack is not None:
                self.on_ack(interaction_id)
            return _json({"interaction": {"id": str(interaction_id), "type": body.get("type")}})
        if parts[0] == "channels" and len(parts) == 3 and parts[2] == "messages":
            if method == "POST":
                return _json(self.store_message(int(parts[1]), body))
            return _json([])  # history: empty
        if parts[0] == "channels" and len(parts) == 4 and parts[2] == "messages" and method == "PATCH":
            self.edits += 1
            old = self.messages.get(int(parts[3]), {})
            merged = {**old, **{k: v for k, v in body.items() if k in ("content", "embeds", "components")}}
            return _json(self.store_message(int(parts[1]), merged, message_id=int(parts[3])))
        if parts[0] == "webhooks" and method in ("POST", "PATCH"):
            self.followups += 1
            if self.on_followup is not None and len(parts) >= 3:
                self.on_followup(parts[2], body or {})
            return _json(self.store_message(CHANNEL_ID, body or {}))
        return _json({"message": f"no route {method} {path}", "code": 0}, status=404)
