"""Gathering concurrent requests into batches: one forward pass for many requests, off the event loop.

    request handlers --submit(key, items, tokens)--> queue (at most max_queue requests; more: Overloaded -> 429)
    gather loop: wait for the first request, then up to max_wait for more, until max_batch_tokens are queued
              (no wait after a batch of one request that left none queued: a lone client's requests go at once)
              -> take requests in arrival order while their tokens fit the budget (at least one)
              -> compute(key, items) on the one compute thread, once per key (a prompt, say), in the model's order
              -> each request's future gets exactly its own rows back, in its own order

The model sorts a batch's texts by length itself (SentenceEncoder.encode cuts batches of nearly one length), so
the batcher only decides which requests share a forward pass. The forward pass runs on a single dedicated thread:
the model already spreads one call over every core, and NumPy releases the GIL while it computes, so the event loop
keeps answering (/health, /metrics, new requests) during a long batch.

With `batching=False` every request is its own batch, in arrival order: the baseline the benchmark compares with.
"""

import asyncio
import logging
import math
import time
from collections import deque
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from .metrics import Metrics

log = logging.getLogger("minibert.serve")


class Overloaded(Exception):
    """The queue is full; `retry_after` is a whole number of seconds to wait (the Retry-After header)."""

    def __init__(self, queued: int, retry_after: int):
        super().__init__(f"the server is overloaded: {queued} requests are waiting; retry in {retry_after} s")
        self.retry_after = retry_after


@dataclass
class Job:
    """One request's rows, waiting for a batch."""

    key: Hashable  # requests with different keys share a batch but not a compute call
    items: Sequence  # texts, or (query, text) pairs
    tokens: int
    future: asyncio.Future
    arrived: float = field(default_factory=time.perf_counter)


class Batcher:
    """Gathers submitted requests into batches and runs `compute(key, items) -> rows` (len(rows) == len(items))
    for them on one compute thread. start() and stop() run on the event loop; stop() finishes every request
    already submitted first."""

    def __init__(
        self,
        compute: Callable[[Hashable, list], Sequence],
        *,
        max_batch_tokens: int,
        max_wait: float,
        max_queue: int,
        batching: bool = True,
        metrics: Metrics | None = None,
    ):
        self.compute = compute
        self.max_batch_tokens = max_batch_tokens
        self.max_wait = max_wait
        self.max_queue = max_queue
        self.batching = batching
        self.metrics = metrics or Metrics()
        self.queue: deque[Job] = deque()
        self.queued_tokens = 0
        self.batches = 0
        self.seconds_per_token = 0.0  # a running estimate, for Retry-After
        self._arrived = asyncio.Event()
        # Whether the last batch was one request and none was queued when it ended: a lone client, whose next request
        # would wait max_wait for company that is not coming (at 1 client, 2 ms of a short query's ~15).
        self._alone = True
        self._stopping = False
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="minibert-compute")
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._gather(), name="minibert-batcher")

    async def stop(self) -> None:
        """Stop taking requests; finish the queued ones and the running batch, then release the compute thread."""
        self._stopping = True
        self._arrived.set()
        if self._task is not None:
            await self._task
        self._executor.shutdown(wait=True)

    async def submit(self, key: Hashable, items: Sequence, tokens: int) -> Sequence:
        """The rows of `items`, once their batch is computed. Raises Overloaded when max_queue requests wait."""
        if self._stopping:
            raise Overloaded(len(self.queue), retry_after=1)
        if len(self.queue) >= self.max_queue:
            self.metrics.rejected.inc()
            raise Overloaded(len(self.queue), retry_after=self.retry_after())
        job = Job(key, items, tokens, asyncio.get_running_loop().create_future())
        self.queue.append(job)
        self.queued_tokens += tokens
        self._arrived.set()
        return await job.future

    def retry_after(self) -> int:
        """Seconds until the queue has likely drained: its tokens at the measured speed, at least 1."""
        return max(1, math.ceil(self.queued_tokens * self.seconds_per_token))

    async def _gather(self) -> None:
        while True:
            while not self.queue:
                if self._stopping:
                    return
                self._arrived.clear()
                await self._arrived.wait()
            if self.batching and not self._alone:
                await self._wait_for_more()
            await self._run(self._take())

    async def _wait_for_more(self) -> None:
        """Until the token budget is queued or max_wait has passed since the oldest request arrived."""
        deadline = self.queue[0].arrived + self.max_wait
        while self.queued_tokens < self.max_batch_tokens and not self._stopping:
            left = deadline - time.perf_counter()
            if left <= 0:
                return
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), timeout=left)
            except asyncio.TimeoutError:  # TimeoutError itself from Python 3.11 on
                return

    def _take(self) -> list[Job]:
        """Requests in arrival order while their tokens fit the budget; always the first, however large."""
        jobs, tokens = [self.queue.popleft()], 0
        tokens = jobs[0].tokens
        while self.batching and self.queue and tokens + self.queue[0].tokens <= self.max_batch_tokens:
            jobs.append(self.queue.popleft())
            tokens += jobs[-1].tokens
        self.queued_tokens -= tokens
        return jobs

    async def _run(self, jobs: list[Job]) -> None:
        started = time.perf_counter()
        for job in jobs:
            self.metrics.queue_seconds.observe(started - job.arrived)
        try:
            rows = await asyncio.get_running_loop().run_in_executor(self._executor, self._compute, jobs)
        except Exception as error:  # the model failed: every request of the batch hears it, the server goes on
            log.exception("batch of %d requests failed", len(jobs))
            for job in jobs:
                if not job.future.done():
                    job.future.set_exception(error)
            return
        seconds = time.perf_counter() - started
        self._alone = len(jobs) == 1 and not self.queue
        for job, job_rows in zip(jobs, rows, strict=True):
            if not job.future.done():  # a client that went away leaves a cancelled future
                job.future.set_result(job_rows)
        self._record(jobs, seconds)

    def _compute(self, jobs: list[Job]) -> list[Sequence]:
        """On the compute thread: one compute call per key, over its requests' items concatenated; the rows cut
        back into one slice per request."""
        out: list[Sequence | None] = [None] * len(jobs)
        for key in dict.fromkeys(job.key for job in jobs):
            mine = [i for i, job in enumerate(jobs) if job.key == key]
            items = [item for i in mine for item in jobs[i].items]
            rows = self.compute(key, items)
            if len(rows) != len(items):
                raise RuntimeError(f"compute returned {len(rows)} rows for {len(items)} items")
            start = 0
            for i in mine:
                out[i] = rows[start : start + len(jobs[i].items)]
                start += len(jobs[i].items)
        return out

    def _record(self, jobs: list[Job], seconds: float) -> None:
        self.batches += 1
        texts, tokens = sum(len(job.items) for job in jobs), sum(job.tokens for job in jobs)
        if tokens:
            self.seconds_per_token = (
                0.8 * self.seconds_per_token + 0.2 * seconds / tokens if self.batches > 1 else (seconds / tokens)
            )
        self.metrics.batch_requests.observe(len(jobs))
        self.metrics.batch_texts.observe(texts)
        self.metrics.batch_tokens.observe(tokens)
        self.metrics.batch_seconds.observe(seconds)
        log.info(
            "batch %d: %d requests, %d texts, %d tokens in %.1f ms; %d requests queued",
            self.batches,
            len(jobs),
            texts,
            tokens,
            1000 * seconds,
            len(self.queue),
        )
