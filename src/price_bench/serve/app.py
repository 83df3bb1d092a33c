"""The HTTP app of ``price-bench serve``: a verified bundle's predictor behind FastAPI.

Endpoints:

``POST /v1/predict``
    one item ``{"id": ..., "text": ..., "category": ...}`` or a batch
    ``{"items": [...]}``; ``id`` and ``category`` are optional (an id is
    generated when absent: send it back with the feedback). Answers prices,
    whether the fallback was used, latency and, for LLM predictors, tokens
    and cost. Parsing and fallback are the harness's: the predictor's
    ``price`` (else its ``raw`` text) goes through
    :func:`price_bench.parsing.parse_price`; an item error or an answer with
    no price gets the bundle's fallback price (the train median).
``POST /v1/feedback``
    ``{"id": ..., "price": ...}`` (or ``{"items": [...]}``) once the true price is known.
``GET /healthz``, ``GET /v1/model``, ``GET /metrics``, ``GET /docs`` (OpenAPI: ``/openapi.json``).

Every bad input is a JSON error ``{"error": {"status", "code", "message"}}``
with a 4xx status, never a 500 or a traceback: the body size is checked
before it is read (``Content-Length``) and while it is read (chunked
bodies), then the JSON is parsed and validated here, field by field. With a
token (``--token-env``), ``/v1/*`` and ``/metrics`` need ``Authorization:
Bearer <token>`` (compared in constant time; never logged); ``/healthz``
and the docs stay open for load balancers.

:func:`create_app` builds the app; :func:`app_from_env` is the factory uvicorn
calls in each worker (the settings travel in :data:`SETTINGS_ENV`).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import math
import os
import shutil
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar, cast

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, StrictStr, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from price_bench.items import Item
from price_bench.parsing import parse_price
from price_bench.serve import ServeError
from price_bench.serve.bundle import MANIFEST, Bundle, load_predictor, verify_bundle
from price_bench.serve.log import MANIFEST_COPY, EventLog
from price_bench.serve.metrics import ServeMetrics

SETTINGS_ENV = "PRICE_BENCH_SERVE_SETTINGS"
JSON = "application/json"
logger = logging.getLogger("price_bench.serve")


@dataclass
class ServeSettings:
    """What one server needs besides the bundle itself (JSON-serialisable, for the workers)."""

    bundle: str
    log_dir: str
    max_batch: int = 1000
    max_body_bytes: int = 4 * 1024 * 1024
    token_env: str | None = None
    expect_digest: str | None = None
    log_max_bytes: int = 50 * 1024 * 1024
    log_backups: int = 5
    monitor_window: int = 1000
    metrics_ttl_s: float = 10.0
    #: predict calls in flight at once per worker (see :class:`MicroBatcher`).
    predict_lanes: int = 1
    #: a predict call expected to take at most this long runs on the event loop, not in a thread (0: always a thread).
    inline_budget_ms: float = 20.0
    #: serve although the installed predictor code's digest differs from the one that fitted the bundle.
    allow_code_mismatch: bool = False

    def to_env(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_env(cls) -> ServeSettings:
        raw = os.environ.get(SETTINGS_ENV)
        if not raw:
            raise RuntimeError(f"{SETTINGS_ENV} is not set: start the server with `price-bench serve`")
        return cls(**json.loads(raw))


class ApiError(Exception):
    """A request the server refuses: becomes ``{"error": {...}}`` with ``status``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


# -- request bodies (validated by hand, so that every error is ours) ----------------------------------


class PredictItem(BaseModel):
    """One product to price."""

    model_config = ConfigDict(extra="forbid")

    id: StrictStr | None = Field(default=None, min_length=1, max_length=200, description="Your id for this item (generated when absent).")
    text: StrictStr = Field(description="The product text (title, description, features, details).")
    category: StrictStr | None = Field(default=None, max_length=200)


class PredictBatch(BaseModel):
    """Several products in one request."""

    model_config = ConfigDict(extra="forbid")

    items: list[PredictItem] = Field(min_length=1)


