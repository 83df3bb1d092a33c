"""A local, misbehaving-on-request stand-in for OpenAI's HTTP API (tests and benchmarks).

**This is not OpenAI.** :class:`FakeOpenAIServer` is an ``http.server`` in a
daemon thread on 127.0.0.1 (a free port), following the official request and
response shapes of the endpoints it implements, and nothing else, so that
the real ``openai`` client talks to it (``base_url=server.url``):

* ``POST /v1/chat/completions``, with structured outputs, a concurrency rate
  limit, latency and scripted faults (429, 5xx, hangs past a timeout,
  malformed bodies): :mod:`.chat`;
* ``/v1/files`` (upload, retrieve, content): :mod:`.files`;
* ``/v1/batches`` (create, list, retrieve, cancel; each retrieve advances a batch): :mod:`.batches`;
* ``/v1/fine_tuning/jobs`` (create, list, retrieve, events, checkpoints,
  cancel; each retrieve advances a job) and chat with the fine-tuned model: :mod:`.fine_tuning`;
* ``GET /v1/models``.

Errors use OpenAI's envelope ``{"error": {"message", "type", "param", "code"}}``
(:mod:`.wire`). Every request is recorded with its answer
(:attr:`FakeOpenAIServer.requests`); ``api_key`` makes the server check
``Authorization``; ``drop_answers`` loses answers on the way back.

Usage::

    with FakeOpenAIServer(max_concurrent=4, delay_s=0.05) as server:
        client = openai.OpenAI(base_url=server.url, api_key="sk-test")
"""

from __future__ import annotations

from price_bench.testing.openai_server.batches import BATCH_STATES, DEFAULT_BATCH_SCRIPT
from price_bench.testing.openai_server.chat import BEHAVIOURS, default_answer
from price_bench.testing.openai_server.fine_tuning import DEFAULT_JOB_SCRIPT, JOB_STATES
from price_bench.testing.openai_server.server import FakeOpenAIServer
from price_bench.testing.openai_server.wire import APIError, RecordedRequest

__all__ = [
    "BATCH_STATES",
    "BEHAVIOURS",
    "DEFAULT_BATCH_SCRIPT",
    "DEFAULT_JOB_SCRIPT",
    "JOB_STATES",
    "APIError",
    "FakeOpenAIServer",
    "RecordedRequest",
    "default_answer",
]
