"""One forward pass on several cores: how many threads a call gets, one shared pool, and BLAS's threads meanwhile.

NumPy releases the GIL inside its matrix products and ufunc loops, so Python threads that each run the model over a
slice of the batch (model.bert_model_in_threads) keep every core busy with all of the work, softmax, LayerNorm, GELU
and the residual adds too, not only the products. BLAS then runs one thread per product: its own threads would
compete with ours, and after a product OpenBLAS's idle threads spin (~0.1 s) on the cores our threads want. One
product on BLAS's two threads before a split batch (the pooler, once) made MiniLM 8x32 on two cores 1.5x slower.
The price of our threads is the handoff: a piece of work given to a pool thread costs ~130 us on a 2-core VM (a
sleeping thread woken), against microseconds for BLAS's spinning ones, so small work stays where it is (MIN_PART_MACS,
MIN_PIECE_ELEMENTS, tuning.MIN_SLICE_MACS). Nothing set here outlives the call: BLAS's thread count is restored
when the last call running at once returns.
"""

import operator
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import threadpoolctl
from threadpoolctl import ThreadpoolController

from .errors import InputError
from .tuning import MAX_LAYER_PARTS

THREADS_ENV = "MINIBERT_NUM_THREADS"


def available_cores() -> int:
    """The cores this process may run on (its affinity mask, as taskset sets it)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def resolve_threads(threads: int | None = None) -> int:
    """A call's thread count: `threads` if given, else $MINIBERT_NUM_THREADS if set, else available_cores()."""
    source = "threads"
    if threads is None:
        value = os.environ.get(THREADS_ENV, "").strip()
        if not value:
            return available_cores()
        source, threads = f"{THREADS_ENV}={value!r}", value
        try:
            threads = int(value)
        except ValueError:
            pass  # refused below, as found
    try:
        count = None if isinstance(threads, bool) else operator.index(threads)
    except TypeError:
        count = None
    if count is None or count < 1:
        raise InputError(
            f"{source} must be a whole number of threads, 1 or more; found {threads!r}. Give e.g. threads=2, or "
            f"leave it out (and {THREADS_ENV} unset) to use every core this process may run on ({available_cores()})"
        )
    return count


# ----------------------------------------------------------------------------------------------------------
# The pool, and how many of its threads the work in the current thread may use.
_pool_lock = threading.Lock()
_pool: tuple[int, int, ThreadPoolExecutor] | None = None  # (pid, workers, pool): a forked child makes its own
_budget = threading.local()  # .threads: what the call running in this thread may use; unset outside a call
# .fixed_blocks: in products_on (a head's, a Dense module's products), not in the encoder
# .beside_others: running one of map_in_threads' items while the call's other threads run theirs


def thread_pool(workers: int) -> ThreadPoolExecutor:
    """A pool of at least `workers` threads, shared by every call of this process."""
    global _pool
    with _pool_lock:
        if _pool is None or _pool[0] != os.getpid() or _pool[1] < workers:
            old, _pool = _pool, (os.getpid(), max(workers, 1), ThreadPoolExecutor(max(workers, 1), "minibert"))
            if old is not None and old[0] == os.getpid():
                old[2].shutdown(wait=False)  # its threads finish what they run, then end
        return _pool[2]


def fixed_parts() -> int:
    """How many parts work is cut into where the cut must follow neither the thread count nor the cores the process may
    use, so that on one machine neither changes a bit of the outputs: a layer's heads and features (layer_parts.py).
    The machine's CPUs, at most tuning.MAX_LAYER_PARTS."""
    return min(MAX_LAYER_PARTS, os.cpu_count() or 1)


def threads_here() -> int:
    """The threads the work in this thread may use: its call's count, 1 in a slice of a batch, resolve_threads()
    outside any call."""
    threads = getattr(_budget, "threads", None)
    return resolve_threads() if threads is None else threads


def fixed_blocks_here() -> bool:
    """Whether the products in this thread may be cut into fixed_parts() blocks of output features where BLAS's own cut
    would change their bits: a head's and a Dense module's products (products_on) are, whatever the thread count; the
    encoder's have their own parts (layer_parts.py) and the pooler's stay whole."""
    return bool(getattr(_budget, "fixed_blocks", None))


def beside_others_here() -> bool:
    """Whether the work in this thread runs beside other threads of its call (one of several items of map_in_threads):
    there each NumPy call that ends takes the GIL back from them, so elementwise work is done in fewer, longer calls."""
    return bool(getattr(_budget, "beside_others", None))


