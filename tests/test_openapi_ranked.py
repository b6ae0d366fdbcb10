"""Every REST request of a ranked poll's life, checked against Discord's OpenAPI description.

The same checks as `test_openapi_bodies.py` (imported from it, not copied: one checker, one
reading of the spec): each request matched to its operation, its body validated against the
operation's schema (strictly: no undeclared field), plus the limits the schema cannot express
(custom_id ≤ 100, ≤ 6,000 characters of embeds, `allowed_mentions` pinging nobody, uploads
described). The lifecycle: two ranked polls (5 short answers; 25 answers of 200 characters
with a 300-character question), ballots opened by clicking, answers picked, Undo last, Start
over, Submit, Remove my ballot, a refusal, `/poll results`, `/poll export`, closing by hand and
by the deadline (the announcements with their rounds and chart). Skips, saying why, without
`../shared/discord-api-spec/openapi.json`.
"""

from __future__ import annotations

import functools
import json
from typing import Any

import pytest
import test_openapi_bodies as bodies
from test_openapi_bodies import BIG_ANSWERS, SPEC_PATH, OpenAPI, check_limits, check_requests, transport  # noqa: F401

from cogs._ballot import DIGITS

# One more harmless key than `test_openapi_bodies` knows of, seen only here: discord.py's
# `InteractionResponse.edit_message` (each ballot step, an UPDATE_MESSAGE callback) writes
# `tts: false` into the callback's data, as its message edits do; that schema does not
# declare it, and Discord ignores it.
EXTRA_FIELDS = {"IncomingWebhookUpdateForInteractionCallbackRequestPartial": {"tts": {"type": ["boolean", "null"]}}}


@functools.cache
def _load_spec() -> OpenAPI:
    known = bodies.KNOWN_EXTRA_FIELDS
    bodies.KNOWN_EXTRA_FIELDS = {**known, **EXTRA_FIELDS}  # read by OpenAPI() while it builds
    try:
        return OpenAPI(json.loads(SPEC_PATH.read_text("utf-8")))
    finally:
        bodies.KNOWN_EXTRA_FIELDS = known


@pytest.fixture
def openapi() -> OpenAPI:
    if not SPEC_PATH.is_file():
        pytest.skip(
            f"Discord's OpenAPI description is not at {SPEC_PATH} (it lives outside the repository, "
            "in ../shared/discord-api-spec/; a plain clone has no ../shared)"
        )
    return _load_spec()


def _walk(rows: list[dict[str, Any]]):
    for component in rows:
        yield component
        yield from _walk(component.get("components") or ())


def _answer_ids(message: Any) -> list[str]:
    """The poll message's answer buttons (V2 layout or rows), without Results and Close."""
    rows = [c.to_dict() for c in message.components]
    return [
        c["custom_id"] for c in _walk(rows) if c.get("type") == 2 and c.get("custom_id", "").startswith("quorum:vote:")
    ]


def _menu(ballot: Any) -> dict[str, Any] | None:
    return next((c for c in _walk(ballot.components) if c.get("type") == 3), None)


