"""Settings.from_env: defaults, `.env` under the environment, and every problem reported."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from bot.config import SETTING_NAMES, TOKEN_HELP, Settings, SettingsError

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
        f"# Quorum\nDISCORD_TOKEN={TOKEN}\nLOG_LEVEL=warning\nDEV_GUILD_ID=\"123\"\nexport DATABASE_PATH=q.db\n",
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



@pytest.mark.parametrize("name", SETTING_NAMES)
def test_every_setting_is_documented_in_env_example_and_readme(name):
    root = Path(__file__).resolve().parents[2]
    assert f"\n{name}=" in (root / ".env.example").read_text(encoding="utf-8")
    assert f"`{name}`" in (root / "README.md").read_text(encoding="utf-8")
