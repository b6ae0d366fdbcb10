"""Settings.from_env: defaults, `.env` under the environment, and every problem reported."""

from __future__ import annotations

import logging
import tracemalloc
from pathlib import Path

import pytest

from bot.config import SETTING_NAMES, TOKEN_HELP, Settings, SettingsError, redact_url

TOKEN = "MTAxNTk5NzQ2NjQ0MzEyMDc4OA.GaBcDe.abcdefghijklmnopqrstuvwxyz0123456789AB"
ALL_SETTINGS = SETTING_NAMES


def settings(env_file: Path | None = None, **values: str) -> Settings:
    return Settings.from_env({"DISCORD_TOKEN": TOKEN, **values}, env_file=env_file)


def problems(env_file: Path | None = None, **values: str) -> list[str]:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env(values, env_file=env_file)
    return caught.value.problems


def only_problem(**values: str) -> str:
    found = problems(**{"DISCORD_TOKEN": TOKEN, **values})
    assert len(found) == 1, found
    return found[0]


@pytest.fixture
def clean_environ(monkeypatch, tmp_path):
    """The process environment without Quorum's settings, in an empty working directory."""
    for name in ALL_SETTINGS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


# ---------------------------------------------------------------- defaults


def test_defaults():
    result = settings()

    assert result.token == TOKEN
    assert result.database_path == Path("data/quorum.sqlite3")
    assert result.log_level == "INFO"
    assert result.log_level_number == logging.INFO
    assert result.dev_guild_id is None
    assert result.api_base is None
    assert result.gateway_url is None


def test_blank_values_mean_the_default():
    result = settings(DATABASE_PATH="", LOG_LEVEL="  ", DEV_GUILD_ID="", DISCORD_API_BASE=" ", DISCORD_GATEWAY_URL="")

    assert result == settings()


def test_values_are_trimmed_and_the_level_is_case_blind():
    result = settings(DISCORD_TOKEN=f"  {TOKEN}\n", LOG_LEVEL=" debug ", DATABASE_PATH=" /srv/quorum/db.sqlite3 ")

    assert result.token == TOKEN
    assert result.log_level == "DEBUG"
    assert result.log_level_number == logging.DEBUG
    assert result.database_path == Path("/srv/quorum/db.sqlite3")


