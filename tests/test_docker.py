"""Self-hosting with Docker: compose.yaml, compose.postgres.yaml, the Dockerfile and .dockerignore,
and (where Docker answers) Compose's own reading of the files and a real build of the image."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"
COMPOSE = ROOT / "compose.yaml"
COMPOSE_POSTGRES = ROOT / "compose.postgres.yaml"
DOCKERIGNORE = ROOT / ".dockerignore"
DATA_DIR = "/app/data"


# --- the Dockerfile, read as instructions --------------------------------------------------


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs: comments dropped, continuation lines joined."""
    result: list[tuple[str, str]] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue  # a comment inside a continued instruction
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = pending + line
        pending = ""
        keyword, _, args = line.partition(" ")
        result.append((keyword.upper(), args.strip()))
    if pending:
        keyword, _, args = pending.strip().partition(" ")
        result.append((keyword.upper(), args.strip()))
    return result


def final_stage(steps: list[tuple[str, str]]) -> list[tuple[str, str]]:
    starts = [i for i, (keyword, _) in enumerate(steps) if keyword == "FROM"]
    assert starts, "the Dockerfile has no FROM"
    return steps[starts[-1]:]


def exec_form(args: str) -> list[str]:
    """A JSON-array (exec form) argument, e.g. CMD ["python", "run.py"]."""
    value = json.loads(args)
    assert isinstance(value, list), args
    return value


def copy_sources(args: str) -> list[str]:
    """The source paths of a COPY/ADD (flags such as --from= and --chown= left out)."""
    parts = exec_form(args) if args.startswith("[") else shlex.split(args)
    parts = [p for p in parts if not p.startswith("--")]
    return parts[:-1]


def env_values(steps: list[tuple[str, str]]) -> dict[str, str]:
    values: dict[str, str] = {}
    for keyword, args in steps:
        if keyword != "ENV":
            continue
        parts = shlex.split(args)
        if parts and "=" not in parts[0]:  # legacy form: ENV KEY value
            values[parts[0]] = " ".join(parts[1:])
            continue
        for part in parts:
            key, _, value = part.partition("=")
            values[key] = value
    return values


@pytest.fixture(scope="module")
def dockerfile() -> list[tuple[str, str]]:
    return instructions(DOCKERFILE.read_text(encoding="utf-8"))


def dockerignore_patterns() -> set[str]:
    lines = DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
    return {line.strip().rstrip("/") for line in lines if line.strip() and not line.startswith("#")}


def test_dockerfile_parser_joins_continuations_and_skips_comments():
    steps = instructions('# c\nFROM x AS b\nENV A=1 \\\n    # note\n    B="two words"\nCMD ["a", "b"]\n')
    assert steps == [("FROM", "x AS b"), ("ENV", 'A=1  B="two words"'), ("CMD", '["a", "b"]')]
    assert env_values(steps) == {"A": "1", "B": "two words"}
    assert copy_sources("--from=build --chown=1:1 /opt/venv /opt/venv") == ["/opt/venv"]


def test_dockerfile_runs_on_python_311_slim(dockerfile):
    bases = [args.split()[0] for keyword, args in dockerfile if keyword == "FROM"]
    assert bases and all(base.startswith("python:3.11-slim") for base in bases), bases


def test_dockerfile_runs_as_a_non_root_user(dockerfile):
    users = [args.split(":")[0] for keyword, args in final_stage(dockerfile) if keyword == "USER"]
    assert users, "the final stage has no USER: the bot would run as root"
    assert users[-1] not in ("root", "0"), users


def test_dockerfile_keeps_the_database_in_a_volume(dockerfile):
    stage = final_stage(dockerfile)
    volumes: list[str] = []
    for keyword, args in stage:
        if keyword == "VOLUME":
            volumes += exec_form(args) if args.startswith("[") else args.split()
    assert DATA_DIR in volumes, volumes
    assert env_values(stage).get("DATABASE_PATH") == f"{DATA_DIR}/quorum.sqlite3"


