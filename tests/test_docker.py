"""Self-hosting with Docker: compose.yaml, the Dockerfile and .dockerignore, and (where a Docker
engine answers) a real build of the image."""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"
COMPOSE = ROOT / "compose.yaml"
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


# --- a real build, where there is a Docker engine -------------------------------------------


def docker(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, check=False)


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
