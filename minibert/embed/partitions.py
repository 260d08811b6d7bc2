"""The input of the embedding job: its identity, its line-aligned partitions, and the texts of one partition.

A partition is a byte range [start, end) of the input that begins at a line start, so whoever embeds it (a worker,
or this process) reads only its own bytes. These functions run wherever a partition is embedded.
"""

import json
import math
import os
import shlex
from collections import Counter
from pathlib import Path

from ..errors import InputError
from ..untrusted import json_kind, quote

JSONL_SUFFIXES = (".jsonl", ".ndjson")

# Automatic partition size: 1/16 of the input, between 4 KiB and 1 MiB. So any input of 64 KiB or more (~1,000
# lines, ~20 s of one core at the ~50 lines/s measured for all-MiniLM-L6-v2) has 16 partitions or more: an interrupted
# run keeps most of its work, and every worker of a small cluster has some. 4 KiB (~70 lines, ~1.5 s) keeps a task's
# fixed costs (a shard written, a task scheduled) small beside its work; 1 MiB (~19k lines, ~6 minutes) caps what a
# lost worker costs, and makes 100 million lines ~5,300 tasks, which the Dask scheduler handles easily. The
# estimate is in benchmarks/README.md.
MIN_PARTITIONS = 16
# A blank line (empty, or spaces only) is not a text: it is skipped, and keeps its row (NaN) so that row i stays line
# i + 1. Said apart from the bad lines, which are mistakes in the input.
BLANK = "blank line"
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
        return None, BLANK
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
        return None, f"not a JSON object with a {field!r} field but {json_kind(record)}"
    if field not in record:
        return None, f"JSON object without a {field!r} field"
    text = record[field]
    if not isinstance(text, str):
        return None, f"field {field!r} is {json_kind(text)}, not a string"
    if not text.strip():
        return None, f"field {field!r} is empty"
    return text, None


# What check_has_texts reads of the input at the door, before any output is made: enough lines to tell a file of the
# wrong kind (binary, JSONL whose text is in another field) from one with a few bad lines.
SURVEY_BYTES = 1 << 20


def check_has_texts(path: str, input_format: str, field: str) -> None:
    """Refuse an input that is binary, or none of whose lines (in its first SURVEY_BYTES) has a text to embed, before
    anything is written: such a run would only make rows of NaN. For JSONL, name the fields its objects do have."""
    with open_input(path) as f:
        head = f.read(SURVEY_BYTES + 1)
    partial = len(head) > SURVEY_BYTES
    if (nul := head.find(b"\x00", 0, SURVEY_BYTES)) >= 0:
        raise InputError(
            f"{path}: a binary file (a NUL byte at byte {nul}), not text; embed reads UTF-8 text, one text a line, "
            "or JSONL (one JSON object a line)"
        )
    lines = head[:SURVEY_BYTES].split(b"\n")
    if partial or head.endswith(b"\n"):
        lines.pop()  # the part of a line past SURVEY_BYTES, or the empty string after the last b"\n"
    reasons, kinds = Counter(), {}  # kinds: field name -> Counter of the JSON kinds of its values
    for number, raw in enumerate(lines, start=1):
        text, reason = parse_line(raw, number, input_format, field)
        if reason is None:
            return
        reasons[reason] += 1
        if input_format == "jsonl" and reason.startswith("JSON object without"):
            for name, value in json.loads(raw.decode("utf-8")).items():
                kinds.setdefault(name, Counter())[json_kind(value)] += 1
    where = f"the first {len(lines):,} lines (1 MiB) of {path}" if partial else f"{path}"
    if set(reasons) == {BLANK}:
        raise InputError(f"{where}: every line is blank; there is no text to embed")
    counted = "; ".join(f"{reason} ({n:,} line{'s' * (n != 1)})" for reason, n in reasons.most_common(3))
    message = f"{where}: no line has a text to embed: {counted}"
    if not kinds:
        raise InputError(message)
    named = ", ".join(
        f"{quote(name, 40)} ({'/'.join(k.split(' ')[-1] for k in kind)})" for name, kind in list(kinds.items())[:8]
    )
    message += f". Its objects have the fields {named}{' ...' * (len(kinds) > 8)};"
    texts = [name for name, kind in kinds.items() if "a string" in kind and name.isprintable()]
    if not texts:
        raise InputError(message, fix="none of them holds a string")
    raise InputError(
        message,
        fix=f"name the one holding the text: field={quote(texts[0], 40)}",
        cli_fix=f"name the one holding the text: --field {shlex.quote(texts[0])}",
    )
