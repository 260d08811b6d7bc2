"""The HTTP routes, on Starlette: each parses its body (requests.py), waits for its rows from the batcher
(batcher.py), and answers in its API's shape, errors included.

    POST /v1/embeddings   OpenAI: {"object": "list", "data": [{"object": "embedding", "embedding", "index"}],
                          "model", "usage": {"prompt_tokens", "total_tokens"}}; errors {"error": {"message", "type",
                          "param", "code"}}
    POST /embed           TEI: [[float, ...], ...]; errors {"error", "error_type"} (router/src/http/server.rs)
    POST /rerank          TEI, for a cross-encoder: [{"index", "score"[, "text"]}, ...], best first
    POST /embed_sparse    TEI, for a SPLADE model: [[{"index", "value"}, ...], ...], the non-zero weights
    GET  /health          TEI: 200, empty body; never needs the API key
    GET  /v1/models       OpenAI: {"object": "list", "data": [{"id", "object": "model", "created", "owned_by"}]}
    GET  /metrics         Prometheus text (metrics.py)

Routes under /v1/ speak OpenAI's error shape, the others TEI's. Starlette is imported in build_app only, so that
`import minibert` and `minibert --help` never need the `serve` extra.
"""

import asyncio
import base64
import hmac
import json
import logging
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass

import numpy as np

from ..sentence import normalize
from .batcher import Batcher, Overloaded
from .metrics import Metrics
from .models import check_lengths
from .requests import (
    EmbedRequest,
    Limits,
    RequestError,
    parse_openai_embeddings,
    parse_tei_embed,
    parse_tei_embed_sparse,
    parse_tei_rerank,
)

log = logging.getLogger("minibert.serve")

# Texts longer than this in all (characters) are counted into tokens on a worker thread, not on the event loop.
COUNT_ON_LOOP_CHARS = 16384


@dataclass(frozen=True)
class Settings:
    """The server's knobs; `minibert serve --help` says what each is for, minibert/cli/serve.py how the defaults
    were chosen."""

    max_batch_tokens: int
    max_wait: float  # seconds
    max_queue: int
    max_body_bytes: int
    max_texts: int
    batching: bool = True
    auto_truncate: bool = False
    api_key: str | None = None


# ---- the two error shapes ----

# OpenAI's error types by status (the API's documented error codes: 400 invalid_request_error, 401 with code
# invalid_api_key, 429 "requests" with code rate_limit_exceeded, 5xx server_error).
_OPENAI_TYPES = {401: "invalid_request_error", 404: "invalid_request_error", 429: "requests"}
_OPENAI_CODES = {401: "invalid_api_key", 404: "unknown_url", 429: "rate_limit_exceeded"}


def openai_error_body(error: RequestError) -> dict:
    kind = _OPENAI_TYPES.get(error.status, "server_error" if error.status >= 500 else "invalid_request_error")
    return {
        "error": {"message": error.message, "type": kind, "param": error.param, "code": _OPENAI_CODES.get(error.status)}
    }


def tei_error_body(error: RequestError) -> dict:
    return {"error": error.message, "error_type": error.kind}


def is_openai(path: str) -> bool:
    return path.startswith("/v1/")


def error_response(path: str, error: RequestError, headers: dict | None = None):
    from starlette.responses import JSONResponse

    if not is_openai(path):
        return JSONResponse(tei_error_body(error), status_code=error.status, headers=headers)
    status = 400 if error.status == 422 else error.status  # OpenAI answers every invalid request with 400
    return JSONResponse(openai_error_body(error), status_code=status, headers=headers)


# ---- reading a body ----


async def read_json(request, limit: int):
    """The request's JSON body, refused with 413 past `limit` bytes (by Content-Length before reading a byte, or
    while reading a body sent without one) and with 400 if it is not JSON."""
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit:
        raise RequestError(
            "too_large", f"the request body has {int(length)} bytes; the limit is {limit} (--max-body-bytes)"
        )
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise RequestError("too_large", f"the request body exceeds the limit of {limit} bytes (--max-body-bytes)")
        chunks.append(chunk)
    try:
        return json.loads(b"".join(chunks))
    except (ValueError, UnicodeDecodeError) as error:
        raise RequestError("validation", f"the request body is not valid JSON: {error}", status=400) from None


