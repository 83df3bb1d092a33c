"""The stand-in's ``POST /v1/chat/completions``: answers, structured outputs, and misbehaviour on request.

A request names a model: any model is served (``gpt-4o-mini``, a local
model's alias) except a fine-tuned one (``ft:...``), which must come from a
succeeded job of this server or be listed in ``models``; any other gets a
404 ``model_not_found``, as from OpenAI. With ``response_format={"type":
"json_schema", ...}`` (OpenAI, vLLM, llama.cpp's own server) or
``{"type": "json_object", "schema": ...}`` (llama-cpp-python's server) the
content is the JSON object ``{"price": N}``; built with ``json_schema=False``
/ ``json_object=False`` the server answers those with a 400, like one
without structured outputs.

Misbehaviour, for clients' retry and back-off logic: ``script`` holds one
behaviour per chat request in arrival order (see :data:`BEHAVIOURS`), then
``default`` applies; ``choose(body)`` may pick one from the request itself
(None: the script). ``max_concurrent``: requests beyond this many in flight
get a 429 with ``Retry-After`` (a rate limit on concurrency); ``delay_s``
makes every answer take that long (latency), ``hang_s`` is how long a
``hang`` lasts before it answers.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from price_bench.testing.openai_server.fine_tuning import FineTuningEndpoints
from price_bench.testing.openai_server.wire import APIError, Reply, json_body

#: What a scripted chat request gets: an answer, an HTTP error, a hang past the client's
#: timeout (then an answer), a truncated JSON body, an HTML page with status 200, empty content.
BEHAVIOURS = ("ok", "429", "500", "503", "hang", "malformed", "html", "empty", "400", "401")


def default_answer(request: dict[str, Any]) -> str:
    """A deterministic price for a request: the last user message's length, in dollars."""
    messages = request.get("messages") or []
    user = next((m.get("content") for m in reversed(messages) if isinstance(m, dict) and m.get("role") == "user"), "")
    return f"{len(str(user)) % 500 + 1}.00"


