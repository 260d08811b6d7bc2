"""Peak memory while loading a bert-base-sized checkpoint: how far above the interpreter's baseline does RSS go?

Run from the repository root, with the `reference` extra installed (transformers writes the checkpoints):

    python benchmarks/load_memory.py

It saves a randomly initialised bert-base-uncased-shaped BertModel (110M parameters) with transformers in a
temporary directory, in float32 (one file, sharded, and as pytorch_model.bin), float16 and bfloat16, then loads each
in a fresh subprocess: the baseline is the high-water mark of resident memory after importing minibert, the peak
the same mark after `minibert.checkpoint.load_pretrained`. The mark is the kernel's own (VmHWM in
/proc/self/status, which execve resets; ru_maxrss where there is no /proc, though it carries over the parent's
peak), so nothing between two samples is missed. The checkpoints are written by another subprocess, so that
torch's memory never counts.

The goal (issue 3) is a peak at most 1.2x the file size above the baseline for a file loaded in its own dtype; a
conversion to a wider dtype needs the wider copy, so those rows are also given against the size of the loaded
parameters. For comparison, the last row loads the float32 file with safetensors' own `safetensors.numpy.load_file`.
"""

import argparse
import json
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Runs in a fresh interpreter: imports first (the baseline), then one load (the peak). Both marks are in KiB.
MEASURE = """
import json, resource, sys
sys.path.insert(0, {root!r})
import numpy as np
import minibert, minibert.checkpoint, minibert.hub, safetensors.numpy
def kib():
    try:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
baseline = kib()
if {how!r} == "minibert":
    config, params = minibert.checkpoint.load_pretrained({path!r}, dtype=np.{dtype})
    leaves = [params]
    arrays = []
    while leaves:
        node = leaves.pop()
        values = node.values() if isinstance(node, dict) else node
        for v in values:
            (arrays if isinstance(v, np.ndarray) else leaves).append(v)
else:
    arrays = list(safetensors.numpy.load_file({path!r} + "/model.safetensors").values())
print(json.dumps({{"baseline": baseline * 1024, "peak": kib() * 1024, "loaded": sum(a.nbytes for a in arrays)}}))
"""


NAMES = ("float32", "float32-sharded", "float16", "bfloat16", "pytorch_model.bin")


def save_checkpoints(directory: Path) -> dict[str, Path]:
    import torch
    import transformers

    torch.manual_seed(0)
    model = transformers.BertModel(transformers.BertConfig())  # bert-base-uncased's shape, random weights
    paths = {name: directory / name for name in NAMES}
    model.save_pretrained(paths["float32"])
    model.config.save_pretrained(paths["pytorch_model.bin"])
    torch.save(model.state_dict(), paths["pytorch_model.bin"] / "pytorch_model.bin")
    model.save_pretrained(paths["float32-sharded"], max_shard_size="100MB")
    model.to(torch.float16).save_pretrained(paths["float16"])
    model.to(torch.bfloat16).save_pretrained(paths["bfloat16"])
    return paths


def file_size(directory: Path) -> int:
    return sum(p.stat().st_size for pattern in ("*.safetensors", "*.bin") for p in directory.glob(pattern))


def measure(path: Path, dtype: str, how: str = "minibert") -> dict:
    code = MEASURE.format(root=str(ROOT), path=str(path), dtype=dtype, how=how)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def measure_versions() -> str:
    import numpy

    return numpy.__version__


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, help="save the checkpoints here (and keep them) instead of a tmp dir")
    parser.add_argument("--save-only", type=Path, help=argparse.SUPPRESS)  # the subprocess that runs torch
    args = parser.parse_args()
    if args.save_only:
        save_checkpoints(args.save_only)
        return
    with tempfile.TemporaryDirectory() as tmp:
        directory = args.keep or Path(tmp)
        subprocess.run([sys.executable, __file__, "--save-only", str(directory)], check=True, capture_output=True)
        paths = {name: directory / name for name in NAMES}
        cases = [
            ("float32", "float32", "minibert"),
            ("float32-sharded", "float32", "minibert"),
            ("float16", "float32", "minibert"),
            ("bfloat16", "float32", "minibert"),
            ("pytorch_model.bin", "float32", "minibert"),
            ("float32", "float64", "minibert"),
            ("float32", "float32", "safetensors.numpy.load_file"),
        ]
        mib = 2**20
        print(
            "| file | loaded as | reader | file size | loaded params | baseline RSS | peak RSS | peak - baseline "
            "| / file size | / loaded params |"
        )
        print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|")
        for name, dtype, how in cases:
            size = file_size(paths[name])
            r = measure(paths[name], dtype, how)
            above = r["peak"] - r["baseline"]
            print(
                f"| {name} | {dtype} | {how} | {size / mib:.0f} MiB | {r['loaded'] / mib:.0f} MiB "
                f"| {r['baseline'] / mib:.0f} MiB | {r['peak'] / mib:.0f} MiB | {above / mib:.0f} MiB "
                f"| {above / size:.2f}x | {above / r['loaded']:.2f}x |"
            )
    print(
        f"\npython {sys.version.split()[0]}, numpy {measure_versions()}, {platform.platform()}; peak = VmHWM, "
        "one fresh process per row"
    )


if __name__ == "__main__":
    main()