class Feedback(BaseModel):
    """The true price of a predicted item."""

    model_config = ConfigDict(extra="forbid")

    id: StrictStr = Field(min_length=1, max_length=200)
    price: StrictFloat | StrictInt = Field(gt=0, le=1e7)


class FeedbackBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    items: list[Feedback] = Field(min_length=1)


_Row = TypeVar("_Row", bound=BaseModel)


class _Batch(Protocol):
    """What a batch body model holds (``PredictBatch``, ``FeedbackBatch``)."""

    items: list[Any]


# -- the app ----------------------------------------------------------------------------------------


class PricingService:
    """The loaded predictor plus its fallback, limits, log and metrics."""

    def __init__(self, bundle: Bundle, settings: ServeSettings) -> None:
        from price_bench.harness.overrides import Redactor, secret_values

        self.bundle = bundle
        self.settings = settings
        manifest = bundle.manifest
        self.fallback = float(manifest.fallback_price)
        self.max_text_chars = manifest.max_text_chars
        self.predictor, self.code = load_predictor(bundle, allow_code_mismatch=settings.allow_code_mismatch)
        self.redact = Redactor(secret_values(self.predictor.config))
        log_dir = Path(settings.log_dir)
        try:
            self.log = EventLog(log_dir, max_bytes=settings.log_max_bytes, backups=settings.log_backups)
            self._keep_manifest(log_dir)
        except OSError as exc:
            raise ServeError(f"--log-dir {log_dir}: cannot write the prediction log: {exc.strerror or exc}") from None
        self.metrics = ServeMetrics(
            log_dir, manifest.model_dump(mode="json"), window=settings.monitor_window, ttl_s=settings.metrics_ttl_s, digest=bundle.digest
        )
        self.made_by = bundle.digest[:16]
        self.batcher = MicroBatcher(self.predict, max_items=settings.max_batch, lanes=settings.predict_lanes,
                                    inline_budget_s=settings.inline_budget_ms / 1000.0)
        token_env = settings.token_env
        self.token = os.environ.get(token_env, "").encode() if token_env else None
        if token_env and not self.token:
            raise RuntimeError(f"--token-env {token_env}: the environment variable is not set")
        if self.token:
            self.redact = Redactor([*self.redact.secrets, self.token.decode()])

    def _keep_manifest(self, log_dir: Path) -> None:
        """Copy the manifest next to the log (monitor reads the offline figures there)."""
        target = log_dir / MANIFEST_COPY
        tmp = log_dir / f".{MANIFEST_COPY}.{os.getpid()}"
        shutil.copyfile(self.bundle.path / MANIFEST, tmp)
        os.replace(tmp, target)

    def close(self) -> None:
        try:
            self.batcher.close()
            self.predictor.close()
        finally:
            self.log.close()

    # -- checks -------------------------------------------------------------------------------

    def authorise(self, request: Request) -> None:
        if self.token is None:
            return
        header = request.headers.get("authorization", "")
        scheme, _, given = header.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), self.token):
            raise ApiError(401, "unauthorized", "missing or wrong bearer token (Authorization: Bearer <token>)")

    async def read_json(self, request: Request) -> Any:
        """The request body as JSON, refusing a body above ``max_body_bytes`` before parsing it."""
        limit = self.settings.max_body_bytes
        declared = request.headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            raise ApiError(413, "body_too_large", f"the body is larger than {limit} bytes")
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise ApiError(413, "body_too_large", f"the body is larger than {limit} bytes")
            chunks.append(chunk)
        body = b"".join(chunks)
        if not body.strip():
            raise ApiError(400, "empty_body", "the body is empty: send a JSON object")
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise ApiError(400, "malformed_json", f"the body is not valid JSON: {str(exc).splitlines()[0]}") from None

    def _rows(self, data: Any, one: type[_Row], many: type[BaseModel], shape: str) -> tuple[list[_Row], bool]:
        """A body of one ``one`` or ``{"items": [...]}`` (a ``many``): ``(rows, is_batch)``, or :class:`ApiError`."""
        if not isinstance(data, dict):
            raise ApiError(422, "invalid_request", f"the body must be a JSON object: {shape}")
        batch = "items" in data
        if batch and isinstance(data["items"], list) and len(data["items"]) > self.settings.max_batch:
            raise ApiError(413, "batch_too_large", f"the batch has {len(data['items'])} items; at most {self.settings.max_batch} are allowed")
        try:
            rows: list[_Row] = cast(_Batch, many.model_validate(data)).items if batch else [one.model_validate(data)]
        except ValidationError as exc:
            raise ApiError(422, "invalid_request", _first_error(exc)) from None
        return rows, batch

    def validate_items(self, data: Any) -> tuple[list[PredictItem], bool]:
        """``(items, is_batch)`` from a predict body, or :class:`ApiError` naming the bad field."""
        items, batch = self._rows(data, PredictItem, PredictBatch, "one item or {\"items\": [...]}")
        for i, item in enumerate(items):
            where = f"items[{i}].text" if batch else "text"
            if not item.text.strip():
                raise ApiError(422, "invalid_request", f"{where}: must not be empty")
            if len(item.text) > self.max_text_chars:
                raise ApiError(422, "text_too_long", f"{where}: {len(item.text)} characters; this model's recipe allows at most {self.max_text_chars}")
        return items, batch

    # -- work ---------------------------------------------------------------------------------

    def predict(self, items: list[PredictItem]) -> list[dict[str, Any]]:
        """Price ``items`` with the harness's parsing and fallback rules (on the loop or in a worker thread: see :class:`MicroBatcher`)."""
        batch = [Item(id=item.id or os.urandom(16).hex(), text=item.text, price=math.nan, category=item.category) for item in items]
        started = time.perf_counter()
        predictions = list(self.predictor.predict(batch))
        seconds = time.perf_counter() - started
        if len(predictions) != len(batch):
            raise RuntimeError(f"the predictor returned {len(predictions)} predictions for {len(batch)} items")
        out: list[dict[str, Any]] = []
        now, fallback, redact = time.time(), self.fallback, self.redact
        share_ms = round(seconds / len(batch) * 1000.0, 4)  # an item without its own latency: its share of the call
        fallbacks, cost, tokens_in, tokens_out = 0, 0.0, 0, 0
        for item, p in zip(batch, predictions):
            value = None
            if p.error is None:
                value = parse_price(p.price) if p.price is not None else parse_price(p.raw)
            item_cost, item_in, item_out = float(p.cost_usd or 0.0), int(p.tokens_in or 0), int(p.tokens_out or 0)
            fallbacks += value is None
            cost += item_cost
            tokens_in += item_in
            tokens_out += item_out
            out.append(
                {
                    "id": item.id,
                    "price": fallback if value is None else value,
                    "fallback": value is None,
                    "error": redact(str(p.error).splitlines()[0]) if p.error else None,
                    "category": item.category,
                    "text_chars": len(item.text),
                    "latency_ms": share_ms if p.latency_s is None else round(p.latency_s * 1000.0, 4),
                    "tokens_in": item_in,
                    "tokens_out": item_out,
                    "cost_usd": item_cost,
                }
            )
        made_by = self.made_by
        self.log.write(out, common={"kind": "prediction", "ts": now, "bundle": made_by})
        m = self.metrics
        m.items.inc(len(out))
        if fallbacks:
            m.fallbacks.inc(fallbacks)
        if cost:
            m.cost.inc(cost)
        if tokens_in:
            m.tokens.labels("in").inc(tokens_in)
        if tokens_out:
            m.tokens.labels("out").inc(tokens_out)
        return out

    def record_feedback(self, data: Any) -> int:
        rows, _ = self._rows(data, Feedback, FeedbackBatch, "{\"id\": ..., \"price\": ...} or {\"items\": [...]}")
        now = time.time()
        self.log.write([{"kind": "feedback", "ts": now, "id": row.id, "price": float(row.price)} for row in rows])
        self.metrics.feedback.inc(len(rows))
        return len(rows)


