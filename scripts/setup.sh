#!/usr/bin/env bash
# Set up (or refresh) the project's virtualenv in .venv. Idempotent and quick when nothing changed.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "frontdesk: creating .venv with $($PYTHON --version)" >&2
  "$PYTHON" -m venv .venv
fi

# Re-install only when the declared dependencies change.
stamp=.venv/.frontdesk-installed
wanted=$(sha256sum pyproject.toml scripts/setup.sh | sha256sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$wanted" ]; then
  exit 0
fi

export PIP_DISABLE_PIP_VERSION_CHECK=1
# CPU torch first: an unpinned torch (pulled in by sentence-transformers) resolves to a multi-GB CUDA build.
.venv/bin/pip install --quiet "torch==2.13.0"
# llama-cpp-python compiles from source once (about 6 minutes on 2 cores); pip caches the wheel.
CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)} .venv/bin/pip install --quiet -e ".[test]"
echo "$wanted" > "$stamp"
