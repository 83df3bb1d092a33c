"""End to end: a real `price-bench serve` (uvicorn on 127.0.0.1) driven with a real HTTP client."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.slow
pytest.importorskip("fastapi", reason="the serve extra is not installed: pip install 'price-bench[serve]'")
pytest.importorskip("httpx", reason="the serve extra is not installed: pip install 'price-bench[serve]'")


def _cli_price(kit, fitted, text: str) -> float:
    out = kit.run_cli("predict", "tfidf-ridge", text, "--dataset", "small", "--json", env=fitted.env)
    return json.loads(out.stdout)["price"]


def test_single_and_batch_equal_cli_predict(kit, fitted, client):
    texts = fitted.test_texts[:2]
    expected = [_cli_price(kit, fitted, text) for text in texts]
    singles = []
    for i, text in enumerate(texts):
        response = client.post("/v1/predict", json={"id": f"eq-{i}", "text": text})
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["id"] == f"eq-{i}" and body["fallback"] is False and body["predictor"] == "tfidf-ridge"
        assert body["latency_ms"] >= 0 and body["tokens_in"] == 0 and body["cost_usd"] == 0
        singles.append(body["price"])
    batch = client.post("/v1/predict", json={"items": [{"id": f"b-{i}", "text": t} for i, t in enumerate(texts)]})
    assert batch.status_code == 200, batch.text
    rows = batch.json()["items"]
    assert [row["id"] for row in rows] == ["b-0", "b-1"]
    assert singles == pytest.approx(expected, abs=1e-9)
    assert [row["price"] for row in rows] == pytest.approx(expected, abs=1e-9)


def test_generated_id_and_category(client):
    response = client.post("/v1/predict", json={"text": "Kettle steel compact", "category": "Appliances"})
    assert response.status_code == 200
    assert len(response.json()["id"]) == 32


def _bad_body(label: str, kit) -> bytes:
    bodies = {
        "malformed json": b'{"text": ',
        "empty body": b"",
        "not an object": b"[1, 2]",
        "missing text": b'{"id": "x"}',
        "empty text": b'{"text": ""}',
        "blank text": b'{"text": "   \\n "}',
        "text is a number": b'{"text": 42}',
        "id is a number": b'{"id": 7, "text": "kettle"}',
        "category is a list": b'{"text": "kettle", "category": ["a"]}',
        "unknown field": b'{"text": "kettle", "txt": "x"}',
        "items not a list": b'{"items": "kettle"}',
        "empty batch": b'{"items": []}',
        "blank text in batch": b'{"items": [{"text": "kettle"}, {"text": ""}]}',
        "batch above max": json.dumps({"items": [{"text": "kettle"}] * (kit.MAX_BATCH + 1)}).encode(),
        "text above recipe max": json.dumps({"text": "kettle " * 700}).encode(),  # 4,900 characters: the recipe allows 4,000
        "body above max": json.dumps({"text": "x" * (kit.MAX_BODY + 10)}).encode(),
    }
    return bodies[label]


BAD_INPUTS = [
    ("malformed json", 400, "malformed_json"),
    ("empty body", 400, "empty_body"),
    ("not an object", 422, "invalid_request"),
    ("missing text", 422, "invalid_request"),
    ("empty text", 422, "invalid_request"),
    ("blank text", 422, "invalid_request"),
    ("text is a number", 422, "invalid_request"),
    ("id is a number", 422, "invalid_request"),
    ("category is a list", 422, "invalid_request"),
    ("unknown field", 422, "invalid_request"),
    ("items not a list", 422, "invalid_request"),
    ("empty batch", 422, "invalid_request"),
    ("blank text in batch", 422, "invalid_request"),
    ("batch above max", 413, "batch_too_large"),
    ("text above recipe max", 422, "text_too_long"),
    ("body above max", 413, "body_too_large"),
]


@pytest.mark.parametrize("label,status,code", BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS])
def test_bad_input_is_a_json_4xx(client, kit, label, status, code):
    response = client.post("/v1/predict", content=_bad_body(label, kit), headers={"content-type": "application/json"})
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code and error["status"] == status and error["message"]
    assert "Traceback" not in response.text


def test_chunked_body_above_max_is_refused_while_reading(client):
    def chunks():
        yield b'{"text": "'
        for _ in range(50):
            yield b"x" * 10_000
        yield b'"}'

    response = client.post("/v1/predict", content=chunks())  # no Content-Length: chunked transfer
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "body_too_large"


def test_bad_feedback(client):
    for body in ({"id": "x"}, {"id": "x", "price": -1}, {"id": "x", "price": "12"}, {"price": 3}, {"id": "x", "price": True}):
        response = client.post("/v1/feedback", json=body)
        assert response.status_code == 422, (body, response.text)
    assert client.post("/v1/feedback", content=b"{nope").status_code == 400


def test_unknown_route_and_method(client):
    assert client.get("/nope").json()["error"]["code"] == "not_found"
    response = client.get("/v1/predict")
    assert response.status_code == 405 and response.json()["error"]["code"] == "method_not_allowed"


def test_auth(kit, server):
    import httpx

    with httpx.Client(base_url=server.url, timeout=30) as anonymous:
        assert anonymous.get("/healthz").status_code == 200  # open for load balancers
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {kit.TOKEN}"}, {"Authorization": kit.TOKEN}):
            response = anonymous.post("/v1/predict", json={"text": "kettle"}, headers=headers)
            assert response.status_code == 401, headers
            assert response.headers["www-authenticate"] == "Bearer"
            assert response.json()["error"]["code"] == "unauthorized"
        assert anonymous.get("/metrics").status_code == 401
        assert anonymous.get("/v1/model").status_code == 401
        ok = anonymous.post("/v1/predict", json={"text": "kettle"}, headers={"Authorization": f"Bearer {kit.TOKEN}"})
        assert ok.status_code == 200
    assert kit.TOKEN not in server.stderr()
    assert all(kit.TOKEN not in path.read_text() for path in server.log_dir.iterdir() if path.is_file())


def test_token_env_must_be_set(kit, fitted):
    out = kit.run_cli("serve", str(fitted.bundle), "--token-env", "PRICE_BENCH_TEST_UNSET_TOKEN", env=fitted.env, check=False)
    assert out.returncode == 1
    assert out.stderr.strip().splitlines() == ["Error: --token-env PRICE_BENCH_TEST_UNSET_TOKEN: the environment variable is not set or empty"]


def test_metrics_counters_move(kit, client):
    before = client.get("/metrics").text
    assert client.post("/v1/predict", json={"items": [{"text": "kettle steel"}, {"text": "drone smart"}, {"text": "doll"}]}).status_code == 200
    assert client.post("/v1/predict", json={"text": ""}).status_code == 422
    after = client.get("/metrics").text
    ok = {"endpoint": "/v1/predict", "status": "200"}
    assert kit.metric(after, "price_bench_requests_total", **ok) == kit.metric(before, "price_bench_requests_total", **ok) + 1
    bad = {"endpoint": "/v1/predict", "status": "422"}
    assert kit.metric(after, "price_bench_requests_total", **bad) == kit.metric(before, "price_bench_requests_total", **bad) + 1
    assert kit.metric(after, "price_bench_items_total") == kit.metric(before, "price_bench_items_total") + 3
    errors = {"endpoint": "/v1/predict", "code": "invalid_request"}
    assert kit.metric(after, "price_bench_request_errors_total", **errors) == kit.metric(before, "price_bench_request_errors_total", **errors) + 1
    count = {"endpoint": "/v1/predict"}
    assert kit.metric(after, "price_bench_request_seconds_count", **count) >= kit.metric(before, "price_bench_request_seconds_count", **count) + 2
    assert "price_bench_offline_error_dollars" in after


def test_model_healthz_and_docs(client, fitted):
    model = client.get("/v1/model").json()
    assert model["run"]["run_id"] == fitted.run_id
    assert model["predictor"]["id"] == "tfidf-ridge"
    assert model["metrics"]["error"]["ci_low"] <= model["metrics"]["error"]["value"] <= model["metrics"]["error"]["ci_high"]
    health = client.get("/healthz").json()
    assert health == {"status": "ok", "predictor": "tfidf-ridge", "digest": model["digest"], "code_mismatch": False}
    assert model["code"]["mismatch"] is False and model["code"]["recorded_digest"] == model["predictor"]["code_digest"]
    assert model["code"]["installed_digest"] == model["code"]["recorded_digest"] and "price-bench-classic" in model["code"]["plugin"]
    schema = client.get("/openapi.json").json()
    assert {"/v1/predict", "/v1/feedback", "/healthz", "/v1/model", "/metrics"} <= set(schema["paths"])
    assert "PredictItem" in schema["components"]["schemas"]
    for path, body in (("/v1/predict", "PredictRequest"), ("/v1/feedback", "FeedbackRequest")):
        post = schema["paths"][path]["post"]
        assert post["requestBody"]["content"]["application/json"]["schema"] == {"$ref": f"#/components/schemas/{body}"}
        assert body in schema["components"]["schemas"] and "4XX" in post["responses"]
    assert client.get("/docs").status_code == 200


def test_feedback_then_monitor_reports_the_planted_error(kit, fitted, client, server):
    """40 items priced, then true prices planted $10 and $20 above the guesses, in turn: live Error must be $15.00."""
    items = [{"id": f"planted-{i}", "text": text, "category": "Toys_and_Games"} for i, text in enumerate(fitted.test_texts[:40])]
    rows = client.post("/v1/predict", json={"items": items}).json()["items"]
    feedback = [{"id": row["id"], "price": round(row["price"] + (10.0 if i % 2 == 0 else 20.0), 2)} for i, row in enumerate(rows)]
    assert client.post("/v1/feedback", json={"items": feedback[:20]}).json() == {"accepted": 20}
    for row in feedback[20:]:
        assert client.post("/v1/feedback", json=row).status_code == 202
    assert client.post("/v1/feedback", json={"id": "never-predicted", "price": 5}).status_code == 202

    out = kit.run_cli("monitor", str(server.log_dir), "--window", "40", "--json", env=fitted.env)
    report = json.loads(out.stdout)
    live = report["overall"]["live"]
    assert live["n"] == 40
    assert live["error"] == pytest.approx(15.0, abs=0.01)
    assert report["counts"]["unmatched_feedback"] == 1
    assert report["categories"]["Toys_and_Games"]["live"]["error"] == pytest.approx(15.0, abs=0.01)
    offline = report["overall"]["offline"]["error"]
    check = next(c for c in report["drift"] if c["check"] == "error_outside_ci")
    assert check["flag"] is (not offline["ci_low"] <= live["error"] <= offline["ci_high"])
    assert {c["check"] for c in report["drift"]} == {"error_outside_ci", "category_mix", "text_length", "predicted_price"}

    table = kit.run_cli("monitor", str(server.log_dir), "--window", "40", env=fitted.env).stdout
    assert "$15.00" in table and "drift checks" in table

    text = client.get("/metrics").text
    assert kit.metric(text, "price_bench_live_error_dollars", category="all") == pytest.approx(15.0, abs=0.01)
    assert kit.metric(text, "price_bench_live_joined_items", category="all") >= 40
    events = kit.jsonl(server.log_dir / "events.jsonl")
    assert all("text" not in e for e in events)  # the log keeps text length, never product text


def test_tampered_bundle_is_refused(kit, fitted, tmp_path):
    import shutil

    copy = tmp_path / "bundle"
    shutil.copytree(fitted.bundle, copy)
    model = copy / "artefacts" / "model.joblib"
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0xFF
    model.write_bytes(bytes(data))
    out = kit.run_cli("serve", str(copy), "--port", "1", env=fitted.env, check=False)
    assert out.returncode == 1
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "sha256 does not match" in lines[0] and "model.joblib" in lines[0]


def test_serve_a_run_id_and_two_workers(kit, fitted):
    """`serve RUN` builds the run's bundle; two uvicorn workers share the log and aggregate counters."""
    import httpx

    srv = kit.start_server(fitted, "workers", "--workers", "2", "--metrics-ttl", "0", "--no-access-log", target=fitted.run_id, settle=3)
    try:
        with httpx.Client(base_url=srv.url, timeout=60) as c:
            for i in range(12):
                assert c.post("/v1/predict", json={"id": f"w{i}", "text": fitted.test_texts[i]}).status_code == 200
            text = c.get("/metrics").text
        assert kit.metric(text, "price_bench_items_total") == 12
        events = kit.jsonl(srv.log_dir / "events.jsonl")
        assert sorted(e["id"] for e in events) == sorted(f"w{i}" for i in range(12))
    finally:
        kit.stop_server(srv)


