"""What the benchmarks here share: a record of the host (the CPU and its vector extensions, the BLAS NumPy calls,
the variables that steer them), pinning a process to N cores, and engines in worker processes driven over a pipe.

Every results file of benchmarks/ records `describe_host()` once and `blas_info()` from inside each timed process
(the kernel OpenBLAS picked is a property of the process: `OPENBLAS_CORETYPE` overrides its own choice). The parsing
functions take text, so the tests check them on fixed `lscpu` and `/proc/cpuinfo` samples without this machine.
"""

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

# The x86 flags that decide which kernels BLAS, torch and onnxruntime run, in /proc/cpuinfo's spelling and in order
# of age. ARM's asimd/sve/sve2 and bf16/i8mm are listed too, so an ARM host is described by the same function.
VECTOR_EXTENSIONS = (
    "sse4_2",
    "avx",
    "fma",
    "f16c",
    "avx2",
    "avx_vnni",
    "avx512f",
    "avx512dq",
    "avx512cd",
    "avx512bw",
    "avx512vl",
    "avx512_vnni",
    "avx512_bf16",
    "avx512_fp16",
    "amx_tile",
    "amx_bf16",
    "amx_int8",
    "asimd",
    "sve",
    "sve2",
    "bf16",
    "i8mm",
)
# The variables that change which kernel or how many threads the engines use; recorded with every result.
STEERING_VARIABLES = (
    "OPENBLAS_CORETYPE",
    "OPENBLAS_L2_SIZE",
    "OPENBLAS_NUM_THREADS",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "MKL_ENABLE_INSTRUCTIONS",
    "ATEN_CPU_CAPABILITY",
    "MINIBERT_NUM_THREADS",
    "TOKENIZERS_PARALLELISM",
    "RAYON_NUM_THREADS",
)
LSCPU_FIELDS = {  # lscpu's label -> the key recorded
    "Model name": "model_name",
    "Vendor ID": "vendor",
    "CPU family": "family",
    "Model": "model",
    "Stepping": "stepping",
    "Hypervisor vendor": "hypervisor",
    "L1d cache": "l1d",
    "L2 cache": "l2",
    "L3 cache": "l3",
}


def parse_lscpu(text: str) -> dict[str, str]:
    """`lscpu`'s "Label: value" lines -> the LSCPU_FIELDS it has (the first of each; lscpu repeats some per socket)."""
    found = {}
    for line in text.splitlines():
        label, sep, value = line.partition(":")
        key = LSCPU_FIELDS.get(label.strip())
        if sep and key and key not in found:
            found[key] = value.strip()
    return found


def parse_cpuinfo(text: str) -> dict[str, str]:
    """/proc/cpuinfo's first processor block -> model name, family, model and its flags (x86 `flags`, ARM
    `Features`), for hosts without lscpu and for the flags, which lscpu prints only on x86."""
    keys = {"model name": "model_name", "cpu family": "family", "model": "model", "flags": "flags"}
    keys["Features"] = "flags"
    found = {}
    for line in text.splitlines():
        if not line.strip():
            if found:
                break  # the end of the first processor's block
            continue
        label, sep, value = line.partition(":")
        key = keys.get(label.strip())
        if sep and key and key not in found:
            found[key] = value.strip()
    return found


def vector_extensions(flags: str) -> list[str]:
    """The VECTOR_EXTENSIONS among a space-separated flags string, in VECTOR_EXTENSIONS' order."""
    present = set(flags.split())
    return [flag for flag in VECTOR_EXTENSIONS if flag in present]


def describe_cpu() -> dict:
    """This machine's CPU: lscpu's fields (falling back to /proc/cpuinfo), vector extensions, allowed cores."""
    try:
        lscpu = subprocess.run(
            ["lscpu"], capture_output=True, text=True, timeout=10, env={**os.environ, "LC_ALL": "C"}
        ).stdout
    except (OSError, subprocess.SubprocessError):
        lscpu = ""
    try:
        cpuinfo = parse_cpuinfo(Path("/proc/cpuinfo").read_text())
    except OSError:
        cpuinfo = {}
    cpu = {key: cpuinfo[key] for key in ("model_name", "family", "model") if key in cpuinfo}
    cpu.update(parse_lscpu(lscpu))
    cpu.setdefault("model_name", platform.processor() or platform.machine())
    cpu["vector_extensions"] = vector_extensions(cpuinfo.get("flags", ""))
    cpu["logical_cpus"] = os.cpu_count()
    cpu["allowed_cpus"] = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return cpu


def blas_info() -> list[dict]:
    """threadpoolctl's view of the BLAS and OpenMP libraries loaded in this process: library, version, kernel
    (`architecture`: OpenBLAS's core type, e.g. Haswell, SkylakeX, Zen), threading layer, thread count."""
    from threadpoolctl import threadpool_info

    keep = ("user_api", "internal_api", "prefix", "version", "architecture", "threading_layer", "num_threads")
    return [{key: info.get(key) for key in keep} for info in threadpool_info()]