def test_dockerfile_has_a_healthcheck_stop_signal_and_command(dockerfile):
    stage = final_stage(dockerfile)
    healthchecks = [args for keyword, args in stage if keyword == "HEALTHCHECK"]
    assert healthchecks, "no HEALTHCHECK"
    check = healthchecks[-1]
    assert check.upper() != "NONE"
    assert "CMD" in check.split()
    assert exec_form(check[check.index("CMD") + len("CMD"):].strip()) == ["python", "run.py", "check", "--offline"]
    assert [args for keyword, args in stage if keyword == "STOPSIGNAL"][-1:] == ["SIGTERM"]
    assert exec_form([args for keyword, args in stage if keyword == "CMD"][-1]) == ["python", "run.py"]


def test_dockerfile_never_copies_the_env_file(dockerfile):
    for keyword, args in dockerfile:
        if keyword not in ("COPY", "ADD") or "--from=" in args:
            continue
        for source in copy_sources(args):
            assert Path(source).name != ".env", f"{keyword} {args} copies the token into the image"
            if source in (".", "./", "*"):
                # Copying the whole context is only safe when .dockerignore keeps .env out.
                assert ".env" in dockerignore_patterns(), f"{keyword} {args} would copy .env"


def test_dockerfile_installs_the_bot_without_extras(dockerfile):
    installs = [args for keyword, args in dockerfile if keyword == "RUN" and "pip install" in args]
    assert installs, "no pip install"
    for args in installs:
        assert "[" not in args, f"extras (test/playground) are not for the image: {args}"
        assert "-e " not in args and "--editable" not in args, args
        assert "--no-cache-dir" in args or "PIP_NO_CACHE_DIR" in env_values(dockerfile), args


def test_dockerignore_keeps_secrets_and_clutter_out_of_the_build_context():
    patterns = dockerignore_patterns()
    for needed in (".env", ".venv", ".git", "data/*", ".pytest_cache", ".ruff_cache"):
        assert needed in patterns, f".dockerignore does not exclude {needed}"
    assert "pyproject.toml" not in patterns and "README.md" not in patterns  # `pip install .` needs them


# --- compose.yaml ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict:
    yaml = pytest.importorskip("yaml")
    document = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    assert isinstance(document, dict)
    return document


@pytest.fixture(scope="module")
def service(compose) -> dict:
    assert list(compose.get("services", {})) == ["quorum"], "compose.yaml should have one service, quorum"
    return compose["services"]["quorum"]


def test_compose_builds_this_directory(service):
    build = service["build"]
    context = build if isinstance(build, str) else build.get("context", ".")
    assert context in (".", "./")


def test_compose_reads_the_env_file(service):
    env_file = service["env_file"]
    entries = env_file if isinstance(env_file, list) else [env_file]
    paths = [entry if isinstance(entry, str) else entry["path"] for entry in entries]
    assert paths == [".env"]


def test_compose_keeps_data_in_a_named_volume(compose, service):
    mounts = []
    for volume in service.get("volumes", []):
        if isinstance(volume, str):
            source, _, rest = volume.partition(":")
            mounts.append((source, rest.split(":")[0]))
        else:
            assert volume.get("type", "volume") == "volume"
            mounts.append((volume.get("source"), volume["target"]))
    sources = [source for source, target in mounts if target == DATA_DIR]
    assert len(sources) == 1, f"nothing mounted at {DATA_DIR}: {mounts}"
    name = sources[0]
    assert name and not name.startswith((".", "/", "~")), f"{name} is a bind mount, not a named volume"
    assert name in (compose.get("volumes") or {}), f"volume {name} is not declared under volumes:"
    database = (service.get("environment") or {}).get("DATABASE_PATH", f"{DATA_DIR}/quorum.sqlite3")
    assert database.startswith(f"{DATA_DIR}/"), database


def test_compose_restarts_stops_gracefully_and_keeps_the_healthcheck(service):
    assert service["restart"] == "unless-stopped"
    assert service["stop_grace_period"] == "30s"
    # The Dockerfile's HEALTHCHECK applies unless compose overrides or disables it.
    assert "healthcheck" not in service or not service["healthcheck"].get("disable")


def test_compose_needs_no_setting_beyond_the_env_file():
    # `docker compose up -d` must work with only DISCORD_TOKEN in .env: no ${VAR:?} to satisfy.
    assert "${" not in COMPOSE.read_text(encoding="utf-8")


# --- compose.postgres.yaml ------------------------------------------------------------------

