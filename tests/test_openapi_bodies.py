"""Every REST request Quorum makes in a poll's whole life, checked against Discord's own OpenAPI
description of its HTTP API (`../shared/discord-api-spec/openapi.json`, OpenAPI 3.1).

SimCord records each request the bot makes (method, path, query, JSON body; for a multipart
upload, its `payload_json` part). Each one is matched to its OpenAPI operation by path template,
and its body is validated (JSON Schema 2020-12, `$ref`s resolved with `referencing`) against
that operation's `requestBody` schema for the content type it was sent as: `multipart/form-data`
when files were uploaded (the spec models that body as the JSON fields plus `files[n]` parts),
else `application/json`. Path and query parameters are checked against the operation's
`parameters` too. A request that matches no operation is a failure, never skipped.

Two deliberate readings of the spec, both narrow:

* `SnowflakeType` is a decimal *string* in the spec, but Discord's API accepts a snowflake as a
  JSON integer as well, and discord.py sends some that way (`attachments[].id`,
  `message_reference.message_id`). Integers in 0 … 2**64-1 are accepted there; nothing else.
* Request objects in the spec mostly don't forbid extra keys, and Discord ignores keys it does
  not know: a misspelt field is silently dropped. So a second pass rejects any key the matched
  schema does not declare ("undeclared field"), except the few in `KNOWN_EXTRA_FIELDS`.

On top of the schema, what it cannot express: button label ≤ 80, custom_id ≤ 100, ≤ 5 action
rows of ≤ 5 buttons, ≤ 6,000 characters across a message's embeds, every upload described in
`attachments`, and every message Quorum sends carrying `allowed_mentions` with `parse: []` (it
must never ping anyone, reply author included). A request SimCord's model of Discord refused
(an HTTP error) fails the test as well.

When `../shared` is missing (a plain clone of the repository), the tests skip.
"""
from __future__ import annotations

import copy
import functools
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import discord
import pytest
from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import ValidationError
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012
from simcord import HttpLogEntry
from simcord.backend.errors import BackendError
from simcord.http import router as simcord_router

from bot.polls.service import NotAllowed
from bot.polls.validation import PollInputError

REPO_ROOT = Path(__file__).resolve().parents[1]
SPEC_PATH = REPO_ROOT.parent / "shared" / "discord-api-spec" / "openapi.json"
SPEC_URI = "urn:discord-api-spec:openapi.json"

SEED_Q = (
    "How has the recent turmoil within the OpenAI offices changed your plans to use GPT in a "
    "business process or product in 2024?"
)
SEED_ANSWERS = [
    "Increased uncertainty means we are more likely to evaluate alternative AI chatbots and LLMs.",
    "No change in plans, though we will keep an eye on the situation.",
    "With Sam Altman back in charge, we are more likely to go all-in with GPT and LLMs.",
    "What recent turmoil?",
]
# 25 distinct answers of exactly 200 characters: the most a poll can hold.
BIG_ANSWERS = [(f"Answer {n:02d}: " + "lorem ipsum " * 20)[:199] + "." for n in range(1, 26)]

LABEL_LIMIT = 80
CUSTOM_ID_LIMIT = 100
MAX_ROWS = 5
MAX_BUTTONS_PER_ROW = 5

# Operations whose body is a whole message, and callback types whose `data` is one.
MESSAGE_OPERATIONS = {
    "create_message",
    "update_message",
    "execute_webhook",
    "update_webhook_message",
    "update_original_webhook_message",
}
MESSAGE_CALLBACK_TYPES = {4, 7}  # CHANNEL_MESSAGE_WITH_SOURCE, UPDATE_MESSAGE
# Discord's limit on the characters of all a message's embeds together (not expressible in the schema).
EMBEDS_TOTAL_LIMIT = 6000
# Components V2 (message flag IS_COMPONENTS_V2): up to 40 components, nested ones counted, and
# 4,000 characters across the text displays; no content or embeds beside them.
COMPONENTS_V2_FLAG = 1 << 15
V2_COMPONENT_LIMIT = 40
V2_TEXT_LIMIT = 4000
ACTION_ROW, BUTTON, TEXT_DISPLAY = 1, 2, 10

HTTP_METHODS = {"get", "put", "post", "patch", "delete", "head", "options"}

# Keys discord.py sends that the spec's request schemas do not declare, each known to be harmless;
# the undeclared-field check accepts these and nothing else.
KNOWN_EXTRA_FIELDS: dict[str, dict[str, Any]] = {
    # discord.py's Embed.to_dict() writes the embed's flags (0 for an embed the bot builds);
    # they only mean something on embeds Discord sends, and Discord ignores them on requests.
    "RichEmbed": {"flags": {"type": "integer"}},
    # discord.py's handle_message_parameters() writes `tts: false` into edits too; ignored.
    "MessageEditRequestPartial": {"tts": {"type": ["boolean", "null"]}},
    # A documented command field (age-restricted commands) this spec revision leaves out of
    # the bulk-overwrite item; discord.py always sends it.
    "ApplicationCommandUpdateRequest": {"nsfw": {"type": ["boolean", "null"]}},
}


