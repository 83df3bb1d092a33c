"""The OpenAI Batch API as a way of sending a client's requests: half the price, answers within 24 h.

:class:`BatchRun` takes the same conversations and parameters as
:meth:`LLMClient.chat_many <price_bench_frontier.client.LLMClient.chat_many>`
and returns the same :class:`~price_bench_frontier.client.ChatResult` list:

1. answers already in the response cache are used as they are;
2. the other requests are written as JSONL (``custom_id`` = the cache key),
   uploaded (``purpose="batch"``) and a batch is created for
   ``/v1/chat/completions`` with ``metadata.price_bench_requests`` = a digest
   of the request set;
3. the batch is polled, with its request counts printed as they change,
   until it is completed, failed, expired or cancelled;
4. the output and error files are downloaded and every line is checked
   (a known ``custom_id``, a 200 with a usable completion) before its answer
   goes into the same cache, costed at the batch price.

Every id is saved in ``<work folder>/batch-<digest>.json`` as soon as it is
known, so Ctrl-C (or a crash) and a rerun resume the same batch instead of
paying again; a creation whose answer was lost is found again by its
metadata. A failed batch (rejected input, nothing billed) is replaced by a new
one on the next run; requests an expired or cancelled batch did not answer
are sent in a new batch on the next run.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from price_bench_frontier.client import BUDGET_EXHAUSTED, ChatResult, LLMClient, Messages, RetryableError

log = logging.getLogger(__name__)

ENDPOINT = "/v1/chat/completions"
TERMINAL = ("completed", "failed", "expired", "cancelled")
METADATA_KEY = "price_bench_requests"


class BatchError(RuntimeError):
    """The Batch API could not be used (upload, creation or polling kept failing)."""


@dataclass
class BatchState:
    """What is known about one request set's batch (saved as JSON in the work folder)."""

    digest: str
    requests: int
    input_file_id: str | None = None
    batch_id: str | None = None
    status: str | None = None
    counts: dict[str, int] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> BatchState | None:
        """The saved state, or None when absent or unreadable (a fresh start)."""
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return cls(
                digest=str(data["digest"]),
                requests=int(data["requests"]),
                input_file_id=data.get("input_file_id"),
                batch_id=data.get("batch_id"),
                status=data.get("status"),
                counts=dict(data.get("counts") or {}),
            )
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def save(self, path: Path) -> None:
        """Write atomically (a rename), so that an interrupt never leaves half a file."""
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.__dict__, indent=1), encoding="utf-8")
        tmp.replace(path)


