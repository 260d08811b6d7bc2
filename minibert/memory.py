"""Where a forward pass's temporaries get their memory: glibc's malloc, told to keep what the pass frees.

Every step of model.py returns a new array: [S, H], [S, I], [N, S, S]. glibc gives arrays above its mmap threshold
pages of their own, and hands the top of its heap back to the system once more than its trim threshold is free
there. It raises both thresholds as it sees large blocks freed (up to 32 MiB), but not far enough for a forward
pass, whose temporaries add up to more: each pass freed pages that the next one faulted back in, zeroed, one at a
time (~2 us each). MiniLM on one core: 1,536 faults per forward at 1x128, 6,600-6,800 at 8x128 and 32x128; with
the thresholds fixed as below, none, and 1x128 took 44.8 against 48.5 ms, 8x128 296 against 322 ms, 32x128 1,166
against 1,217 ms (benchmarks/README.md). ONNX Runtime avoids the same cost with an arena of its own
(its CPU memory arena, on by default).

The price: memory a pass frees stays with the process for the next pass (up to its peak, which it had reached
anyway) instead of going back to the system between calls. Set once per process, at the first forward pass, and
never where the process's malloc is already set by hand (a MALLOC_*_ variable or a glibc.malloc tunable): those
settings are the user's. Nothing here changes a number.
"""

import ctypes
import os
import platform
import threading

from .tuning import MMAP_THRESHOLD_BYTES, TRIM_THRESHOLD_BYTES

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's <malloc.h>
_USER_SETTINGS = ("MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TOP_PAD_", "MALLOC_MMAP_MAX_")
_lock = threading.Lock()
_ours: bool | None = None  # None until the first forward pass has tried


def malloc_set_by_user(environ=os.environ) -> bool:
    """Whether this process's malloc thresholds were set in its environment (glibc reads them at start-up)."""
    return any(name in environ for name in _USER_SETTINGS) or "glibc.malloc." in environ.get("GLIBC_TUNABLES", "")


# Read at import, as near to the process's start as minibert gets: a Dask LocalCluster started later in this process
# writes its workers' MALLOC_TRIM_THRESHOLD_ into os.environ, which this process's malloc never read.
_SET_BY_USER = malloc_set_by_user()


def keep_freed_memory() -> bool:
    """Fix glibc's mmap and trim thresholds, once per process, unless the user set malloc's thresholds or the C
    library is not glibc. Returns whether the thresholds are ours."""
    global _ours
    with _lock:
        if _ours is None:
            _ours = False
            if platform.system() == "Linux" and platform.libc_ver()[0] == "glibc" and not _SET_BY_USER:
                mallopt = ctypes.CDLL("libc.so.6").mallopt
                mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
                # mallopt returns 1 on success, 0 on an unknown setting or a value out of range.
                _ours = mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) == 1
                _ours = _ours and mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES) == 1
        return _ours
