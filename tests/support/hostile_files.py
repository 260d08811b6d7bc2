"""Hostile model files, assembled the way an attacker assembles them, and a harness that loads each one in a child
process under a memory limit and a timer.

The files are built byte by byte: pickles from opcodes, zips from struct-packed headers, safetensors headers and TF
tensor bundles (SSTable blocks, protobuf fields) by hand, so that they can say what no honest writer would (a zip
member claiming 3 GiB, a BUILD on a storage, 200,000 handles to one block). `cases(directory)` writes them all;
`run_cases(cases)` loads them in child processes and returns what happened to each. tests/test_hostile_checkpoints.py
holds minibert to its promise over them; from the repository root the whole catalogue also runs on its own:

    python tests/support/hostile_files.py          # prints one line per case: outcome, seconds, message

Each case is loaded as minibert's user would load the file (load_torch_bin, read_safetensors, load_tf_checkpoint,
BertModel / Tokenizer / SentenceEncoder.from_pretrained). Its outcome is one of: `loaded` (with a SHA-256 of every
array, to compare with torch's or safetensors' own reading), `refused` (a minibert error; its message is kept),
`crashed` (any other exception, PanicException included), `timeout` (over CASE_SECONDS of CPU time, timed on CPU
time so that a busy machine does not fail a case), `died` (the child was killed, e.g. by the memory limit in C code).
In the child, the soft RLIMIT_AS of each case is the address space already in use plus MEMORY_FACTOR times the
case's bytes on disk plus MEMORY_SLACK.
"""

import hashlib
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # run as a script from anywhere: use this worktree's minibert
    sys.path.insert(0, str(ROOT))

import minibert  # noqa: E402
from minibert.errors import MinibertError  # noqa: E402
from minibert.formats.safetensors import read_safetensors  # noqa: E402
from minibert.formats.tf_checkpoint import _masked_crc32c as masked_crc32c  # noqa: E402  (checked: tf_made_by_tensorflow)
from minibert.formats.tf_checkpoint import load_tf_checkpoint, proto_fields, read_string_tensor  # noqa: E402
from minibert.formats.torch_pickle import load_torch_bin  # noqa: E402

TINY = ROOT / "weights" / "tiny-gelu"
TINY_CLASSIFIER = ROOT / "weights" / "tiny-classifier"
TF_TINY = ROOT / "weights" / "tf_tiny"

CASE_SECONDS = 2.0
MEMORY_FACTOR = 8  # times the case's bytes on disk
MEMORY_SLACK = 64 * 2**20  # transient allocations of Python, NumPy and the tokenizers library, whatever the file

GiB = 2**30


@dataclass
class Case:
    """One hostile (or, for `must_load`, honest) input: what to load, how, and what counts as right."""

    name: str
    kind: str  # torch_bin, safetensors, tf, model, classifier, tokenizer, sentence
    path: Path
    expect: str = "refuse"  # refuse | torch | safetensors | values: loading it is right only with those numbers
    must_load: bool = False  # an honest control: refusing it is a failure too
    reason: str = ""  # a regex the refusal's message must match: refused for the right reason, not by accident
    values: dict = field(default_factory=dict)  # expect == "values": the arrays it must load as


# --- pickle opcodes, as bytes ---------------------------------------------------------------------------------------

PROTO2 = b"\x80\x02"
MARK, STOP, TUPLE, EMPTY_TUPLE, EMPTY_DICT = b"(", b".", b"t", b")", b"}"
TUPLE1, TUPLE2, TUPLE3 = b"\x85", b"\x86", b"\x87"
SETITEM, SETITEMS, REDUCE, BUILD, BINPERSID = b"s", b"u", b"R", b"b", b"Q"
NEWFALSE, NEWTRUE, NONE = b"\x89", b"\x88", b"N"


def GLOBAL(module: str, name: str) -> bytes:
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def UNICODE(text: str) -> bytes:
    data = text.encode("utf-8", "surrogatepass")
    return b"X" + struct.pack("<I", len(data)) + data


def INT(n: int) -> bytes:
    """The opcode pickle's protocol 2 uses for n: BININT1, BININT2, BININT or LONG1."""
    if 0 <= n < 256:
        return b"K" + bytes([n])
    if 0 <= n < 65536:
        return b"M" + struct.pack("<H", n)
    if -(2**31) <= n < 2**31:
        return b"J" + struct.pack("<i", n)
    data = n.to_bytes((n.bit_length() + 8) // 8, "little", signed=True)
    return b"\x8a" + bytes([len(data)]) + data


def PUT(i: int) -> bytes:
    return b"q" + bytes([i]) if i < 256 else b"r" + struct.pack("<I", i)


def GET(i: int) -> bytes:
    return b"h" + bytes([i]) if i < 256 else b"j" + struct.pack("<I", i)


def ints(values) -> bytes:
    return MARK + b"".join(INT(n) for n in values) + TUPLE


def storage_id(key: str, numel: int, storage: str = "FloatStorage") -> bytes:
    """('storage', torch.<storage>, key, 'cpu', numel) as a persistent id."""
    return MARK + UNICODE("storage") + GLOBAL("torch", storage) + UNICODE(key) + UNICODE("cpu") + INT(numel) + TUPLE


def tensor(key: str, numel: int, size, stride=None, offset: int = 0, storage: str = "FloatStorage") -> bytes:
    """torch._utils._rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict()), as torch.save writes it."""
    if stride is None:
        stride = [int(np.prod(size[i + 1 :])) for i in range(len(size))]
    return (
        GLOBAL("torch._utils", "_rebuild_tensor_v2")
        + MARK
        + storage_id(key, numel, storage)
        + BINPERSID
        + INT(offset)
        + ints(size)
        + ints(stride)
        + NEWFALSE
        + GLOBAL("collections", "OrderedDict")
        + EMPTY_TUPLE
        + REDUCE
        + TUPLE
        + REDUCE
    )


def state_dict(entries: dict[str, bytes]) -> bytes:
    """{name: value} as the whole of data.pkl: a dict filled by one SETITEMS."""
    body = b"".join(UNICODE(name) + value for name, value in entries.items())
    return PROTO2 + EMPTY_DICT + MARK + body + SETITEMS + STOP


# --- zip archives, from struct-packed headers -----------------------------------------------------------------------


@dataclass
class Member:
    name: str
    data: bytes
    method: int = 0  # 0 stored, 8 deflated, 12 bzip2: `data` is then already compressed
    size: int | None = None  # the uncompressed size the directory declares (default: len(data))
    crc: int | None = None
    local_name: str | None = None  # what the local header says (default: name)
    offset: int | None = None  # where the directory says the local header is (default: where it is)


def zip_bytes(members: list[Member], prefix: bytes = b"") -> bytes:
    """A zip archive of `members`, after `prefix`, with offsets counted from the start of the file."""
    out, central = bytearray(prefix), bytearray()
    for m in members:
        size = len(m.data) if m.size is None else m.size
        crc = zlib.crc32(m.data) if m.crc is None else m.crc
        offset = len(out)
        local = (m.local_name or m.name).encode()
        out += struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, m.method, 0, 0, crc, len(m.data), size, len(local), 0)
        out += local + m.data
        name = m.name.encode()
        header_offset = offset if m.offset is None else m.offset
        central += struct.pack(
            "<4s6H3L5H2L",
            b"PK\x01\x02",
            20,
            20,
            0,
            m.method,
            0,
            0,
            crc,
            len(m.data),
            size,
            len(name),
            0,
            0,
            0,
            0,
            0,
            header_offset,
        )
        central += name
    start = len(out)
    out += central
    out += struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, len(members), len(members), len(central), start, 0)
    return bytes(out)