# ====================================================================== the spec


FORMATS = FormatChecker(formats=())


@FORMATS.checks("int32")
def _int32(value: object) -> bool:
    return not isinstance(value, int) or -(2**31) <= value < 2**31


@FORMATS.checks("int64")
def _int64(value: object) -> bool:
    return not isinstance(value, int) or -(2**63) <= value < 2**63


@FORMATS.checks("snowflake")
def _snowflake(value: object) -> bool:
    return not isinstance(value, str) or (value.isdigit() and int(value) < 2**64)


@FORMATS.checks("uri")
def _uri(value: object) -> bool:
    return not isinstance(value, str) or bool(urlsplit(value).scheme)


@FORMATS.checks("date-time")
def _date_time(value: object) -> bool:
    if not isinstance(value, str):
        return True
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


_SCHEMA_MAPS = ("properties", "patternProperties", "$defs", "dependentSchemas")
_SCHEMA_LISTS = ("allOf", "anyOf", "oneOf", "prefixItems")
_SCHEMA_ONE = ("items", "additionalProperties", "not", "if", "then", "else", "contains")


def _strict(schema: Any) -> Any:
    """The schema with every object that declares properties, and says nothing of others, closed."""
    if not isinstance(schema, dict):
        return schema
    out = dict(schema)
    for key in _SCHEMA_MAPS:
        if isinstance(out.get(key), dict):
            out[key] = {name: _strict(sub) for name, sub in out[key].items()}
    for key in _SCHEMA_LISTS:
        if isinstance(out.get(key), list):
            out[key] = [_strict(sub) for sub in out[key]]
    for key in _SCHEMA_ONE:
        if key in out:
            out[key] = _strict(out[key])
    if "properties" in out and "additionalProperties" not in out:
        out["additionalProperties"] = False
    return out


def _pointer(*segments: str) -> str:
    escaped = (s.replace("~", "~0").replace("/", "~1") for s in segments)
    return quote("/" + "/".join(escaped), safe="/~")


@dataclass(frozen=True)
class Operation:
    method: str
    template: str
    segments: tuple[str, ...]
    spec: dict[str, Any]
    # (in, name) -> (the parameter, a JSON pointer to its schema)
    parameters: dict[tuple[str, str], tuple[dict[str, Any], str]]

    @property
    def operation_id(self) -> str:
        return self.spec.get("operationId", f"{self.method} {self.template}")

    def body_schema_pointer(self, content_type: str) -> str:
        return _pointer("paths", self.template, self.method.lower(), "requestBody", "content", content_type, "schema")


class OpenAPI:
    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        lenient = copy.deepcopy(document)
        schemas = lenient["components"]["schemas"]
        schemas["SnowflakeType"] = {
            "anyOf": [schemas["SnowflakeType"], {"type": "integer", "minimum": 0, "maximum": 2**64 - 1}]
        }
        strict = copy.deepcopy(lenient)
        for name, extra in KNOWN_EXTRA_FIELDS.items():
            strict["components"]["schemas"][name]["properties"].update(extra)
        strict["components"]["schemas"] = {
            name: _strict(schema) for name, schema in strict["components"]["schemas"].items()
        }
        self._validators: dict[tuple[str, str], Draft202012Validator] = {}
        self._registries = {
            name: Registry().with_resource(SPEC_URI, Resource.from_contents(doc, default_specification=DRAFT202012))
            for name, doc in (("lenient", lenient), ("strict", strict))
        }
        self.operations: list[Operation] = []
        for template, item in document["paths"].items():
            for method, spec in item.items():
                if method not in HTTP_METHODS:
                    continue
                parameters = {}
                # Operation-level parameters override path-level ones of the same name.
                for where, declared in (((template,), item), ((template, method), spec)):
                    for number, param in enumerate(declared.get("parameters", ())):
                        pointer = _pointer("paths", *where, "parameters", str(number), "schema")
                        parameters[(param["in"], param["name"])] = (param, pointer)
                self.operations.append(
                    Operation(
                        method=method.upper(),
                        template=template,
                        segments=tuple(template.strip("/").split("/")),
                        spec=spec,
                        parameters=parameters,
                    )
                )

    def validator(self, pointer: str, mode: str = "lenient") -> Draft202012Validator:
        """Validates against the schema at `pointer` in the spec (`mode`: "lenient" or "strict")."""
        key = (pointer, mode)
        if key not in self._validators:
            self._validators[key] = Draft202012Validator(
                {"$ref": SPEC_URI + "#" + pointer}, registry=self._registries[mode], format_checker=FORMATS
            )
        return self._validators[key]

    def match(self, method: str, path: str) -> tuple[Operation, dict[str, str]] | None:
        """The operation for a concrete path; literal segments beat `{parameters}`."""
        segments = path.strip("/").split("/")
        best: tuple[int, Operation, dict[str, str]] | None = None
        for op in self.operations:
            if op.method != method or len(op.segments) != len(segments):
                continue
            args: dict[str, str] = {}
            literals = 0
            for template, actual in zip(op.segments, segments, strict=True):
                if template.startswith("{") and template.endswith("}"):
                    if not actual:
                        break
                    args[template[1:-1]] = actual
                elif template == actual:
                    literals += 1
                else:
                    break
            else:
                if best is None or literals > best[0]:
                    best = (literals, op, args)
        return None if best is None else (best[1], best[2])


