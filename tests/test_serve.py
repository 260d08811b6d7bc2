"""`minibert serve` with real clients on loopback: the official openai client and httpx against the server in a
child process (port 0, 127.0.0.1 only), every answer compared with SentenceEncoder.encode in this process.

Every wait is bounded (SERVER_START, REQUEST_TIMEOUT, SHUTDOWN) and every server started here is stopped here.
"""

import asyncio
import base64
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import httpx
import numpy as np
import openai
import pytest
from support.helpers import ROOT, WEIGHTS, minilm_dir

from minibert import CrossEncoder, SentenceEncoder, SparseEncoder
from minibert.cli.serve import exposure_warning
from minibert.sentence import normalize
from minibert.serve.batcher import Batcher, Overloaded
from minibert.serve.metrics import Metrics
from minibert.serve.requests import Limits, RequestError, parse_openai_embeddings, parse_tei_embed

SERVER_START = 120  # seconds for a child to load MiniLM and listen, on a busy shared 2-core machine
REQUEST_TIMEOUT = 60
SHUTDOWN = 60
# A served row against encode() in this process: the same model on the same texts, batched with other requests'
# texts, so only the rounding of the padded batch differs (the padding is masked); the bound.
SERVED_TOL = 1e-6
# A reranker's scores are logits of order 1-10 and a SPLADE model's weights log(1 + relu(logit)) of order 1: the same
# rounding, relative to values larger than 1.
SERVED_REL_TOL = 1e-6

WORDS = (
    "the quick brown fox jumps over a lazy dog while seven wizards quietly hex every jovial guard near the old "
    "stone bridge and nobody notices the rain"
).split()


def text_of(length: int, seed: int) -> str:
    """A sentence of `length` words, different for each seed."""
    rng = np.random.default_rng(seed)
    return " ".join(rng.choice(WORDS, size=length)) + f" {seed}."


class Server:
    """A `minibert serve` child process and its output, read on a thread so its pipe never fills."""

    def __init__(self, args: list[str]):
        # One compute thread: on a machine shared with other jobs two threads wait on each other (a short query took
        # 0.2-1.1 s on 2 threads at load average 20, 0.07 s on one); the rows differ only in rounding.
        env = {"MINIBERT_NUM_THREADS": "1", **os.environ, "PYTHONPATH": str(ROOT)}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "minibert", "serve", "--port", "0", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        self.lines: list[str] = []
        self._lines: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.url = self._wait_for_start()

    def _read(self):
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))
            self._lines.put(line)
        self._lines.put(None)

    def _wait_for_start(self) -> str:
        deadline = time.monotonic() + SERVER_START
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self._lines.get(timeout=left)
            except queue.Empty:
                break
            if line is None:
                break
            if found := re.search(r"listening on (http://\S+)", line):
                return found.group(1)
        self.stop()
        pytest.fail("the server did not start:\n" + "\n".join(self.lines))

    def output(self) -> str:
        return "\n".join(self.lines)

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=SHUTDOWN)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=SHUTDOWN)
        return self.process.returncode


@contextmanager
def running(*args: str, model=None):
    server = Server(["--model", str(model or minilm_dir()), "--served-model-name", "minilm", *args])
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def encoder():
    return SentenceEncoder.from_pretrained(minilm_dir())


@pytest.fixture(scope="module")
def server():
    with running() as server:
        yield server


@pytest.fixture
def http(server):
    with httpx.Client(base_url=server.url, timeout=REQUEST_TIMEOUT) as client:
        yield client


def token_count(encoder, texts) -> int:
    return int(encoder.tokenizer(texts, truncation=True, max_length=encoder.max_seq_length)["attention_mask"].sum())


def metric(text: str, name: str) -> float:
    """One sample's value from Prometheus text, by its name and labels as written."""
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    raise AssertionError(f"{name} not in /metrics:\n{text}")


# ---- the official openai client ----