@contextmanager
def _here(name: str, value) -> Iterator[None]:
    """_budget.<name> = value in this thread until the block ends, then what it was (None: unset)."""
    before = getattr(_budget, name, None)
    setattr(_budget, name, value)
    try:
        yield
    finally:
        setattr(_budget, name, before)


def budget(threads: int):
    """`with budget(threads):` let the work in this thread use `threads` threads until the block ends."""
    return _here("threads", threads)


def _in_one_thread(fn: Callable, item):
    with budget(1):
        return fn(item)


def _beside_others(fn: Callable, item):
    with _here("beside_others", True):
        return _in_one_thread(fn, item)


def map_in_threads(fn: Callable, items: Sequence) -> list:
    """[fn(item) for item in items], all at once: the first in this thread, the others on the pool; each with a
    budget of one thread (and, for more than one item, beside_others_here()). Returns (or raises) only when every
    one has finished."""
    if len(items) == 1:  # beside others or not as this thread is
        return [_in_one_thread(fn, items[0])]
    futures = [thread_pool(len(items) - 1).submit(_beside_others, fn, item) for item in items[1:]]
    try:
        first = _beside_others(fn, items[0])
    finally:
        wait(futures)  # nothing of this call keeps running after it, not even when it raises
    return [first, *(future.result() for future in futures)]


def deal(items: Sequence, threads: int) -> list[list]:
    """items dealt out like cards to min(threads, len(items)) threads: one list each, for map_in_threads."""
    threads = max(1, min(threads, len(items)))
    return [list(items[i::threads]) for i in range(threads)]