@functools.cache
def _load_spec(path: Path) -> OpenAPI:
    return OpenAPI(json.loads(path.read_text("utf-8")))


@pytest.fixture
def openapi() -> OpenAPI:
    if not SPEC_PATH.is_file():
        pytest.skip(
            f"Discord's OpenAPI description is not at {SPEC_PATH} (it lives outside the repository, "
            "in ../shared/discord-api-spec/; a plain clone has no ../shared)"
        )
    return _load_spec(SPEC_PATH)


# ====================================================================== recording the transport


@dataclass
class Sent:
    """What SimCord's request log leaves out: the files uploaded, and whether Discord refused it."""

    files: list[str]
    refused: str | None = None


@pytest.fixture
def transport(monkeypatch) -> dict[int, Sent]:
    """Index in `env.http_requests` -> `Sent`.

    The log keeps the JSON part of a multipart request but not whether files came with it, and
    that decides which content type's schema applies. Every REST call (the bot's HTTP client and
    the interaction webhook adapter alike) goes through `simcord.http.router.dispatch`, which
    appends to the log first and then runs SimCord's model of Discord, which raises on a
    request Discord would refuse.
    """
    seen: dict[int, Sent] = {}
    real_dispatch = simcord_router.dispatch

    def dispatch(backend: Any, method: str, path: str, **kwargs: Any) -> Any:
        sent = seen[len(backend.http_requests)] = Sent([f.filename for f in kwargs.get("files") or ()])
        try:
            return real_dispatch(backend, method, path, **kwargs)
        except BackendError as error:
            sent.refused = str(error)
            raise

    monkeypatch.setattr(simcord_router, "dispatch", dispatch)
    return seen


# ====================================================================== checking requests


@dataclass
class Checked:
    index: int
    method: str
    path: str
    operation: Operation | None = None
    content_type: str | None = None
    body: Any = None
    files: list[str] = field(default_factory=list)
    validated: bool = False  # its body went through the schema of its operation


@dataclass
class Report:
    checked: list[Checked] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def add(self, request: Checked, what: str) -> None:
        op = f" [{request.operation.operation_id}]" if request.operation else ""
        ct = f" ({request.content_type})" if request.content_type else ""
        self.problems.append(f"#{request.index} {request.method} {request.path}{op}{ct}: {what}")

    def by_operation(self, operation_id: str) -> list[Checked]:
        return [c for c in self.checked if c.operation and c.operation.operation_id == operation_id]


def _where(error: ValidationError) -> str:
    return "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)


def _excerpt(value: Any, limit: int = 300) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else text[:limit] + "…"


def _ruled_out(errors: list[ValidationError]) -> bool:
    """A union branch that fails on the discriminator (`type`) or on the JSON type is not the one meant."""
    return any(
        (e.validator in ("enum", "const") and list(e.relative_path) == ["type"])
        or (e.validator == "type" and not e.relative_path)
        for e in errors
    )


def _causes(error: ValidationError) -> list[ValidationError]:
    """The errors that matter in a failed oneOf/anyOf: those of the one branch the body meant."""
    if error.validator not in ("oneOf", "anyOf") or not error.context:
        return [error]
    branches: dict[int, list[ValidationError]] = {}
    for sub in error.context:
        branches.setdefault(sub.relative_schema_path[0], []).append(sub)
    meant = [errors for errors in branches.values() if not _ruled_out(errors)]
    if len(meant) != 1:
        return [error]
    return [cause for sub in meant[0] for cause in _causes(sub)]


def _message_of(error: ValidationError) -> str:
    """jsonschema's message, with the offending value cut short (it can be a whole message)."""
    return error.message.replace(repr(error.instance), _excerpt(error.instance, 120))


def _describe(error: ValidationError) -> str:
    return "; ".join(f"{_where(cause)}: {_message_of(cause)}" for cause in _causes(error))


def _query_value(raw: Any, schema: dict[str, Any]) -> Any:
    """A query value as Discord reads it off the wire (everything arrives as text)."""
    text = str(raw).lower() if isinstance(raw, bool) else str(raw)
    kind = schema.get("type")
    if kind == "boolean":
        return {"true": True, "1": True, "false": False, "0": False}.get(text.lower(), text)
    if kind in ("integer", "number") and re.fullmatch(r"-?\d+", text):
        return int(text)
    return text