# Compose's interpolation: $$, $VAR, ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error}, ${VAR?error}.
_INTERPOLATION = re.compile(
    r"\$(?:(?P<escaped>\$)|(?P<plain>[A-Za-z_][A-Za-z0-9_]*)"
    r"|\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\})"
)
# Values for the variables .env would hold; letters and digits only, as the README asks.
SAMPLE_ENV = {"POSTGRES_PASSWORD": "s3cretPassw0rd", "DISCORD_TOKEN": "A" * 24 + "." + "B" * 6 + "." + "C" * 27}


class MissingVariable(Exception):
    pass


def interpolate(value, env: dict[str, str]):
    """`value` (a parsed compose document or part of one) with every variable replaced."""
    if isinstance(value, dict):
        return {key: interpolate(item, env) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, env) for item in value]
    if not isinstance(value, str):
        return value

    def replace(match: re.Match[str]) -> str:
        if match["escaped"]:
            return "$"
        name = match["plain"] or match["name"]
        op, arg = match["op"], match["arg"] or ""
        current = env.get(name)
        unset = current is None or (current == "" and op is not None and op.startswith(":"))
        if op in ("-", ":-") and unset:
            return arg
        if op in ("?", ":?") and unset:
            raise MissingVariable(f"{name}: {arg}")
        return current or ""

    return _INTERPOLATION.sub(replace, value)


def test_interpolation_follows_compose():
    env = {"A": "1", "EMPTY": ""}
    assert interpolate("$A ${A} ${B:-x} ${EMPTY:-y} ${EMPTY-z} $$A", env) == "1 1 x y  $A"
    with pytest.raises(MissingVariable, match="B: say B"):
        interpolate("${B:?say B}", env)
    with pytest.raises(MissingVariable):
        interpolate("${EMPTY:?empty is unset}", env)


@pytest.fixture(scope="module")
def pg_compose() -> dict:
    yaml = pytest.importorskip("yaml")
    document = yaml.safe_load(COMPOSE_POSTGRES.read_text(encoding="utf-8"))
    assert isinstance(document, dict)
    return document


@pytest.fixture(scope="module")
def pg_resolved(pg_compose) -> dict:
    return interpolate(pg_compose, SAMPLE_ENV)


def builds_quorum(service: dict) -> bool:
    build = service.get("build")
    context = build if isinstance(build, str) else (build or {}).get("context")
    return context in (".", "./")


def shard_services(compose: dict) -> dict[str, dict]:
    """The services that run the bot: built from this directory, on the image's command."""
    services = compose["services"]
    return {name: s for name, s in services.items() if builds_quorum(s) and "command" not in s}


def environment(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):  # the KEY=value list form
        env = dict(item.partition("=")[::2] for item in env)
    return {key: "" if value is None else str(value) for key, value in env.items()}


def test_pg_compose_runs_postgres_15_with_a_volume_and_a_healthcheck(pg_compose):
    postgres = pg_compose["services"]["postgres"]
    assert postgres["image"] == "postgres:15"
    mounts = [v.partition(":")[::2] for v in postgres["volumes"]]
    sources = [source for source, target in mounts if target == "/var/lib/postgresql/data"]
    assert len(sources) == 1, mounts
    assert not sources[0].startswith((".", "/", "~")), "a bind mount, not a named volume"
    assert sources[0] in (pg_compose.get("volumes") or {})
    test = postgres["healthcheck"]["test"]
    command = test if isinstance(test, str) else " ".join(test)
    assert "pg_isready" in command, test
    assert "ports" not in postgres, "the database should not be published beyond Compose's network"


def test_pg_compose_shards_cover_every_shard_exactly_once(pg_resolved):
    from bot.config import _parse_shard_ids

    shards = shard_services(pg_resolved)
    assert len(shards) >= 2, list(shards)
    counts = {name: environment(s).get("SHARD_COUNT") for name, s in shards.items()}
    assert len(set(counts.values())) == 1, f"every process needs the same SHARD_COUNT: {counts}"
    count = int(next(iter(counts.values())))
    seen: list[int] = []
    for name, service in shards.items():
        ids = environment(service).get("SHARD_IDS")
        assert ids, f"{name} has no SHARD_IDS: it would run all {count} shards, again"
        seen += _parse_shard_ids(ids)
    assert sorted(seen) == list(range(count)), f"shard ids {sorted(seen)} for SHARD_COUNT={count}"