def test_the_openai_client_gets_the_embeddings_encode_gives(server, encoder):
    texts = ["How do I reset my password?", "The cat sleeps on the sofa.", text_of(60, 1)]
    expected = encoder.encode(texts)
    client = openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0, timeout=REQUEST_TIMEOUT)
    for encoding_format in (openai.omit, "float"):  # unless told, the client asks for base64 and decodes it
        response = client.embeddings.create(model="minilm", input=texts, encoding_format=encoding_format)
        served = np.array([d.embedding for d in sorted(response.data, key=lambda d: d.index)])
        assert served.shape == expected.shape
        assert np.abs(served - expected).max() <= SERVED_TOL, encoding_format
    raw = client.embeddings.create(model="minilm", input=texts, encoding_format="base64")  # asked for: kept as sent
    served = np.array([np.frombuffer(base64.b64decode(d.embedding), dtype="<f4") for d in raw.data])
    assert np.abs(served - expected).max() <= SERVED_TOL
    assert response.model == "minilm" and response.object == "list"
    assert response.usage.prompt_tokens == response.usage.total_tokens == token_count(encoder, texts)

    one = client.embeddings.create(model="whatever-the-caller-says", input=texts[0])
    assert one.model == "whatever-the-caller-says"  # echoed
    assert np.abs(np.array(one.data[0].embedding) - expected[0]).max() <= SERVED_TOL

    # dimensions: sentence-transformers' truncate_dim, normalized again as OpenAI's shortened embeddings are
    short = client.embeddings.create(model="minilm", input=texts, dimensions=128, encoding_format="float")
    served = np.array([d.embedding for d in short.data])
    assert np.abs(served - normalize(expected[:, :128])).max() <= SERVED_TOL
    in_process = encoder.encode(texts, truncate_dim=128, normalize_embeddings=True)  # sentence-transformers' order
    assert np.abs(served - in_process).max() <= SERVED_TOL

    assert [m.id for m in client.models.list().data] == ["minilm"]


def test_the_openai_client_hears_refusals_in_its_own_error_shape(server):
    client = openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0, timeout=REQUEST_TIMEOUT)
    with pytest.raises(openai.BadRequestError) as refused:
        client.embeddings.create(model="minilm", input=[])
    assert refused.value.body == {
        "message": "`input` cannot be empty",
        "type": "invalid_request_error",
        "param": "input",
        "code": None,
    }
    with pytest.raises(openai.BadRequestError) as refused:
        client.embeddings.create(model="minilm", input="a text", dimensions=1000)
    assert refused.value.body["param"] == "dimensions" and "384" in refused.value.body["message"]


# ---- TEI's /embed with httpx ----


def test_tei_embed_gives_the_embeddings_encode_gives(http, encoder):
    texts = ["What is Deep Learning?", text_of(5, 2), text_of(120, 3)]
    expected = encoder.encode(texts)
    response = http.post("/embed", json={"inputs": texts})
    assert response.status_code == 200
    assert np.abs(np.array(response.json()) - expected).max() <= SERVED_TOL

    single = http.post("/embed", json={"inputs": texts[0], "normalize": False})
    assert np.abs(np.array(single.json()) - expected[:1]).max() <= SERVED_TOL  # [[...]]: TEI answers a list

    truncated = http.post("/embed", json={"inputs": texts, "dimensions": 64})
    assert np.abs(np.array(truncated.json()) - normalize(expected[:, :64])).max() <= SERVED_TOL
    raw = http.post("/embed", json={"inputs": texts, "dimensions": 64, "normalize": False})
    assert np.abs(np.array(raw.json()) - expected[:, :64]).max() <= SERVED_TOL


def test_tei_truncate_cuts_a_long_text_or_refuses_it(http, encoder):
    long_text = text_of(400, 4)  # ~420 tokens, over MiniLM's 256
    refused = http.post("/embed", json={"inputs": [long_text]})
    assert refused.status_code == 422
    assert refused.json()["error_type"] == "validation"
    assert "must have less than 256 tokens" in refused.json()["error"]
    cut = http.post("/embed", json={"inputs": [long_text], "truncate": True})
    assert cut.status_code == 200
    assert np.abs(np.array(cut.json()) - encoder.encode([long_text])).max() <= SERVED_TOL  # encode cuts at 256 too


def test_a_prompt_name_the_model_does_not_have_is_refused(http):
    refused = http.post("/embed", json={"inputs": ["a"], "prompt_name": "passage"})
    assert refused.status_code == 422 and refused.json()["error_type"] == "validation"
    assert "'passage' not found in the model's prompts" in refused.json()["error"]