class Api:
    """The routes' state: the served model (a service of models.py), its batcher, the metrics, and the count of
    requests accepted and answered."""

    def __init__(self, service, settings: Settings):
        self.service = service
        self.settings = settings
        self.limits = Limits(max_texts=settings.max_texts, auto_truncate=settings.auto_truncate)
        self.metrics = Metrics(queue_depth=lambda: len(self.batcher.queue))
        self.batcher = Batcher(
            service.compute,
            max_batch_tokens=settings.max_batch_tokens,
            max_wait=settings.max_wait,
            max_queue=settings.max_queue,
            batching=settings.batching,
            metrics=self.metrics,
        )
        self.created = int(time.time())
        self.accepted = 0
        self.answered = 0

    async def answer(self, request, route: str, work):
        """Run one route's `work(body) -> response`, turning every refusal into the route's error shape."""
        started = time.perf_counter()
        self.accepted += 1
        path = request.url.path
        try:
            body = await read_json(request, self.settings.max_body_bytes)
            response = await work(body)
        except RequestError as error:
            response = error_response(path, error)
        except Overloaded as error:
            retry = {"Retry-After": str(error.retry_after)}
            response = error_response(path, RequestError("overloaded", str(error)), headers=retry)
        except Exception as error:  # the model failed on a batch: this request hears it, the server goes on
            log.exception("%s failed", path)
            response = error_response(
                path, RequestError("backend", f"inference failed: {type(error).__name__}: {error}")
            )
        seconds = time.perf_counter() - started
        self.answered += 1
        self.metrics.requests.inc(route, str(response.status_code))
        self.metrics.request_seconds.observe(seconds, route)
        log.debug("POST %s %d in %.1f ms", path, response.status_code, 1000 * seconds)
        return response

    async def tokens(self, items, truncate: bool, field: str, *key) -> int:
        """The tokens the items will be computed with, refusing (or cutting, with truncate) one over the model's
        maximum length. Many characters are counted on a worker thread, off the event loop."""
        texts = (text for item in items for text in ((item,) if isinstance(item, str) else item))  # pairs: both
        if sum(map(len, texts)) <= COUNT_ON_LOOP_CHARS:
            counts = self.service.count(items, *key)
        else:
            counts = await asyncio.to_thread(self.service.count, items, *key)
        return int(check_lengths(counts, self.service.max_length, truncate, field).sum())

    async def embed_rows(self, request: EmbedRequest, field: str, route: str) -> tuple[np.ndarray, int]:
        """The request's rows [T, dim or dimensions] and the tokens they took, through the batcher."""
        key = self.service.check_prompt(request.prompt_name)
        if request.dimensions is not None and request.dimensions > self.service.dim:
            raise RequestError(
                "validation",
                f"`dimensions` is {request.dimensions}; this model's embeddings have {self.service.dim}",
                param="dimensions",
            )
        tokens = await self.tokens(request.texts, request.truncate, field, key)
        rows = np.asarray(await self.batcher.submit(key, request.texts, tokens))  # [T, dim]
        if request.dimensions is not None:
            rows = rows[:, : request.dimensions]  # sentence-transformers' truncate_dim
        # OpenAI (normalize None) keeps the model's own norm: a truncated row of a normalizing model is normalized
        # again, as OpenAI's and TEI's `dimensions` do; TEI's `normalize` (default true) normalizes every row.
        again = request.normalize if request.normalize is not None else (self.service.normalizes and request.dimensions)
        self.metrics.tokens.inc(route, by=tokens)
        self.metrics.texts.inc(route, by=len(request.texts))
        return (normalize(rows) if again else rows), tokens

    # ---- routes ----

    async def openai_embeddings(self, request):
        from starlette.responses import JSONResponse

        async def work(body):
            parsed = parse_openai_embeddings(body, self.limits)
            rows, tokens = await self.embed_rows(parsed, "input", "/v1/embeddings")
            if parsed.encoding_format == "base64":  # little-endian float32 bytes, as OpenAI sends them
                vectors = [base64.b64encode(row.astype("<f4").tobytes()).decode("ascii") for row in rows]
            else:
                vectors = rows.tolist()
            data = [{"object": "embedding", "embedding": v, "index": i} for i, v in enumerate(vectors)]
            usage = {"prompt_tokens": tokens, "total_tokens": tokens}
            model = parsed.model if parsed.model is not None else self.service.name
            return JSONResponse({"object": "list", "data": data, "model": model, "usage": usage})

        return await self.answer(request, "/v1/embeddings", work)

    async def tei_embed(self, request):
        from starlette.responses import JSONResponse

        async def work(body):
            rows, _ = await self.embed_rows(parse_tei_embed(body, self.limits), "inputs", "/embed")
            return JSONResponse(rows.tolist())

        return await self.answer(request, "/embed", work)

    async def tei_rerank(self, request):
        """TEI's rerank: every text scored against the query, best first (the first top_k). Scores are
        CrossEncoder.predict's with the model's activation, as CrossEncoder.rank gives them in process (TEI applies
        a sigmoid instead); raw_scores: the logits."""
        from starlette.responses import JSONResponse

        async def work(body):
            parsed = parse_tei_rerank(body, self.limits)
            pairs = [(parsed.query, text) for text in parsed.texts]
            tokens = await self.tokens(pairs, parsed.truncate, "texts")
            scores = np.asarray(await self.batcher.submit(parsed.raw_scores, pairs, tokens))  # [T]
            self.metrics.tokens.inc("/rerank", by=tokens)
            self.metrics.texts.inc("/rerank", by=len(pairs))
            order = np.argsort(-scores, kind="stable")[: parsed.top_k]  # best first; ties keep input order
            ranks = [{"index": int(i), "score": float(scores[i])} for i in order]
            if parsed.return_text:
                for rank in ranks:
                    rank["text"] = parsed.texts[rank["index"]]
            return JSONResponse(ranks)

        return await self.answer(request, "/rerank", work)

    async def tei_embed_sparse(self, request):
        """TEI's embed_sparse: each text's non-zero weights as {"index": vocabulary id, "value"}, by index."""
        from starlette.responses import JSONResponse

        async def work(body):
            parsed = parse_tei_embed_sparse(body, self.limits)
            key = self.service.check_prompt(parsed.prompt_name)
            tokens = await self.tokens(parsed.texts, parsed.truncate, "inputs", key)
            rows = np.asarray(await self.batcher.submit(key, parsed.texts, tokens))  # [T, V]
            self.metrics.tokens.inc("/embed_sparse", by=tokens)
            self.metrics.texts.inc("/embed_sparse", by=len(parsed.texts))
            sparse = []
            for row in rows:
                ids = np.flatnonzero(row)
                sparse.append([{"index": int(i), "value": float(v)} for i, v in zip(ids, row[ids], strict=True)])
            return JSONResponse(sparse)

        return await self.answer(request, "/embed_sparse", work)

    async def health(self, request):
        from starlette.responses import Response

        return Response(status_code=200)

    async def models(self, request):
        from starlette.responses import JSONResponse

        model = {"id": self.service.name, "object": "model", "created": self.created, "owned_by": "minibert"}
        return JSONResponse({"object": "list", "data": [model]})

    async def prometheus(self, request):
        from starlette.responses import Response

        return Response(self.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")

    def routes(self) -> list:
        from starlette.routing import Route

        routes = [
            Route("/health", self.health, methods=["GET"]),
            Route("/v1/models", self.models, methods=["GET"]),
            Route("/metrics", self.prometheus, methods=["GET"]),
        ]
        if self.service.kind == "embedding":
            routes += [
                Route("/v1/embeddings", self.openai_embeddings, methods=["POST"]),
                Route("/embed", self.tei_embed, methods=["POST"]),
            ]
        elif self.service.kind == "reranker":
            routes.append(Route("/rerank", self.tei_rerank, methods=["POST"]))
        elif self.service.kind == "sparse":
            routes.append(Route("/embed_sparse", self.tei_embed_sparse, methods=["POST"]))
        return routes


def require_api_key(app, key: str):
    """ASGI middleware: every route but /health needs `Authorization: Bearer <key>`, compared in constant time."""
    expected = key.encode()

    async def guarded(scope, receive, send):
        if scope["type"] == "http" and scope["path"] != "/health":
            header = dict(scope["headers"]).get(b"authorization", b"")
            scheme, _, given = header.partition(b" ")
            # compare_digest's time depends on the lengths only, never on where the bytes differ
            if not (scheme.lower() == b"bearer" and hmac.compare_digest(given.strip(), expected)):
                error = RequestError("auth", "missing or wrong API key: send 'Authorization: Bearer <key>'")
                await error_response(scope["path"], error)(scope, receive, send)
                return
        await app(scope, receive, send)

    return guarded


def build_app(service, settings: Settings):
    """The ASGI application: the routes of the model's kind, the batcher started and stopped with the app (its
    shutdown answers every request already accepted), and the API key check when a key is set."""
    from starlette.applications import Starlette
    from starlette.exceptions import HTTPException

    api = Api(service, settings)

    @asynccontextmanager
    async def lifespan(app):
        api.batcher.start()
        yield
        await api.batcher.stop()
        log.info("stopped: answered %d of %d accepted requests", api.answered, api.accepted)

    async def http_error(request, error: HTTPException):  # 404, 405: in the route's error shape too
        paths = ", ".join(route.path for route in api.routes())
        message = f"{request.method} {request.url.path}: {error.detail}; this {service.kind} server has {paths}"
        kind = "not_found" if error.status_code == 404 else "validation"
        return error_response(request.url.path, RequestError(kind, message, status=error.status_code))

    app = Starlette(routes=api.routes(), lifespan=lifespan, exception_handlers={HTTPException: http_error})
    app.state.api = api
    return require_api_key(app, settings.api_key) if settings.api_key else app