def check_requests(openapi: OpenAPI, requests: list[Any], transport: dict[int, Sent]) -> Report:
    report = Report()
    for index, entry in enumerate(requests):
        sent = transport[index]
        request = Checked(index, entry.method, entry.path, body=entry.json, files=sent.files)
        report.checked.append(request)
        found = openapi.match(entry.method, entry.path)
        if found is not None:
            request.operation = found[0]
        if sent.refused:
            report.add(request, f"refused by SimCord's model of Discord: {sent.refused}; body: {_excerpt(entry.json)}")
        if found is None:
            report.add(request, "matches no operation in Discord's OpenAPI description")
            continue
        op, args = found
        for name, value in args.items():
            if ("path", name) not in op.parameters:
                report.add(request, f"path parameter {name} is not declared")
                continue
            _param, pointer = op.parameters[("path", name)]
            for error in openapi.validator(pointer).iter_errors(value):
                report.add(request, f"path parameter {name}={value!r}: {error.message}")

        for name, value in (entry.params or {}).items():
            if ("query", name) not in op.parameters:
                report.add(request, f"query parameter {name}={value!r} is not declared for this operation")
                continue
            param, pointer = op.parameters[("query", name)]
            coerced = _query_value(value, param.get("schema", {}))
            for error in openapi.validator(pointer).iter_errors(coerced):
                report.add(request, f"query parameter {name}={value!r}: {error.message}")

        declared = op.spec.get("requestBody")
        if entry.json is None:
            if declared and declared.get("required"):
                report.add(request, "sends no body, but the operation requires one")
            continue
        if declared is None:
            report.add(request, f"sends a body the operation does not take: {_excerpt(entry.json)}")
            continue
        request.content_type = "multipart/form-data" if request.files else "application/json"
        if request.content_type not in declared["content"]:
            report.add(request, f"the operation takes no {request.content_type} body")
            continue
        pointer = op.body_schema_pointer(request.content_type)
        errors = list(openapi.validator(pointer).iter_errors(entry.json))
        for error in errors:
            report.add(request, "invalid body: " + _describe(error))
        if not errors:
            for error in openapi.validator(pointer, "strict").iter_errors(entry.json):
                report.add(request, "undeclared field (Discord would ignore it silently): " + _describe(error))
        request.validated = True
    return report


# ====================================================================== message bodies


def message_bodies(report: Report) -> Iterator[tuple[Checked, dict[str, Any]]]:
    """Every body that is a message Quorum posts or edits (interaction callbacks included)."""
    for request in report.checked:
        if request.operation is None or not isinstance(request.body, dict):
            continue
        op_id = request.operation.operation_id
        if op_id in MESSAGE_OPERATIONS:
            yield request, request.body
        elif op_id == "create_interaction_response" and request.body.get("type") in MESSAGE_CALLBACK_TYPES:
            yield request, request.body.get("data") or {}


def _embed_parts(embed: dict[str, Any]) -> dict[str, int]:
    """The texts Discord counts towards the 6,000-character total, by part."""
    fields = embed.get("fields") or []
    return {
        "title": len(embed.get("title") or ""),
        "description": len(embed.get("description") or ""),
        "field names": sum(len(f.get("name") or "") for f in fields),
        "field values": sum(len(f.get("value") or "") for f in fields),
        "footer": len((embed.get("footer") or {}).get("text") or ""),
        "author": len((embed.get("author") or {}).get("name") or ""),
    }


def _embed_size(embed: dict[str, Any]) -> int:
    return sum(_embed_parts(embed).values())


def _embed_breakdown(embed: dict[str, Any]) -> str:
    parts = _embed_parts(embed)
    return f"{embed.get('title')!r} = " + " + ".join(f"{n} {k}" for k, n in parts.items() if n)