# ---- concurrency: batches of several requests, each request its own rows ----


def test_32_clients_get_their_own_vectors_and_batches_hold_several_requests(server, encoder):
    clients, per_client = 32, 16
    lengths = [2, 6, 14, 30, 60]  # words
    texts = {
        (c, i): text_of(lengths[(c + i) % len(lengths)], 1000 * c + i)
        for c in range(clients)
        for i in range(per_client)
    }
    keys = list(texts)
    expected = dict(zip(keys, encoder.encode([texts[k] for k in keys]), strict=True))
    before = httpx.get(server.url + "/metrics", timeout=REQUEST_TIMEOUT).text

    def client(c):
        got = {}
        with httpx.Client(base_url=server.url, timeout=REQUEST_TIMEOUT) as http:
            for i in range(per_client):
                if i % 2:
                    response = http.post("/embed", json={"inputs": texts[c, i]})
                    got[c, i] = (response.status_code, response.json()[0])
                else:
                    response = http.post("/v1/embeddings", json={"input": [texts[c, i]], "model": "minilm"})
                    got[c, i] = (response.status_code, response.json()["data"][0]["embedding"])
        return got

    with ThreadPoolExecutor(clients) as pool:
        results = {
            k: v for got in pool.map(client, range(clients), timeout=5 * REQUEST_TIMEOUT) for k, v in got.items()
        }
    assert set(results) == set(keys)  # none lost
    assert {status for status, _ in results.values()} == {200}
    worst = max(np.abs(np.array(vector) - expected[k]).max() for k, (_, vector) in results.items())
    assert worst <= SERVED_TOL

    after = httpx.get(server.url + "/metrics", timeout=REQUEST_TIMEOUT).text
    batches = metric(after, "minibert_batch_requests_count") - metric(before, "minibert_batch_requests_count")
    alone = metric(after, 'minibert_batch_requests_bucket{le="1"}') - metric(
        before, 'minibert_batch_requests_bucket{le="1"}'
    )
    assert batches < clients * per_client  # fewer forward passes than requests
    assert batches - alone >= 1, "no batch held more than one request"


def test_health_answers_during_a_long_batch(server):
    """The forward pass runs off the event loop: /health answers, again and again, while a long batch computes."""
    passages = [text_of(200, 5000 + i) for i in range(16)]
    done = threading.Event()

    def long_request():
        try:
            httpx.post(server.url + "/embed", json={"inputs": passages, "truncate": True}, timeout=5 * REQUEST_TIMEOUT)
        finally:
            done.set()

    thread = threading.Thread(target=long_request)
    thread.start()
    answered_meanwhile = 0
    try:
        while not done.wait(0.02):
            if httpx.get(server.url + "/health", timeout=REQUEST_TIMEOUT).status_code == 200 and not done.is_set():
                answered_meanwhile += 1
    finally:
        thread.join(timeout=5 * REQUEST_TIMEOUT)
    assert answered_meanwhile >= 2


# ---- bad input: each its 4xx in its API's shape, and the server keeps serving ----

BAD_REQUESTS = [
    # (name, route, body sent as bytes, status, TEI error_type or OpenAI param)
    ("not JSON", "/embed", b"{inputs: nope", 400, "validation"),
    ("missing field", "/embed", b'{"normalize": true}', 422, "validation"),
    ("a number as input", "/embed", b'{"inputs": 42}', 422, "validation"),
    ("an empty list", "/embed", b'{"inputs": []}', 400, "empty"),
    ("not JSON", "/v1/embeddings", b"][", 400, None),
    ("missing field", "/v1/embeddings", b'{"model": "minilm"}', 400, "input"),
    ("a number as input", "/v1/embeddings", b'{"input": 42, "model": "minilm"}', 400, "input"),
    ("token ids as input", "/v1/embeddings", b'{"input": [101, 102], "model": "minilm"}', 400, "input"),
    ("an empty list", "/v1/embeddings", b'{"input": [], "model": "minilm"}', 400, "input"),
    ("a bad encoding_format", "/v1/embeddings", b'{"input": "a", "encoding_format": "int8"}', 400, "encoding_format"),
]


