"""Data-parallel QLoRA training in several processes, started with accelerate or torchrun.

With ``-o qlora.num_processes=N`` (N > 1) the predictor's ``fit`` writes a
job file (``ddp-job.json``: the config with the base model resolved to a
local folder, the seed, the train and validation items) into the work folder
and starts::

    accelerate launch --multi_gpu --num_processes N -m price_bench_qlora.launch WORKDIR
    # or, with -o qlora.launcher=torchrun:
    torchrun --standalone --nproc_per_node N -m price_bench_qlora.launch WORKDIR

(accelerate's ``--multi_gpu`` is its torch.distributed launcher; without
CUDA the processes use the gloo backend on the CPU.) Each process runs the
same :func:`~price_bench_qlora.training.train_adapter` on its shard of every
global batch; the main process writes the checkpoints, the adapter and
``training.json``, and a rerun after an interrupt resumes from the last
checkpoint in every process. The parent then loads the adapter as after any
fit. The job file holds product texts and prices written by the harness, in
the predictor's own work folder.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Sequence

from price_bench import Item

JOB_FILE = "ddp-job.json"
LOG_FILE = "ddp-train.log"


class DistributedTrainingError(RuntimeError):
    """The launched training processes failed (the message ends with the log's last lines)."""


def write_job(workdir: Path, config: dict[str, Any], seed: int, train: Sequence[Item], validation: Sequence[Item]) -> Path:
    """The job file every training process reads."""
    path = workdir / JOB_FILE
    def rows(items: Sequence[Item]) -> list[dict[str, Any]]:
        return [{"id": item.id, "text": item.text, "price": item.price, "category": item.category} for item in items]

    payload = {"config": config, "seed": seed, "train": rows(train), "validation": rows(validation)}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(payload), encoding="utf-8")
    tmp.replace(path)
    return path


def launch_command(launcher: str, processes: int, workdir: Path) -> list[str]:
    """The command that starts ``processes`` training processes on this machine."""
    target = ["-m", "price_bench_qlora.launch", str(workdir)]
    if launcher == "torchrun":
        return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(processes), *target]
    if launcher == "accelerate":
        return [
            sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", str(processes),
            "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", *target,
        ]
    raise ValueError(f"unknown launcher {launcher!r} (expected 'accelerate' or 'torchrun')")


def run_processes(launcher: str, processes: int, workdir: Path, *, threads_per_process: int = 1) -> None:
    """Start the training processes and wait; :class:`DistributedTrainingError` when they fail."""
    log_path = workdir / LOG_FILE
    env = {**os.environ, "OMP_NUM_THREADS": str(threads_per_process), "TOKENIZERS_PARALLELISM": "false"}
    env["PYTHONPATH"] = os.pathsep.join([p for p in sys.path if p] + [env.get("PYTHONPATH", "")]).strip(os.pathsep)
    with open(log_path, "w", encoding="utf-8") as log:
        process = subprocess.run(launch_command(launcher, processes, workdir), stdout=log, stderr=subprocess.STDOUT, env=env, check=False)
    if process.returncode != 0:
        tail = log_path.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-3:]
        raise DistributedTrainingError(f"{launcher} training with {processes} processes exited with code {process.returncode} (log {log_path}): {' | '.join(tail)[-400:]}")


def main(argv: Sequence[str] | None = None) -> int:
    """One training process: read the job file in WORKDIR and fit."""
    import torch

    from price_bench_qlora.predictors import QLoRAPredictor

    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        print("usage: python -m price_bench_qlora.launch WORKDIR (started by accelerate launch or torchrun)", file=sys.stderr)
        return 2
    workdir = Path(args[0])
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1") or 1))
    job = json.loads((workdir / JOB_FILE).read_text(encoding="utf-8"))
    predictor = QLoRAPredictor(QLoRAPredictor.Config.model_validate(job["config"]), seed=int(job["seed"]))
    train = [Item(**row) for row in job["train"]]
    validation = [Item(**row) for row in job["validation"]]
    predictor.fit(train, validation, workdir)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
