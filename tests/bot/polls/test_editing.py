"""The rules of /poll edit, without a database: parsing, every refusal, the changes planned."""

from __future__ import annotations

import poll_factory
import pytest

from bot.polls.editing import (
    Change,
    ChangeKind,
    EditRefused,
    EditRequest,
    EditResult,
    PollState,
    edit_summary,
    parse_edit,
    plan_edit,
)
from bot.polls.validation import PollInputError

NOW = poll_factory.CREATED_AT + 600


def _poll(**overrides):
    overrides.setdefault("options", ("Pizza", "Sushi", "Tacos"))
    overrides.setdefault("closes_at", NOW + 3600)
    return poll_factory.make_poll(**overrides)


def _plan(poll=None, *, voted=False, removal_used=False, **request):
    state = PollState(poll or _poll(), voted=voted, removal_used=removal_used)
    return plan_edit(state, EditRequest(**request), now=NOW)


def _parse(**options):
    values = {"question": None, "add_options": None, "remove_option": None, "duration": None}
    values.update(options)
    return parse_edit(**values)


# ------------------------------------------------------------------------ parsing


def test_nothing_given_is_refused():
    with pytest.raises(EditRefused, match="Nothing to change"):
        _parse()


def test_every_option_is_parsed():
    request = _parse(question="  Dinner   then? ", add_options="Ramen | | Curry ", remove_option=2, duration="1h30m")
    assert request == EditRequest(question="Dinner then?", add=("Ramen", "Curry"), remove=2, duration=5400)


@pytest.mark.parametrize(
    ("options", "expect"),
    [
        ({"duration": "soon"}, "not a duration"),
        ({"duration": "10s"}, "at least 1 minute"),
        ({"duration": "33d"}, "at most 32 days"),
        ({"add_options": " | | "}, "holds no answer"),
        ({"add_options": "x" * 201}, "keep each answer to 200"),
        ({"add_options": "Ramen | \u200b"}, "no visible text"),
        ({"add_options": "Ramen | ＲＡＭＥＮ"}, "are the same"),
        ({"add_options": " | ".join(f"a{i}" for i in range(26))}, "at most 25"),
        ({"question": "\u200b "}, "no visible text"),
        ({"remove_option": 0}, "answer's number"),
    ],
)
def test_bad_input_is_refused_with_what_to_fix(options, expect):
    with pytest.raises(PollInputError, match=expect):
        _parse(**options)


# ------------------------------------------------------------------------ the rules


def test_each_change_is_planned_in_log_order():
    changes = _plan(question="Dinner?", add=("Ramen",), remove=2, duration=7200)
    assert changes == (
        Change(ChangeKind.QUESTION, old="Lunch?", new="Dinner?"),
        Change(ChangeKind.REMOVE, number=2, old="Sushi"),
        Change(ChangeKind.ADD, number=4, new="Ramen"),
        Change(ChangeKind.DEADLINE, old=NOW + 3600, new=NOW + 7200),
    )


def test_a_poll_without_deadline_gets_one():
    (change,) = _plan(_poll(closes_at=None), duration=600)
    assert change == Change(ChangeKind.DEADLINE, old=None, new=NOW + 600)


@pytest.mark.parametrize(
    "poll",
    [_poll(closed_at=NOW - 1), _poll(closes_at=NOW - 1), _poll(closes_at=NOW)],
    ids=["closed", "past-deadline", "at-deadline"],
)
def test_a_closed_poll_cannot_be_edited(poll):
    with pytest.raises(EditRefused, match="closed"):
        _plan(poll, duration=600)


def test_an_unposted_poll_cannot_be_edited():
    with pytest.raises(EditRefused, match="not posted"):
        _plan(_poll(message_id=None, starts_at=NOW + 60), duration=600)


def test_the_question_only_before_the_first_vote():
    with pytest.raises(EditRefused, match="before the first vote"):
        _plan(voted=True, question="Dinner?")
    assert _plan(voted=True, duration=600)  # other changes still may be made


