"""Settings read from the environment and `.env`, validated all at once."""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

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
# libpq also takes passwords as query parameters (password=, sslpassword=).
_QUERY_PASSWORD = re.compile(r"(?i)([?&][a-z_]*password=)[^&#]*")
_SHARD_PART = re.compile(r"\s*([0-9]+)\s*(?:-\s*([0-9]+)\s*)?")
_MAX_SHARDS = 65535

# Every setting Quorum reads (the README and .env.example document each).
SETTING_NAMES = (
    "DISCORD_TOKEN",
    "DATABASE_PATH",
    "DATABASE_URL",
    "LOG_LEVEL",
    "LOG_FORMAT",
    "DEV_GUILD_ID",
    "DISCORD_API_BASE",
    "DISCORD_GATEWAY_URL",
    "SHARD_COUNT",
    "SHARD_IDS",
    "ALLOW_PRIVATE_URLS",
    "ARTICLE_CACHE_HOURS",
    "ARTICLE_WORKERS",
    "FEED_INTERVAL_SECONDS",
    "FEED_MAX_POSTS",
    "SUMMARY_API_URL",
    "SUMMARY_API_KEY",
    "SUMMARY_MODEL",
)


def redact_url(url: str) -> str:
    """`url` with its password replaced by `***`, safe for logs and error messages."""
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. an unclosed "[" in the host
        parts = None
    if parts is not None and "@" in parts.netloc:
        if parts.password is not None:
            userinfo, _, host = parts.netloc.rpartition("@")
            rebuilt = urlunsplit(parts._replace(netloc=f"{userinfo.partition(':')[0]}:***@{host}"))
            # urlsplit lowercases the scheme: show it as written, so "POSTGRESQL://" visibly differs.
            url = url[: len(parts.scheme)] + rebuilt[len(parts.scheme) :]
    elif "@" in url:
        # No clean user:password@host (no scheme, a "/" or "#" in the password ...): hide all before the last "@".
        scheme = re.match(r"[A-Za-z][A-Za-z0-9+.-]*://", url)
        url = f"{scheme[0] if scheme else ''}***@{url.rpartition('@')[2]}"
    return _QUERY_PASSWORD.sub(r"\1***", url)


def _parse_shard_ids(raw: str) -> tuple[int, ...]:
    """`0,1,5`, `0-3` or `0-3,8` as sorted unique ids; a ValueError says what is wrong."""
    unparseable = f"SHARD_IDS={raw} is not a list of shard ids and ranges like 0,1,5 or 0-3,8."
    ranges: list[tuple[int, int]] = []
    for part in raw.split(","):
        if (match := _SHARD_PART.fullmatch(part)) is None:
            raise ValueError(unparseable)
        try:
            first, last = int(match[1]), int(match[2] or match[1])
        except ValueError:  # more digits than int() converts
            raise ValueError(unparseable) from None
        if first > last:
            raise ValueError(f"SHARD_IDS={raw}: the range {first}-{last} is reversed; write {last}-{first}.")
        ranges.append((first, last))
    # Bounding the largest id bounds the count too, checked before any range is expanded (0-99999999999).
    if (highest := max(last for _, last in ranges)) >= _MAX_SHARDS:
        raise ValueError(f"SHARD_IDS={raw} names shard {highest}; shard ids run from 0 to at most {_MAX_SHARDS - 1}.")
    # Merge overlapping ranges first, so many repeats of 0-65534 stay cheap; the result is sorted and unique.
    merged: list[list[int]] = []
    for first, last in sorted(ranges):
        if merged and first <= merged[-1][1] + 1:
            merged[-1][1] = max(merged[-1][1], last)
        else:
            merged.append([first, last])
    return tuple(i for first, last in merged for i in range(first, last + 1))