def check_good_request_succeeds(http, route):
    body = {"inputs": "still serving"} if route == "/embed" else {"input": "still serving", "model": "minilm"}
    assert http.post(route, json=body).status_code == 200


@pytest.mark.parametrize(
    ("name", "route", "body", "status", "detail"), BAD_REQUESTS, ids=[f"{r[1]} {r[0]}" for r in BAD_REQUESTS]
)
def test_a_bad_request_gets_its_4xx_and_the_next_good_one_succeeds(http, name, route, body, status, detail):
    response = http.post(route, content=body, headers={"content-type": "application/json"})
    assert response.status_code == status, response.text
    if route == "/embed":
        assert response.json()["error_type"] == detail and response.json()["error"]
    else:
        error = response.json()["error"]
        assert error["type"] == "invalid_request_error" and error["message"] and error["param"] == detail
    check_good_request_succeeds(http, route)


@pytest.mark.parametrize("route", ["/embed", "/v1/embeddings"])
def test_a_50_mb_body_is_refused_with_413(http, route):
    response = http.post(route, content=b"x" * (50 << 20), headers={"content-type": "application/json"})
    assert response.status_code == 413
    message = response.json()["error"] if route == "/embed" else response.json()["error"]["message"]
    assert "--max-body-bytes" in message
    check_good_request_succeeds(http, route)


def test_a_body_without_content_length_is_cut_off_at_the_limit(http):
    chunks = (b"x" * (1 << 20) for _ in range(8))  # chunked transfer: the server counts as it reads
    response = http.post("/embed", content=chunks)
    assert response.status_code == 413
    check_good_request_succeeds(http, "/embed")


def test_a_text_over_the_limit_is_refused_in_openai_shape(http):
    response = http.post("/v1/embeddings", json={"input": ["short", text_of(400, 6)], "model": "minilm"})
    assert response.status_code == 400
    assert "must have less than 256 tokens" in response.json()["error"]["message"]
    check_good_request_succeeds(http, "/v1/embeddings")


def test_an_unknown_route_is_404_in_its_apis_shape(http):
    assert http.get("/rerank").json()["error_type"] == "not_found"
    assert http.post("/v1/chat/completions", json={}).json()["error"]["code"] == "unknown_url"


# ---- overload, shutdown, access ----


def test_a_full_queue_answers_429_with_retry_after_then_serves_normally(encoder):
    with running("--max-queue", "4") as server:
        text = text_of(90, 7)

        def one(i):
            with httpx.Client(base_url=server.url, timeout=REQUEST_TIMEOUT) as http:
                response = http.post("/embed", json={"inputs": [text, text_of(30, i)]})
                return response.status_code, response.headers.get("retry-after"), response.json()

        with ThreadPoolExecutor(64) as pool:
            results = list(pool.map(one, range(64), timeout=5 * REQUEST_TIMEOUT))
        statuses = [status for status, _, _ in results]
        assert set(statuses) <= {200, 429} and statuses.count(429) > 0 and statuses.count(200) > 0
        for status, retry_after, body in results:
            if status == 429:
                assert int(retry_after) >= 1 and body["error_type"] == "overloaded"
        after = httpx.post(server.url + "/embed", json={"inputs": [text]}, timeout=REQUEST_TIMEOUT)
        assert after.status_code == 200
        assert np.abs(np.array(after.json()) - encoder.encode([text])).max() <= SERVED_TOL
        rejected = metric(httpx.get(server.url + "/metrics", timeout=REQUEST_TIMEOUT).text, "minibert_rejected_total")
        assert rejected == statuses.count(429)
    assert server.process.returncode == 0


