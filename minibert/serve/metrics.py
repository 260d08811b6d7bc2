"""The server's counters, gauges and histograms, written in Prometheus' text exposition format (version 0.0.4).

Every update happens on the event loop's thread (the batcher records a batch once its forward pass is back), so
nothing here takes a lock. No client library: the format is a few lines of text per metric.
"""

import math
from collections.abc import Callable

# Seconds: a short query is a few milliseconds, a batch of passages a few hundred.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# Requests or texts in one batch.
COUNT_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048)
# Tokens in one batch.
TOKEN_BUCKETS = (16, 64, 256, 1024, 2048, 4096, 8192, 16384, 65536)
INF_BUCKET = 'le="+Inf"'


def _labels(names: tuple[str, ...], values: tuple, extra: str = "") -> str:
    parts = [f'{name}="{value}"' for name, value in zip(names, values, strict=True)]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}" if parts else ""


def _number(value: float) -> str:
    if value == math.inf:
        return "+Inf"
    return repr(float(value)) if isinstance(value, float) and not value.is_integer() else str(int(value))


class Counter:
    def __init__(self, name: str, help: str, labels: tuple[str, ...] = ()):
        self.name, self.help, self.label_names = name, help, labels
        self.values: dict[tuple, float] = {}

    def inc(self, *labels, by: float = 1) -> None:
        self.values[labels] = self.values.get(labels, 0) + by

    def render(self) -> list[str]:
        lines = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} counter"]
        values = self.values or ({(): 0} if not self.label_names else {})
        return lines + [f"{self.name}{_labels(self.label_names, k)} {_number(v)}" for k, v in sorted(values.items())]


class Gauge:
    """A value read when /metrics is asked for (the queue's depth, say)."""

    def __init__(self, name: str, help: str, read: Callable[[], float]):
        self.name, self.help, self.read = name, help, read

    def render(self) -> list[str]:
        return [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} gauge", f"{self.name} {_number(self.read())}"]


class Histogram:
    def __init__(self, name: str, help: str, buckets: tuple, labels: tuple[str, ...] = ()):
        self.name, self.help, self.buckets, self.label_names = name, help, buckets, labels
        self.series: dict[tuple, list] = {}  # labels -> [counts per bucket (not cumulative), sum, count]

    def observe(self, value: float, *labels) -> None:
        counts, total, n = self.series.get(labels) or ([0] * len(self.buckets), 0.0, 0)
        for i, bound in enumerate(self.buckets):
            if value <= bound:
                counts[i] += 1
                break
        self.series[labels] = [counts, total + value, n + 1]

    def render(self) -> list[str]:
        lines = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} histogram"]
        series = self.series or ({(): [[0] * len(self.buckets), 0.0, 0]} if not self.label_names else {})
        for labels, (counts, total, n) in sorted(series.items()):
            cumulative = 0
            for bound, count in zip(self.buckets, counts, strict=True):
                cumulative += count
                le = _labels(self.label_names, labels, f'le="{_number(bound)}"')
                lines.append(f"{self.name}_bucket{le} {cumulative}")
            lines.append(f"{self.name}_bucket{_labels(self.label_names, labels, INF_BUCKET)} {n}")
            lines.append(f"{self.name}_sum{_labels(self.label_names, labels)} {_number(total)}")
            lines.append(f"{self.name}_count{_labels(self.label_names, labels)} {n}")
        return lines


class Metrics:
    """What /metrics shows. `queue_depth` reads the batcher's queue when asked."""

    def __init__(self, queue_depth: Callable[[], float] = lambda: 0):
        self.requests = Counter(
            "minibert_requests_total", "HTTP requests answered, by route and status", ("route", "status")
        )
        self.request_seconds = Histogram(
            "minibert_request_duration_seconds",
            "time from a request's arrival to its answer",
            LATENCY_BUCKETS,
            ("route",),
        )
        self.tokens = Counter("minibert_tokens_total", "tokens computed (after truncation), by route", ("route",))
        self.texts = Counter("minibert_texts_total", "texts computed, by route", ("route",))
        self.rejected = Counter("minibert_rejected_total", "requests refused with 429 because the queue was full")
        self.batch_requests = Histogram("minibert_batch_requests", "requests gathered into one batch", COUNT_BUCKETS)
        self.batch_texts = Histogram("minibert_batch_texts", "texts in one batch", COUNT_BUCKETS)
        self.batch_tokens = Histogram("minibert_batch_tokens", "tokens in one batch", TOKEN_BUCKETS)
        self.batch_seconds = Histogram("minibert_batch_duration_seconds", "one batch's forward pass", LATENCY_BUCKETS)
        self.queue_seconds = Histogram(
            "minibert_queue_duration_seconds", "time a request waited before its batch began", LATENCY_BUCKETS
        )
        self.queue_depth = Gauge("minibert_queue_depth", "requests waiting for a batch", queue_depth)

    def render(self) -> str:
        metrics = [
            self.requests,
            self.request_seconds,
            self.tokens,
            self.texts,
            self.rejected,
            self.batch_requests,
            self.batch_texts,
            self.batch_tokens,
            self.batch_seconds,
            self.queue_seconds,
            self.queue_depth,
        ]
        return "\n".join(line for metric in metrics for line in metric.render()) + "\n"
