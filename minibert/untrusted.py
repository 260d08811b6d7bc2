"""Guards for reading files a stranger made: what a file declares is checked against what exists before anything
is allocated, pseudo files are refused, JSON is read by one reader whose failures of every kind become one clean
error, and untrusted text is quoted before it is put in a message.

Every reader of a model directory's files (safetensors, torch's zip, TF bundles, the JSON files) goes through
these functions, so that each rule is written once. The promise they serve is in the README's threat model.
"""

import itertools
import json
import os
import stat
from pathlib import Path

from .errors import CheckpointError, MinibertError

# Pseudo filesystems: their files are "regular" to stat but are windows onto the process or the machine
# (/proc/self/mem, /proc/self/environ, /sys/..., /dev/...), and a weights file is never one of them.
_PSEUDO_ROOTS = ("/proc", "/sys", "/dev")

# Bounds for JSON files of a model directory. The largest real ones are tokenizer.json files of a few tens of MB.
MAX_JSON_BYTES = 512 * 2**20


def quote(value, limit: int = 80) -> str:
    """`value` for an error message, never an unbounded repr: strings as their escaped repr (no raw newline or
    escape character can reach a terminal or a log), containers as a repr of at most `limit` items, in at most about
    `limit` characters; a huge integer by its size. Work is bounded too: a deep tuple of shared references, whose
    full repr takes forever, costs `limit` steps."""
    text = _bounded_repr(value, [limit], limit)
    return text if len(text) <= limit + 20 else text[:limit] + "..."


def escape(text: str, limit: int = 120) -> str:
    """`text` with its control characters escaped as repr escapes them, but unquoted, and cut to `limit` characters:
    for names listed in a message (tensor names, shard files) that read better bare."""
    escaped = repr(text[: limit + 1])[1:-1]
    return escaped if len(text) <= limit else escaped[:limit] + "..."


def _bounded_repr(value, budget: list[int], limit: int) -> str:
    budget[0] -= 1
    if budget[0] < 0:
        return "..."
    if isinstance(value, str):
        return repr(value) if len(value) <= limit else f"{value[:limit]!r}... ({len(value)} characters)"
    if isinstance(value, bool | float) or value is None:
        return repr(value)
    if isinstance(value, int):
        return repr(value) if value.bit_length() <= 64 else f"an integer of {value.bit_length()} bits"
    if type(value) in (list, tuple, dict):
        items = list(itertools.islice(value.items() if type(value) is dict else value, max(budget[0], 0) + 1))
        if type(value) is dict:
            parts = [f"{_bounded_repr(k, budget, limit)}: {_bounded_repr(v, budget, limit)}" for k, v in items]
        else:
            parts = [_bounded_repr(item, budget, limit) for item in items]
        if len(items) < len(value):
            parts.append("...")
        inner = ", ".join(parts) + ("," if type(value) is tuple and len(value) == 1 else "")
        return {list: "[{}]", tuple: "({})", dict: "{{{}}}"}[type(value)].format(inner)
    return f"a {type(value).__name__}"


def json_kind(value) -> str:
    """What a parsed JSON value is, in JSON's words (an object, an array, a string, a number, true or false, null),
    for messages about files and lines a user wrote as JSON: they never wrote a dict or a NoneType."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    kinds = {dict: "an object", list: "an array", str: "a string", int: "a number", float: "a number"}
    return next((kind for python, kind in kinds.items() if isinstance(value, python)), f"a {type(value).__name__}")


def json_value(value) -> str:
    """A parsed JSON value for a message, as JSON writes it where that is short (null, true, false), else quoted
    with its kind: "'99' (a string)", "32.5 (a number)"."""
    if value is None or isinstance(value, bool):
        return json_kind(value)
    return f"{quote(value)} ({json_kind(value)})"


def regular_file_size(path: Path, error: type[MinibertError] = CheckpointError) -> int:
    """The size of `path`, after checking it is a regular file outside the pseudo filesystems.

    Symlinks are followed (huggingface_hub's cache is made of them), but their target must be a regular file too:
    a FIFO would block the reader forever, /dev/zero never ends, and /proc/self/mem or /proc/self/environ would
    hand the process's own memory or environment to the parser (and to its error messages).
    """
    try:
        info = os.stat(path)
    except OSError as e:
        raise error(f"{path}: cannot be read ({e.strerror})") from None
    if stat.S_ISDIR(info.st_mode):
        raise error(f"{path}: cannot be read (it is a directory); expected a file")
    resolved = os.path.realpath(path)
    if not stat.S_ISREG(info.st_mode) or any(
        resolved == root or resolved.startswith(root + "/") for root in _PSEUDO_ROOTS
    ):
        raise error(
            f"{path}: is not a regular file (it resolves to {quote(resolved, 200)}); a model file must be a regular "
            "file, or a symlink to one"
        )
    return info.st_size


def extent_fits(offset: int, size: int, available: int) -> bool:
    """Whether `size` bytes at `offset` lie inside a container of `available` bytes (all Python integers: no wrap)."""
    return 0 <= offset and 0 <= size and offset + size <= available


def check_extent(source, what: str, offset: int, size: int, available: int) -> None:
    """Refuse `what` if it claims `size` bytes at `offset` and the container holds only `available` bytes.

    This is the one check that stands between a declared size (a zip directory's, a safetensors header's, a TF
    index's) and an allocation: a 1 KB file must not make minibert allocate the gigabytes it claims to hold.
    """
    if not extent_fits(offset, size, available):
        raise CheckpointError(
            f"{source}: {what} lies at bytes {offset}..{offset + size}, outside the {available} bytes that exist; "
            "the file is truncated or corrupt, download or save it again"
        )


def read_bounded(path: Path, limit: int, error: type[MinibertError] = CheckpointError) -> bytes:
    """The bytes of a regular file of at most `limit` bytes."""
    size = regular_file_size(path, error)
    if size > limit:
        raise error(f"{path}: is {size} bytes, more than the {limit} bytes such a file can reasonably hold")
    try:
        with open(path, "rb") as f:
            data = f.read(size + 1)  # not read(limit): that would reserve `limit` bytes for a file of 3
    except OSError as e:
        raise error(f"{path}: cannot be read ({e.strerror})") from None
    if len(data) > size:
        raise error(f"{path}: grew while it was read; read it again once it is complete")
    return data


class UntrustedJSONError(ValueError):
    """JSON that cannot be parsed, whatever the way it fails; its message quotes none of the input."""


def parse_json(data: bytes | str):
    """Parse untrusted JSON, turning every way it can fail into an UntrustedJSONError with a clean reason.

    json.loads raises more than JSONDecodeError on hostile input: RecursionError for deeply nested arrays,
    ValueError for an integer past Python's 4300-digit conversion limit, UnicodeDecodeError for bytes that are not
    UTF-8.
    """
    try:
        if isinstance(data, bytes):
            data = data.decode("utf-8")
        return json.loads(data)
    except json.JSONDecodeError as e:
        raise UntrustedJSONError(f"invalid JSON at line {e.lineno} column {e.colno}: {e.msg}") from None
    except UnicodeDecodeError as e:
        raise UntrustedJSONError(f"not UTF-8 text: 'utf-8' codec can't decode byte {e.start}") from None
    except RecursionError:
        raise UntrustedJSONError("nested too deeply to parse; no writer of models makes such a file") from None
    except ValueError as e:  # Python's int-string conversion limit, e.g. a 5,000-digit number
        raise UntrustedJSONError(f"holds a value Python refuses to parse ({str(e)[:80]})") from None