@pytest.mark.parametrize("level", ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"])
def test_every_log_level(level):
    result = settings(LOG_LEVEL=level.lower())

    assert result.log_level == level
    assert result.log_level_number == getattr(logging, level)


def test_api_and_gateway_overrides():
    result = settings(DISCORD_API_BASE="http://127.0.0.1:8080/api/v10/", DISCORD_GATEWAY_URL="ws://127.0.0.1:8081")

    assert result.api_base == "http://127.0.0.1:8080/api/v10"  # trailing slash dropped
    assert result.gateway_url == "ws://127.0.0.1:8081"
    assert settings(DISCORD_API_BASE="https://discord.example/api").api_base == "https://discord.example/api"
    assert settings(DISCORD_GATEWAY_URL="wss://gateway.example").gateway_url == "wss://gateway.example"


def test_the_token_may_be_missing_when_not_required():
    result = Settings.from_env({}, env_file=None, require_token=False)

    assert result.token is None


def test_a_malformed_token_is_refused_even_when_not_required():
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({"DISCORD_TOKEN": "nope"}, env_file=None, require_token=False)

    assert len(caught.value.problems) == 1
    assert "does not look like a bot token" in caught.value.problems[0]


# ---------------------------------------------------------------- .env and the environment


def test_dotenv_is_read(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text(
        f'# Quorum\nDISCORD_TOKEN={TOKEN}\nLOG_LEVEL=warning\nDEV_GUILD_ID="123"\nexport DATABASE_PATH=q.db\n',
        encoding="utf-8",
    )

    result = Settings.from_env({}, env_file=env_file)

    assert result.token == TOKEN
    assert result.log_level == "WARNING"
    assert result.dev_guild_id == 123
    assert result.database_path == Path("q.db")


def test_the_environment_overrides_dotenv(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("DISCORD_TOKEN=from.dotenv.x\nLOG_LEVEL=DEBUG\nDEV_GUILD_ID=111\n", encoding="utf-8")

    result = Settings.from_env({"DISCORD_TOKEN": TOKEN, "LOG_LEVEL": "ERROR"}, env_file=env_file)

    assert result.token == TOKEN  # the malformed token in .env is not even looked at
    assert result.log_level == "ERROR"
    assert result.dev_guild_id == 111  # not in the environment: .env still counts


def test_a_dotenv_key_without_a_value_is_ignored(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text(f"DISCORD_TOKEN={TOKEN}\nLOG_LEVEL\n", encoding="utf-8")

    assert Settings.from_env({}, env_file=env_file).log_level == "INFO"


def test_missing_dotenv_is_fine(tmp_path):
    result = Settings.from_env({"DISCORD_TOKEN": TOKEN}, env_file=tmp_path / "absent.env")

    assert result.token == TOKEN


def test_by_default_reads_os_environ_and_dotenv_in_the_working_directory(clean_environ, monkeypatch):
    (clean_environ / ".env").write_text(f"DISCORD_TOKEN={TOKEN}\nLOG_LEVEL=LOUD\nDEV_GUILD_ID=5\n", encoding="utf-8")
    monkeypatch.setenv("LOG_LEVEL", "critical")

    result = Settings.from_env()

    assert result.token == TOKEN
    assert result.log_level == "CRITICAL"
    assert result.dev_guild_id == 5


def test_by_default_without_anything_the_token_is_missing(clean_environ):
    with pytest.raises(SettingsError) as caught:
        Settings.from_env()

    assert caught.value.problems == [TOKEN_HELP]


def test_env_file_none_reads_no_dotenv(clean_environ):
    (clean_environ / ".env").write_text(f"DISCORD_TOKEN={TOKEN}\n", encoding="utf-8")

    with pytest.raises(SettingsError):
        Settings.from_env({}, env_file=None)


# ---------------------------------------------------------------- each problem


def test_missing_token_says_where_to_get_one():
    found = problems()

    assert found == [TOKEN_HELP]
    assert "DISCORD_TOKEN is not set" in found[0]
    assert "https://discord.com/developers/applications" in found[0]
    assert "DISCORD_TOKEN=" in found[0]


def test_blank_token_is_missing():
    assert problems(DISCORD_TOKEN=" \t ") == [TOKEN_HELP]


@pytest.mark.parametrize(
    "token",
    [
        "not-a-token",
        "abc.def.ghi",  # three parts, but too short to be a token
        f"Bot {TOKEN}",  # pasted with the Authorization prefix
        TOKEN.replace(".", "", 1),
        TOKEN + ".extra",
        TOKEN[:-1] + "=",
    ],
)
def test_malformed_token(token):
    found = only_problem(DISCORD_TOKEN=token)

    assert found.startswith("DISCORD_TOKEN does not look like a bot token")
    assert token not in found, "the token itself must not be printed"


def test_database_path_that_is_a_directory(tmp_path):
    found = only_problem(DATABASE_PATH=str(tmp_path))

    assert found == f"DATABASE_PATH={tmp_path} is a directory; name a file."


def test_database_path_that_does_not_exist_yet_is_fine(tmp_path):
    assert settings(DATABASE_PATH=str(tmp_path / "new" / "q.sqlite3")).database_path == tmp_path / "new" / "q.sqlite3"


@pytest.mark.parametrize("level", ["LOUD", "verbose", "WARN", "10"])
def test_bad_log_level(level):
    found = only_problem(LOG_LEVEL=level)

    assert found == f"LOG_LEVEL={level.upper()} is not one of DEBUG, INFO, WARNING, ERROR, CRITICAL."


def test_bad_api_base():
    assert only_problem(DISCORD_API_BASE="ftp://x") == "DISCORD_API_BASE=ftp://x must start with http:// or https://."
    assert only_problem(DISCORD_API_BASE="discord.com/api").startswith("DISCORD_API_BASE=discord.com/api must")


def test_bad_gateway_url():
    found = only_problem(DISCORD_GATEWAY_URL="https://gateway.discord.gg")

    assert found == "DISCORD_GATEWAY_URL=https://gateway.discord.gg must start with ws:// or wss://."


def test_every_problem_at_once(tmp_path):
    with pytest.raises(SettingsError) as caught:
        Settings.from_env(
            {
                "DISCORD_TOKEN": "bad",
                "DATABASE_PATH": str(tmp_path),
                "LOG_LEVEL": "LOUD",
                "DEV_GUILD_ID": "abc",
                "DISCORD_API_BASE": "ftp://x",
                "DISCORD_GATEWAY_URL": "http://x",
            },
            env_file=None,
        )

    error = caught.value
    assert [p.split()[0].split("=")[0] for p in error.problems] == [
        "DISCORD_TOKEN",
        "DATABASE_PATH",
        "LOG_LEVEL",
        "DEV_GUILD_ID",
        "DISCORD_API_BASE",
        "DISCORD_GATEWAY_URL",
    ]
    assert str(error) == "Invalid settings:\n" + "\n".join(f"  - {p}" for p in error.problems)


def test_missing_token_and_other_problems_together():
    found = problems(LOG_LEVEL="LOUD")

    assert found == [TOKEN_HELP, "LOG_LEVEL=LOUD is not one of DEBUG, INFO, WARNING, ERROR, CRITICAL."]


# ---------------------------------------------------------------- DEV_GUILD_ID


@pytest.mark.parametrize(
    ("raw", "parsed"),
    [
        ("1", 1),
        ("123456789012345678", 123456789012345678),
        (" 42 ", 42),
        ("0042", 42),
        (str(2**64 - 1), 2**64 - 1),
    ],
)
def test_dev_guild_id_accepted(raw, parsed):
    assert settings(DEV_GUILD_ID=raw).dev_guild_id == parsed


@pytest.mark.parametrize("raw", ["abc", "0", "-5", "+5", "1.5", "1e9", "1_000", "12 34", "0x1F", str(2**64)])
def test_dev_guild_id_refused(raw):
    assert only_problem(DEV_GUILD_ID=raw) == f"DEV_GUILD_ID={raw} is not a server id (a number)."


@pytest.mark.parametrize("raw", ["²", "12³"])
def test_dev_guild_id_with_a_superscript_digit_is_a_problem_not_a_crash(raw):
    assert only_problem(DEV_GUILD_ID=raw) == f"DEV_GUILD_ID={raw} is not a server id (a number)."


# ---------------------------------------------------------------- DATABASE_URL and redact_url


def test_database_url_unset_means_sqlite_at_database_path():
    result = settings(DATABASE_PATH="q.db", DATABASE_URL="  ")

    assert result.database_url is None
    assert result.database_path == Path("q.db")


@pytest.mark.parametrize(
    "url",
    ["postgresql://quorum:secret@db:5432/quorum", "postgres://quorum@db/quorum", "postgresql://", "postgresql:///q"],
)
def test_database_url_accepted_as_given(url):
    assert settings(DATABASE_URL=f" {url} ").database_url == url


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("mysql://quorum:secret@db/quorum", "mysql://quorum:***@db/quorum"),
        ("sqlite:///data/quorum.sqlite3", "sqlite:///data/quorum.sqlite3"),
        ("POSTGRESQL://quorum:secret@db/quorum", "POSTGRESQL://quorum:***@db/quorum"),
        ("postgresql:/quorum:secret@db/quorum", "***@db/quorum"),
        ("quorum:secret@db:5432/quorum", "***@db:5432/quorum"),  # the scheme forgotten
        ("db:5432/quorum", "db:5432/quorum"),
    ],
)
def test_database_url_other_schemes_refused_without_the_password(url, shown):
    found = only_problem(DATABASE_URL=url)

    assert found == (
        f"DATABASE_URL={shown} must start with postgresql:// or postgres:// (unset it to use SQLite at DATABASE_PATH)."
    )
    assert "secret" not in found


@pytest.mark.parametrize(
    ("url", "redacted"),
    [
        ("postgresql://quorum:secret@db:5432/quorum", "postgresql://quorum:***@db:5432/quorum"),
        ("postgresql://quorum:@db/quorum", "postgresql://quorum:***@db/quorum"),
        ("postgresql://quorum:se:cr@et@db/quorum", "postgresql://quorum:***@db/quorum"),
        ("postgresql://quorum:se%40cret@db/quorum", "postgresql://quorum:***@db/quorum"),
        ("postgresql://quorum:se/cret@db/quorum", "postgresql://***@db/quorum"),  # "/" ends the host for urlsplit
        ("postgresql://quorum:se#cret@db/quorum", "postgresql://***@db/quorum"),
        ("postgresql://quorum:secret@[::1/quorum", "postgresql://***@[::1/quorum"),  # urlsplit raises
        (
            "postgresql://db/quorum?user=quorum&password=secret&sslmode=require",
            "postgresql://db/quorum?user=quorum&password=***&sslmode=require",
        ),
        ("postgresql://db/quorum?sslpassword=secret", "postgresql://db/quorum?sslpassword=***"),
    ],
)
def test_redact_url_hides_the_password(url, redacted):
    assert redact_url(url) == redacted


@pytest.mark.parametrize(
    "url",
    ["postgresql://quorum@db:5432/quorum", "postgresql://db/quorum", "postgresql://", "", "not a url", "http://[::1"],
)
def test_redact_url_leaves_urls_without_a_password_alone(url):
    assert redact_url(url) == url


# ---------------------------------------------------------------- SHARD_COUNT and SHARD_IDS


def test_sharding_unset_means_auto_sharding():
    result = settings(SHARD_COUNT="", SHARD_IDS=" ")

    assert (result.shard_count, result.shard_ids) == (None, None)
    assert result.runs_shard_zero


def test_shard_count_alone_leaves_the_ids_to_the_caller():
    result = settings(SHARD_COUNT=" 4 ")

    assert (result.shard_count, result.shard_ids) == (4, None)
    assert result.runs_shard_zero


@pytest.mark.parametrize(("raw", "count"), [("1", 1), ("0016", 16), ("65535", 65535)])
def test_shard_count_accepted(raw, count):
    assert settings(SHARD_COUNT=raw).shard_count == count


@pytest.mark.parametrize("raw", ["0", "65536", "-1", "+2", "1.5", "two", "²", "9" * 5000])
def test_shard_count_refused(raw):
    assert only_problem(SHARD_COUNT=raw) == f"SHARD_COUNT={raw} is not a number of shards (1 to 65535)."


@pytest.mark.parametrize(
    ("raw", "ids"),
    [
        ("0,1,5", (0, 1, 5)),
        ("0-3", (0, 1, 2, 3)),
        ("0-3,8", (0, 1, 2, 3, 8)),
        (" 8 , 0 - 1 ,\t3", (0, 1, 3, 8)),
        ("5,1,5,0-2,2-3", (0, 1, 2, 3, 5)),
        ("7-7", (7,)),
        ("0009", (9,)),
    ],
)
def test_shard_ids_accepted_sorted_and_unique(raw, ids):
    result = settings(SHARD_COUNT="10", SHARD_IDS=raw)

    assert (result.shard_count, result.shard_ids) == (10, ids)


def test_overlapping_ranges_are_merged_not_expanded_each_time():
    result = settings(SHARD_COUNT="65535", SHARD_IDS=",".join(["0-65534"] * 2000))

    assert result.shard_ids == tuple(range(65535))


@pytest.mark.parametrize("raw", ["a", "1,,2", "1,", "1-", "-1", "1-2-3", "1 2", "0x1", "1.5", "²", "1-" + "9" * 5000])
def test_unparseable_shard_ids(raw):
    found = only_problem(SHARD_COUNT="10", SHARD_IDS=raw)

    assert found == f"SHARD_IDS={raw} is not a list of shard ids and ranges like 0,1,5 or 0-3,8."


def test_reversed_shard_range():
    found = only_problem(SHARD_COUNT="10", SHARD_IDS="0,5-3")

    assert found == "SHARD_IDS=0,5-3: the range 5-3 is reversed; write 3-5."


def test_shard_ids_beyond_the_count_are_named():
    found = only_problem(SHARD_COUNT="4", SHARD_IDS="0-1,4,7")

    assert found == "SHARD_IDS=0-1,4,7 names 4, 7, beyond SHARD_COUNT=4: shard ids run from 0 to 3."


def test_many_shard_ids_beyond_the_count_are_named_briefly():
    found = only_problem(SHARD_COUNT="2", SHARD_IDS="0-65534")

    assert found == (
        "SHARD_IDS=0-65534 names 2, 3, 4, 5, 6, 7, 8, 9, 10, 11 and 65523 more, beyond SHARD_COUNT=2: "
        "shard ids run from 0 to 1."
    )


def test_shard_ids_need_a_shard_count():
    found = only_problem(SHARD_IDS="0-3")

    assert found == "SHARD_IDS needs SHARD_COUNT: the total number of shards across all processes."


def test_bad_shard_ids_without_a_count_are_two_problems():
    found = problems(DISCORD_TOKEN=TOKEN, SHARD_IDS="3-1")

    assert found == [
        "SHARD_IDS=3-1: the range 3-1 is reversed; write 1-3.",
        "SHARD_IDS needs SHARD_COUNT: the total number of shards across all processes.",
    ]


def test_shard_ids_with_a_bad_count_report_only_the_count():
    found = only_problem(SHARD_COUNT="0", SHARD_IDS="0-3")

    assert found.startswith("SHARD_COUNT=0 ")


@pytest.mark.parametrize("raw", [f"0-{10**12 - 1}", f"0-{10**12 - 1},0-{10**12 - 1}", "65535", "3,70000-70001"])
def test_huge_shard_ids_are_refused_without_building_them(raw):
    tracemalloc.start()
    try:
        found = only_problem(SHARD_COUNT="65535", SHARD_IDS=raw)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()

    highest = raw.rpartition("-")[2] if "-" in raw else raw
    assert found == f"SHARD_IDS={raw} names shard {highest}; shard ids run from 0 to at most 65534."
    assert peak < 1_000_000  # a list of even 65535 ints would take more


@pytest.mark.parametrize(("ids", "runs"), [(None, True), ("0", True), ("3,0", True), ("1-3", False)])
def test_runs_shard_zero(ids, runs):
    result = settings(SHARD_COUNT="4", **({} if ids is None else {"SHARD_IDS": ids}))

    assert result.runs_shard_zero is runs


def test_new_settings_problems_are_reported_with_the_others():
    with pytest.raises(SettingsError) as caught:
        Settings.from_env(
            {
                "DISCORD_TOKEN": TOKEN,
                "DATABASE_URL": "mysql://quorum:hunter2@db/quorum",
                "LOG_LEVEL": "LOUD",
                "SHARD_COUNT": "4",
                "SHARD_IDS": "2,9,5-6",
                "ARTICLE_WORKERS": "99",
            },
            env_file=None,
        )

    error = caught.value
    assert [p.split()[0].split("=")[0] for p in error.problems] == [
        "DATABASE_URL",
        "LOG_LEVEL",
        "SHARD_IDS",
        "ARTICLE_WORKERS",
    ]
    assert "SHARD_IDS=2,9,5-6 names 5, 6, 9, beyond SHARD_COUNT=4" in error.problems[2]
    assert "hunter2" not in str(error)
    assert "mysql://quorum:***@db/quorum" in str(error)


def test_shard_problems_together():
    found = problems(DISCORD_TOKEN=TOKEN, SHARD_COUNT="many", SHARD_IDS="0-")

    assert found == [
        "SHARD_COUNT=many is not a number of shards (1 to 65535).",
        "SHARD_IDS=0- is not a list of shard ids and ranges like 0,1,5 or 0-3,8.",
    ]


@pytest.mark.parametrize("name", SETTING_NAMES)
def test_every_setting_is_documented_in_env_example_and_readme(name):
    root = Path(__file__).resolve().parents[2]
    assert f"\n{name}=" in (root / ".env.example").read_text(encoding="utf-8")
    assert f"`{name}`" in (root / "README.md").read_text(encoding="utf-8")