def test_sigterm_under_load_answers_every_accepted_request_and_exits_0():
    with running() as server:
        outcomes = []  # (status or exception name)
        stop = threading.Event()

        def client(c):
            with httpx.Client(base_url=server.url, timeout=REQUEST_TIMEOUT) as http:
                i = 0
                while not stop.is_set():
                    try:
                        response = http.post("/embed", json={"inputs": [text_of(10 + (c * 7 + i) % 60, c * 100 + i)]})
                    except httpx.TransportError as error:  # refused or closed: never accepted
                        outcomes.append(type(error).__name__)
                        return
                    outcomes.append(response.status_code)
                    i += 1

        threads = [threading.Thread(target=client, args=(c,)) for c in range(16)]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + REQUEST_TIMEOUT
        while outcomes.count(200) < 32 and time.monotonic() < deadline:
            time.sleep(0.05)
        server.process.send_signal(signal.SIGTERM)
        code = server.process.wait(timeout=SHUTDOWN)
        stop.set()
        for thread in threads:
            thread.join(timeout=REQUEST_TIMEOUT)
    assert code == 0, server.output()
    answered = [o for o in outcomes if isinstance(o, int)]
    assert set(answered) == {200}, outcomes
    found = re.search(r"answered (\d+) of (\d+) accepted requests", server.output())
    assert found, server.output()
    assert int(found.group(1)) == int(found.group(2)) == len(answered)


def test_an_api_key_guards_every_route_but_health(encoder):
    with running("--api-key", "s3cret") as server:
        with httpx.Client(base_url=server.url, timeout=REQUEST_TIMEOUT) as http:
            assert http.get("/health").status_code == 200
            for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret"}):
                refused = http.post("/embed", json={"inputs": "a"}, headers=headers)
                assert refused.status_code == 401 and refused.json()["error_type"] == "auth"
            assert http.get("/metrics").status_code == 401
            refused = http.post("/v1/embeddings", json={"input": "a", "model": "m"})
            assert refused.status_code == 401 and refused.json()["error"]["code"] == "invalid_api_key"
            good = http.post("/embed", json={"inputs": "a"}, headers={"Authorization": "Bearer s3cret"})
            assert good.status_code == 200
        client = openai.OpenAI(base_url=server.url + "/v1", api_key="s3cret", max_retries=0, timeout=REQUEST_TIMEOUT)
        served = client.embeddings.create(model="minilm", input="a").data[0].embedding
        assert np.abs(np.array(served) - encoder.encode("a")).max() <= SERVED_TOL
        with pytest.raises(openai.AuthenticationError):
            openai.OpenAI(base_url=server.url + "/v1", api_key="nope", max_retries=0).embeddings.create(
                model="m", input="a"
            )


# ---- the parts, without a server ----


def test_request_parsing_follows_each_apis_fields():
    limits = Limits(max_texts=3, auto_truncate=False)
    openai_request = parse_openai_embeddings({"input": "a", "model": "m", "dimensions": 8, "user": "u"}, limits)
    assert (openai_request.texts, openai_request.model, openai_request.dimensions) == (["a"], "m", 8)
    assert openai_request.encoding_format == "float" and openai_request.normalize is None
    tei = parse_tei_embed({"inputs": ["a", ""], "truncate": None, "truncation_direction": "Right"}, limits)
    assert tei.texts == ["a", ""] and tei.normalize is True and tei.truncate is False
    assert parse_tei_embed({"inputs": "a", "truncate": True}, Limits(3, auto_truncate=False)).truncate is True
    assert parse_tei_embed({"inputs": "a"}, Limits(3, auto_truncate=True)).truncate is True
    for body, field in [
        ({"inputs": ["a"] * 4}, "inputs"),
        ({"inputs": "a", "truncation_direction": "left"}, "truncation_direction"),
        ({"inputs": "a", "normalize": "yes"}, "normalize"),
        ({"inputs": "a", "dimensions": 0}, "dimensions"),
        ({"inputs": [["a"]]}, "inputs"),
    ]:
        with pytest.raises(RequestError) as refused:
            parse_tei_embed(body, limits)
        assert refused.value.param == field and refused.value.status == 422
    with pytest.raises(RequestError) as refused:
        parse_openai_embeddings({"input": ""}, limits)
    assert "empty string" in refused.value.message