def test_graceful_shutdown_finishes_the_request_in_flight(kit, fitted):
    """SIGTERM while a large batch is in flight: the batch is still answered, then the server exits cleanly."""
    import threading
    import time

    import httpx

    srv = kit.start_server(fitted, "graceful", "--max-batch", "2000", "--metrics-ttl", "60", "--no-access-log")
    long_text = " ".join(fitted.test_texts[:8])[:3900]
    body = {"items": [{"id": f"g{i}", "text": f"{i} {long_text}"} for i in range(1000)]}
    result: dict = {}

    def send():
        try:
            response = httpx.post(srv.url + "/v1/predict", json=body, timeout=120)
            result["status"], result["n"] = response.status_code, len(response.json()["items"])
        except httpx.HTTPError as exc:
            result["error"] = repr(exc)

    sender = threading.Thread(target=send)
    sender.start()
    in_flight = 0.0
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and sender.is_alive():
        # the scrape counts itself: 2 means the batch is in flight
        in_flight = kit.metric(httpx.get(srv.url + "/metrics", timeout=30).text, "price_bench_requests_in_flight")
        if in_flight >= 2:
            break
        time.sleep(0.02)
    kit.stop_server(srv)  # SIGTERM; asserts a clean, graceful exit
    sender.join(120)
    assert in_flight >= 2, "the batch finished before the signal: make it bigger"
    assert result.get("status") == 200 and result.get("n") == 1000, result
    assert len(kit.jsonl(srv.log_dir / "events.jsonl")) == 1000