class MicroBatcher:
    """Coalesces concurrent predict requests into one ``predictor.predict`` call, with no added wait.

    A request starts a predict call at once when fewer than ``lanes`` calls
    are in flight; requests arriving meanwhile queue up and go together in
    the next call (at most ``max_items`` items per call, whole requests
    only). At concurrency 1 nothing changes; under load a vectorised model
    prices 8 queued items for little more than the cost of one. ``lanes``
    above 1 suits predictors that wait on the network (LLM endpoints).

    Where the call runs: a call that is expected to take at most
    ``inline_budget_s`` (from the predictor's measured seconds per item,
    with ``lanes == 1``) runs on the event loop itself; anything else runs
    in one of ``lanes`` worker threads, so the loop keeps answering (health
    checks, scrapes, new requests) during a long call. A thread hop costs a
    fast CPU-bound model (tfidf-ridge: ~4 ms a call) about 0.6 ms of CPU in
    GIL hand-offs; an LLM call (hundreds of ms, waiting on a socket) always
    takes a thread. The first calls take a thread while the cost is unknown.
    """

    #: weight of the newest call in the running seconds-per-item estimate.
    EWMA = 0.2

    def __init__(self, work: Callable[[list[PredictItem]], list[dict[str, Any]]], *, max_items: int, lanes: int = 1,
                 inline_budget_s: float = 0.02) -> None:
        self.work, self.max_items, self.lanes, self.inline_budget_s = work, max_items, lanes, inline_budget_s
        self._queue: deque[tuple[list[PredictItem], asyncio.Future[list[dict[str, Any]]]]] = deque()
        self._in_flight = 0
        self._executor = ThreadPoolExecutor(max_workers=lanes, thread_name_prefix="price-bench-predict")
        #: running estimate of the predictor's seconds per item (None until a call was timed).
        self.seconds_per_item: float | None = None
        self.inline_calls = self.thread_calls = 0

    async def submit(self, items: list[PredictItem]) -> list[dict[str, Any]]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[dict[str, Any]]] = loop.create_future()
        self._queue.append((items, future))
        if self._in_flight < self.lanes:
            self._in_flight += 1
            loop.create_task(self._drain())
        return await future

    def runs_inline(self, n_items: int) -> bool:
        """True when a call of ``n_items`` is expected to fit in ``inline_budget_s`` (one lane only)."""
        cost = self.seconds_per_item
        return self.lanes == 1 and cost is not None and cost * n_items <= self.inline_budget_s

    def close(self) -> None:
        self._executor.shutdown(wait=True)

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            await asyncio.sleep(0)  # let the requests already read by the server reach the queue: one bigger call
            while self._queue:
                taken: list[tuple[list[PredictItem], asyncio.Future[list[dict[str, Any]]]]] = []
                size = 0
                while self._queue and (not taken or size + len(self._queue[0][0]) <= self.max_items):
                    entry = self._queue.popleft()
                    taken.append(entry)
                    size += len(entry[0])
                merged = [item for items, _ in taken for item in items]
                started = time.perf_counter()
                try:
                    if self.runs_inline(len(merged)):
                        self.inline_calls += 1
                        rows = self.work(merged)
                    else:
                        self.thread_calls += 1
                        rows = await loop.run_in_executor(self._executor, self.work, merged)
                except Exception as exc:
                    for _, future in taken:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                self._observe(time.perf_counter() - started, len(merged))
                start = 0
                for items, future in taken:
                    if not future.done():
                        future.set_result(rows[start : start + len(items)])
                    start += len(items)
        finally:
            self._in_flight -= 1

    def _observe(self, seconds: float, n_items: int) -> None:
        per_item = seconds / max(1, n_items)
        old = self.seconds_per_item
        self.seconds_per_item = per_item if old is None else old + self.EWMA * (per_item - old)