def test_the_batcher_gives_each_request_exactly_its_rows_and_bounds_its_queue():
    seen_batches = []

    def compute(key, items):
        seen_batches.append((key, list(items)))
        return [f"{key}:{item}" for item in items]

    async def scenario(batching):
        batcher = Batcher(
            compute, max_batch_tokens=10, max_wait=0.05, max_queue=5, batching=batching, metrics=Metrics()
        )
        batcher.start()
        requests = [("p" if r % 3 == 0 else None, [f"r{r}t{t}" for t in range(r % 3 + 1)], 2) for r in range(5)]
        results = await asyncio.gather(*(batcher.submit(*request) for request in requests))
        for (key, items, _), rows in zip(requests, results, strict=True):
            assert list(rows) == [f"{key}:{item}" for item in items]
        with pytest.raises(Overloaded):  # 5 queued while the compute thread is not free to take them: the 6th waits
            await asyncio.gather(*(batcher.submit(None, ["x"], 1) for _ in range(6)))
        await batcher.stop()  # finishes the five accepted before stopping
        return batcher

    seen_batches.clear()
    batched = asyncio.run(scenario(batching=True))
    assert batched.metrics.batch_requests.series[()][2] < 10  # fewer batches than the 10 accepted requests
    assert any(len(items) > 1 for _, items in seen_batches)
    seen_batches.clear()
    alone = asyncio.run(scenario(batching=False))
    assert alone.batches == 10  # each accepted request its own batch


def test_the_batcher_holds_a_lone_clients_request_for_no_one_but_waits_once_requests_overlap():
    seen_batches = []

    def compute(key, items):
        seen_batches.append(list(items))
        return list(items)

    async def scenario():
        batcher = Batcher(compute, max_batch_tokens=100, max_wait=600.0, max_queue=10, metrics=Metrics())
        batcher.start()
        # The first request, alone: computed at once, not held for the 600 s of max_wait (the bound fails it first).
        assert await asyncio.wait_for(batcher.submit(None, ["a"], 1), timeout=30) == ["a"]
        assert await asyncio.wait_for(batcher.submit(None, ["b"], 1), timeout=30) == ["b"]
        # Two at once: one batch. After it, a request waits max_wait for company, as overlapping clients' do.
        await asyncio.wait_for(asyncio.gather(batcher.submit(None, ["c"], 1), batcher.submit(None, ["d"], 1)), 30)
        batcher.max_wait = 0.3
        started = time.perf_counter()
        assert await asyncio.wait_for(batcher.submit(None, ["e"], 1), timeout=30) == ["e"]
        held = time.perf_counter() - started
        # That batch was one request with none queued behind it: the next goes at once again.
        batcher.max_wait = 600.0
        assert await asyncio.wait_for(batcher.submit(None, ["f"], 1), timeout=30) == ["f"]
        await batcher.stop()
        return held

    held = asyncio.run(scenario())
    assert seen_batches == [["a"], ["b"], ["c", "d"], ["e"], ["f"]]
    assert held >= 0.3  # a deliberate wait, never shorter than asked


# ---- the other model kinds: prompts (e5), /rerank (a cross-encoder), /embed_sparse (SPLADE) ----


@pytest.fixture(scope="module")
def st_models(tmp_path_factory):
    """An e5-style model (prompts "query: ", "passage: "), a one-label reranker and a SPLADE model, saved by
    sentence-transformers from the real MiniLM weights (weights/make_st_api_models.py)."""
    pytest.importorskip("torch")
    pytest.importorskip("sentence_transformers")
    sys.path.insert(0, str(WEIGHTS))
    from make_st_api_models import build_e5, build_reranker, build_splade

    folder = tmp_path_factory.mktemp("st-models")
    return {"e5": build_e5(folder), "rerank1": build_reranker(folder, 1), "splade": build_splade(folder)}


def relative_diff(a, b) -> float:
    b = np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(np.asarray(a, dtype=np.float64) - b) / np.maximum(np.abs(b), 1.0)))


def test_prompt_name_is_the_models_prompt_and_counts_its_tokens(st_models):
    encoder = SentenceEncoder(st_models["e5"])
    texts = ["how do cats sleep", text_of(30, 8)]
    with running(model=st_models["e5"]) as server, httpx.Client(base_url=server.url, timeout=REQUEST_TIMEOUT) as http:
        for prompt_name in ("query", "passage"):
            served = http.post("/embed", json={"inputs": texts, "prompt_name": prompt_name})
            expected = encoder.encode(texts, prompt_name=prompt_name)
            assert np.abs(np.array(served.json()) - expected).max() <= SERVED_TOL, prompt_name
        plain = http.post("/v1/embeddings", json={"input": texts}).json()
        assert plain["usage"]["prompt_tokens"] == int(encoder.count_tokens(texts).sum())
        assert np.abs(np.array([d["embedding"] for d in plain["data"]]) - encoder.encode(texts)).max() <= SERVED_TOL


