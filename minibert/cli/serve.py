"""`minibert serve`: an embedding server with OpenAI's and TEI's APIs, batching concurrent requests."""

import argparse
import ipaddress
import logging
import os

from ..serve.app import Settings
from ..serve.models import KINDS
from ..serve.server import LOG_FORMAT, serve
from .common import add_command, byte_size, positive_int

# The batch budget and wait (benchmarks/README.md, "minibert serve under load"): 8192 tokens hold 64 passages of 128
# tokens, or the short queries of 64 clients, in one batch; 2 ms gathers the requests clients send back within a
# millisecond of a batch's answers. At these values batching served 1.8-2.9x the short queries per second of
# --no-batching at 8 and 64 clients on a shared 2-core host; a sweep of the two values needs a quiet host, not done.
DEFAULT_MAX_BATCH_TOKENS = 8192
DEFAULT_MAX_WAIT_MS = 2.0
DEFAULT_MAX_QUEUE = 256
DEFAULT_MAX_BODY_BYTES = 2_000_000  # TEI's --payload-limit default
DEFAULT_MAX_TEXTS = 2048  # OpenAI's limit on `input` entries
API_KEY_ENVIRONMENT = "MINIBERT_API_KEY"

log = logging.getLogger("minibert.serve")


def non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, found {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"expected a number of at least 0, found {text!r}")
    return value


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def exposure_warning(host: str, api_key: str | None) -> str | None:
    """What to say when the server listens beyond this machine without a key."""
    if is_loopback(host) or api_key:
        return None
    return (
        f"minibert serve: warning: listening on {host} without an API key: anyone who can reach this port can use the "
        f"model; set --api-key or {API_KEY_ENVIRONMENT}, or listen on 127.0.0.1"
    )


def add_parser(commands) -> None:
    """`minibert serve`: an embedding server with OpenAI's and TEI's APIs."""
    parser = add_command(
        commands,
        "serve",
        help="serve a model over HTTP: OpenAI's /v1/embeddings, TEI's /embed, /rerank, /embed_sparse",
        description="Serve a model over HTTP (Starlette on uvicorn; pip install 'minibert-numpy[serve]'). Routes:\n"
        "  an embedding model: POST /v1/embeddings (OpenAI), POST /embed (TEI: text-embeddings-inference)\n"
        "  a reranker (CrossEncoder): POST /rerank (TEI); a SPLADE model (SparseEncoder): POST /embed_sparse (TEI)\n"
        "  every model: GET /health, GET /v1/models, GET /metrics (Prometheus)\n"
        "Concurrent requests are gathered into batches.\n"
        "SIGTERM or Ctrl-C: stop accepting, answer every accepted request, exit 0.",
        examples=[
            "minibert serve --model DIR",
            "MINIBERT_API_KEY=secret minibert serve --model DIR --host 0.0.0.0 --port 8080 --workers 2",
            'curl localhost:8080/embed -d \'{"inputs": ["a text"]}\'',
        ],
        run=run,
    )
    parser.add_argument(
        "--model", required=True, metavar="ID_OR_PATH", help="a sentence-transformers model: a directory or a hub id"
    )
    parser.add_argument(
        "--kind",
        choices=["auto", *KINDS],
        default="auto",
        help="what the model is: auto reads a directory's files (modules.json, config.json); a hub id is served as "
        "an embedding model unless this says otherwise",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on; 0.0.0.0 for every interface")
    parser.add_argument("--port", type=int, default=8080, help="port to listen on; 0 picks a free one")
    parser.add_argument(
        "--api-key",
        metavar="KEY",
        help=f"require 'Authorization: Bearer KEY' on every route but /health (default: ${API_KEY_ENVIRONMENT})",
    )
    parser.add_argument(
        "--served-model-name", metavar="NAME", help="the model's name in /v1/models and responses (default: --model)"
    )
    parser.add_argument(
        "--max-batch-tokens",
        type=positive_int,
        default=DEFAULT_MAX_BATCH_TOKENS,
        metavar="N",
        help="a batch takes requests until their tokens reach N (a larger request runs alone)",
    )
    parser.add_argument(
        "--max-wait-ms",
        type=non_negative_float,
        default=DEFAULT_MAX_WAIT_MS,
        metavar="MS",
        help="how long a batch waits for more requests after its first, unless the token budget fills (no wait "
        "after a batch of one request with none queued: a lone client's requests go at once)",
    )
    parser.add_argument("--no-batching", action="store_true", help="compute every request alone, in arrival order")
    parser.add_argument(
        "--max-queue",
        type=positive_int,
        default=DEFAULT_MAX_QUEUE,
        metavar="N",
        help="requests that may wait for a batch; more are answered 429 with Retry-After",
    )
    parser.add_argument(
        "--max-body-bytes",
        type=byte_size,
        default=DEFAULT_MAX_BODY_BYTES,
        metavar="SIZE",
        help="larger request bodies are refused with 413",
    )
    parser.add_argument(
        "--max-texts", type=positive_int, default=DEFAULT_MAX_TEXTS, metavar="N", help="texts one request may send"
    )
    parser.add_argument(
        "--auto-truncate",
        action="store_true",
        help="cut a text over the model's maximum length where a request does not say (TEI's `truncate`); "
        "without it such a text is refused with 422",
    )
    parser.add_argument(
        "--workers",
        type=positive_int,
        default=1,
        metavar="N",
        help="processes sharing the port, each with its own copy of the model and cores/N threads",
    )
    parser.add_argument(
        "--log-level",
        choices=["debug", "info", "warning", "error"],
        default="info",
        help="info: one line per batch; debug: one per request too",
    )


def run(args) -> int:
    logging.basicConfig(level=args.log_level.upper(), format=LOG_FORMAT)
    args.api_key = args.api_key or os.environ.get(API_KEY_ENVIRONMENT) or None
    warning = exposure_warning(args.host, args.api_key)
    if warning:
        log.warning(warning)
    settings = Settings(
        max_batch_tokens=args.max_batch_tokens,
        max_wait=args.max_wait_ms / 1000,
        max_queue=args.max_queue,
        max_body_bytes=args.max_body_bytes,
        max_texts=args.max_texts,
        batching=not args.no_batching,
        auto_truncate=args.auto_truncate,
        api_key=args.api_key,
    )
    return serve(
        args.model,
        settings,
        host=args.host,
        port=args.port,
        name=args.served_model_name,
        kind=args.kind,
        workers=args.workers,
        log_level=args.log_level,
    )