def steering_environment() -> dict[str, str | None]:
    """The STEERING_VARIABLES' values in this process; None for an unset one (so "unset" is recorded, not lost)."""
    return {name: os.environ.get(name) for name in STEERING_VARIABLES}


def describe_host() -> dict:
    """The CPU, Python, NumPy and its BLAS, and the steering variables: what every results file starts with."""
    import numpy

    return {
        "cpu": describe_cpu(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "blas": blas_info(),
        "environment": steering_environment(),
    }


def blas_summary(blas: list[dict]) -> str:
    """'openblas 0.3.31 Haswell pthreads x2' for each BLAS entry, comma-separated."""
    parts = []
    for b in blas:
        if b.get("user_api") != "blas":
            continue
        parts.append(
            f"{b['internal_api']} {b['version']} {b.get('architecture') or '?'} {b.get('threading_layer')} "
            f"x{b['num_threads']}"
        )
    return ", ".join(parts) or "no BLAS found by threadpoolctl"


def host_summary(host: dict) -> str:
    """One line for a log: CPU model, family/model, extensions, cores, NumPy's BLAS, OPENBLAS_CORETYPE."""
    cpu = host["cpu"]
    return (
        f"{cpu['model_name']} (vendor {cpu.get('vendor', '?')}, family {cpu.get('family', '?')}, "
        f"model {cpu.get('model', '?')}), {' '.join(cpu['vector_extensions']) or 'no listed vector extensions'}; "
        f"{len(cpu['allowed_cpus'] or []) or cpu['logical_cpus']} cores allowed; numpy {host['numpy']} BLAS "
        f"{blas_summary(host['blas'])}; OPENBLAS_CORETYPE={host['environment']['OPENBLAS_CORETYPE'] or 'unset'}"
    )


def pin_to_cores(threads: int) -> list[int]:
    """Restrict this process to the first `threads` cores it may use; returns them. Call it before the engines'
    libraries are imported, so that their thread pools (OpenMP's among them) see only those cores."""
    allowed = sorted(os.sched_getaffinity(0))
    if threads > len(allowed):
        raise SystemExit(f"asked for {threads} cores but this process may use {len(allowed)}: {allowed}")
    os.sched_setaffinity(0, allowed[:threads])
    return allowed[:threads]


def thread_environment(threads: int) -> dict[str, str]:
    """Variables that size every engine's thread pool to `threads` from the start (set before the child imports
    anything); each engine's own call (threadpool_limits, torch.set_num_threads, intra_op_num_threads) sets it too."""
    n = str(threads)
    # RAYON_NUM_THREADS: the tokenizers library's pool (its encode_batch is parallel), which would otherwise size
    # itself by the cores it may use, as pinned; set too, so it cannot differ between engines.
    return {
        "OMP_NUM_THREADS": n,
        "OPENBLAS_NUM_THREADS": n,
        "MKL_NUM_THREADS": n,
        "MINIBERT_NUM_THREADS": n,
        "RAYON_NUM_THREADS": n,
    }


def start_pinned(threads: int) -> list[int]:
    """In a worker, first thing: this process on `threads` cores and every thread pool sized to it."""
    cores = pin_to_cores(threads)
    os.environ.update(thread_environment(threads))  # read when each library starts its pool, after this
    return cores


def rotation(names: list, rep: int) -> list:
    """names, rotated by `rep`: each repetition starts with the next one, so no engine always runs first."""
    k = rep % len(names)
    return names[k:] + names[:k]


def protocol_stdout():
    """A private copy of stdout for a worker's replies; fd 1 then points at stderr, so that whatever a library prints
    while loading (transformers, the ONNX exporter) cannot be taken for a reply."""
    reply = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    return reply


class Worker:
    """One engine in its own process (`python SCRIPT --worker ARGS...`), driven by JSON lines over a pipe. Starting
    returns at once; `ready()` waits for the worker's first line (its report), so several can load side by side.

    Separate processes keep the engines from disturbing each other: onnxruntime's and torch's OpenMP threads spin
    after a call, and in one process on 2 cores that spinning slowed the next engine's call tenfold."""

    def __init__(self, script: Path, args: list[str], label: str):
        command = [sys.executable, str(script), "--worker", *args]
        self.label = label
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.report = None

    def ready(self) -> dict:
        if self.report is None:
            self.report = self.ask(None)["report"]
        return self.report

    def ask(self, request):
        if request is not None:
            self.process.stdin.write(json.dumps(request) + "\n")
            self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"the {self.label} worker died (exit {self.process.wait()}); see its stderr above")
        return json.loads(line)

    def close(self):
        self.process.stdin.close()
        self.process.wait()