def check_limits(report: Report) -> None:
    for request, body in message_bodies(report):
        mentions = body.get("allowed_mentions")
        if not isinstance(mentions, dict) or mentions.get("parse") != []:
            report.add(request, f"allowed_mentions must have parse == [], got {_excerpt(mentions)}")
        elif mentions.get("users") or mentions.get("roles") or mentions.get("replied_user"):
            report.add(request, f"allowed_mentions lets someone be pinged: {_excerpt(mentions)}")

        components = body.get("components") or []
        v2 = bool((body.get("flags") or 0) & COMPONENTS_V2_FLAG)
        if v2:
            # A V2 layout: components in all (nested ones too) and its text displays' text.
            every = list(_walk(components))
            if len(every) > V2_COMPONENT_LIMIT:
                report.add(request, f"{len(every)} components; a V2 message holds {V2_COMPONENT_LIMIT}")
            text = sum(len(c.get("content") or "") for c in every if c.get("type") == TEXT_DISPLAY)
            if text > V2_TEXT_LIMIT:
                report.add(request, f"its text displays hold {text} characters (> {V2_TEXT_LIMIT})")
            if body.get("content") or body.get("embeds"):
                report.add(request, "a V2 message carries content or embeds")
            rows = [c for c in every if c.get("type") == ACTION_ROW]
        else:
            rows = components
            if len(rows) > MAX_ROWS:
                report.add(request, f"{len(rows)} action rows; Discord allows {MAX_ROWS}")
            if any(c.get("type") != ACTION_ROW for c in rows):
                report.add(request, f"a V2 layout without the V2 flag: {_excerpt(rows)}")
        custom_ids: list[str] = []
        for r, row in enumerate(rows):
            if row.get("type") != ACTION_ROW:
                continue
            buttons = row.get("components") or []
            if len(buttons) > MAX_BUTTONS_PER_ROW:
                report.add(request, f"action row {r} holds {len(buttons)} buttons; at most {MAX_BUTTONS_PER_ROW}")
            for b, button in enumerate(buttons):
                where = f"action row {r}, button {b}"
                label = button.get("label") or ""
                custom_id = button.get("custom_id") or ""
                if len(label) > LABEL_LIMIT:
                    report.add(request, f"{where}: label is {len(label)} characters (> {LABEL_LIMIT}): {label!r}")
                if not custom_id or len(custom_id) > CUSTOM_ID_LIMIT:
                    report.add(request, f"{where}: custom_id {custom_id!r} is empty or over {CUSTOM_ID_LIMIT}")
                custom_ids.append(custom_id)
        if len(set(custom_ids)) != len(custom_ids):
            report.add(request, f"duplicate custom_ids in one message: {custom_ids}")

        # Upload `files[n]` is described by the attachment whose id is n (others keep earlier files).
        described = {str(a.get("id")): a.get("filename") for a in body.get("attachments") or []}
        for n, filename in enumerate(request.files):
            if described.get(str(n)) != filename:
                report.add(
                    request,
                    f"upload files[{n}] {filename!r} is not described in attachments: "
                    f"{_excerpt(body.get('attachments'))}",
                )
        embeds = body.get("embeds") or []
        total = sum(_embed_size(embed) for embed in embeds)
        if total > EMBEDS_TOTAL_LIMIT:
            sizes = ", ".join(_embed_breakdown(embed) for embed in embeds)
            report.add(request, f"its embeds hold {total} characters (> {EMBEDS_TOTAL_LIMIT}): {sizes}")
        for e, embed in enumerate(embeds):
            image = (embed.get("image") or {}).get("url", "")
            if image.startswith("attachment://") and image.removeprefix("attachment://") not in request.files:
                report.add(request, f"embeds[{e}].image points at {image}, which is not uploaded with it")


# ====================================================================== the lifecycle


def _replies(result: Any) -> list[Any]:
    """What the member saw: the response (a deferred one is filled in by the first followup), then followups."""
    return ([result.response] if result.response is not None else []) + list(result.followups)


def _said(result: Any) -> str:
    return "\n".join(reply.content for reply in _replies(result))


