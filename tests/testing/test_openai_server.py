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


def _training_file(client, prices=(10, 20, 40)):
    lines = [json.dumps({"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": f"Price is ${p}.00"}]}) for p in prices]
    return client.files.create(file=("train.jsonl", ("\n".join(lines) + "\n").encode()), purpose="fine-tune")


def test_fine_tuning_job_lifecycle_events_checkpoints_and_the_tuned_model():
    with FakeOpenAIServer(api_key="sk-test") as server:
        client = sdk(server)
        upload = _training_file(client)
        assert upload.id.startswith("file-") and server.file_contents[upload.id].count(b"\n") == 3
        job = client.fine_tuning.jobs.create(model="gpt-4o-mini-2024-07-18", training_file=upload.id, suffix="t", metadata={"k": "v"})
        assert job.id.startswith("ftjob-") and job.status == "validating_files"
        with pytest.raises(openai.NotFoundError, match="does not exist"):
            client.chat.completions.create(model="ft:gpt-4o-mini-2024-07-18:x::nope", messages=MESSAGES)
        statuses = [client.fine_tuning.jobs.retrieve(job.id).status for _ in range(6)]
        assert statuses == ["validating_files", "queued", "running", "running", "succeeded", "succeeded"]
        tuned = client.fine_tuning.jobs.retrieve(job.id).fine_tuned_model
        assert tuned.startswith("ft:gpt-4o-mini-2024-07-18:price-bench-stand-in:t:")
        events = client.fine_tuning.jobs.list_events(job.id, limit=100).data
        assert events[0].message == "The job has successfully completed" and events[-1].message.startswith("Created fine-tuning job")
        checkpoints = client.fine_tuning.jobs.checkpoints.list(job.id).data
        assert [c.step_number for c in checkpoints] == [2, 1] and checkpoints[0].fine_tuned_model_checkpoint.endswith("ckpt-step-2")
        answer = client.chat.completions.create(model=tuned, messages=MESSAGES).choices[0].message.content
        assert answer == "Price is $23.00"  # the rounded mean of the training prices
        assert [j.id for j in client.fine_tuning.jobs.list(metadata={"k": "v"}).data] == [job.id]
        assert client.fine_tuning.jobs.list(metadata={"k": "other"}).data == []
        with pytest.raises(openai.BadRequestError, match="cannot be cancelled"):
            client.fine_tuning.jobs.cancel(job.id)
        assert server.count("GET", r"/v1/fine_tuning/jobs/[^/]+") == 7
        with pytest.raises(openai.AuthenticationError):
            openai.OpenAI(base_url=server.url, api_key="sk-wrong", max_retries=0).models.list()
        assert server.requests[-1].status == 401


def test_failed_and_cancelled_jobs_and_a_lost_create_answer():
    with FakeOpenAIServer(fail_jobs="bad examples", job_script=["validating_files", "succeeded"]) as server:
        client = sdk(server)
        upload = _training_file(client)
        failed = client.fine_tuning.jobs.create(model="m", training_file=upload.id)
        client.fine_tuning.jobs.retrieve(failed.id)
        done = client.fine_tuning.jobs.retrieve(failed.id)
        assert done.status == "failed" and done.error.message == "bad examples" and done.fine_tuned_model is None
        server.fail_jobs = None
        running = client.fine_tuning.jobs.create(model="m", training_file=upload.id)
        assert client.fine_tuning.jobs.cancel(running.id).status == "cancelled"
        server.drop_answers["POST /v1/fine_tuning/jobs"] = 1
        with pytest.raises(openai.APIConnectionError):
            client.fine_tuning.jobs.create(model="m", training_file=upload.id)
        assert len(server.jobs) == 3  # created on the server, although its answer was lost
        with pytest.raises(openai.BadRequestError, match="purpose 'fine-tune'"):
            client.fine_tuning.jobs.create(model="m", training_file=client.files.create(file=("b.jsonl", b"{}\n"), purpose="batch").id)
    with pytest.raises(ValueError, match="unknown fine-tuning job state"):
        FakeOpenAIServer(job_script=["paused"])