def split(n: int, parts: int) -> list[slice]:
    """range(n) cut into min(parts, n) consecutive slices whose lengths differ by at most one."""
    parts = max(1, min(parts, n))
    return [slice(n * i // parts, n * (i + 1) // parts) for i in range(parts)]


# ----------------------------------------------------------------------------------------------------------
# BLAS's thread count: process-wide, so calls running at once share one setting. The first call sets it, a call
# that needs fewer threads lowers it (to 1 when a batch is split: more would oversubscribe the cores), the last one
# to return restores what was there before. BLAS gets more than one thread only where its own split of a product
# keeps the product's bits: else the outputs would follow the thread count.

# The OpenBLAS kernels (threadpoolctl's "architecture") that compute a float32 product cut by rows or by output
# features, as BLAS's own threads, a batch's slices or functional.linear's blocks cut it, to the bits of the whole
# product (but for products of one row), measured at the shapes of MiniLM's and bert-base's calls (tests/test_threads.py
# checks the kernel it runs on; in float64 SkylakeX moved the last bit of some of bert-base's attention products at 127
# tokens, far within the 1e-12 that tests/test_threads.py holds float64 to). On these, BLAS's threads share a short
# call's products, a batch is cut into one slice per thread, and linear shares a product among the call's threads.
# Not OpenBLAS's Haswell kernel, which AVX2 CPUs get: there a float32 product of 4 to 127 rows rounded otherwise on two
# threads than on one, and bert-base's pooler moved by 1.6e-6 between threads=1 and threads=2 (beyond the 1e-6 the
# outputs keep across thread counts). Any other kernel or BLAS is treated as that one is.
SPLIT_KEEPS_BITS = frozenset({"SkylakeX"})
# The OpenBLAS kernels with small-matrix kernels for float32 (no packing: functional.linear's few-row path,
# tuning.SMALL_ROWS). Haswell's has none: there a product cut as small is an ordinary one, packing included.
SMALL_MATRIX_KERNELS = frozenset({"SkylakeX"})


def numpy_blas(controller: ThreadpoolController):
    """threadpoolctl's controller of the BLAS NumPy itself runs (in NumPy's folder or the wheel's numpy.libs beside
    it; torch, when loaded, brings its own), or None where it is not found."""
    numpy_folder = Path(np.__file__).parent
    for library in controller.select(user_api="blas").lib_controllers:
        folder = Path(library.filepath).parent
        if folder in (numpy_folder, numpy_folder.parent / "numpy.libs") or numpy_folder in folder.parents:
            return library
    return None


def release_openblas() -> None:
    """Let any thread set OpenBLAS's thread count next. threadpoolctl (3.8) lets only the thread that first set it set
    it again, and silently ignores the others until that thread is released; blas_threads sets and restores it from
    whichever thread a call runs on (a server's compute thread after its main thread's warm-up: BLAS kept its two
    threads beside ours, and on OpenBLAS's Haswell kernel the served outputs moved by 2.7e-6), so it releases it around
    each change, under its lock."""
    controller_class = getattr(threadpoolctl, "OpenBLASController", None)
    if hasattr(controller_class, "clear_controlling_thread"):  # threadpoolctl before 3.8 has no controlling thread
        controller_class.clear_controlling_thread(force=True)


class _BlasThreads:
    def __init__(self):
        self._lock = threading.Lock()
        self._active = 0
        self._threads = 0
        self._limiter = None  # threadpoolctl's record of the thread counts before the first call
        self._controller = None  # found once, at the first call: it scans the loaded libraries, NumPy's BLAS among them
        self._keeps_bits = None  # whether NumPy's BLAS is a kernel of SPLIT_KEEPS_BITS, found at the first call
        self._small_matrices = None  # whether it is one of SMALL_MATRIX_KERNELS, found with it

    def _after_fork_in_child(self) -> None:  # a child forked mid-call starts with no call running
        self._lock = threading.Lock()
        self._active, self._threads, self._limiter = 0, 0, None

    def split_keeps_bits(self) -> bool:
        """Whether BLAS's own threads may share a product: NumPy's BLAS is an OpenBLAS kernel of SPLIT_KEEPS_BITS."""
        if self._keeps_bits is None:  # found once; read without the lock after that (functional.linear asks each time)
            with self._lock:
                self._read_kernel()
        return self._keeps_bits

    def on_one_thread(self) -> bool:
        """Whether BLAS runs one thread per product now: as the calls running at once set it, else (no call running)
        as its own default, a thread per core of the process."""
        return self._threads == 1 if self._active else available_cores() == 1

    def small_matrices(self) -> bool:
        """Whether NumPy's BLAS is an OpenBLAS kernel of SMALL_MATRIX_KERNELS."""
        if self._small_matrices is None:
            with self._lock:
                self._read_kernel()
        return self._small_matrices

    def _read_kernel(
        self,
    ) -> None:  # under the lock: what NumPy's BLAS kernel allows, each found once (or set by a test)
        if self._controller is None:
            self._controller = ThreadpoolController()
        if self._keeps_bits is None or self._small_matrices is None:
            blas = numpy_blas(self._controller)
            kernel = getattr(blas, "architecture", None) if blas is not None else None
            if self._keeps_bits is None:
                self._keeps_bits = kernel in SPLIT_KEEPS_BITS
            if self._small_matrices is None:
                self._small_matrices = kernel in SMALL_MATRIX_KERNELS

    @contextmanager
    def __call__(self, threads: int) -> Iterator[None]:
        with self._lock:
            self._read_kernel()
            if not self._keeps_bits:
                threads = 1
            if self._active == 0:
                self._limiter = self._set(lambda: self._controller.limit(limits=threads, user_api="blas"))
                self._threads = threads
            elif threads < self._threads:  # lowered; the first limiter keeps the original counts
                self._set(lambda: self._controller.limit(limits=threads, user_api="blas"))
                self._threads = threads
            self._active += 1
        try:
            yield
        finally:
            with self._lock:
                self._active -= 1
                if self._active == 0:
                    self._set(self._limiter.restore_original_limits)
                    self._limiter = None

    @staticmethod
    def _set(change):  # under the lock: BLAS's thread count changed from this thread, whichever it is
        release_openblas()
        try:
            return change()
        finally:
            release_openblas()


blas_threads = _BlasThreads()
"""`with blas_threads(n):` BLAS runs at most n threads per product (the fewest any call running at once asked), and
one where its split of a product would change the product's bits."""
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=blas_threads._after_fork_in_child)


@contextmanager
def products_on(threads: int | None = None) -> Iterator[None]:
    """Products outside the encoder (a head's, a Dense module's) on a call's `threads` (resolve_threads):
    functional.linear shares each among them in blocks of output features, BLAS on one thread, as in a layer's parts.
    Where BLAS rounds a block otherwise than the whole product, the blocks are fixed_parts() whatever the thread count
    (fixed_blocks_here): a masked-LM decoder over the vocabulary was one thread's work there, on any number of cores."""
    with _here("fixed_blocks", True), blas_threads(1), budget(resolve_threads(threads)):
        yield