class RankedLifecycle:
    def __init__(self, env: Any) -> None:
        self.env = env
        self.unmet: list[str] = []

    def expect(self, condition: object, what: str) -> None:
        if not condition:
            self.unmet.append(what)

    async def ballot(self, member: Any, message: Any, ranking: tuple[int, ...], *, submit: bool = True) -> Any:
        clicked = await member.click(message, custom_id=_answer_ids(message)[ranking[0]])
        ballot = clicked.response
        self.expect(ballot is not None and ballot.ephemeral, f"{member.name}'s click opened a private ballot")
        for answer in ranking[1:]:
            menu = _menu(ballot)
            self.expect(menu is not None, f"{member.name}'s ballot offers a menu for {answer}")
            await member.select(ballot, [DIGITS[answer]], custom_id=menu["custom_id"])
        if submit:
            await member.click(ballot, label="Submit")
            self.expect("Your ballot is counted" in ballot.content, f"{member.name}'s ballot was counted")
        return ballot

    async def run(self) -> None:
        env, expect = self.env, self.expect
        guild = env.create_guild()
        general = guild.create_text_channel("general")
        voters = guild.create_role("Voters")
        alice, bob, carol, dave = (
            guild.add_member(env.create_user(n), roles=[voters]) for n in ("alice", "bob", "carol", "dave")
        )
        eve = guild.add_member(env.create_user("eve"))

        colours = "Red | Green | Blue | Black | White"
        await alice.slash(general, "poll create", question="Which colour?", options=colours, ranked=True, role=voters)
        small = general.last_message
        await alice.slash(general, "poll create", question="Q" * 300, options=" | ".join(BIG_ANSWERS), ranked=True,
                          hide_results=True, quorum=2, duration="10m")
        big = general.last_message
        expect(len(_answer_ids(big)) == 25, "the 25-answer ranked poll has 25 answer buttons")

        ballot = await self.ballot(alice, small, (2, 0, 4), submit=False)
        await alice.click(ballot, label="Undo last")
        await alice.click(ballot, label="Start over")
        await alice.select(ballot, [DIGITS[1]], custom_id=_menu(ballot)["custom_id"])
        await alice.click(ballot, label="Submit")
        await self.ballot(bob, small, (0, 1))
        await self.ballot(carol, small, (1, 0, 2, 3, 4))
        await self.ballot(dave, small, (3,))
        removing = await self.ballot(dave, small, (3,), submit=False)
        await dave.click(removing, label="Remove my ballot")
        refused = await eve.click(small, custom_id=_answer_ids(small)[0])  # not a Voter
        expect("Only members with" in (refused.response.content or ""), "a member without the role is refused")

        ranking = tuple(range(24, -1, -1))  # every answer ranked: the longest custom_ids there are
        await self.ballot(bob, big, ranking)
        await self.ballot(carol, big, (3, 7))
        await env.advance_time(6)

        await bob.slash(general, "poll results", poll="1")
        await alice.slash(general, "poll results", poll="1")
        await carol.slash(general, "poll results", poll="2")
        exported = await alice.slash(general, "poll export", poll="1")
        files = [a.filename for a in exported.response.attachments] if exported.response else []
        expect(files == ["poll-1-ballots.csv"], f"/poll export uploads the ballots (got {files})")

        await alice.slash(general, "poll close", poll="1")
        await env.advance_time(10 * 60 + 5)  # the big poll closes by its deadline
        announcements = [m for m in general.history() if m.embeds and "ranked choice" in (m.embeds[0].title or "")]
        expect(len(announcements) == 2, f"both ranked polls are announced (got {len(announcements)})")
        unexpected = [e for e in env.errors if "Only members" not in str(e)]
        expect(not unexpected, f"the bot raised unexpected errors: {unexpected!r}")


@pytest.mark.simcord(settle_timeout=4.0)
async def test_every_request_of_a_ranked_poll_fits_discords_openapi_description(openapi, transport, env):  # noqa: F811
    lifecycle = RankedLifecycle(env)
    await lifecycle.run()
    requests = list(env.http_requests)
    report = check_requests(openapi, requests, transport)
    check_limits(report)
    callbacks = {c.body["type"] for c in report.by_operation("create_interaction_response")}
    lifecycle.expect({4, 7} <= callbacks, f"ballots are sent (4) and edited in place (7): {callbacks}")
    if report.problems or lifecycle.unmet:
        lines = [f"{len(report.problems)} problem(s) in {len(requests)} requests:", *report.problems]
        if lifecycle.unmet:
            lines += ["", "and in what the members saw:", *(f"  - {u}" for u in lifecycle.unmet)]
        pytest.fail("\n".join(lines), pytrace=False)
    assert all(c.operation is not None for c in report.checked)
    assert all(c.validated for c in report.checked if c.body is not None)