def test_unwritable_log_dir_is_one_line(kit, fitted, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    for workers in ("1", "2"):
        out = kit.run_cli("serve", str(fitted.bundle), "--log-dir", str(blocker / "log"), "--workers", workers, env=fitted.env, check=False)
        assert out.returncode == 1
        assert out.stderr.strip().splitlines() == [f"Error: --log-dir {blocker / 'log'}: cannot write the prediction log: Not a directory"]


def test_log_rotates_under_two_workers_and_monitor_reads_every_file(kit, fitted):
    """A real 2-worker server with a tiny --log-max-bytes: the log rotates, no record is lost, monitor joins across files."""
    import httpx

    from price_bench.serve.log import event_files

    srv = kit.start_server(fitted, "rotate", "--workers", "2", "--log-max-bytes", "2048", "--log-backups", "100", "--no-access-log", settle=3)
    try:
        with httpx.Client(base_url=srv.url, timeout=60) as c:
            prices = {}
            for i in range(40):
                response = c.post("/v1/predict", json={"id": f"rot-{i}", "text": fitted.test_texts[i], "category": "Electronics"})
                assert response.status_code == 200, response.text
                prices[f"rot-{i}"] = response.json()["price"]
            for key, price in prices.items():
                assert c.post("/v1/feedback", json={"id": key, "price": round(price + 10.0, 2)}).status_code == 202
    finally:
        kit.stop_server(srv)
    files = event_files(srv.log_dir)
    assert len(files) >= 4, files  # ~9 KB of records, rotated at 2 KB
    records = [r for path in files for r in kit.jsonl(path)]
    assert sorted(r["id"] for r in records if r["kind"] == "prediction") == sorted(prices)
    assert sorted(r["id"] for r in records if r["kind"] == "feedback") == sorted(prices)
    report = json.loads(kit.run_cli("monitor", str(srv.log_dir), "--json", env=fitted.env).stdout)
    assert report["counts"]["predictions"] == 40 and report["counts"]["joined"] == 40
    assert report["overall"]["live"]["error"] == pytest.approx(10.0, abs=0.01)
