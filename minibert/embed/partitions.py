"""The input of the embedding job: its identity, its line-aligned partitions, and the texts of one partition.

A partition is a byte range [start, end) of the input that begins at a line start, so whoever embeds it (a worker,
or this process) reads only its own bytes. These functions run wherever a partition is embedded.
"""

import json
import math
import os
from pathlib import Path

from ..errors import InputError

JSONL_SUFFIXES = (".jsonl", ".ndjson")

# Automatic partition size: 1/16 of the input, between 4 KiB and 1 MiB. So any input of 64 KiB or more (~1,000
# lines, ~20 s of one core at the ~50 lines/s measured for all-MiniLM-L6-v2) has 16 partitions or more: an interrupted
# run keeps most of its work, and every worker of a small cluster has some. 4 KiB (~70 lines, ~1.5 s) keeps a task's
# fixed costs (a shard written, a task scheduled) small beside its work; 1 MiB (~19k lines, ~6 minutes) caps what a
# lost worker costs, and makes 100 million lines ~5,300 tasks, which the Dask scheduler handles easily. The
# estimate is in benchmarks/README.md.
MIN_PARTITIONS = 16
MIN_PARTITION_SIZE = 4 << 10
MAX_PARTITION_SIZE = 1 << 20


def auto_partition_size(input_size: int) -> int:
    """Bytes per partition for an input of `input_size` bytes: 1/16 of it, within [4 KiB, 1 MiB]."""
    return min(MAX_PARTITION_SIZE, max(MIN_PARTITION_SIZE, math.ceil(input_size / MIN_PARTITIONS)))


def input_format_of(path: str, input_format: str) -> str:
    """'text' or 'jsonl': `input_format` itself, or for 'auto' the one the file's suffix says."""
    if input_format != "auto":
        return input_format
    return "jsonl" if path.lower().endswith(JSONL_SUFFIXES) else "text"


def open_input(path: str):
    """A binary file object; a URL (s3://, file://...) goes through fsspec, so workers can read shared storage."""
    if "://" in path:
        import fsspec

        return fsspec.open(path, "rb").open()
    return open(path, "rb")


def input_identity(path: str) -> dict:
    """The input's path, size and modification time: what a resumed run checks to know the input has not changed."""
    try:
        if "://" in path:
            import fsspec

            fs, fs_path = fsspec.core.url_to_fs(path)
            info = fs.info(fs_path)
            mtime = info.get("mtime") or info.get("LastModified") or info.get("updated")
            return {"path": path, "size": int(info["size"]), "mtime": str(mtime) if mtime is not None else None}
        stat = os.stat(path)
    except (OSError, ValueError) as error:
        raise InputError(f"{path}: cannot read the input file ({error})") from None
    if not os.path.isfile(path):
        raise InputError(f"{path}: is not a file; pass a text file (one text a line) or a JSONL file")
    return {"path": str(Path(path).resolve()), "size": stat.st_size, "mtime": stat.st_mtime_ns}


def plan_partitions(path: str, size: int, partition_size: int) -> list[tuple[int, int]]:
    """Line-aligned byte ranges [start, end) of about partition_size bytes each, found by seeking, not by reading.

    Each boundary is the first line start at or after a multiple of partition_size, so every line lies in exactly
    one range, a range is never empty, and an input of n * partition_size bytes whose lines are shorter than
    partition_size has n ranges (the boundaries do not drift by a line each).
    """
    if size == 0:
        return []
    starts = [0]
    with open_input(path) as f:
        target = partition_size
        while target < size:
            f.seek(target - 1)
            f.readline()  # up to and including the next b"\n" at or after target - 1: the next line starts there
            boundary = f.tell()
            if boundary >= size:
                break
            starts.append(boundary)
            target = (boundary // partition_size + 1) * partition_size  # the next multiple past this line start
    return list(zip(starts, starts[1:] + [size], strict=True))


def read_lines(path: str, start: int, end: int) -> list[bytes]:
    """The lines whose first byte lies in [start, end), without their b"\\n"; a last line may lack one."""
    with open_input(path) as f:
        f.seek(start)
        data = f.read(end - start)
    if not data:
        return []
    lines = data.split(b"\n")
    if data.endswith(b"\n"):
        lines.pop()  # the empty string after the last b"\n" is not a line
    return lines


def count_lines(path: str, start: int, end: int) -> int:
    """How many lines start in [start, end): the newlines, plus one for a last line without one."""
    with open_input(path) as f:
        f.seek(start)
        data = f.read(end - start)
    return data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)


def parse_line(raw: bytes, line_number: int, input_format: str, field: str) -> tuple[str | None, str | None]:
    """(text, None) for a usable line, (None, reason) for a bad one."""
    raw = raw.removesuffix(b"\r")  # a file written with \r\n line ends
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        return None, f"not valid UTF-8 (byte 0x{raw[error.start]:02x} at byte {error.start} of the line)"
    if line_number == 1:
        line = line.removeprefix("\ufeff")  # a byte-order mark some editors write at the start of a file
    if not line.strip():
        return None, "empty line"
    if input_format == "text":
        return line, None
    return _parse_record(line, field)


def _parse_record(line: str, field: str) -> tuple[str | None, str | None]:
    """A JSONL line's text field, or the reason it has none."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError as error:
        return None, f"not valid JSON ({error.msg} at column {error.colno})"
    if not isinstance(record, dict):
        return None, f"a JSON {type(record).__name__}, not an object with a {field!r} field"
    if field not in record:
        return None, f"JSON object without a {field!r} field"
    text = record[field]
    if not isinstance(text, str):
        return None, f"field {field!r} is a JSON {type(text).__name__}, not a string"
    if not text.strip():
        return None, f"field {field!r} is empty"
    return text, None