def test_the_same_question_is_no_change():
    with pytest.raises(EditRefused, match="already the question"):
        _plan(question="Lunch?")


def test_an_answer_with_votes_or_ranked_is_not_removed():
    with pytest.raises(EditRefused, match="it has votes"):
        _plan(removal_used=True, remove=1)
    with pytest.raises(EditRefused, match="ballots rank it"):
        _plan(_poll(ranked=True), removal_used=True, remove=1)


def test_removing_needs_an_answer_that_is_there():
    with pytest.raises(EditRefused, match="no answer 4"):
        _plan(remove=4)
    with pytest.raises(EditRefused, match="already removed"):
        _plan(_poll(removed=frozenset({1})), remove=2)


def test_never_below_two_answers_unless_one_is_added():
    poll = _poll(options=("Pizza", "Sushi", "Tacos"), removed=frozenset({2}))
    with pytest.raises(EditRefused, match="at least 2 answers"):
        _plan(poll, remove=1)
    assert [c.kind for c in _plan(poll, remove=1, add=("Ramen",))] == [ChangeKind.REMOVE, ChangeKind.ADD]


def test_removed_answers_count_toward_twenty_five():
    poll = _poll(options=tuple(f"a{i}" for i in range(24)), removed=frozenset({0, 1, 2}))
    assert _plan(poll, add=("new",))[0] == Change(ChangeKind.ADD, number=25, new="new")
    expect = r"24 answers, 3 of them removed.*removed answers included.*1 more answer, not 2"
    with pytest.raises(EditRefused, match=expect):
        _plan(poll, add=("x", "y"))
    full = _poll(options=tuple(f"a{i}" for i in range(25)))
    with pytest.raises(EditRefused, match="no more answers"):
        _plan(full, add=("x",))


def test_duplicates_compared_with_the_shown_answers():
    with pytest.raises(EditRefused, match="already answer 2"):
        _plan(add=("ｓｕｓｈｉ",))
    # A removed answer's text may come back, as a new answer with a new number.
    assert _plan(_poll(removed=frozenset({1})), add=("Sushi",))[0].number == 4
    assert _plan(remove=2, add=("sushi",))[1] == Change(ChangeKind.ADD, number=4, new="sushi")


def test_log_entries_round_trip_through_json():
    for change in _plan(question="Dinner? «ü»", add=("Ramen",), remove=2, duration=60):
        assert Change.from_json(change.to_json()) == change


# ------------------------------------------------------------------------ the summary


def test_summary_says_what_changed_escaped():
    poll = _poll(number=3, remind_before=600)
    changes = _plan(poll, question="**Dinner**?", add=("_Ramen_",), remove=2, duration=7200)
    text = edit_summary(EditResult(poll, changes, reminder_at=NOW + 6600))
    assert text.startswith("Poll #3 is edited; votes already cast are unchanged.")
    assert "Question: **\\*\\*Dinner\\*\\*?**" in text
    assert "Added answer 4: \\_Ramen\\_" in text
    assert "Removed answer 2: Sushi" in text
    assert f"Now closes <t:{int(NOW + 7200)}:R>" in text and f"(was <t:{int(NOW + 3600)}:R>)" in text
    assert f"The reminder comes <t:{int(NOW + 6600)}:R>." in text


def test_summary_of_a_reminder_already_sent():
    poll = _poll(remind_before=600)
    text = edit_summary(EditResult(poll, _plan(poll, duration=7200), reminder_at=None))
    assert "already sent" in text


def test_summary_of_many_long_answers_fits_a_message():
    poll = _poll(options=("a", "b"))
    added = tuple(f"{i:02d} " + "*" * 197 for i in range(23))
    text = edit_summary(EditResult(poll, _plan(poll, add=added)))
    assert len(text) <= 2000
    assert "Added answer 25." in text