def torch_zip(
    pickle: bytes,
    storages: dict[str, bytes],
    root: str = "archive",
    byteorder: str | None = "little",
    members: list[Member] | None = None,
    prefix: bytes = b"",
) -> bytes:
    """torch.save's layout: <root>/data.pkl, <root>/byteorder, <root>/data/<key> for every storage."""
    listed = [Member(f"{root}/data.pkl", pickle), Member(f"{root}/version", b"3\n")]  # torch needs a version
    if byteorder is not None:
        listed.append(Member(f"{root}/byteorder", byteorder.encode()))
    listed += [Member(f"{root}/data/{key}", data) for key, data in storages.items()]
    return zip_bytes(listed + (members or []), prefix)


# --- safetensors ----------------------------------------------------------------------------------------------------


def safetensors_bytes(header, data: bytes = b"", header_length: int | None = None) -> bytes:
    text = header if isinstance(header, bytes) else json.dumps(header).encode()
    return struct.pack("<Q", len(text) if header_length is None else header_length) + text + data


# --- TF tensor bundles: SSTable blocks and protobuf fields ----------------------------------------------------------


def varint(n: int) -> bytes:
    n &= (1 << 64) - 1  # negative int64 as two's complement, as protobuf writes it
    out = bytearray()
    while True:
        out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
        n >>= 7
        if not n:
            return bytes(out)


def field_varint(number: int, value: int) -> bytes:
    return varint(number << 3) + varint(value)


def field_bytes(number: int, value: bytes) -> bytes:
    return varint(number << 3 | 2) + varint(len(value)) + value


def entry_proto(dtype: int, shape, shard_id: int, offset: int, size: int) -> bytes:
    dims = b"".join(field_bytes(2, field_varint(1, n)) for n in shape)
    return (
        field_varint(1, dtype)
        + field_bytes(2, dims)
        + field_varint(3, shard_id)
        + field_varint(4, offset)
        + (field_varint(5, size))
    )


def _block(entries: list[tuple[bytes, bytes]]) -> bytes:
    body = b"".join(varint(0) + varint(len(k)) + varint(len(v)) + k + v for k, v in entries)
    return body + struct.pack("<II", 0, 1)  # one restart point, at 0


def sstable(records: list[tuple[bytes, bytes]], handle_copies: int = 1) -> bytes:
    """An SSTable holding `records` in one data block, its index listing that block `handle_copies` times."""
    out = bytearray()

    def append_block(contents: bytes) -> bytes:
        handle = varint(len(out)) + varint(len(contents))
        trailer = b"\x00"
        out.extend(contents + trailer + struct.pack("<I", masked_crc32c(contents + trailer)))
        return handle

    data_handle = append_block(_block(records))
    last_key = records[-1][0]
    index = _block([(last_key + bytes([i % 256]) * (i > 0), data_handle) for i in range(handle_copies)])
    meta_handle = append_block(_block([]))
    index_handle = append_block(index)
    footer = (meta_handle + index_handle).ljust(40, b"\x00") + struct.pack("<Q", 0xDB4775248B80FB57)
    return bytes(out + footer)


def tf_bundle(
    prefix: Path, tensors: dict[str, np.ndarray], num_shards: int = 1, entries=None, handle_copies: int = 1
) -> Path:
    """A TF checkpoint `<prefix>.index` + `<prefix>.data-00000-of-0000N` of float32 `tensors`; `entries` (name ->
    proto bytes) replaces or adds index entries."""
    data, protos = bytearray(), {}
    for name, array in tensors.items():
        array = np.ascontiguousarray(array, dtype="<f4")
        protos[name] = entry_proto(1, array.shape, 0, len(data), array.nbytes)
        data += array.tobytes()
    protos.update(entries or {})
    header = field_varint(1, num_shards)
    records = [(b"", header)] + sorted((name.encode(), proto) for name, proto in protos.items())
    prefix.with_name(prefix.name + ".index").write_bytes(sstable(records, handle_copies))
    prefix.with_name(f"{prefix.name}.data-00000-of-{num_shards:05d}").write_bytes(bytes(data))
    return prefix


# --- model directories ----------------------------------------------------------------------------------------------


def model_dir(directory: Path, source: Path = TINY, **json_files) -> Path:
    """A copy of `source` (a tiny checkpoint) with some of its JSON files replaced: {file name: text or object}."""
    shutil.copytree(source, directory)
    for name, content in json_files.items():
        path = directory / name.replace("__", "/")
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content if isinstance(content, str) else json.dumps(content))
    return directory


def config_with(**fields) -> dict:
    return {**json.loads((TINY / "config.json").read_text()), **fields}


def sentence_dir(directory: Path, modules=None, st_config=None, pooling=None) -> Path:
    """tiny-classifier as a sentence-transformers directory: modules.json, sentence_bert_config.json, 1_Pooling."""
    modules = modules or [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
    ]
    files = {
        "modules.json": modules,
        "sentence_bert_config.json": st_config or {"max_seq_length": 32, "do_lower_case": False},
        "1_Pooling__config.json": pooling or {"word_embedding_dimension": 32, "pooling_mode_mean_tokens": True},
    }
    return model_dir(directory, TINY_CLASSIFIER, **files)


def tokenizer_with(directory: Path, edit) -> Path:
    """tiny-classifier with its tokenizer.json changed by `edit(dict)`."""
    model_dir(directory, TINY_CLASSIFIER)
    path = directory / "tokenizer.json"
    document = json.loads(path.read_text())
    edit(document)
    path.write_text(json.dumps(document))
    return directory


# --- the child process ----------------------------------------------------------------------------------------------