class ChatEndpoints(FineTuningEndpoints):
    """Chat completions, with counters for tests: :attr:`chat_requests`, :attr:`answered`,
    :attr:`rate_limited`, :attr:`in_flight`, :attr:`max_in_flight` and :attr:`bodies` (request bodies)."""

    def __init__(
        self,
        script: Iterable[str] = (),
        *,
        default: str = "ok",
        answer: Callable[[dict[str, Any]], str] = default_answer,
        choose: Callable[[dict[str, Any]], str | None] | None = None,
        models: Iterable[str] = (),
        json_schema: bool = True,
        json_object: bool = True,
        max_concurrent: int | None = None,
        retry_after: str = "0.05",
        delay_s: float = 0.0,
        hang_s: float = 3.0,
        **fine_tuning: Any,
    ) -> None:
        super().__init__(**fine_tuning)
        self.script = list(script)
        for behaviour in [*self.script, default]:
            if behaviour not in BEHAVIOURS:
                raise ValueError(f"unknown behaviour {behaviour!r}; expected one of {BEHAVIOURS}")
        self.default = default
        self.answer = answer
        self.choose = choose
        self.models = set(models)
        self.json_schema = json_schema
        self.json_object = json_object
        self.max_concurrent = max_concurrent
        self.retry_after = retry_after
        self.delay_s = delay_s
        self.hang_s = hang_s
        self.bodies: list[dict[str, Any]] = []
        self.chat_requests = 0
        self.answered = 0
        self.rate_limited = 0
        self.in_flight = 0
        self.max_in_flight = 0

    def _chat_request(self, raw: bytes) -> Reply:
        """Answer one chat request (called outside the lock: answers may take ``delay_s`` or hang)."""
        body = json_body(raw)
        with self._lock:
            self.chat_requests += 1
            self.bodies.append(body)
            if self.max_concurrent is not None and self.in_flight >= self.max_concurrent:
                self.rate_limited += 1
                return self._rate_limited()
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            chosen = self.choose(body) if self.choose is not None else None
            behaviour = chosen if chosen is not None else (self.script.pop(0) if self.script else self.default)
        reply = None
        try:
            if self.delay_s:
                time.sleep(self.delay_s)
            reply = self._chat_reply(behaviour, body)
        finally:
            with self._lock:
                self.in_flight -= 1
                if reply is not None and reply.status == 200 and reply.raw is None:
                    self.answered += 1
        return reply

    def _rate_limited(self) -> Reply:
        error = APIError(429, "Rate limit reached for requests", "requests", code="rate_limit_exceeded")
        return Reply.error(error, headers={"Retry-After": self.retry_after})

    def _chat_reply(self, behaviour: str, body: dict[str, Any]) -> Reply:
        if behaviour == "hang":
            time.sleep(self.hang_s)
            behaviour = "ok"
        if behaviour == "429":
            return self._rate_limited()
        if behaviour in ("500", "503"):
            return Reply.error(APIError(int(behaviour), f"fake server error {behaviour}", "server_error"))
        if behaviour == "400":
            return Reply.error(APIError(400, "fake bad request"))
        if behaviour == "401":
            return Reply.error(APIError(401, "Incorrect API key provided.", code="invalid_api_key"))
        if behaviour == "malformed":
            return Reply(200, raw=b'{"id": "chatcmpl-x", "choices": [{"message": ')
        if behaviour == "html":
            return Reply(200, raw=b"<html><body>502 Bad Gateway</body></html>", content_type="text/html")
        try:
            return Reply(200, self.completion(body, empty=behaviour == "empty"))
        except APIError as exc:
            return Reply.error(exc)

    def completion(self, body: dict[str, Any], *, empty: bool = False) -> dict[str, Any]:
        """The ``chat.completion`` for a valid request body (raises :class:`APIError` for an invalid one)."""
        model, messages = body.get("model"), body.get("messages")
        if not model or not isinstance(model, str):
            raise APIError(400, "Missing required parameter: 'model'.", param="model")
        if not isinstance(messages, list) or not messages:
            raise APIError(400, "Missing required parameter: 'messages'.", param="messages")
        structured = _response_format(body.get("response_format"))
        if (structured == "json_schema" and not self.json_schema) or (structured == "json_object" and not self.json_object):
            message = f"Invalid parameter: 'response_format' of type '{structured}' is not supported with this model."
            raise APIError(400, message, param="response_format")
        text = "" if empty else self._answer_text(model, body)
        if structured and not empty:
            text = json.dumps({"price": _as_number(text)})
        prompt_chars = sum(len(str(m.get("content", ""))) for m in messages if isinstance(m, dict))
        prompt_tokens = prompt_chars // 4 + 3 * len(messages) + 3
        completion_tokens = len(text) // 4 + 1
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": text, "refusal": None}, "logprobs": None, "finish_reason": "stop"}
            ],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens, "total_tokens": prompt_tokens + completion_tokens},
            "system_fingerprint": "fp_fake",
            "service_tier": "default",
        }

    def _answer_text(self, model: str, body: dict[str, Any]) -> str:
        if not model.startswith("ft:") or model in self.models:
            return self.answer(body)
        with self._lock:
            text = self.fine_tuned_answer(model)
        if text is None:
            message = f"The model `{model}` does not exist or you do not have access to it."
            raise APIError(404, message, code="model_not_found")
        return text


def _response_format(value: Any) -> str | None:
    """"json_schema" or "json_object" for a structured response format, else None; a malformed one is a 400."""
    if value is None:
        return None
    if not isinstance(value, dict) or value.get("type") not in ("text", "json_object", "json_schema"):
        raise APIError(400, "Invalid value for 'response_format.type'.", param="response_format.type")
    if value["type"] == "text":
        return None
    if value["type"] == "json_object":
        return "json_object"
    schema = value.get("json_schema")
    if not isinstance(schema, dict) or not schema.get("name") or not isinstance(schema.get("schema"), dict):
        message = "Missing required parameter: 'response_format.json_schema.name' or '.schema'."
        raise APIError(400, message, param="response_format.json_schema")
    return "json_schema"


def _as_number(text: str) -> float:
    match = re.search(r"-?[0-9]+(?:\.[0-9]+)?", text.replace(",", ""))
    return float(match.group(0)) if match else 0.0