def test_pg_compose_shards_are_valid_quorum_settings(pg_resolved):
    from bot.config import Settings

    urls = set()
    shard_zero = []
    for name, service in shard_services(pg_resolved).items():
        env = {"DISCORD_TOKEN": SAMPLE_ENV["DISCORD_TOKEN"], **environment(service)}
        settings = Settings.from_env(env, env_file=None)
        assert settings.database_url, f"{name} would use SQLite"
        urls.add(settings.database_url)
        if settings.runs_shard_zero:
            shard_zero.append(name)
    assert len(urls) == 1, f"the processes would use different databases: {urls}"
    assert len(shard_zero) == 1, f"exactly one process syncs the commands: {shard_zero}"
    url = urls.pop()
    assert url.startswith("postgresql://") and "@postgres:" in url, url
    assert SAMPLE_ENV["POSTGRES_PASSWORD"] in url  # the password comes from .env


def test_pg_compose_every_quorum_service_uses_the_same_database_and_waits_for_it(pg_resolved):
    services = pg_resolved["services"]
    quorum = {name: s for name, s in services.items() if builds_quorum(s)}
    url = environment(services["quorum-shard-0"])["DATABASE_URL"]
    for name, service in quorum.items():
        depends = service.get("depends_on")
        assert isinstance(depends, dict), f"{name}: depends_on needs the long form for a condition"
        assert depends.get("postgres", {}).get("condition") == "service_healthy", name
        if name in shard_services(pg_resolved):
            assert environment(service)["DATABASE_URL"] == url, name
            assert service["restart"] == "unless-stopped" and service["stop_grace_period"] == "30s", name
            assert service["env_file"] in (".env", [".env"]), name
        else:  # a one-off tool such as migrate: opt-in through a profile, its target the same URL
            assert service.get("profiles"), f"{name} would start with `up`"
            assert environment(service)["DATABASE_URL"] == url, f"{name} does not target the bots' database"
            assert not any("postgresql://" in str(part) for part in service["command"]), (
                f"{name}: a URL on the command line shows its password in ps"
            )


def test_pg_compose_migrate_copies_compose_yaml_volume(pg_compose, compose):
    migrate = pg_compose["services"]["migrate"]
    assert migrate["command"] == ["python", "run.py", "migrate-db"]  # the target is its DATABASE_URL
    (volume,) = migrate["volumes"]
    source, _, target = volume.partition(":")
    assert target.split(":")[0] == DATA_DIR
    # The same name in the same Compose project is the same volume as compose.yaml's.
    assert source in (compose.get("volumes") or {}) and source in (pg_compose.get("volumes") or {})
    assert environment(migrate)["DATABASE_PATH"] == f"{DATA_DIR}/quorum.sqlite3"


SECRET_NAME = re.compile(r"(?i)password|token|secret|_key$")


def test_pg_compose_holds_no_secret(pg_compose):
    text = COMPOSE_POSTGRES.read_text(encoding="utf-8")
    # No user:password@ in a URL unless the password is a variable.
    for match in re.finditer(r"://([^/@\s\"']*)@", text):
        userinfo = match[1]
        if ":" in userinfo:
            assert userinfo.partition(":")[2].startswith("${"), f"a literal password: {match[0]}"
    for name, service in pg_compose["services"].items():
        for key, value in environment(service).items():
            if SECRET_NAME.search(key) and value:
                assert re.fullmatch(r"\$\{[A-Za-z_][A-Za-z0-9_]*:\?[^}]+\}", value), (
                    f"{name}: {key} should be ${{{key}:?message}}, read from .env"
                )


def test_pg_compose_refuses_to_start_without_a_postgres_password(pg_compose):
    env = {key: value for key, value in SAMPLE_ENV.items() if key != "POSTGRES_PASSWORD"}
    with pytest.raises(MissingVariable, match="POSTGRES_PASSWORD"):
        interpolate(pg_compose, env)
    with pytest.raises(MissingVariable, match="POSTGRES_PASSWORD"):
        interpolate(pg_compose, {**env, "POSTGRES_PASSWORD": ""})


