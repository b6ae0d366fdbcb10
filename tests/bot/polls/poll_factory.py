"""Build domain objects for tests without a database."""

from __future__ import annotations

from typing import Any

from bot.polls.models import Poll

CREATED_AT = 1_700_000_000.0  # 2023-11-14T22:13:20+00:00


def make_poll(**overrides: Any) -> Poll:
    """`make_poll(question=..., options=..., closed_at=...)`: a stored-looking `Poll`."""
    values: dict[str, Any] = {
        "id": 1,
        "guild_id": 111,
        "number": 1,
        "channel_id": 222,
        "message_id": 333,
        "creator_id": 444,
        "question": "Lunch?",
        "options": ("Pizza", "Sushi"),
        "multiple": False,
        "anonymous": False,
        "hide_results": False,
        "role_id": None,
        "max_choices": None,
        "created_at": CREATED_AT,
        "closes_at": None,
        "closed_at": None,
        "closed_by": None,
        "announce_started_at": None,
        "announcement_id": None,
        "announced_at": None,
    }
    values.update(overrides)
    values["options"] = tuple(values["options"])
    return Poll(**values)