def _walk(components: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Every component of a request body, nested ones (in containers, rows, sections) included."""
    for component in components:
        yield component
        yield from _walk(component.get("components") or [])
        if isinstance(component.get("accessory"), dict):
            yield from _walk([component["accessory"]])


def _all_buttons(message: Any) -> list[Any]:
    out: list[Any] = []

    def visit(components: list[Any]) -> None:
        for component in components:
            if isinstance(component, discord.Button):
                out.append(component)
            visit(getattr(component, "children", []))

    visit(message.components)
    return out


def _buttons(message: Any) -> list[Any]:
    """The answer buttons of a poll message (the layout's Results and Close left out)."""
    return [b for b in _all_buttons(message) if (b.custom_id or "").startswith("quorum:vote:")]


def _control(message: Any, name: str) -> Any:
    return next(b for b in _all_buttons(message) if (b.custom_id or "").startswith(f"quorum:{name}:"))


class Lifecycle:
    """Drives a poll's whole life. What the bot visibly got wrong is noted, not raised: the test
    goes on to the request checks, which usually say why."""

    def __init__(self, env: Any) -> None:
        self.env = env
        self.unmet: list[str] = []

    def expect(self, condition: object, what: str) -> None:
        if not condition:
            self.unmet.append(what)

    async def click(self, member: Any, message: Any, option: int) -> Any:
        result = await member.click(message, custom_id=_buttons(message)[option].custom_id)
        self.expect(
            result.response is not None and result.response.ephemeral,
            f"{member.name}'s click on answer {option + 1} got a private reply",
        )
        return result

    async def run(self) -> None:
        env, expect = self.env, self.expect
        guild = env.create_guild()
        general = guild.create_text_channel("general")
        polls = guild.create_text_channel("polls")
        alice, bob, carol, dave = (guild.add_member(env.create_user(n)) for n in ("alice", "bob", "carol", "dave"))

        # Poll #1: the seed question, single choice, no deadline.
        created = await alice.slash(general, "poll create", question=SEED_Q, options=" | ".join(SEED_ANSWERS))
        assert "Poll #1 is up" in _said(created), created
        first = general.last_message
        assert len(_buttons(first)) == 4

        # Poll #2, in another channel: 25 answers of 200 characters, multiple choice with a cap,
        # counts hidden while open, 10 minutes.
        created = await alice.slash(
            general,
            "poll create",
            question="Which of these should the team look at first?",
            options=" | ".join(BIG_ANSWERS),
            multiple=True,
            max_choices=3,
            hide_results=True,
            duration="10m",
            channel=polls,
        )
        assert "Poll #2 is up" in _said(created), created
        second = polls.last_message
        assert second.flags.components_v2 and len(_buttons(second)) == 25
        assert [b.label for b in _all_buttons(second)[25:]] == ["Results", "Close"]

        # Votes; bob moves his vote, carol takes hers back.
        for member, option in ((alice, 0), (bob, 1), (carol, 0), (dave, 3), (bob, 2), (carol, 0)):
            await self.click(member, first, option)
        for option in (0, 1, 2):
            await self.click(bob, second, option)
        refused = await self.click(bob, second, 3)  # a fourth answer: over max_choices
        expect("at most 3 answers" in _said(refused), "a fourth answer is refused (max_choices=3)")
        await self.click(bob, second, 1)
        await self.click(carol, second, 24)
        await self.click(dave, second, 12)

        await env.advance_time(6)  # the debounced edits of both poll messages

        shown = await alice.slash(general, "poll results", poll="1")  # the creator: counts and voters
        expect(
            shown.response is not None and len(shown.response.embeds) == 2, "/poll results shows voters to the creator"
        )
        hidden = await dave.slash(general, "poll results", poll="2")  # a member: counts hidden
        expect("stay hidden" in _said(hidden), "/poll results hides the counts of a hide_results poll")
        listed = await carol.slash(general, "poll list")
        expect(
            listed.response is not None and listed.response.embeds[0].title == "Open polls", "/poll list answers"
        )
        exported = await alice.slash(general, "poll export", poll="1")
        files = [a.filename for reply in _replies(exported) for a in reply.attachments]
        expect(files == ["poll-1-votes.csv"], f"/poll export uploads the CSV (got {files})")
        choices = await alice.autocomplete(general, "poll close", "poll", "")
        expect({c["value"] for c in choices} == {"1", "2"}, f"autocomplete offers both polls (got {choices})")

        # The poll message's own controls: Results for anyone, Close for its managers only.
        counts = await carol.click(first, custom_id=_control(first, "results").custom_id)
        expect(
            counts.response is not None and counts.response.ephemeral and len(counts.response.embeds) == 1,
            "the Results button shows a member the counts, privately",
        )
        hidden = await dave.click(second, custom_id=_control(second, "results").custom_id)
        expect("stay hidden" in _said(hidden), "the Results button hides the counts of a hide_results poll")
        refused = await bob.click(first, custom_id=_control(first, "close").custom_id)
        expect("Only the poll's creator" in _said(refused), "the Close button refuses bob on alice's poll")

        refused = await bob.slash(general, "poll close", poll="1")  # not his poll
        expect("Only the poll's creator" in _said(refused), "bob may not close alice's poll")

        closed = await alice.slash(general, "poll close", poll="1")
        expect("Poll #1 is closed" in _said(closed), f"/poll close confirms (got {_said(closed)!r})")
        self.expect_announced(general, first, by_deadline=False)

        await env.advance_time(10 * 60 + 5)  # poll #2 passes its deadline
        self.expect_announced(polls, second, by_deadline=True)

        # Bad input: one answer; a duration nobody can parse. Each gets a private explanation.
        for options, extra in (("Only one answer", {}), ("Yes | No", {"duration": "soon-ish"})):
            bad = await carol.slash(general, "poll create", question="Broken?", options=options, **extra)
            expect(
                bad.response is not None and bad.response.ephemeral and bad.response.content,
                f"bad input {options!r} {extra} gets a private explanation",
            )

        # The tree reports those errors to the member; SimCord records them as raised as well.
        # Reading env.errors accepts exactly these; anything else the bot raised fails here.
        unexpected = [e for e in env.errors if not isinstance(e.__cause__, (PollInputError, NotAllowed))]
        expect(not unexpected, f"the bot raised unexpected errors: {unexpected!r}")

    def expect_announced(self, channel: Any, poll_message: Any, *, by_deadline: bool) -> None:
        how = "by its deadline" if by_deadline else "by its creator"
        history = channel.history()
        final = next(m for m in history if m.id == poll_message.id)
        self.expect(not _all_buttons(final), f"the poll closed {how} has its buttons removed")
        heading = next((c for c in final.components[0].children if isinstance(c, discord.TextDisplay)), None)
        self.expect(
            heading is not None and "(closed)" in heading.content.split("\n")[0],
            f"the poll closed {how} shows it is closed",
        )
        replies = [m for m in history if m.reference is not None and m.reference.message_id == poll_message.id]
        self.expect(len(replies) == 1, f"the poll closed {how} gets one announcement reply (got {len(replies)})")
        if replies:
            files = [a.filename for a in replies[0].attachments]
            self.expect(files == ["results.png"], f"the announcement carries the PNG chart (got {files})")


# ====================================================================== the test


# The poll-message refresher sleeps up to 5 s between edits. SimCord waits out in real time any
# sleep that ends within its settle timeout (5 s by default), so back-to-back clicks would cost
# ~5 s each; below 5 s those sleeps are parked until advance_time() instead. 4 s still leaves the
# chart thread (matplotlib, imported on first use) ample real time.
@pytest.mark.simcord(settle_timeout=4.0)
async def test_every_request_body_fits_discords_openapi_description(openapi, transport, env):
    lifecycle = Lifecycle(env)
    await lifecycle.run()
    requests = list(env.http_requests)
    assert len(transport) == len(requests), "the transport recorder missed requests: SimCord's transport changed"

    report = check_requests(openapi, requests, transport)
    check_limits(report)

    # The lifecycle really produced what this test is about.
    seen = {c.operation.operation_id for c in report.checked if c.operation}
    for op_id in ("create_message", "update_message", "create_interaction_response", "execute_webhook"):
        lifecycle.expect(op_id in seen, f"a {op_id} request was made (seen: {sorted(seen)})")
    uploaded = sorted({c.operation.operation_id for c in report.checked if c.files and c.operation})
    lifecycle.expect(uploaded == ["create_message", "execute_webhook"], f"chart and CSV uploads (got {uploaded})")
    callback_types = {c.body["type"] for c in report.by_operation("create_interaction_response")}
    lifecycle.expect({4, 5, 8} <= callback_types, f"message, deferred and autocomplete callbacks ({callback_types})")

    if report.problems or lifecycle.unmet:
        lines = [f"{len(report.problems)} problem(s) in {len(requests)} requests:", *report.problems]
        if lifecycle.unmet:
            lines += ["", "and in what the members saw:", *(f"  - {u}" for u in lifecycle.unmet)]
        pytest.fail("\n".join(lines), pytrace=False)
    # Nothing skipped: every request matched an operation, every body went through its schema.
    assert all(c.operation is not None for c in report.checked)
    assert all(c.validated for c in report.checked if c.body is not None)


# ====================================================================== the checker itself


def _message(**fields: Any) -> dict[str, Any]:
    return {"content": "hi", "allowed_mentions": {"parse": []}, **fields}


def _row(*labels: str, custom_id: str = "quorum:vote:1:{}") -> dict[str, Any]:
    buttons = [
        {"type": 2, "style": 2, "label": label, "custom_id": custom_id.format(n)} for n, label in enumerate(labels)
    ]
    return {"type": 1, "components": buttons}


def _text(content: str) -> dict[str, Any]:
    return {"type": TEXT_DISPLAY, "content": content}


def _v2(*children: dict[str, Any]) -> dict[str, Any]:
    """A Components V2 message: one container holding `children`."""
    container = {"type": 17, "accent_color": 0x5865F2, "spoiler": False, "components": list(children)}
    return {"flags": COMPONENTS_V2_FLAG, "components": [container], "allowed_mentions": {"parse": []}}


CHANNEL_MESSAGES = "/channels/1456074443980800006/messages"
CALLBACK = "/interactions/1456074443980800012/aW50ZXJhY3Rpb24/callback"
FOLLOWUP = "/webhooks/1456074443980800000/aW50ZXJhY3Rpb24"


def _case(name: str, body: Any, *expected: str, method: str = "POST", path: str = CHANNEL_MESSAGES,
          params: dict[str, Any] | None = None, files: tuple[str, ...] = ()) -> Any:
    return pytest.param(method, path, params or {}, body, list(files), expected, id=name)


BIG_FIELD = {"name": "n" * 256, "value": "v" * 1024}
REFUSED = [
    _case("label-81", _message(components=[_row("x" * 81)]),
          '$.components[0].components[0].label: "xxx', "is too long", "label is 81 characters (> 80)"),
    _case("custom_id-102", _message(components=[_row("Yes", custom_id="c" * 101 + "{}")]),
          '$.components[0].components[0].custom_id: "ccc', "is empty or over 100"),
    _case("six-rows", _message(components=[_row(f"{n}", custom_id=f"{n}:{{}}") for n in range(6)]),
          "6 action rows; Discord allows 5"),
    _case("six-buttons", _message(components=[_row(*"abcdef")]),
          "$.components[0].components: ", "is too long", "holds 6 buttons; at most 5"),
    _case("v2-41-components", _v2(*[_text("x")] * 39, _row("a")),
          "42 components; a V2 message holds 40"),
    _case("v2-text-over-4000", _v2(_text("x" * 2000), _text("y" * 2001)),
          "its text displays hold 4001 characters (> 4000)"),
    _case("v2-with-content", {**_v2(_text("x")), "content": "hi"}, "a V2 message carries content or embeds"),
    _case("v2-without-flag", {**_v2(_text("x")), "flags": 0}, "a V2 layout without the V2 flag"),
    _case("v2-six-buttons", _v2(_text("x"), _row(*"abcdef")), "action row 0 holds 6 buttons; at most 5"),
    _case("no-allowed-mentions", {"content": "@everyone"}, "allowed_mentions must have parse == [], got null"),
    _case("reply-ping", _message(allowed_mentions={"parse": [], "replied_user": True}), "lets someone be pinged"),
    _case("mention-users", _message(allowed_mentions={"parse": ["users"]}), "must have parse == []"),
    _case("misspelt-field", _message(allowed_mention={"parse": []}),
          "undeclared field", "'allowed_mention' was unexpected"),
    _case("nonce-26", _message(nonce="n" * 26), '$.nonce: "nnn', "is too long"),
    _case("negative-snowflake", _message(message_reference={"message_id": -1}),
          "$.message_reference.message_id: -1 is less than the minimum of 0"),
    _case("field-name-257", _message(embeds=[{"fields": [{"name": "n" * 257, "value": "v"}]}]),
          '$.embeds[0].fields[0].name: "nnn', "is too long"),
    _case("embeds-over-6000", _message(embeds=[{"title": "t", "fields": [BIG_FIELD] * 5}]),
          "its embeds hold 6401 characters (> 6000)"),
    _case("image-not-uploaded", _message(embeds=[{"image": {"url": "attachment://chart.png"}}]),
          "attachment://chart.png, which is not uploaded with it"),
    _case("callback-content-2001", {"type": 4, "data": _message(content="x" * 2001)},
          '$.data.content: "xxx', "is too long", path=CALLBACK, params={"with_response": "1"}),
    _case("callback-type-3", {"type": 3, "data": _message()}, "$: ", "is not valid under any of the given schemas",
          path=CALLBACK),
    _case("bad-query", {"type": 5, "data": {"flags": 64}}, "query parameter with_response='maybe'",
          path=CALLBACK, params={"with_response": "maybe"}),
    _case("undeclared-query", {"type": 5}, "query parameter wiat=1 is not declared", path=CALLBACK,
          params={"wiat": 1}),
    _case("attachment-mismatch", _message(attachments=[{"id": 0, "filename": "a.csv"}]),
          "upload files[0] 'b.csv' is not described in attachments",
          path=FOLLOWUP, params={"wait": 1}, files=("b.csv",)),
    _case("unknown-route", _message(), "matches no operation", path=CHANNEL_MESSAGES + "/frobnicate"),
    _case("bad-path-snowflake", _message(), "path parameter channel_id='x'", method="PATCH",
          path="/channels/x/messages/1"),
    _case("body-on-get", _message(), "sends a body the operation does not take", method="GET",
          path=CHANNEL_MESSAGES + "/1"),
]


@pytest.mark.parametrize(("method", "path", "params", "body", "files", "expected"), REFUSED)
def test_the_checker_catches_what_discord_would_refuse(openapi, method, path, params, body, files, expected):
    """The lifecycle test is only worth something if the checks bite: each of these must be caught."""
    report = check_requests(openapi, [HttpLogEntry(method, path, params, body, None)], {0: Sent(files)})
    check_limits(report)
    text = "\n".join(report.problems)
    missing = [e for e in expected if e not in text]
    assert not missing, f"expected {missing} among:\n{text}"


def test_the_checker_accepts_what_quorum_sends(openapi):
    """And it does not cry wolf: a poll message like Quorum's, with a reply and a chart, passes."""
    body = _message(
        embeds=[{"title": "📊 Poll #1", "color": 0x5865F2, "type": "rich", "flags": 0,
                 "fields": [{"name": "1. Yes", "value": "0 votes", "inline": False}],
                 "image": {"url": "attachment://results.png"}}],
        components=[_row(*["x" * 80] * 5, custom_id=f"{'c' * 98}{row}{{}}") for row in range(5)],
        attachments=[{"id": 0, "filename": "results.png"}],
        message_reference={"message_id": 1456074443980800014, "channel_id": 1456074443980800006,
                           "fail_if_not_exists": False},
        nonce="quorum-result-1",
    )
    body["allowed_mentions"] = {"parse": [], "replied_user": False}
    requests = [HttpLogEntry("POST", CHANNEL_MESSAGES, {}, body, None)]
    report = check_requests(openapi, requests, {0: Sent(["results.png"])})
    check_limits(report)
    assert report.problems == []
    assert report.checked[0].validated and report.checked[0].content_type == "multipart/form-data"


def test_the_checker_accepts_a_poll_layout_like_quorums(openapi):
    """A V2 poll message at its largest: 25 answers in 5 rows, Results and Close, 38 components."""
    rows = [_row(*["x" * 80] * 5, custom_id=f"quorum:vote:{row}:{{}}") for row in range(5)]
    controls = _row("Results", "Close", custom_id="quorum:control:{}")
    body = {
        **_v2(_text("## 📊 Poll #1\n" + "q" * 1000), _text("a" * 2500), _text("-# Poll #1 · 0 voters"),
              {"type": 14, "divider": True, "spacing": 1}, *rows, controls),
        "content": None, "embeds": [], "tts": False,
    }
    report = check_requests(openapi, [HttpLogEntry("PATCH", CHANNEL_MESSAGES + "/1", {}, body, None)], {0: Sent([])})
    check_limits(report)
    assert report.problems == []
    assert report.checked[0].validated