def digest(arrays: dict) -> str:
    """SHA-256 over every array's name, dtype, shape and bytes, in name order: equal digests, equal numbers."""
    h = hashlib.sha256()
    for name in sorted(arrays):
        array = np.ascontiguousarray(arrays[name])
        h.update(repr((name, array.dtype.str, array.shape)).encode())
        h.update(array.tobytes())
    return h.hexdigest()


TEXT = "The quick brown fox jumps over the lazy dog, again and again, while nobody is watching. " * 4


def _load(kind: str, path: str) -> str:
    """Load one case as a user would; return a digest of what came out."""
    if kind == "torch_bin":
        return digest(load_torch_bin(path))
    if kind == "safetensors":
        return digest(read_safetensors(Path(path)))
    if kind == "tf":
        return digest(load_tf_checkpoint(path))
    if kind == "model":
        model = minibert.BertModel.from_pretrained(path)
        return digest({"pooler": model(np.array([[2, 5, 3]])).last_hidden_state})
    if kind == "classifier":
        return digest(
            {"logits": minibert.BertForSequenceClassification.from_pretrained(path)(np.array([[2, 5, 3]])).logits}
        )
    if kind == "tokenizer":
        return digest(minibert.Tokenizer.from_pretrained(path)([TEXT[:300]]))
    if kind == "sentence":
        return digest({"embedding": minibert.SentenceEncoder.from_pretrained(path).encode([TEXT[:300]])})
    if kind == "_spin":  # the harness's own test: a case that never ends
        while True:
            pass
    if kind == "_allocate":  # ... and one that takes 4 GiB
        return digest({"ones": np.ones(2**29)})
    raise ValueError(kind)


class _Timeout(BaseException):
    pass


def _cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


def _address_space() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmSize in /proc/self/status")


def _child() -> None:
    """Read cases (JSON lines of name, kind, path, bytes) from stdin; print one JSON line of outcome per case."""
    import resource  # POSIX only, as the whole harness

    def alarm(signum, frame):
        raise _Timeout

    signal.signal(signal.SIGPROF, alarm)
    # Warm up before measuring: the first load imports huggingface_hub and sets up BLAS's buffers, which are the
    # interpreter's baseline, not the case's.
    for kind, path in (("model", TINY), ("classifier", TINY_CLASSIFIER), ("tokenizer", TINY_CLASSIFIER)):
        _load(kind, str(path))
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    for line in sys.stdin:
        case = json.loads(line)
        result = {"name": case["name"]}
        limit = _address_space() + MEMORY_FACTOR * case["bytes"] + MEMORY_SLACK
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
        start = _cpu_seconds()
        signal.setitimer(signal.ITIMER_PROF, CASE_SECONDS)
        try:
            result.update(outcome="loaded", digest=_load(case["kind"], case["path"]))
        except _Timeout:
            result.update(outcome="timeout", message=f"over {CASE_SECONDS} s")
        except MinibertError as error:
            result.update(outcome="refused", error=type(error).__name__, message=str(error))
        except BaseException as error:  # noqa: BLE001  PanicException derives from BaseException: a crash too
            result.update(outcome="crashed", error=type(error).__name__, message=repr(error)[:500])
        finally:
            signal.setitimer(signal.ITIMER_PROF, 0)
            resource.setrlimit(resource.RLIMIT_AS, (hard, hard))
        result["seconds"] = round(_cpu_seconds() - start, 3)
        result["limit_mib"] = round(limit / 2**20)
        print(json.dumps(result), flush=True)


def case_bytes(path: Path) -> int:
    """The bytes on disk of a case: a file, a TF prefix's files, or a directory's files (symlinks not followed)."""
    path = Path(path)
    if path.is_dir():
        files = [p for p in path.rglob("*") if p.is_file() and not p.is_symlink()]
    elif path.exists() or path.is_symlink():
        files = [path] if path.is_file() and not path.is_symlink() else []
    else:  # a TF prefix
        files = [p for p in path.parent.glob(path.name + ".*") if p.is_file() and not p.is_symlink()]
    return sum(p.stat().st_size for p in files)


def run_cases(cases: list[Case], batch: int = 40) -> dict[str, dict]:
    """Each case's outcome, loading `batch` cases per child process. A child that dies (a hard crash, or killed for
    taking too long in C code) takes the cases it had not finished with it, each reported as `died`."""
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "MALLOC_ARENA_MAX": "2",
        "RAYON_NUM_THREADS": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }
    results: dict[str, dict] = {}
    pending = list(cases)
    while pending:
        chunk, pending = pending[:batch], pending[batch:]
        lines = "".join(
            json.dumps({"name": c.name, "kind": c.kind, "path": str(c.path), "bytes": case_bytes(c.path)}) + "\n"
            for c in chunk
        )
        try:
            done = subprocess.run(
                [sys.executable, __file__, "--child"],
                input=lines,
                capture_output=True,
                text=True,
                env=env,
                timeout=60 + 5 * CASE_SECONDS * len(chunk),  # wall time, on a machine that may be busy
            )
            output, stderr = done.stdout, done.stderr
        except subprocess.TimeoutExpired as expired:
            output = expired.stdout.decode() if isinstance(expired.stdout, bytes) else (expired.stdout or "")
            stderr = "killed: the child took too long"
        for line in output.splitlines():
            result = json.loads(line)
            results[result["name"]] = result
        unfinished = [c for c in chunk if c.name not in results]
        if unfinished:  # the first unfinished case killed the child; run the rest again without it
            results[unfinished[0].name] = {"name": unfinished[0].name, "outcome": "died", "message": stderr[-500:]}
            pending = unfinished[1:] + pending
    return results


# --- the catalogue --------------------------------------------------------------------------------------------------


def _floats(n: int, seed: int = 0) -> bytes:
    return np.random.default_rng(seed).standard_normal(n).astype("<f4").tobytes()