class SettingsError(Exception):
    """Every problem found in the settings, so a maintainer fixes them in one go."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("Invalid settings:\n" + "\n".join(f"  - {p}" for p in problems))


@dataclass(frozen=True, slots=True)
class Settings:
    token: str | None = field(repr=False)  # secrets stay out of any printed Settings
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
    summary_api_key: str | None = field(default=None, repr=False)
    summary_model: str | None = None
    database_url: str | None = field(default=None, repr=False)  # may hold a password
    shard_count: int | None = None
    shard_ids: tuple[int, ...] | None = None
    feed_interval_seconds: int = 600
    feed_max_posts: int = 5

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

        database_url = get("DATABASE_URL")
        if database_url is not None and not database_url.startswith(("postgresql://", "postgres://")):
            problems.append(
                f"DATABASE_URL={redact_url(database_url)} must start with postgresql:// or postgres:// "
                "(unset it to use SQLite at DATABASE_PATH)."
            )

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

        # Both unset: discord.py's auto-sharding. SHARD_COUNT alone: this process runs them all.
        shard_count: int | None = None
        raw_count = get("SHARD_COUNT")
        if raw_count is not None:
            if re.fullmatch(r"[0-9]{1,6}", raw_count) and 1 <= int(raw_count) <= _MAX_SHARDS:
                shard_count = int(raw_count)
            else:
                problems.append(f"SHARD_COUNT={raw_count} is not a number of shards (1 to {_MAX_SHARDS}).")

        shard_ids: tuple[int, ...] | None = None
        raw_ids = get("SHARD_IDS")
        if raw_ids is not None:
            try:
                shard_ids = _parse_shard_ids(raw_ids)
            except ValueError as error:
                problems.append(str(error))
            if raw_count is None:
                problems.append("SHARD_IDS needs SHARD_COUNT: the total number of shards across all processes.")
            elif shard_ids is not None and shard_count is not None and shard_ids[-1] >= shard_count:
                beyond = [i for i in shard_ids if i >= shard_count]
                named = ", ".join(map(str, beyond[:10])) + (f" and {len(beyond) - 10} more" if len(beyond) > 10 else "")
                problems.append(
                    f"SHARD_IDS={raw_ids} names {named}, beyond SHARD_COUNT={shard_count}: "
                    f"shard ids run from 0 to {shard_count - 1}."
                )

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

        feed_interval_seconds = 600
        raw_interval = get("FEED_INTERVAL_SECONDS")
        if raw_interval is not None:
            # At least 10 s: sites block readers that poll faster, and a check cycle needs time.
            if re.fullmatch(r"[0-9]{1,7}", raw_interval) and 10 <= int(raw_interval) <= 7 * 86400:
                feed_interval_seconds = int(raw_interval)
            else:
                problems.append(
                    f"FEED_INTERVAL_SECONDS={raw_interval} is not a number of seconds between checks (10 to 604800)."
                )

        feed_max_posts = 5
        raw_posts = get("FEED_MAX_POSTS")
        if raw_posts is not None:
            if re.fullmatch(r"[0-9]{1,3}", raw_posts) and 1 <= int(raw_posts) <= 50:
                feed_max_posts = int(raw_posts)
            else:
                problems.append(f"FEED_MAX_POSTS={raw_posts} is not a number of posts per feed per check (1 to 50).")

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
            database_url=database_url,
            shard_count=shard_count,
            shard_ids=shard_ids,
            feed_interval_seconds=feed_interval_seconds,
            feed_max_posts=feed_max_posts,
        )

    @property
    def log_level_number(self) -> int:
        return logging.getLevelName(self.log_level)

    @property
    def own_shards(self) -> tuple[int, tuple[int, ...]] | None:
        """(shard count, the ids this process runs), or None when it runs every shard: what
        the repositories take to keep a process to its own servers' work."""
        if self.shard_count is not None and self.shard_ids is not None:
            return self.shard_count, self.shard_ids
        return None

    @property
    def runs_shard_zero(self) -> bool:
        """Whether this process runs shard 0, the one that syncs slash commands."""
        return self.shard_ids is None or 0 in self.shard_ids