def test_tei_rerank_gives_what_cross_encoder_rank_gives(st_models):
    reranker = CrossEncoder(st_models["rerank1"])
    query = "Where do cats like to sleep?"
    texts = ["Kittens like to nap in the sun.", "Stock markets fell sharply.", text_of(40, 9), "Cats sleep a lot."]
    with (
        running(model=st_models["rerank1"]) as server,
        httpx.Client(base_url=server.url, timeout=REQUEST_TIMEOUT) as http,
    ):
        served = http.post("/rerank", json={"query": query, "texts": texts, "return_text": True, "top_k": 3}).json()
        expected = reranker.rank(query, texts, top_k=3, return_documents=True)
        assert [r["index"] for r in served] == [r["corpus_id"] for r in expected]
        assert [r["text"] for r in served] == [r["text"] for r in expected]
        assert relative_diff([r["score"] for r in served], [r["score"] for r in expected]) <= SERVED_REL_TOL

        everything = http.post("/rerank", json={"query": query, "texts": texts, "raw_scores": True}).json()
        logits = reranker.predict([(query, t) for t in texts], activation_fn="torch.nn.modules.linear.Identity")
        assert sorted(r["index"] for r in everything) == list(range(len(texts))) and "text" not in everything[0]
        assert (
            relative_diff([r["score"] for r in everything], logits[[r["index"] for r in everything]]) <= SERVED_REL_TOL
        )

        assert http.post("/rerank", json={"query": query, "texts": []}).json()["error_type"] == "empty"
        assert http.post("/rerank", json={"texts": texts}).status_code == 422
        refused = http.post("/embed", json={"inputs": "a"})  # a reranker has no embedding routes
        assert refused.status_code == 404 and "/rerank" in refused.json()["error"]


def test_tei_embed_sparse_gives_what_sparse_encoder_encode_gives(st_models):
    sparse_encoder = SparseEncoder(st_models["splade"])
    texts = ["Where do cats like to sleep?", text_of(25, 10)]
    with (
        running(model=st_models["splade"]) as server,
        httpx.Client(base_url=server.url, timeout=REQUEST_TIMEOUT) as http,
    ):
        for prompt_name in (None, "query"):
            served = http.post("/embed_sparse", json={"inputs": texts, "prompt_name": prompt_name}).json()
            expected = sparse_encoder.encode(texts, prompt_name=prompt_name)
            dense = np.zeros_like(expected)
            for row, weights in zip(dense, served, strict=True):
                assert all(w["value"] > 0 for w in weights)  # the non-zero weights only
                row[[w["index"] for w in weights]] = [w["value"] for w in weights]
            assert relative_diff(dense, expected) <= SERVED_REL_TOL, prompt_name


def test_two_workers_share_the_port_and_stop_on_sigterm(encoder):
    with running("--workers", "2") as server:
        with httpx.Client(base_url=server.url, timeout=REQUEST_TIMEOUT) as http:
            texts = [text_of(8, 20 + i) for i in range(8)]
            served = [http.post("/embed", json={"inputs": text}).json()[0] for text in texts]
        assert np.abs(np.array(served) - encoder.encode(texts)).max() <= SERVED_TOL
        code = server.stop()
    assert code == 0, server.output()
    assert len(re.findall(r"worker \d+: embedding model", server.output())) == 2


def test_listening_beyond_loopback_without_a_key_is_warned_about():
    assert exposure_warning("127.0.0.1", None) is None and exposure_warning("::1", None) is None
    assert exposure_warning("localhost", None) is None
    assert exposure_warning("0.0.0.0", "key") is None
    warning = exposure_warning("0.0.0.0", None)
    assert "without an API key" in warning and "MINIBERT_API_KEY" in warning


def test_import_minibert_and_its_command_never_import_the_server_stack():
    code = "import sys, minibert, minibert.cli; print(sorted({'starlette', 'uvicorn'} & set(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=REQUEST_TIMEOUT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert out.stdout.strip() == "[]", out.stderr
