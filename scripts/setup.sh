#!/usr/bin/env bash
# Set up (or refresh) the project's virtualenv in .venv. Idempotent and quick when nothing changed.
#
# llama-cpp-python is compiled here, for a portable x86-64 baseline by default: a build tuned
# to the host (GGML_NATIVE=ON) segfaulted on every decode on a CPU with AMX. Set
# FRONTDESK_LLAMA_BUILD=native for a build tuned to this machine; its wheel is cached under a
# key that includes this CPU's flags, so it is never reused on another CPU.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
LLAMA_VERSION=0.3.36
if [ ! -x .venv/bin/python ]; then
  echo "frontdesk: creating .venv with $($PYTHON --version)" >&2
  "$PYTHON" -m venv .venv
fi

cpu_flags() { grep -m1 '^flags' /proc/cpuinfo 2>/dev/null | tr ' ' '\n' | sort | tr '\n' ' '; }
has_flag() { grep -m1 '^flags' /proc/cpuinfo 2>/dev/null | grep -qw "$1"; }

case "${FRONTDESK_LLAMA_BUILD:-portable}" in
  native)
    LLAMA_CMAKE_ARGS="-DGGML_NATIVE=ON"
    build_key="native $(cpu_flags)" ;;
  portable)
    if has_flag avx2 && has_flag fma && has_flag f16c; then
      LLAMA_CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON"
    else  # older x86-64 (or not x86): the compiler's generic baseline
      LLAMA_CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=OFF -DGGML_AVX2=OFF -DGGML_FMA=OFF -DGGML_F16C=OFF -DGGML_BMI2=OFF"
    fi
    LLAMA_CMAKE_ARGS="$LLAMA_CMAKE_ARGS -DGGML_AVX512=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF"
    build_key="portable $(uname -m)" ;;
  *)
    echo "frontdesk: FRONTDESK_LLAMA_BUILD must be 'portable' or 'native'" >&2; exit 2 ;;
esac
build_hash=$(printf '%s|%s|%s' "$LLAMA_VERSION" "$LLAMA_CMAKE_ARGS" "$build_key" | sha256sum | cut -c1-16)

# Re-install only when the declared dependencies or the llama.cpp build change.
stamp=.venv/.frontdesk-installed
wanted=$( (sha256sum pyproject.toml scripts/setup.sh app/core/models/catalog.toml; echo "$build_hash") | sha256sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$wanted" ]; then
  exit 0
fi

export PIP_DISABLE_PIP_VERSION_CHECK=1
# CPU torch first: an unpinned torch (pulled in by sentence-transformers) resolves to a multi-GB CUDA build.
.venv/bin/pip install --quiet "torch==2.13.0"

# llama-cpp-python: our own wheel cache, keyed by version, CMake flags and (for native) the CPU.
# pip's wheel cache is keyed by the sdist alone, so it would hand a wheel built for one CPU to
# another: --no-cache-dir keeps it out of the way.
wheels="${FRONTDESK_WHEEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/frontdesk/wheels}/llama-cpp-python-$LLAMA_VERSION-$build_hash"
if ! ls "$wheels"/llama_cpp_python-*.whl >/dev/null 2>&1; then
  echo "frontdesk: building llama-cpp-python $LLAMA_VERSION (${FRONTDESK_LLAMA_BUILD:-portable}; about 6 minutes on 2 cores)" >&2
  mkdir -p "$wheels.tmp"
  CMAKE_ARGS="$LLAMA_CMAKE_ARGS" CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)} \
    .venv/bin/pip wheel --quiet --no-deps --no-cache-dir --no-binary llama-cpp-python \
    -w "$wheels.tmp" "llama-cpp-python==$LLAMA_VERSION"
  rm -rf "$wheels" && mv "$wheels.tmp" "$wheels"
fi
if [ "$(cat .venv/.frontdesk-llama-build 2>/dev/null)" != "$build_hash" ]; then
  .venv/bin/pip install --quiet --force-reinstall --no-deps "$wheels"/llama_cpp_python-*.whl
  echo "$build_hash" > .venv/.frontdesk-llama-build
fi
.venv/bin/pip install --quiet -e ".[test]"

# The default local model (pinned and SHA-256 verified; skipped when already installed).
# FRONTDESK_SKIP_MODEL_INSTALL=1 keeps the bundled SmolLM2 only (e.g. on a small disk).
if [ "${FRONTDESK_SKIP_MODEL_INSTALL:-0}" != 1 ]; then
  .venv/bin/frontdesk models install --default
fi

# Last: a real decode, in a child process, so a build that can't run on this CPU stops here.
if ! .venv/bin/frontdesk models check; then
  echo "frontdesk: the llama.cpp build cannot decode on this machine (see above)." >&2
  echo "  Rebuild portable: FRONTDESK_LLAMA_BUILD=portable rm -f $stamp && scripts/setup.sh" >&2
  exit 1
fi
echo "$wanted" > "$stamp"
