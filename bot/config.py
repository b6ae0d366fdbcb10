"""Settings read from the environment and `.env`, validated all at once."""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from dotenv import dotenv_values

TOKEN_HELP = (
    "DISCORD_TOKEN is not set. Create an application at "
    "https://discord.com/developers/applications, add a bot under 'Bot', copy its token and "
    "put DISCORD_TOKEN=... in .env (see .env.example and the README). To try Quorum without a "
    "token first, run: python run.py playground"
)

# Three dot-separated base64url parts: the shape of every bot token Discord issues.
_TOKEN_SHAPE = re.compile(r"^[A-Za-z0-9_-]{20,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{20,}$")
_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

# Every setting Quorum reads (the README and .env.example document each).
SETTING_NAMES = (
    "DISCORD_TOKEN",
    "DATABASE_PATH",
    "LOG_LEVEL",
    "LOG_FORMAT",
    "DEV_GUILD_ID",
    "DISCORD_API_BASE",
    "DISCORD_GATEWAY_URL",
    "ALLOW_PRIVATE_URLS",
    "ARTICLE_CACHE_HOURS",
    "ARTICLE_WORKERS",
    "SUMMARY_API_URL",
    "SUMMARY_API_KEY",
    "SUMMARY_MODEL",
)


class SettingsError(Exception):
    """Every problem found in the settings, so a maintainer fixes them in one go."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("Invalid settings:\n" + "\n".join(f"  - {p}" for p in problems))


@dataclass(frozen=True, slots=True)
class Settings:
    token: str | None
    database_path: Path
    log_level: str = "INFO"
    log_format: str = "text"
    dev_guild_id: int | None = None
    api_base: str | None = None
    gateway_url: str | None = None
    allow_private_urls: bool = False
    article_cache_hours: float = 24.0
    article_workers: int = 2
    summary_api_url: str | None = None
    summary_api_key: str | None = None
    summary_model: str | None = None

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str] | None = None,
        *,
        env_file: str | os.PathLike[str] | None = ".env",
        require_token: bool = True,
    ) -> Settings:
        """Read settings; the process environment wins over `.env`."""
        values: dict[str, str] = {}
        if env_file is not None and Path(env_file).is_file():
            values.update({k: v for k, v in dotenv_values(env_file).items() if v is not None})
        values.update(os.environ if environ is None else environ)

        def get(name: str) -> str | None:
            value = values.get(name, "").strip()
            return value or None

        problems: list[str] = []

        token = get("DISCORD_TOKEN")
        if token is None:
            if require_token:
                problems.append(TOKEN_HELP)
        elif not _TOKEN_SHAPE.match(token):
            problems.append(
                "DISCORD_TOKEN does not look like a bot token (three parts separated by dots); "
                "copy it again from the Bot page of your application."
            )

        database_path = Path(get("DATABASE_PATH") or "data/quorum.sqlite3")
        if database_path.exists() and database_path.is_dir():
            problems.append(f"DATABASE_PATH={database_path} is a directory; name a file.")

        log_level = (get("LOG_LEVEL") or "INFO").upper()
        if log_level not in _LOG_LEVELS:
            problems.append(f"LOG_LEVEL={log_level} is not one of {', '.join(_LOG_LEVELS)}.")

        log_format = (get("LOG_FORMAT") or "text").lower()
        if log_format not in ("text", "json"):
            problems.append(f"LOG_FORMAT={log_format} is not text or json.")

        dev_guild_id: int | None = None
        raw_guild = get("DEV_GUILD_ID")
        if raw_guild is not None:
            if re.fullmatch(r"[0-9]+", raw_guild) and 0 < int(raw_guild) < 2**64:
                dev_guild_id = int(raw_guild)
            else:
                problems.append(f"DEV_GUILD_ID={raw_guild} is not a server id (a number).")

        api_base = get("DISCORD_API_BASE")
        gateway_url = get("DISCORD_GATEWAY_URL")
        if api_base is not None and not re.match(r"^https?://", api_base):
            problems.append(f"DISCORD_API_BASE={api_base} must start with http:// or https://.")
        if gateway_url is not None and not re.match(r"^wss?://", gateway_url):
            problems.append(f"DISCORD_GATEWAY_URL={gateway_url} must start with ws:// or wss://.")

        raw_private = (get("ALLOW_PRIVATE_URLS") or "0").lower()
        if raw_private not in ("0", "1", "true", "false", "yes", "no"):
            problems.append(f"ALLOW_PRIVATE_URLS={raw_private} must be 0 or 1.")
        allow_private_urls = raw_private in ("1", "true", "yes")

        article_cache_hours = 24.0
        raw_hours = get("ARTICLE_CACHE_HOURS")
        if raw_hours is not None:
            try:
                article_cache_hours = float(raw_hours)
                if not 0 <= article_cache_hours <= 24 * 365:
                    raise ValueError
            except ValueError:
                problems.append(f"ARTICLE_CACHE_HOURS={raw_hours} is not a number of hours (0 to 8760).")

        article_workers = 2
        raw_workers = get("ARTICLE_WORKERS")
        if raw_workers is not None:
            if re.fullmatch(r"[0-9]{1,2}", raw_workers) and 1 <= int(raw_workers) <= 16:
                article_workers = int(raw_workers)
            else:
                problems.append(f"ARTICLE_WORKERS={raw_workers} is not a number of worker processes (1 to 16).")

        summary_api_url = get("SUMMARY_API_URL")
        summary_model = get("SUMMARY_MODEL")
        if summary_api_url is not None and not re.match(r"^https?://", summary_api_url):
            problems.append(f"SUMMARY_API_URL={summary_api_url} must start with http:// or https://.")
        if summary_api_url is not None and summary_model is None:
            problems.append("SUMMARY_API_URL is set but SUMMARY_MODEL is not: name the model to ask.")

        if problems:
            raise SettingsError(problems)
        return cls(
            token=token,
            database_path=database_path,
            log_level=log_level,
            log_format=log_format,
            dev_guild_id=dev_guild_id,
            api_base=api_base.rstrip("/") if api_base else None,
            gateway_url=gateway_url,
            allow_private_urls=allow_private_urls,
            article_cache_hours=article_cache_hours,
            article_workers=article_workers,
            summary_api_url=summary_api_url.rstrip("/") if summary_api_url else None,
            summary_api_key=get("SUMMARY_API_KEY"),
            summary_model=summary_model,
        )

    @property
    def log_level_number(self) -> int:
        return logging.getLevelName(self.log_level)