def test_pg_compose_rate_limit_proxy_is_optional_and_private(pg_resolved):
    services = pg_resolved["services"]
    proxy = services.get("proxy")
    if proxy is None:
        pytest.skip("no proxy service in compose.postgres.yaml")
    assert proxy.get("profiles"), "the proxy should be opt-in (a profile)"
    assert proxy["image"].startswith("ghcr.io/twilight-rs/http-proxy")
    assert "ports" not in proxy, "a published proxy lets anyone act as the bot"
    assert environment(proxy)["DISCORD_TOKEN"] == SAMPLE_ENV["DISCORD_TOKEN"]
    for name, service in shard_services(pg_resolved).items():
        # Opt-in: the bots reach Discord directly unless .env points DISCORD_API_BASE at the proxy.
        assert "DISCORD_API_BASE" not in environment(service), name
        assert "proxy" not in (service.get("depends_on") or {}), name
    text = COMPOSE_POSTGRES.read_text(encoding="utf-8")
    assert "DISCORD_API_BASE=http://proxy/api/v10" in text


# --- Compose itself, where it is installed --------------------------------------------------


def compose_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        return docker("compose", "version", timeout=30).returncode == 0
    except subprocess.TimeoutExpired:
        return False


@pytest.fixture(scope="module")
def compose_project(tmp_path_factory):
    """A copy of the compose files with a sample .env, for `docker compose config`."""
    if not compose_answers():
        pytest.skip("no Docker Compose on this machine: the compose files were only checked as YAML")
    folder = tmp_path_factory.mktemp("compose")
    for path in (COMPOSE, COMPOSE_POSTGRES, DOCKERFILE):
        (folder / path.name).write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    env = "".join(f"{key}={value}\n" for key, value in SAMPLE_ENV.items())
    (folder / ".env").write_text(env, encoding="utf-8")
    return folder


@pytest.mark.parametrize("name", [COMPOSE.name, COMPOSE_POSTGRES.name])
def test_compose_accepts_the_file(compose_project, name):
    result = docker("compose", "--project-directory", str(compose_project), "--file",
                    str(compose_project / name), "config", "--quiet")
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_refuses_the_postgres_file_without_a_password(compose_project, tmp_path):
    (tmp_path / ".env").write_text(f"DISCORD_TOKEN={SAMPLE_ENV['DISCORD_TOKEN']}\n", encoding="utf-8")
    # Compose also interpolates from the environment: keep this shell's settings out of it.
    env = {key: value for key, value in os.environ.items() if not key.startswith(("POSTGRES_", "COMPOSE_"))}
    result = docker("compose", "--project-directory", str(tmp_path), "--env-file", str(tmp_path / ".env"),
                    "--file", str(compose_project / COMPOSE_POSTGRES.name), "config", "--quiet", env=env)
    assert result.returncode != 0
    assert "POSTGRES_PASSWORD" in result.stderr


# --- a real build, where there is a Docker engine -------------------------------------------


def docker(*args: str, timeout: float = 120, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, check=False, env=env)


def docker_engine_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        return docker("info", timeout=30).returncode == 0
    except subprocess.TimeoutExpired:
        return False


@pytest.fixture(scope="module")
def image():
    if not docker_engine_answers():
        pytest.skip("no Docker engine on this machine")
    tag = f"quorum-test:{uuid.uuid4().hex[:12]}"
    built = docker("build", "--tag", tag, str(ROOT), timeout=1800)
    assert built.returncode == 0, built.stdout[-4000:] + built.stderr[-4000:]
    yield tag
    docker("image", "rm", "--force", tag)


def test_image_builds_and_starts(image):
    result = docker("run", "--rm", image, "python", "run.py", "--help")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "run.py" in result.stdout


def test_image_runs_as_non_root_with_a_writable_data_volume_and_no_env_file(image):
    script = (
        "import os, pathlib; "
        "assert os.getuid() != 0, 'runs as root'; "
        "pathlib.Path('/app/data/probe').write_text('ok'); "
        "assert not pathlib.Path('/app/.env').exists(), '.env is in the image'; "
        "print(os.environ['DATABASE_PATH'])"
    )
    result = docker("run", "--rm", image, "python", "-c", script)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == f"{DATA_DIR}/quorum.sqlite3"


def test_image_declares_its_healthcheck_and_stop_signal(image):
    result = docker("image", "inspect", "--format", "{{json .Config}}", image)
    assert result.returncode == 0, result.stderr
    config = json.loads(result.stdout)
    assert config["Healthcheck"]["Test"] == ["CMD", "python", "run.py", "check", "--offline"]
    assert config["StopSignal"] == "SIGTERM"
    assert DATA_DIR in config["Volumes"]
