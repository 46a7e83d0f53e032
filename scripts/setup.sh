#!/usr/bin/env bash
# Installs what the studio needs, skipping what is already in place. Used by `make run`,
# `make test` and the Dockerfile, so every way of starting the studio installs the same things.
#
#   scripts/setup.sh system   Debian packages the tests need: git, git-lfs, redis-server, chromium,
#                             docker-compose (to validate compose.yaml)
#   scripts/setup.sh python   .venv with the locked Python dependencies and the studio itself,
#                             and the gpu extra (requirements-gpu.lock) unless STUDIO_NO_GPU_EXTRA=1
#   scripts/setup.sh pwa      npm dependencies of pwa/ and the built app in pwa/build/
#   scripts/setup.sh interop  npm yjs/y-websocket clients and reference server for the sync tests
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PY=${PYTHON:-python3}
VENV=${VENV:-$ROOT/.venv}
STAMPS=$ROOT/.stamps
mkdir -p "$STAMPS"

stamp_ok() { # name, files...: true when the files are unchanged since the stamp was written
  local name=$1; shift
  [ -f "$STAMPS/$name" ] && [ "$(cat "$@" 2>/dev/null | sha256sum)" = "$(cat "$STAMPS/$name")" ]
}
stamp_write() { local name=$1; shift; cat "$@" | sha256sum > "$STAMPS/$name"; }

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

system() {
  local missing=()
  command -v git >/dev/null || missing+=(git)
  command -v git-lfs >/dev/null || missing+=(git-lfs)
  command -v redis-server >/dev/null || missing+=(redis-server)
  command -v chromium >/dev/null || missing+=(chromium)
  # No Docker engine runs here, but Debian's docker-compose validates compose.yaml (a test does).
  command -v docker-compose >/dev/null || missing+=(docker-compose)
  if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing ${missing[*]} (apt)"
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

python_deps() {
  if [ ! -x "$VENV/bin/python" ]; then
    echo "setup: creating $VENV"
    "$PY" -m venv "$VENV"
  fi
  if ! stamp_ok python requirements.lock pyproject.toml; then
    echo "setup: installing Python dependencies (requirements.lock)"
    "$VENV/bin/pip" install -q --disable-pip-version-check -r requirements.lock
    "$VENV/bin/pip" install -q --disable-pip-version-check --no-deps -e .
    stamp_write python requirements.lock pyproject.toml
  fi
  # The gpu extra (torch, diffusers, transformers: ~1.3 GB) for image.diffusion. The lock pins
  # torch==2.13.0 exactly: pip takes the CPU build where one lies on local disk, the CUDA build
  # from PyPI elsewhere. STUDIO_NO_GPU_EXTRA=1 skips it (the studio runs without it).
  if [ "${STUDIO_NO_GPU_EXTRA:-0}" != 1 ] && ! stamp_ok python-gpu requirements-gpu.lock pyproject.toml; then
    echo "setup: installing the gpu extra (requirements-gpu.lock)"
    "$VENV/bin/pip" install -q --disable-pip-version-check -r requirements-gpu.lock
    stamp_write python-gpu requirements-gpu.lock pyproject.toml
  fi
}

pwa() {
  command -v npm >/dev/null || { echo "setup: npm is missing: install Node.js 20 (https://nodejs.org)" >&2; exit 1; }
  if [ ! -d pwa/node_modules ] || ! stamp_ok npm pwa/package-lock.json; then
    echo "setup: installing npm dependencies (pwa/package-lock.json)"
    (cd pwa && npm ci --no-audit --no-fund --loglevel=error)
    stamp_write npm pwa/package-lock.json
  fi
  if [ -x "$VENV/bin/python" ]; then
    # The PWA's API types come from the app's own OpenAPI document (no server needed).
    "$VENV/bin/python" scripts/dump_openapi.py pwa/openapi.json
    (cd pwa && npm run api-types --silent >/dev/null)
  fi
  local newest
  newest=$(find pwa/src pwa/static pwa/package-lock.json pwa/svelte.config.js pwa/vite.config.ts -type f -newer pwa/build/index.html 2>/dev/null | head -1 || true)
  if [ ! -f pwa/build/index.html ] || [ -n "$newest" ]; then
    echo "setup: building the PWA"
    (cd pwa && npm run build --silent >/dev/null)
  fi
}

interop() {
  # The npm yjs + y-websocket client and the reference server the sync tests run against.
  if [ ! -d tests/interop/node_modules ] || ! stamp_ok interop tests/interop/package-lock.json; then
    echo "setup: installing the interop test clients (tests/interop/package-lock.json)"
    (cd tests/interop && npm ci --no-audit --no-fund --loglevel=error)
    stamp_write interop tests/interop/package-lock.json
  fi
}

for step in "${@:-python pwa}"; do
  for s in $step; do
    case "$s" in
      system) system ;;
      python) python_deps ;;
      pwa) pwa ;;
      interop) interop ;;
      *) echo "setup: unknown step $s" >&2; exit 2 ;;
    esac
  done
done
