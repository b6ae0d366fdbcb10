# Quorum in a container: `docker compose up -d` (see the README, "Self-hosting with Docker").

# --- build: install Quorum and its dependencies into a virtualenv --------------------------
FROM python:3.11-slim AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /src
# Only what `pip install .` needs (README.md is the package's readme); never .env.
COPY pyproject.toml README.md run.py ./
COPY bot ./bot
COPY cogs ./cogs
# The bot itself only: no test or playground extras.
RUN pip install --no-cache-dir .

# --- runtime ---------------------------------------------------------------------------------
FROM python:3.11-slim

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    DATABASE_PATH=/app/data/quorum.sqlite3 \
    MPLBACKEND=Agg \
    MPLCONFIGDIR=/app/.matplotlib

# pg_dump, for `python run.py backup` of a PostgreSQL database (Debian 12's client is 15,
# the server of compose.postgres.yaml).
RUN apt-get update && apt-get install -y --no-install-recommends postgresql-client \
    && rm -rf /var/lib/apt/lists/*

RUN groupadd --system --gid 10001 quorum \
    && useradd --system --uid 10001 --gid quorum --home-dir /app --no-create-home \
       --shell /usr/sbin/nologin quorum

WORKDIR /app
COPY --from=build /opt/venv /opt/venv
COPY run.py ./
# The data folder exists and belongs to quorum before VOLUME, so a new named volume starts
# out writable by the bot.
RUN mkdir -p /app/data /app/.matplotlib && chown quorum:quorum /app/data /app/.matplotlib

USER quorum
# Build matplotlib's font cache now rather than when the first poll closes.
RUN python -c "import matplotlib.pyplot"

VOLUME ["/app/data"]

# run.py stops taking votes on SIGTERM and finishes those in flight (docker stop).
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 \
    CMD ["python", "run.py", "check", "--offline"]

CMD ["python", "run.py"]
