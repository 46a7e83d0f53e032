# syntax=docker/dockerfile:1
# The studio image: the same scripts/setup.sh as `make run`, in two stages.

FROM node:20-bookworm-slim AS pwa
WORKDIR /src
COPY scripts/setup.sh scripts/setup.sh
COPY pwa/package.json pwa/package-lock.json pwa/
RUN cd pwa && npm ci --no-audit --no-fund --loglevel=error
COPY pwa pwa
RUN scripts/setup.sh pwa

FROM python:3.11-slim-bookworm AS studio
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends git git-lfs \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
ENV VENV=/opt/venv PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1
COPY scripts/setup.sh scripts/setup.sh
COPY pyproject.toml requirements.lock requirements-gpu.lock README.md ./
COPY app app
COPY sync sync
COPY tasks tasks
COPY data/templates data/templates
COPY data/samples data/samples
RUN scripts/setup.sh python
COPY --from=pwa /src/pwa/build pwa/build
RUN useradd --create-home --uid 1000 studio && mkdir -p /data /workspace && chown studio /data /workspace
USER studio
ENV STUDIO_DATA_DIR=/data WORKSPACE_ROOT=/workspace HOST=0.0.0.0 PORT=8000
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/api/health')"
CMD ["studio", "serve"]