def _first_error(exc: ValidationError) -> str:
    """``items[2].text: Input should be a valid string`` for the first error of ``exc``."""
    first = exc.errors(include_url=False)[0]
    where = ""
    for part in first.get("loc", ()):
        where += f"[{part}]" if isinstance(part, int) else (f".{part}" if where else str(part))
    message = first.get("msg", "invalid")
    if first.get("type") == "missing":
        message = "is required"
    elif first.get("type") == "extra_forbidden":
        message = "is not a known field"
    return f"{where or 'body'}: {message}"


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type=JSON, headers=headers)


def _error(status: int, code: str, message: str) -> Response:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return _json({"error": {"status": status, "code": code, "message": message}}, status, headers)


def create_app(settings: ServeSettings) -> FastAPI:
    """The app for ``settings``: verifies the bundle, loads the predictor, opens the log."""
    bundle = verify_bundle(Path(settings.bundle), expect_digest=settings.expect_digest)
    service = PricingService(bundle, settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            service.close()

    info = bundle.manifest.predictor
    app = FastAPI(
        title="price-bench serve",
        version=bundle.manifest.price_bench_version,
        description=f"Prices products with `{info.id}` (run {bundle.manifest.run.run_id}, bundle digest {bundle.digest[:12]}).",
        lifespan=lifespan,
        **_without_telemetry(),
    )
    app.state.service = service
    _install_error_handlers(app, service)
    _install_routes(app, service)
    _install_openapi(app)
    return app


def _without_telemetry() -> dict[str, Any]:
    """FastAPI's native OpenTelemetry hooks switched off (FastAPI >= 0.165 has them; ``/metrics`` is ours).

    Left on, they look up the tracer, meter and logger providers on every
    request (~0.1 ms of CPU each) even when nothing is configured.
    """
    import inspect

    if "telemetry" not in inspect.signature(FastAPI.__init__).parameters:
        return {}
    return {"telemetry": {"tracing": False, "metrics": False, "logs": False, "operation_spans": False}}


def _install_error_handlers(app: FastAPI, service: PricingService) -> None:
    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> Response:
        service.metrics.errors.labels(_endpoint(request), exc.code).inc()
        return _error(exc.status, exc.code, exc.message)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        service.metrics.errors.labels(_endpoint(request), code).inc()
        return _error(exc.status_code, code, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        service.metrics.errors.labels(_endpoint(request), "invalid_request").inc()
        return _error(422, "invalid_request", str(exc.errors()[0].get("msg", "invalid")) if exc.errors() else "invalid request")

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> Response:
        logger.error("internal error on %s: %s", request.url.path, service.redact(f"{type(exc).__name__}: {exc}".splitlines()[0]))
        service.metrics.errors.labels(_endpoint(request), "internal").inc()
        return _error(500, "internal", "the predictor failed on this request (see the server log)")

    app.add_middleware(_CountRequests, service=service)


class _CountRequests:
    """Pure ASGI middleware: counts every HTTP answer by route and status, and times it."""

    def __init__(self, app: ASGIApp, service: PricingService) -> None:
        self.app, self.service = app, service
        self._counters: dict[tuple[str, int], Any] = {}  # labelled children, looked up once
        self._timers: dict[str, Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = [500]
        self.service.metrics.in_flight.inc()

        async def send_and_note(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            metrics = self.service.metrics
            metrics.in_flight.dec()
            path = scope.get("path", "")
            endpoint = path if path in _ROUTES else "other"
            key = (endpoint, status[0])
            counter = self._counters.get(key)
            if counter is None:  # bounded: the routes times the statuses they answer
                counter = self._counters[key] = metrics.requests.labels(endpoint, str(status[0]))
            counter.inc()
            timer = self._timers.get(endpoint)
            if timer is None:
                timer = self._timers[endpoint] = metrics.latency.labels(endpoint)
            timer.observe(time.perf_counter() - started)


_ROUTES = ("/v1/predict", "/v1/feedback", "/v1/model", "/healthz", "/metrics", "/docs", "/openapi.json")


def _endpoint(request: Request) -> str:
    path = request.url.path
    return path if path in _ROUTES else "other"  # bounded label set: never the client's path


def _install_routes(app: FastAPI, service: PricingService) -> None:
    async def predict(request: Request) -> Response:
        started = time.perf_counter()
        service.authorise(request)
        items, batch = service.validate_items(await service.read_json(request))
        try:
            rows = await service.batcher.submit(items)
        except Exception as exc:  # the predictor's fault, not the client's: one redacted line, no traceback
            logger.error("predict failed: %s", service.redact(f"{type(exc).__name__}: {exc}".splitlines()[0]))
            raise ApiError(500, "predictor_failed", "the predictor failed on this request (see the server log)") from None
        latency_ms = round((time.perf_counter() - started) * 1000.0, 4)
        for row in rows:
            del row["category"], row["text_chars"]
        if not batch:
            return _json({**rows[0], "request_latency_ms": latency_ms, "predictor": service.bundle.manifest.predictor.id})
        return _json(
            {
                "items": rows,
                "n": len(rows),
                "request_latency_ms": latency_ms,
                "cost_usd": sum(r["cost_usd"] for r in rows),
                "tokens_in": sum(r["tokens_in"] for r in rows),
                "tokens_out": sum(r["tokens_out"] for r in rows),
                "predictor": service.bundle.manifest.predictor.id,
            }
        )

    async def feedback(request: Request) -> Response:
        service.authorise(request)
        accepted = service.record_feedback(await service.read_json(request))
        return _json({"accepted": accepted}, 202)

    # The two POST routes validate their bodies by hand: plain Starlette routes, first in the table, skip
    # FastAPI's dependency solving (~0.1 ms a request); their OpenAPI entries are added in _install_openapi.
    for path, endpoint in (("/v1/feedback", feedback), ("/v1/predict", predict)):
        app.router.routes.insert(0, Route(path, endpoint, methods=["POST"], include_in_schema=False))

    health: dict[str, Any] = {"status": "ok", "predictor": service.bundle.manifest.predictor.id, "digest": service.bundle.digest,
                              "code_mismatch": service.code.mismatch}
    if service.code.mismatch:
        health["warning"] = service.code.warning()

    @app.get("/healthz", summary="Liveness and readiness")
    async def healthz() -> Response:
        return _json(health)

    @app.get("/v1/model", summary="The bundle's manifest and offline metrics")
    async def model(request: Request) -> Response:
        service.authorise(request)
        return _json({**service.bundle.describe(), "code": service.code.describe()})

    @app.get("/metrics", summary="Prometheus metrics")
    async def metrics(request: Request) -> Response:
        from prometheus_client import CONTENT_TYPE_LATEST

        service.authorise(request)
        body = await run_in_threadpool(service.metrics.render)
        return Response(body, media_type=CONTENT_TYPE_LATEST)


_POST_ROUTES = {
    "/v1/predict": ("Price one item or a batch", "200", "PredictRequest"),
    "/v1/feedback": ("Report the true price of predicted items", "202", "FeedbackRequest"),
}


def _body(name: str) -> dict[str, Any]:
    return {"requestBody": {"required": True, "content": {JSON: {"schema": {"$ref": f"#/components/schemas/{name}"}}}}}


def _install_openapi(app: FastAPI) -> None:
    """Add the hand-validated request bodies to the generated OpenAPI schema."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            template = "#/components/schemas/{model}"
            for model in (PredictItem, PredictBatch, Feedback, FeedbackBatch):
                definition = model.model_json_schema(ref_template=template)
                components.update(definition.pop("$defs", {}))
                components[model.__name__] = definition
            components["PredictRequest"] = {"oneOf": [{"$ref": template.format(model=m)} for m in ("PredictItem", "PredictBatch")]}
            components["FeedbackRequest"] = {"oneOf": [{"$ref": template.format(model=m)} for m in ("Feedback", "FeedbackBatch")]}
            paths = schema.setdefault("paths", {})
            for path, (summary, status, body) in _POST_ROUTES.items():
                error = {"description": "A JSON error: {\"error\": {\"status\", \"code\", \"message\"}}"}
                paths[path] = {"post": {"summary": summary, "operationId": path.strip("/").replace("/", "_"), **_body(body),
                                        "responses": {status: {"description": "Accepted" if status == "202" else "Prices"}, "4XX": error}}}
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def app_from_env() -> FastAPI:
    """The uvicorn factory (``--factory``): settings from :data:`SETTINGS_ENV`."""
    return create_app(ServeSettings.from_env())
