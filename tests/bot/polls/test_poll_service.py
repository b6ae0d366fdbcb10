"""The poll service refuses what names no poll, before it reaches SQLite (whose integers are
signed 64-bit: a larger one raises OverflowError, which members would see as a crash)."""

from __future__ import annotations

import pytest

from bot.polls.models import PollDraft, PollNotFound
from bot.polls.repository import PollRepository
from bot.polls.service import PollLookupError, PollService

GUILD = 1001
TOO_BIG = 2**63


@pytest.fixture
async def service(open_db):
    return PollService(PollRepository(await open_db()), clock=lambda: 1_700_000_000.0)


@pytest.fixture
async def poll(service):
    draft = PollDraft(question="Lunch?", options=("Pizza", "Sushi"))
    created = await service.create(draft, guild_id=GUILD, channel_id=2002, creator_id=3003)
    await service.repo.attach_message(created.id, 900_000_000_000_000_000)
    return await service.repo.get(created.id)


@pytest.mark.parametrize(
    "text",
    [
        str(TOO_BIG),
        "9" * 21,
        f"https://discord.com/channels/{GUILD}/1/{'9' * 26}",
        f"https://discord.com/channels/{'9' * 26}/{'9' * 26}/{'9' * 26}",
        f"#{TOO_BIG}",
        "#" + "9" * 40,
        "#" + "9" * 5000,  # past Python's int() conversion limit (4,300 digits): must not raise
        f"https://discord.com/channels/{'9' * 5000}/{'9' * 5000}/{'9' * 5000}",
    ],
)
async def test_too_large_references_are_an_unknown_poll(service, poll, text):
    with pytest.raises(PollLookupError, match="There is no poll"):
        await service.find(GUILD, text)


async def test_the_largest_storable_references_are_looked_up_as_usual(service, poll):
    for text in (str(TOO_BIG - 1), f"#{TOO_BIG - 1}"):
        with pytest.raises(PollLookupError, match="There is no poll"):
            await service.find(GUILD, text)
    assert (await service.find(GUILD, "900000000000000000")).id == poll.id


async def test_unknown_poll_error_quotes_the_text_literally(service):
    with pytest.raises(PollLookupError) as caught:
        await service.find(GUILD, "<https://discord.com/channels/1/2/3>")
    assert "“\\<https\\://discord.com/channels/1/2/3>”" in str(caught.value)


@pytest.mark.parametrize(("poll_id", "option"), [(TOO_BIG, 0), (10**30, 0), (1, 2), (1, 25), (1, TOO_BIG), (1, 10**30)])
async def test_forged_vote_buttons_are_an_unknown_poll(service, poll, poll_id, option):
    with pytest.raises(PollNotFound):
        await service.vote(poll_id, option, user_id=5, role_ids=())
    assert (await service.repo.tally(poll)).counts == (0, 0)


async def test_a_real_vote_still_counts(service, poll):
    await service.vote(poll.id, 1, user_id=5, role_ids=())
    assert (await service.repo.tally(poll)).counts == (0, 1)
