"""The fine-tuning job's state, kept in the work folder so that nothing is paid for twice.

``<workdir>/openai-ft-job.json`` is rewritten atomically (synced temporary
sibling, then rename) after every step: files written, each file uploaded,
job creation about to be requested (with the ``create_token`` that the job
carries in its metadata), job created, each status change, the fine-tuned
model's name. A rerun, also one after Ctrl-C or a crash at any point, picks
up from the last step recorded; a job whose creation request was sent but
whose answer was lost is found again by its ``create_token``.

The harness names work folders after the whole config, so a run with
``confirm=true`` or with another predict-time option gets a fresh folder.
So that such a run does not pay for a second identical job, every state that
has a job is also copied to a ledger, ``<data home>/openai-ft/jobs/<training
key>.json``, keyed by what the job trains on (:func:`training_key`); a fresh
work folder adopts a live or succeeded job from there.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from price_bench_openai_ft.training_data import atomic_write_bytes

STATE_FILE = "openai-ft-job.json"
LEDGER_DIR = ("openai-ft", "jobs")
STATE_VERSION = 1


class StateError(ValueError):
    """The state file is unreadable (the message names it)."""


@dataclass
class UploadedFile:
    """A local JSONL file and, once uploaded, its OpenAI file id."""

    path: str
    sha256: str
    examples: int
    id: str | None = None


@dataclass
class JobState:
    """Everything needed to resume a fine-tuning job."""

    base_model: str
    train: UploadedFile | None = None
    validation: UploadedFile | None = None
    estimate: dict[str, Any] | None = None
    create_token: str | None = None
    job_id: str | None = None
    status: str | None = None
    fine_tuned_model: str | None = None
    error: str | None = None
    base_url: str | None = None
    training_key: str | None = None
    version: int = STATE_VERSION
    updated_at: float = field(default_factory=time.time)

    @property
    def succeeded(self) -> bool:
        """True once the job succeeded and its model's name is known."""
        return self.status == "succeeded" and bool(self.fine_tuned_model)

    def new_create_token(self) -> str:
        """A fresh token for the next job creation request (stored before the request)."""
        self.create_token = uuid.uuid4().hex
        return self.create_token

    def save(self, workdir: Path) -> Path:
        """Write the state atomically to ``workdir / STATE_FILE``."""
        self.updated_at = time.time()
        path = Path(workdir) / STATE_FILE
        data = (json.dumps(asdict(self), indent=2, sort_keys=True) + "\n").encode()
        atomic_write_bytes(path, data)
        if self.training_key and (self.job_id or self.create_token):
            atomic_write_bytes(ledger_path(self.training_key), data)
        return path

    @classmethod
    def load(cls, workdir: Path) -> JobState | None:
        """The saved state, or None when there is none."""
        path = Path(workdir) / STATE_FILE
        if not path.exists():
            return None
        return cls.from_file(path)

    @classmethod
    def from_file(cls, path: Path) -> JobState:
        """Read a state file; :class:`StateError` names the file when it is broken."""
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            for key in ("train", "validation"):
                if data.get(key) is not None:
                    data[key] = UploadedFile(**data[key])
            return cls(**data)
        except (OSError, json.JSONDecodeError, TypeError) as exc:
            raise StateError(f"{path}: unreadable fine-tuning state ({exc}); delete it to start over") from None


def training_key(**parts: Any) -> str:
    """sha256 (24 hex digits) of what a job trains on: endpoint, base model, file hashes, hyperparameters."""
    canonical = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:24]


def ledger_dir() -> Path:
    """``<data home>/openai-ft/jobs``."""
    from price_bench import data_home

    return data_home().joinpath(*LEDGER_DIR)


def ledger_path(key: str) -> Path:
    return ledger_dir() / f"{key}.json"


def adoptable(key: str) -> JobState | None:
    """The ledger's state for this training key: a live or succeeded job, or a creation
    request whose answer was lost (``create_token`` without ``job_id``); failed and
    cancelled jobs are not reused."""
    path = ledger_path(key)
    if not path.exists():
        return None
    state = JobState.from_file(path)
    if state.job_id:
        return state if state.status not in ("failed", "cancelled") else None
    return state if state.create_token else None


def known_states() -> list[tuple[Path, JobState]]:
    """Every job in the ledger, newest first (unreadable entries are skipped)."""
    found = []
    for path in ledger_dir().glob("*.json"):
        try:
            found.append((path, JobState.from_file(path)))
        except StateError:
            continue
    return sorted(found, key=lambda pair: pair[1].updated_at, reverse=True)