class BatchRun:
    """Sends a client's uncached requests as one OpenAI batch and waits for it."""

    def __init__(
        self,
        client: LLMClient,
        folder: Path,
        *,
        poll_interval_s: float = 30.0,
        max_wait_s: float | None = None,
        report: Callable[[str], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.client = client
        self.folder = Path(folder)
        self.poll_interval_s = poll_interval_s
        self.max_wait_s = max_wait_s
        self.report = report or (lambda line: print(line, file=sys.stderr, flush=True))
        self._sleep = sleep
        self.last: BatchState | None = None

    def chat_many(self, conversations: Sequence[Messages], **params: Any) -> list[ChatResult]:
        """One result per conversation, in order: cached answers, then the batch's."""
        params = {k: v for k, v in params.items() if v is not None}
        keys = [self.client.request_key(messages, params) for messages in conversations]
        results: list[ChatResult | None] = [self.client.cached(key) for key in keys]
        missing = {key: [dict(m) for m in conversations[i]] for i, key in enumerate(keys) if results[i] is None}
        if not missing:
            return results  # type: ignore[return-value]
        answers = self._run(missing, params)
        failure = ChatResult(text=None, error="batch gave no answer for this request")
        return [result if result is not None else answers.get(key, failure) for key, result in zip(keys, results)]

    # -- steps ---------------------------------------------------------------------------------

    def _run(self, missing: dict[str, list[dict]], params: dict[str, Any]) -> dict[str, ChatResult]:
        digest = hashlib.sha256("\n".join(sorted(missing)).encode()).hexdigest()[:20]
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"batch-{digest}.json"
        state = BatchState.load(path)
        if state is None or state.digest != digest or state.status == "failed":
            state = BatchState(digest, len(missing))
        self.last = state
        if state.batch_id is None:
            if self.client.budget.exhausted() or not self._within_budget(missing, params):
                return {key: ChatResult(text=None, error=BUDGET_EXHAUSTED) for key in missing}
            self._create(state, missing, params, path)
        batch = self._wait(state, path)
        return self._collect(batch, state, missing, path)

    def _within_budget(self, missing: dict[str, list[dict]], params: dict[str, Any]) -> bool:
        """False when an upper estimate of the batch's cost (4 chars a token) would pass the cap."""
        cap = self.client.budget.cap_usd
        if cap is None:
            return True
        out = int(params.get("max_tokens") or params.get("max_completion_tokens") or 256)
        tokens_in = sum(len(json.dumps(messages)) // 4 for messages in missing.values())
        estimate = self.client.prices.cost(self.client.model, tokens_in, out * len(missing), batch=True)
        if estimate.known and self.client.budget.spent_usd + estimate.usd > cap:
            self.report(f"batch: estimated ${estimate.usd:.4f} would pass the budget of ${cap:.2f}; nothing sent")
            return False
        return True

    def _create(self, state: BatchState, missing: dict[str, list[dict]], params: dict[str, Any], path: Path) -> None:
        sdk = self.client.openai
        found = self._find_by_metadata(state.digest)
        if found is not None:  # created before, but its answer (or our save) was lost
            state.batch_id, state.input_file_id, state.status = found.id, found.input_file_id, found.status
            state.save(path)
            return
        if state.input_file_id is None:
            lines = [
                json.dumps({"custom_id": key, "method": "POST", "url": ENDPOINT, "body": {"model": self.client.model, "messages": messages, **params}})
                for key, messages in missing.items()
            ]
            data = ("\n".join(lines) + "\n").encode()
            (self.folder / f"batch-{state.digest}.jsonl").write_bytes(data)
            uploaded = self._call("upload the batch input", lambda: sdk.files.create(file=(f"price-bench-{state.digest}.jsonl", data), purpose="batch"))
            state.input_file_id = uploaded.id
            state.save(path)
        batch = self._call(
            "create the batch",
            lambda: sdk.batches.create(
                input_file_id=state.input_file_id, endpoint=ENDPOINT, completion_window="24h", metadata={METADATA_KEY: state.digest}
            ),
        )
        state.batch_id, state.status = batch.id, batch.status
        state.save(path)
        self.report(f"batch {batch.id}: created for {state.requests} requests ({batch.status}); state in {path}")

    def _find_by_metadata(self, digest: str) -> Any:
        try:
            for batch in self.client.openai.batches.list(limit=100):
                if (batch.metadata or {}).get(METADATA_KEY) == digest and batch.status != "failed":
                    return batch
        except Exception as exc:  # listing is a best effort: creating anew is always safe when none is found
            log.info("could not list batches: %s", exc)
        return None

    def _wait(self, state: BatchState, path: Path) -> Any:
        started = time.monotonic()
        seen = None
        while True:
            batch = self._call("poll the batch", lambda: self.client.openai.batches.retrieve(state.batch_id))
            counts = batch.request_counts
            line = (batch.status, counts.completed if counts else None, counts.failed if counts else None)
            if line != seen:
                seen = line
                state.status = batch.status
                state.counts = {"total": counts.total, "completed": counts.completed, "failed": counts.failed} if counts else {}
                state.save(path)
                done = f" {counts.completed}/{counts.total} done, {counts.failed} failed" if counts and counts.total else ""
                self.report(f"batch {batch.id}: {batch.status}{done}")
            if batch.status in TERMINAL:
                return batch
            if self.max_wait_s is not None and time.monotonic() - started > self.max_wait_s:
                raise BatchError(f"batch {batch.id} still {batch.status} after {self.max_wait_s:.0f}s; rerun to resume it (nothing is sent twice)")
            self._sleep(self.poll_interval_s)

    def _collect(self, batch: Any, state: BatchState, missing: dict[str, list[dict]], path: Path) -> dict[str, ChatResult]:
        answers: dict[str, ChatResult] = {}
        if batch.status == "failed":
            problems = "; ".join(f"line {e.line}: {e.message}" if e.line else str(e.message) for e in (batch.errors.data if batch.errors else []) or [])
            message = f"batch {batch.id} failed: {problems or 'no reason given'}"[:300]
            self.report(message)
            return {key: ChatResult(text=None, error=message) for key in missing}
        for file_id in (batch.output_file_id, batch.error_file_id):
            if file_id:
                content = self._call("download the batch results", lambda: self.client.openai.files.content(file_id).read())
                answers.update(self._parse_file(content, missing))
        unanswered = len(missing) - len(answers)
        if unanswered and batch.status in ("expired", "cancelled"):
            self.report(f"batch {batch.id} {batch.status}: {unanswered} requests unanswered; a rerun sends them in a new batch")
        return answers

    def _parse_file(self, content: bytes, missing: dict[str, list[dict]]) -> dict[str, ChatResult]:
        """Answers and per-request errors from an output or error file (untrusted: each line checked)."""
        out: dict[str, ChatResult] = {}
        for number, text in enumerate(content.decode("utf-8", errors="replace").splitlines(), start=1):
            if not text.strip():
                continue
            try:
                line = json.loads(text)
                key = line["custom_id"]
            except (json.JSONDecodeError, KeyError, TypeError):
                log.warning("batch results line %d is not a JSON object with a custom_id: skipped", number)
                continue
            if key not in missing or key in out:
                log.warning("batch results line %d: unknown or repeated custom_id %r: skipped", number, str(key)[:80])
                continue
            response, error = line.get("response") or {}, line.get("error")
            status = response.get("status_code") if isinstance(response, dict) else None
            if status == 200 and isinstance(response.get("body"), dict):
                try:
                    out[key] = self.client.accept(key, json.dumps(response["body"]), batch=True)
                except RetryableError as exc:
                    out[key] = ChatResult(text=None, error=f"batch answer unusable: {exc}")
                continue
            if isinstance(error, dict):
                message = f"batch: {error.get('code')}: {error.get('message')}"
            else:
                body = response.get("body") if isinstance(response, dict) else None
                inner = body.get("error", {}) if isinstance(body, dict) else {}
                message = f"batch: HTTP {status}: {inner.get('message') if isinstance(inner, dict) else inner}"
            out[key] = ChatResult(text=None, error=message[:300])
        return out

    def _call(self, what: str, fn: Callable[[], Any], attempts: int = 5) -> Any:
        """``fn()`` with a few retries on connection trouble and 5xx/429; BatchError at the end."""
        import openai

        for attempt in range(attempts):
            try:
                return fn()
            except (openai.APIConnectionError, openai.RateLimitError, openai.InternalServerError) as exc:
                if attempt == attempts - 1:
                    raise BatchError(f"could not {what}: {exc}") from None
                self._sleep(min(30.0, 0.5 * 2**attempt))
            except openai.APIStatusError as exc:
                raise BatchError(f"could not {what}: HTTP {exc.status_code}: {str(exc)[:200]}") from None
        raise BatchError(f"could not {what}")  # pragma: no cover - the loop returns or raises