def torch_cases(d: Path) -> list[Case]:
    """pytorch_model.bin files, each named after what it tries."""
    out = []

    def case(name, data: bytes, expect="refuse", must_load=False):
        path = d / f"{name}.bin"
        path.write_bytes(data)
        out.append(Case(name, "torch_bin", path, expect, must_load))

    w = tensor("0", 12, [3, 4])
    case("torch_hand_assembled_honest", torch_zip(state_dict({"w": w}), {"0": _floats(12)}), "torch", must_load=True)
    views = {"w": w, "t": tensor("0", 12, [4, 3], [1, 4]), "row": tensor("0", 12, [4], [1], offset=8)}
    case("torch_views_of_one_storage", torch_zip(state_dict(views), {"0": _floats(12)}), "torch", must_load=True)
    big_endian = np.frombuffer(_floats(12), "<f4").astype(">f4").tobytes()
    case("torch_big_endian", torch_zip(state_dict({"w": w}), {"0": big_endian}, byteorder="big"), "torch", True)
    bf16 = tensor("0", 6, [6], storage="BFloat16Storage")
    case("torch_bfloat16", torch_zip(state_dict({"w": bf16}), {"0": bytes(range(12))}), "torch", must_load=True)

    # Opcodes torch.save never writes.
    ext2 = PROTO2 + EMPTY_DICT + UNICODE("w") + b"\x83" + struct.pack("<H", 0x1234) + SETITEM + STOP
    case("torch_ext2_from_copyregs_cache", torch_zip(ext2, {}))
    build_storage = (
        PROTO2
        + EMPTY_DICT
        + UNICODE("w")
        + GLOBAL("torch._utils", "_rebuild_tensor_v2")
        + MARK
        + storage_id("0", 12)
        + BINPERSID
        + EMPTY_DICT
        + UNICODE("flat")
        + tensor("1", 3, [3])
        + SETITEM
        + BUILD
        + INT(0)
        + ints([3])
        + ints([1])
        + NEWFALSE
        + EMPTY_DICT
        + TUPLE
        + REDUCE
        + SETITEM
        + STOP
    )
    case("torch_build_on_a_storage_record", torch_zip(build_storage, {"0": _floats(12), "1": _floats(3, 1)}))
    setitem_array = PROTO2 + EMPTY_DICT + UNICODE("w") + tensor("0", 12, [12]) + INT(0) + INT(7) + SETITEM + SETITEM
    case("torch_setitem_on_a_finished_array", torch_zip(setitem_array + STOP, {"0": _floats(12)}))
    case("torch_build_on_an_array", torch_zip(state_dict({"w": w + EMPTY_DICT + BUILD}), {"0": _floats(12)}))
    inst = PROTO2 + b"(cos\nsystem\nX\x04\x00\x00\x00true" + b"o" + STOP
    case("torch_obj_opcode", torch_zip(inst, {}))
    stack_global = b"\x80\x04" + b"\x8c\x05posix\x8c\x06system\x93" + UNICODE("true") + TUPLE1 + REDUCE + STOP
    case("torch_stack_global_posix_system", torch_zip(stack_global, {}))
    escaped = PROTO2 + GLOBAL("torch\\x2e_utils", "_rebuild_tensor_v2") + STOP
    case("torch_global_with_backslash_escape", torch_zip(escaped, {}))
    spoof = PROTO2 + GLOBAL("os\x1b[2J\x1b[31m", "system\rOK: loaded 199 tensors") + STOP
    case("torch_global_name_with_terminal_escapes", torch_zip(spoof, {}))
    case("torch_marks_100k_deep", torch_zip(PROTO2 + MARK * 100_000 + STOP, {}))
    deep_key = PROTO2 + EMPTY_TUPLE + PUT(0) + b"".join(GET(i) + GET(i) + TUPLE2 + PUT(i + 1) for i in range(200))
    deep_key += EMPTY_DICT + GET(200) + INT(1) + SETITEM + STOP
    case("torch_deep_tuple_of_memo_refs_as_a_key", torch_zip(deep_key, {}))
    deep_pid = PROTO2 + EMPTY_TUPLE + PUT(0) + b"".join(GET(i) + GET(i) + TUPLE2 + PUT(i + 1) for i in range(200))
    case("torch_deep_persistent_id", torch_zip(deep_pid + BINPERSID + STOP, {}))
    case("torch_get_of_an_unset_memo", torch_zip(PROTO2 + GET(7) + STOP, {}))
    case("torch_truncated_pickle", torch_zip(state_dict({"w": w})[:-9], {"0": _floats(12)}))
    case("torch_no_stop", torch_zip(state_dict({"w": w})[:-1], {"0": _floats(12)}))
    od_args = PROTO2 + GLOBAL("collections", "OrderedDict") + UNICODE("w") + INT(1) + TUPLE2 + TUPLE1 + TUPLE1
    case("torch_ordereddict_with_arguments", torch_zip(od_args + REDUCE + STOP, {}))
    int_key = PROTO2 + EMPTY_DICT + INT(5) + w + SETITEM + STOP
    case("torch_int_key", torch_zip(int_key, {"0": _floats(12)}))
    case("torch_top_level_tensor", torch_zip(PROTO2 + w + STOP, {"0": _floats(12)}))
    key_int = tensor("0", 12, [12]).replace(UNICODE("0"), INT(0))
    case("torch_storage_key_not_a_string", torch_zip(state_dict({"w": key_int}), {"0": _floats(12)}))
    case("torch_numel_disagrees_with_record", torch_zip(state_dict({"w": tensor("0", 13, [13])}), {"0": _floats(12)}))

    # Views whose memory is not bounded by the file.
    stride0 = tensor("0", 1, [2**28], [0])
    case("torch_stride0_view_of_one_float_to_1GiB", torch_zip(state_dict({"w": stride0}), {"0": _floats(1)}))
    many = {f"t{i}": tensor("0", 65536, [256, 256], [1, 256]) for i in range(200)}
    case("torch_200_transposed_views_of_256KiB", torch_zip(state_dict(many), {"0": _floats(65536)}))
    case("torch_65_dimensions", torch_zip(state_dict({"w": tensor("0", 1, [1] * 65)}), {"0": _floats(1)}))
    wrap = tensor("0", 12, [2**32, 2**32, 0], [0, 0, 0])
    case("torch_empty_tensor_with_wrapping_product", torch_zip(state_dict({"w": wrap}), {"0": _floats(12)}))
    case(
        "torch_offset_of_2000_bits",
        torch_zip(state_dict({"w": tensor("0", 12, [3], offset=2**2000)}), {"0": _floats(12)}),
    )

    # Zips read differently by different readers.
    legacy = PROTO2 + GLOBAL("posix", "system") + UNICODE("true") + TUPLE1 + REDUCE + STOP
    honest = torch_zip(state_dict({"w": w}), {"0": _floats(12)})
    case("torch_legacy_stream_with_zip_appended", torch_zip(state_dict({"w": w}), {"0": _floats(12)}, prefix=legacy))
    duplicate = torch_zip(state_dict({"w": w}), {"0": _floats(12)}, members=[Member("archive/data/0", _floats(12, 9))])
    case("torch_duplicate_member", duplicate)
    # 256 MiB of zeros in 260 KB: one MiB deflated and sync-flushed (its back-references stay inside it), repeated.
    deflated = zlib.compressobj(9, zlib.DEFLATED, -15)
    bomb = (deflated.compress(bytes(2**20)) + deflated.flush(zlib.Z_SYNC_FLUSH)) * 256
    bomb += zlib.compressobj(9, zlib.DEFLATED, -15).flush()  # the final, empty block
    inflating = zip_bytes(
        [
            Member("archive/data.pkl", state_dict({"w": tensor("0", 2**26, [2**26])})),
            Member("archive/data/0", bomb, method=8, size=2**28),
        ]
    )
    case("torch_deflated_member_256MiB", inflating)
    claims = zip_bytes(
        [
            Member("archive/data.pkl", state_dict({"w": tensor("0", 3 * 2**28, [3 * 2**28])})),
            Member("archive/data/0", _floats(4), size=3 * GiB),
        ]
    )
    case("torch_member_claiming_3GiB", claims)
    stored_3gib = zip_bytes(
        [
            Member("archive/data.pkl", state_dict({"w": tensor("0", 3 * 2**28, [3 * 2**28])})),
            Member("archive/data/0", _floats(4)),
        ]
    )
    # The same member, its sizes rewritten to 3 GiB in both headers, as if it were stored.
    big = stored_3gib.replace(struct.pack("<LL", 16, 16), struct.pack("<LL", 3 * GiB, 3 * GiB))
    case("torch_stored_member_sized_3GiB", big)
    # Record data/1's bytes hold record data/0 whole: two storages from one set of bytes.
    inner_data = _floats(12)
    inner = struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, 0, 0, 0, zlib.crc32(inner_data), 48, 48, 14, 0)
    inner += b"archive/data/0" + inner_data
    pickle = state_dict({"w": w, "v": tensor("1", len(inner) // 4, [len(inner) // 4])})
    first = 30 + len("archive/data.pkl") + len(pickle)  # where data/1's local header starts
    nested = [
        Member("archive/data.pkl", pickle),
        Member("archive/data/1", inner),
        Member("archive/data/0", inner_data, offset=first + 30 + len("archive/data/1")),
    ]
    case("torch_record_inside_another_record", zip_bytes(nested))
    case(
        "torch_local_name_differs",
        zip_bytes(
            [
                Member("archive/data.pkl", state_dict({"w": w})),
                Member("archive/data/0", _floats(12), local_name="archive/data/X"),
            ]
        ),
    )
    bad_crc = torch_zip(state_dict({"w": w}), {"0": _floats(12)})
    case("torch_crc_mismatch", bad_crc.replace(_floats(12), bytes(48), 1))
    case("torch_truncated_zip", honest[: len(honest) // 2])
    return out


def safetensors_cases(d: Path) -> list[Case]:
    out = []

    def case(name, data: bytes, expect="refuse", must_load=False):
        path = d / f"{name}.safetensors"
        path.write_bytes(data)
        out.append(Case(name, "safetensors", path, expect, must_load))

    honest = {"w": {"dtype": "F32", "shape": [3, 4], "data_offsets": [0, 48]}}
    case("st_honest", safetensors_bytes(honest, _floats(12)), "safetensors", must_load=True)
    case("st_environment_as_header_length", b"PATH=/usr/local/bin:/usr/bin\nHOME=/root\n")
    case("st_header_100k_deep", safetensors_bytes(b"[" * 100_000 + b"]" * 100_000))
    huge = b'{"w": {"dtype": "F32", "shape": [' + b"9" * 5000 + b'], "data_offsets": [0, 48]}}'
    case("st_5000_digit_shape", safetensors_bytes(huge, _floats(12)))
    dims = {"w": {"dtype": "F32", "shape": [1] * 65 + [12], "data_offsets": [0, 48]}}
    case("st_65_dimensions", safetensors_bytes(dims, _floats(12)))
    wrap = {"w": {"dtype": "F32", "shape": [2**32, 2**32, 0], "data_offsets": [0, 0]}}
    case("st_empty_with_wrapping_product", safetensors_bytes(wrap))
    claims = {"w": {"dtype": "F32", "shape": [3 * 2**28], "data_offsets": [0, 3 * GiB]}}
    case("st_tensor_claiming_3GiB", safetensors_bytes(claims, _floats(4)))
    case("st_header_claiming_3GiB", safetensors_bytes(honest, _floats(12), header_length=3 * GiB))
    spoof = {"w\x1b[2J\nOK": {"dtype": "X9", "shape": [3, 4], "data_offsets": [0, 48]}}
    case("st_name_with_terminal_escapes", safetensors_bytes(spoof, _floats(12)))
    case("st_header_is_a_list", safetensors_bytes([1, 2, 3]))
    case("st_header_not_utf8", safetensors_bytes(b'{"\xff": 1}'))
    negative = {"w": {"dtype": "F32", "shape": [3, 4], "data_offsets": [-48, 0]}}
    case("st_negative_offset", safetensors_bytes(negative, _floats(12)))
    float_shape = {"w": {"dtype": "F32", "shape": [3.0, 4], "data_offsets": [0, 48]}}
    case("st_float_in_shape", safetensors_bytes(float_shape, _floats(12)))
    bool_shape = {"w": {"dtype": "F32", "shape": [True, 12], "data_offsets": [0, 48]}}
    case("st_bool_in_shape", safetensors_bytes(bool_shape, _floats(12)))
    return out


def tf_cases(d: Path) -> list[Case]:
    out = []
    values = {"bert/w": np.arange(12, dtype=np.float32).reshape(3, 4), "bert/b": np.ones(3, np.float32)}

    def case(name, expect="refuse", must_load=False, **kwargs):
        directory = d / name
        directory.mkdir()
        prefix = tf_bundle(directory / "bert_model.ckpt", kwargs.pop("tensors", values), **kwargs)
        out.append(Case(name, "tf", prefix, expect, must_load, values=values if must_load else {}))

    case("tf_hand_assembled_honest", "values", must_load=True)
    out.append(
        Case(
            "tf_made_by_tensorflow",
            "tf",
            TF_TINY / "bert_model.ckpt",
            "values",
            True,
            values=dict(np.load(TF_TINY / "bert_model_values.npz")),
        )
    )
    case("tf_num_shards_1e9", num_shards=10**9)
    case("tf_200000_handles_to_one_block", handle_copies=200_000)
    case("tf_670e6_elements_in_a_tiny_shard", entries={"bert/x": entry_proto(1, [670_000_000], 0, 0, 2_680_000_000)})
    case("tf_negative_offset", entries={"bert/x": entry_proto(1, [3], 0, -8, 12)})
    wrong_wire = field_varint(1, 1) + field_varint(2, 7) + field_varint(5, 12)  # shape as a number, not a message
    case("tf_shape_of_the_wrong_wire_type", entries={"bert/x": wrong_wire})
    bytes_dtype = field_bytes(1, b"\x01") + field_bytes(2, b"") + field_varint(5, 4)
    case("tf_dtype_of_the_wrong_wire_type", entries={"bert/x": bytes_dtype})
    case("tf_65_dimensions", entries={"bert/x": entry_proto(1, [1] * 65, 0, 0, 4)})
    case("tf_wrapping_shape_product", entries={"bert/x": entry_proto(1, [2**32, 2**32], 0, 0, 0)})
    return out


def model_cases(d: Path) -> list[Case]:
    out = []

    def case(name, kind="model", source=TINY, must_load=False, **json_files):
        out.append(
            Case(name, kind, model_dir(d / name, source, **json_files), "load" if must_load else "refuse", must_load)
        )

    case("config_honest", must_load=True)
    case("config_num_hidden_layers_1e9", **{"config.json": config_with(num_hidden_layers=10**9)})
    case("config_hidden_size_2e40", **{"config.json": config_with(hidden_size=2**40, num_attention_heads=1)})
    case("config_vocab_size_2e62", **{"config.json": config_with(vocab_size=2**62)})
    case("config_max_position_embeddings_1e30", **{"config.json": config_with(max_position_embeddings=10**30)})
    case("config_100k_deep", **{"config.json": "[" * 100_000 + "]" * 100_000})
    case("config_5000_digit_integer", **{"config.json": '{"vocab_size": ' + "9" * 5000 + "}"})
    case("config_is_a_list", **{"config.json": "[1, 2]"})
    case("config_not_utf8", **{"config.json": b'{"x": "\xff"}'})
    cls = TINY_CLASSIFIER
    classifier_config = json.loads((cls / "config.json").read_text())
    no_labels = {k: v for k, v in classifier_config.items() if k not in ("id2label", "label2id")}
    case("classifier_num_labels_1e9", "classifier", cls, **{"config.json": {**no_labels, "num_labels": 10**9}})
    case("classifier_num_labels_a_string", "classifier", cls, **{"config.json": {**no_labels, "num_labels": "3"}})
    case("classifier_honest", "classifier", cls, must_load=True)
    return out


def special_file_cases(d: Path) -> list[Case]:
    """Weight and config files that are symlinks to what a file must never be, and a FIFO."""
    out = []
    for name, target in (("proc_self_mem", "/proc/self/mem"), ("proc_self_environ", "/proc/self/environ")):
        directory = d / f"safetensors_{name}"
        shutil.copytree(TINY, directory)
        (directory / "model.safetensors").unlink()
        (directory / "model.safetensors").symlink_to(target)
        out.append(Case(f"safetensors_is_{name}", "model", directory))
        path = d / f"torch_{name}.bin"
        path.symlink_to(target)
        out.append(Case(f"torch_bin_is_{name}", "torch_bin", path))
    directory = d / "tf_shard_proc_self_mem"
    directory.mkdir()
    tf_bundle(directory / "bert_model.ckpt", {"bert/w": np.ones(3, np.float32)})
    shard = directory / "bert_model.ckpt.data-00000-of-00001"
    shard.unlink()
    shard.symlink_to("/proc/self/mem")
    out.append(Case("tf_shard_is_proc_self_mem", "tf", directory / "bert_model.ckpt"))
    directory = d / "config_dev_zero"
    shutil.copytree(TINY, directory)
    (directory / "config.json").unlink()
    (directory / "config.json").symlink_to("/dev/zero")
    out.append(Case("config_is_dev_zero", "model", directory))
    fifo = d / "torch_fifo.bin"
    os.mkfifo(fifo)
    out.append(Case("torch_bin_is_a_fifo", "torch_bin", fifo))
    return out


# --- TF SavedModels (TF Hub modules) ---------------------------------------------------------------------------------

TF_HUB = ROOT / "weights" / "tf_hub"


def encode_fields(items) -> bytes:
    """Protobuf fields (number, wire type, value) as bytes again: proto_fields' inverse."""
    out = bytearray()
    for number, wire_type, value in items:
        if wire_type == 2:
            out += field_bytes(number, bytes(value))
        elif wire_type == 0:
            out += field_varint(number, value)
        else:
            size = 8 if wire_type == 1 else 4
            out += varint(number << 3 | wire_type) + value.to_bytes(size, "little")
    return bytes(out)


def edit_messages(data: bytes, path: tuple[int, ...], edit) -> bytes:
    """`data` (a message) with every sub-message at the field path `path` replaced by edit(its bytes)."""
    items = []
    for number, wire_type, value in proto_fields(data, Path("edit"), "edit"):
        if number == path[0] and wire_type == 2:
            value = edit(bytes(value)) if len(path) == 1 else edit_messages(bytes(value), path[1:], edit)
        items.append((number, wire_type, value))
    return encode_fields(items)


def node_def(name: str, op: str, inputs=(), **attrs: bytes) -> bytes:
    """A NodeDef: name=1, op=2, input=3, attr=5 (map entries key=1, value=2 of AttrValue bytes)."""
    message = field_bytes(1, name.encode()) + field_bytes(2, op.encode())
    message += b"".join(field_bytes(3, i.encode()) for i in inputs)
    return message + b"".join(field_bytes(5, field_bytes(1, k.encode()) + field_bytes(2, v)) for k, v in attrs.items())


def int_tensor_attr(shape, values) -> bytes:
    """AttrValue.tensor=8: a DT_INT32 TensorProto of `shape` with int_val `values` (one value fills the shape)."""
    dims = b"".join(field_bytes(2, field_varint(1, n)) for n in shape)
    packed = b"".join(varint(v) for v in values)
    return field_bytes(8, field_varint(1, 3) + field_bytes(2, dims) + field_bytes(7, packed))


def module_with(directory: Path, source: Path, saved_model: bytes | None = None) -> Path:
    """A copy of the module `source` whose saved_model.pb is `saved_model` (if given)."""
    shutil.copytree(source, directory)
    if saved_model is not None:
        (directory / "saved_model.pb").write_bytes(saved_model)
    return directory


def object_graph_with_child(nodes_data: bytes, parent: int, name: str, child: int) -> bytes:
    """A TrackableObjectGraph (or SavedObjectGraph) whose node `parent` gains the child `name` -> node `child`."""
    items, index = [], 0
    for number, wire_type, value in proto_fields(nodes_data, Path("graph"), "graph"):
        if number == 1:
            if index == parent:
                value = bytes(value) + field_bytes(1, field_varint(1, child) + field_bytes(2, name.encode()))
            index += 1
        items.append((number, wire_type, value))
    return encode_fields(items)


def rewrite_object_graph(directory: Path, edit) -> None:
    """The module's variables written again with the checkpoint's object graph replaced by edit(its bytes)."""
    prefix = directory / "variables" / "variables"
    tensors = load_tf_checkpoint(prefix)  # the floats and the bool do_lower_case; strings are left out
    (graph,) = read_string_tensor(prefix, "_CHECKPOINTABLE_OBJECT_GRAPH")
    for path in prefix.parent.iterdir():
        path.unlink()
    data, protos = bytearray(), {}
    for name, array in tensors.items():
        dtype = 10 if array.dtype == np.bool_ else 1
        array = np.ascontiguousarray(array, dtype="?" if dtype == 10 else "<f4")
        protos[name] = entry_proto(dtype, array.shape, 0, len(data), array.nbytes)
        data += array.tobytes()
    graph = edit(graph)
    string = varint(len(graph)) + b"\0\0\0\0" + graph  # length, crc32c of the lengths (unchecked), bytes
    protos["_CHECKPOINTABLE_OBJECT_GRAPH"] = entry_proto(7, (), 0, len(data), len(string))
    data += string
    records = [(b"", field_varint(1, 1))] + sorted((name.encode(), proto) for name, proto in protos.items())
    prefix.with_name("variables.index").write_bytes(sstable(records))
    prefix.with_name("variables.data-00000-of-00001").write_bytes(bytes(data))


def saved_model_cases(d: Path) -> list[Case]:
    """TF Hub modules (saved_model.pb, the checkpoint's object graph) that lie, and honest ones."""
    out = []
    tf1, tf2 = TF_HUB / "tf1_uncased", TF_HUB / "tf2_uncased"
    honest = (tf1 / "saved_model.pb").read_bytes()

    def case(name, kind="model", source=tf1, saved_model=None, must_load=False, expect="refuse"):
        directory = module_with(d / name, source, saved_model)
        out.append(Case(name, kind, directory, "load" if must_load else expect, must_load))
        return directory

    case("saved_model_tf1_honest", must_load=True)
    case("saved_model_tf2_honest", source=tf2, must_load=True)
    case("saved_model_tf1_tokenizer_honest", "tokenizer", must_load=True)
    # A meta graph whose length says a billion bytes: nothing is allocated for it, its end is past the file's.
    case("saved_model_meta_graph_claims_1e9_bytes", saved_model=varint(2 << 3 | 2) + varint(10**9) + honest[:64])
    # A graph of a million empty nodes would be 2 MB; a GraphDef claiming them in a length it does not have is small.
    claims = edit_messages(honest, (2, 2), lambda graph: graph + varint(1 << 3 | 2) + varint(10**9))
    case("saved_model_graph_claims_1e9_bytes_of_nodes", saved_model=claims)
    # The shape of the heads' reshape as a constant of 10^12 elements, one int_val filling them all.
    shape_name = "bert/encoder/layer_0/attention/self/Reshape_9/shape"
    huge = node_def(shape_name, "Const", value=int_tensor_attr([10**12], [4]))
    reshape = node_def("bert/encoder/layer_0/attention/self/Reshape_9", "Reshape", ["x", shape_name])
    case(
        "saved_model_shape_const_of_1e12_elements",
        saved_model=edit_messages(honest, (2, 2), lambda g: g + field_bytes(1, huge) + field_bytes(1, reshape)),
    )
    # The same reshape with an empty shape constant: read, found to say nothing about the heads, and passed over.
    empty = node_def(shape_name, "Const", value=int_tensor_attr([0], []))
    case(
        "saved_model_empty_shape_const",
        saved_model=edit_messages(honest, (2, 2), lambda g: g + field_bytes(1, empty) + field_bytes(1, reshape)),
        expect="load",
    )
    # A float attribute (a fused LayerNorm's epsilon) written as a fixed64 where protobuf has a fixed32.
    fused = node_def("bert/embeddings/LayerNorm/fused", "FusedBatchNormV3", epsilon=varint(4 << 3 | 1) + bytes(8))
    case(
        "saved_model_float_attribute_of_the_wrong_wire_type",
        saved_model=edit_messages(honest, (2, 2), lambda g: g + field_bytes(1, fused)),
    )
    # An attribute nested 10,000 deep (NameAttrList in AttrValue.func, again and again): never read, so harmless.
    deep = b""
    for _ in range(10_000):
        deep = field_bytes(10, field_bytes(1, b"f") + field_bytes(2, field_bytes(1, b"a") + field_bytes(2, deep)))
    nested = node_def("bert/unused", "NoOp", f=deep)
    case(
        "saved_model_attribute_nested_10000_deep",
        saved_model=edit_messages(honest, (2, 2), lambda g: g + field_bytes(1, nested)),
        expect="load",
    )
    # Only the training graph: the inference graph is what a model runs, and there is none.
    train_only = edit_messages(
        honest, (2, 1), lambda info: info if b"train" in info else info + field_bytes(4, b"train")
    )
    case("saved_model_only_train_graphs", saved_model=train_only)
    # TF2: the SavedModel's object graph (in saved_model.pb) and the checkpoint's refer to a node that is not there.
    outside = edit_messages(
        (tf2 / "saved_model.pb").read_bytes(), (2, 7), lambda g: object_graph_with_child(g, 0, "ghost", 10**6)
    )
    case("saved_model_object_graph_child_outside", source=tf2, saved_model=outside)
    directory = case("checkpoint_object_graph_child_outside", source=tf2)
    rewrite_object_graph(directory, lambda g: object_graph_with_child(g, 0, "ghost", 10**6))
    # A cycle: the root's do_lower_case is the root itself, which has no value; the names are read all the same.
    directory = case("checkpoint_object_graph_cycle", "tokenizer", source=tf2)
    rewrite_object_graph(
        directory, lambda g: object_graph_with_child(object_graph_with_child(g, 0, "do_lower_case", 0), 1, "up", 0)
    )
    # variables/ as a symlink is followed, as a symlinked shard is; a file in it that is /proc/self/mem is refused.
    directory = case("saved_model_variables_index_is_proc_self_mem")
    (directory / "variables" / "variables.index").unlink()
    (directory / "variables" / "variables.index").symlink_to("/proc/self/mem")
    return out


def split_pre_tokenizer(pattern: str):
    def edit(document):
        document["pre_tokenizer"] = {
            "type": "Split",
            "pattern": {"Regex": pattern},
            "behavior": "Isolated",
            "invert": False,
        }

    return edit


def tokenizer_cases(d: Path) -> list[Case]:
    out = []

    def case(name, edit=None, kind="tokenizer", must_load=False, expect="refuse", **json_files):
        directory = tokenizer_with(d / name, edit or (lambda document: None))
        for file_name, content in json_files.items():
            (directory / file_name).write_text(content if isinstance(content, str) else json.dumps(content))
        out.append(Case(name, kind, directory, "load" if must_load else expect, must_load))

    case("tokenizer_honest", must_load=True)
    case("tokenizer_catastrophic_split_regex", split_pre_tokenizer(r"(\w+\s?)*$"))
    case("tokenizer_regex_that_panics", split_pre_tokenizer(r"(?<=a)b" * 3 + "\\"))
    case(
        "tokenizer_regex_normalizer",
        lambda doc: doc.update(normalizer={"type": "Replace", "pattern": {"Regex": r"(a|aa)+$"}, "content": ""}),
    )
    case("tokenizer_json_100k_deep", **{"tokenizer.json": "[" * 100_000 + "]" * 100_000})
    config = json.loads((TINY_CLASSIFIER / "tokenizer_config.json").read_text())
    # Past int64: read as "no limit", as transformers' own sentinel int(1e30) is; loading it (or refusing) is right.
    big = {"tokenizer_config.json": {**config, "model_max_length": 2**64}}
    case("tokenizer_model_max_length_past_int64", expect="load", **big)
    case("tokenizer_config_5000_digits", **{"tokenizer_config.json": '{"model_max_length": ' + "9" * 5000 + "}"})
    vocab_only = []
    for name, fields in (
        ("cls_token_an_int", {"cls_token": 5}),
        ("do_lower_case_a_string", {"do_lower_case": "yes"}),
        ("strip_accents_a_number", {"strip_accents": 3}),
        ("pad_token_a_list", {"pad_token": [1]}),
    ):
        directory = model_dir(d / f"vocab_{name}", TINY_CLASSIFIER)
        (directory / "tokenizer.json").unlink()
        (directory / "tokenizer_config.json").write_text(json.dumps({**config, **fields}))
        vocab_only.append(Case(f"tokenizer_{name}", "tokenizer", directory))
    out += vocab_only
    return out


def sentence_cases(d: Path) -> list[Case]:
    out = []

    def case(name, must_load=False, **kwargs):
        out.append(
            Case(name, "sentence", sentence_dir(d / name, **kwargs), "load" if must_load else "refuse", must_load)
        )

    case("sentence_honest", must_load=True)
    case("sentence_pooling_mode_an_int", pooling={"word_embedding_dimension": 32, "pooling_mode": 5})
    case("sentence_max_seq_length_past_int64", st_config={"max_seq_length": 2**70, "do_lower_case": False})
    case("sentence_do_lower_case_a_string", st_config={"max_seq_length": 32, "do_lower_case": "no"})
    deep = sentence_dir(d / "sentence_modules_100k_deep")
    (deep / "modules.json").write_text("[" * 100_000 + "]" * 100_000)
    out.append(Case("sentence_modules_100k_deep", "sentence", deep))
    digits = sentence_dir(d / "sentence_pooling_5000_digits")
    (digits / "1_Pooling" / "config.json").write_text('{"word_embedding_dimension": ' + "9" * 5000 + "}")
    out.append(Case("sentence_pooling_5000_digits", "sentence", digits))
    st = sentence_dir(d / "sentence_config_100k_deep")
    (st / "sentence_bert_config.json").write_text("{" + '"a":{' * 100_000 + "}" * 100_001)
    out.append(Case("sentence_config_100k_deep", "sentence", st))
    return out


# Why some cases must be refused: the rule that catches each, so that a case refused by accident (a builder's typo,
# another check firing first) shows.
REASONS = {
    "torch_ext2_from_copyregs_cache": "opcode EXT2",
    "torch_build_on_a_storage_record": r"sets the state of a _Storage \(BUILD\)",
    "torch_setitem_on_a_finished_array": "sets items of a ndarray",
    "torch_build_on_an_array": r"sets the state of a ndarray \(BUILD\)",
    "torch_stack_global_posix_system": "refuses to load global 'posix.system'",
    "torch_global_with_backslash_escape": "refuses to load global",
    "torch_marks_100k_deep": "more than 16 MARKs",
    "torch_deep_tuple_of_memo_refs_as_a_key": "nests tuples more than 16 deep",
    "torch_deep_persistent_id": "nests tuples more than 16 deep",
    "torch_ordereddict_with_arguments": "calls OrderedDict with arguments",
    "torch_int_key": "dict key that is 5",
    "torch_stride0_view_of_one_float_to_1GiB": "views storage '0' .*repeatedly",
    "torch_200_transposed_views_of_256KiB": "views storage '0' .*repeatedly",
    "torch_65_dimensions": "65 dimensions",
    "torch_legacy_stream_with_zip_appended": "zip archive after other data",
    "torch_duplicate_member": "twice",
    "torch_deflated_member_256MiB": "compressed",
    "torch_stored_member_sized_3GiB": "outside the",
    "torch_record_inside_another_record": "overlap",
    "torch_bin_is_proc_self_mem": "not a regular file",
    "torch_bin_is_a_fifo": "not a regular file",
    "tf_num_shards_1e9": "num_shards",
    "tf_200000_handles_to_one_block": "twice",
    "tf_670e6_elements_in_a_tiny_shard": "outside the",
    "tf_negative_offset": "outside the",
    "tf_shape_of_the_wrong_wire_type": "wrong wire type",
    "tf_dtype_of_the_wrong_wire_type": "wrong wire type",
    "tf_shard_is_proc_self_mem": "not a regular file",
    "saved_model_meta_graph_claims_1e9_bytes": "runs past its record",
    "saved_model_graph_claims_1e9_bytes_of_nodes": "runs past its record",
    "saved_model_shape_const_of_1e12_elements": "constants of at most 4096 elements",
    "saved_model_only_train_graphs": "tag set without 'train'",
    "saved_model_float_attribute_of_the_wrong_wire_type": "a float of the wrong wire type",
    "saved_model_object_graph_child_outside": "refers to node 1000000",
    "checkpoint_object_graph_child_outside": "refers to node 1000000",
    "checkpoint_object_graph_cycle": "no 'do_lower_case' variable",
    "saved_model_variables_index_is_proc_self_mem": "not a regular file",
}


def cases(directory: Path) -> list[Case]:
    """Every case, its files written under `directory` (which must exist and be empty)."""
    groups = (
        torch_cases,
        safetensors_cases,
        tf_cases,
        model_cases,
        special_file_cases,
        saved_model_cases,
        tokenizer_cases,
        sentence_cases,
    )
    result = []
    for group in groups:
        sub = directory / group.__name__
        sub.mkdir()
        result += group(sub)
    for case in result:
        case.reason = REASONS.get(case.name, "")
    return result


if __name__ == "__main__":
    if sys.argv[1:] == ["--child"]:
        _child()
    else:
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            catalogue = cases(Path(tmp))
            for name, result in run_cases(catalogue).items():
                message = result.get("message", result.get("digest", ""))[:150]
                print(f"{result['outcome']:8} {result.get('seconds', '-'):>6} {name}: {message!r}")
