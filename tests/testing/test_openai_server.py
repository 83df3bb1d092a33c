"""The core OpenAI stand-in (price_bench.testing.openai_server) with the real openai SDK."""

from __future__ import annotations

import json
import threading

import pytest

from price_bench.testing.openai_server import FakeOpenAIServer

openai = pytest.importorskip("openai")

MESSAGES = [{"role": "user", "content": "How much does this cost?\n\nA kettle"}]


def sdk(server: FakeOpenAIServer):
    return openai.OpenAI(base_url=server.url, api_key="sk-test", max_retries=0)


def test_chat_completion_shapes_and_structured_outputs():
    schema = {"type": "object", "properties": {"price": {"type": "number"}}, "required": ["price"]}
    with FakeOpenAIServer() as server:
        client = sdk(server)
        plain = client.chat.completions.create(model="m", messages=MESSAGES)
        structured = client.chat.completions.create(
            model="m", messages=MESSAGES, response_format={"type": "json_schema", "json_schema": {"name": "price", "schema": schema}}
        )
        assert server.url.endswith("/v1") and server.chat_requests == server.answered == 2
    assert plain.object == "chat.completion" and plain.usage.total_tokens > 0
    assert isinstance(json.loads(structured.choices[0].message.content)["price"], float)


def test_servers_without_structured_outputs_answer_400():
    with FakeOpenAIServer(json_schema=False) as server:
        with pytest.raises(openai.BadRequestError, match="response_format"):
            sdk(server).chat.completions.create(model="m", messages=MESSAGES, response_format={"type": "json_schema", "json_schema": {"name": "p", "schema": {}}})


def test_rate_limit_on_concurrency_answers_429_with_retry_after():
    with FakeOpenAIServer(max_concurrent=1, delay_s=0.3, retry_after="7") as server:
        errors = []

        def call():
            try:
                sdk(server).chat.completions.create(model="m", messages=MESSAGES)
            except openai.RateLimitError as exc:
                errors.append(exc.response.headers.get("retry-after"))

        threads = [threading.Thread(target=call) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert server.max_in_flight == 1 and server.answered + server.rate_limited == 3
    assert errors and set(errors) == {"7"} and server.rate_limited == len(errors)


def test_scripted_misbehaviour_and_a_stopped_server_keeps_its_url():
    server = FakeOpenAIServer(["500", "401"]).start()
    client = sdk(server)
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(model="m", messages=MESSAGES)
    with pytest.raises(openai.AuthenticationError):
        client.chat.completions.create(model="m", messages=MESSAGES)
    assert client.chat.completions.create(model="m", messages=MESSAGES).choices[0].message.content
    url = server.url
    server.stop()
    assert server.url == url
    with pytest.raises(openai.APIConnectionError):
        client.chat.completions.create(model="m", messages=MESSAGES)
    with pytest.raises(ValueError, match="unknown behaviour"):
        FakeOpenAIServer(["teapot"])
