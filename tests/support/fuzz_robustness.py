"""Fuzzing minibert's boundaries: mutated safetensors files, mutated model checkpoints (model.safetensors, and
pytorch_model.bin where torch is installed to write the original), a TF Hub module's mutated saved_model.pb, random
Unicode texts.

Every outcome must be a clear error (CheckpointError for files, InputError for texts) or a correct result: a file
that loads must give exactly the tensors its header describes, and a batch of texts must encode to consistent
[B, S] arrays. Any other exception is a bug; this script saves the input that raised it and exits 1.

tests/test_fuzz.py runs each fuzzer for a fixed seed and a few hundred iterations. For a longer run, from the
repository root:

    python tests/support/fuzz_robustness.py --seconds 600                 # all targets, a random seed
    python tests/support/fuzz_robustness.py --target safetensors --seed 7 --seconds 60
    python tests/support/fuzz_robustness.py --target tokenizer --seconds 120 --out /tmp/fuzz-crashes

It prints the count of each outcome per target and, for a failure, the seed, the iteration and the saved input.
"""

import argparse
import json
import shutil
import struct
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # run as a script from anywhere: use this worktree's minibert
    sys.path.insert(0, str(ROOT))

import minibert  # noqa: E402
from minibert import CheckpointError, ConfigError, InputError  # noqa: E402
from minibert.formats.safetensors import read_safetensors  # noqa: E402

TINY = ROOT / "weights" / "tiny-gelu"
TF1_MODULE = ROOT / "weights" / "tf_hub" / "tf1_uncased"  # a TF1 Hub module (weights/make_tf_hub_fixture.py)
# What minibert reads, as the NumPy dtype it returns: bfloat16 comes widened to float32.
NUMPY_DTYPES = {
    "BOOL": "?",
    "U8": "u1",
    "I8": "i1",
    "I16": "<i2",
    "I32": "<i4",
    "I64": "<i8",
    "F16": "<f2",
    "F32": "<f4",
    "F64": "<f8",
    "BF16": "<f4",
}


# --- safetensors bytes ----------------------------------------------------------------------------------------------


def pick(rng, options: list):
    """One of `options`, kept a Python object (rng.choice would turn 2**64 - 1 into a float)."""
    return options[rng.integers(len(options))]


def seed_file() -> bytes:
    """A small valid file with several dtypes, an empty tensor and metadata: the start of every mutation."""
    from safetensors.numpy import save

    rng = np.random.default_rng(0)
    tensors = {
        "a": rng.standard_normal((2, 3)).astype(np.float32),
        "b": rng.standard_normal(4),
        "c": np.arange(3, dtype=np.int64),
        "d": rng.standard_normal((2, 2)).astype(np.float16),
        "e": np.zeros((0, 3), np.float32),
    }
    return save(tensors, metadata={"format": "np"})


def split(data: bytes):
    """(header dict, data section) of a well-formed file."""
    (length,) = struct.unpack("<Q", data[:8])
    return json.loads(data[8 : 8 + length]), data[8 + length :]


def join(header, body: bytes, pad: bool = True) -> bytes:
    raw = json.dumps(header).encode()
    if pad:  # the library pads the header to a multiple of 8 with spaces
        raw += b" " * (-len(raw) % 8)
    return struct.pack("<Q", len(raw)) + raw + body


def mutate_header_field(data: bytes, rng) -> bytes:
    """Change one field of one tensor's header entry to a nearby or absurd value: a header that lies."""
    header, body = split(data)
    name = pick(rng, [k for k in header if k != "__metadata__"])
    entry = header[name]
    field = pick(rng, ["dtype", "shape", "offset", "delete", "metadata", "rename"])
    if field == "dtype":
        entry["dtype"] = str(pick(rng, ["F32", "F64", "F16", "BF16", "I32", "I64", "U8", "BOOL", "F8_E4M3", "F4", "X"]))
    elif field == "shape":
        shape = list(entry["shape"]) or [1]
        i = rng.integers(len(shape))
        shape[i] = pick(rng, [0, 1, shape[i] + 1, shape[i] - 1, 2**31, 2**62, -1])
        if rng.random() < 0.3:
            shape.append(int(rng.integers(0, 4)))
        entry["shape"] = shape
    elif field == "offset":
        offsets = list(entry["data_offsets"])
        i = rng.integers(2)
        offsets[i] = pick(rng, [0, offsets[i] + 1, offsets[i] - 1, offsets[i] + 8, len(body), 2**63 - 1])
        entry["data_offsets"] = offsets
    elif field == "delete":
        del entry[pick(rng, ["dtype", "shape", "data_offsets"])]
    elif field == "metadata":
        header["__metadata__"] = pick(rng, [{"format": 1}, [], "x", {"a": "b"}])
    else:
        header[name + "x"] = header.pop(name)
    return join(header, body, pad=bool(rng.random() < 0.5))


def mutate(data: bytes, rng) -> bytes:
    """One random mutation of a file's bytes: flips, truncation, insertion, a lying length, or a lying field."""
    kind = pick(rng, ["flip", "flip header", "truncate", "insert", "length", "field", "field", "splice"])
    buffer = bytearray(data)
    if kind in ("flip", "flip header"):
        (length,) = struct.unpack("<Q", data[:8])
        end = 8 + length if kind == "flip header" else len(buffer)
        for _ in range(rng.integers(1, 5)):
            buffer[rng.integers(0, end)] ^= 1 << rng.integers(8)
    elif kind == "truncate":
        del buffer[rng.integers(0, len(buffer)) :]
    elif kind == "insert":
        at = rng.integers(0, len(buffer) + 1)
        buffer[at:at] = rng.integers(0, 256, size=rng.integers(1, 9), dtype=np.uint8).tobytes()
    elif kind == "length":
        buffer[:8] = struct.pack("<Q", pick(rng, [0, 1, 7, len(data), 2**63, 2**64 - 1, int(rng.integers(0, 400))]))
    elif kind == "field":
        return mutate_header_field(data, rng)
    else:  # splice: the data of the file after another file's header
        other = bytearray(rng.integers(0, 256, size=rng.integers(0, 64), dtype=np.uint8).tobytes())
        buffer[rng.integers(8, len(buffer)) :] = other
    return bytes(buffer)


def check_loaded(data: bytes, tensors: dict) -> None:
    """A file that loaded must hold exactly what its header says: names, dtypes, shapes and the bytes themselves."""
    header, body = split(data)
    header.pop("__metadata__", None)
    assert set(tensors) == set(header), f"loaded {sorted(tensors)}, header lists {sorted(header)}"
    for name, entry in header.items():
        array = tensors[name]
        begin, end = entry["data_offsets"]
        assert array.dtype == np.dtype(NUMPY_DTYPES[entry["dtype"]]), (name, array.dtype, entry["dtype"])
        assert array.shape == tuple(entry["shape"]), (name, array.shape, entry["shape"])
        raw = body[begin:end]
        if entry["dtype"] == "BF16":  # bfloat16 is the top half of a float32: widening is exact
            raw = (np.frombuffer(raw, "<u2").astype("<u4") << 16).tobytes()
        assert array.tobytes() == raw, f"{name}: the bytes differ from data_offsets {entry['data_offsets']}"


def fuzz_safetensors_once(data: bytes, path: Path) -> str:
    """'refused' (CheckpointError) or 'loaded' (checked against its header); anything else raises."""
    path.write_bytes(data)
    try:
        tensors = read_safetensors(path)
    except CheckpointError as error:
        assert str(path) in str(error), f"the error does not name the file: {error}"
        return "refused"
    check_loaded(data, tensors)
    return "loaded"


def torch_bin_of_tiny() -> bytes:
    """tiny-gelu's weights as torch.save writes pytorch_model.bin (needs torch, as only the fuzzer's input does)."""
    import io

    import torch
    from safetensors.numpy import load_file

    buffer = io.BytesIO()
    torch.save({k: torch.from_numpy(v) for k, v in load_file(TINY / "model.safetensors").items()}, buffer)
    return buffer.getvalue()


def mutate_bytes(data: bytes, rng) -> bytes:
    """Format-blind mutations: flipped bits, a cut, inserted or overwritten bytes."""
    buffer = bytearray(data)
    kind = pick(rng, ["flip", "truncate", "insert", "overwrite"])
    if kind == "flip":
        for _ in range(rng.integers(1, 5)):
            buffer[rng.integers(0, len(buffer))] ^= 1 << rng.integers(8)
    elif kind == "truncate":
        del buffer[rng.integers(0, len(buffer)) :]
    else:
        at = int(rng.integers(0, len(buffer)))
        chunk = rng.integers(0, 256, size=rng.integers(1, 17), dtype=np.uint8).tobytes()
        buffer[at : at + (0 if kind == "insert" else len(chunk))] = chunk
    return bytes(buffer)


def fuzz_model_once(data: bytes, directory: Path, filename: str = "model.safetensors") -> str:
    """A mutated tiny-gelu weights file through BertModel.from_pretrained: CheckpointError, or a model that runs
    on its full input range (a flipped weight bit is undetectable and fine; a crash is not)."""
    (directory / filename).write_bytes(data)
    try:
        model = minibert.BertModel.from_pretrained(directory)
    except CheckpointError:
        return "refused"
    ids = np.arange(model.config.vocab_size)[None, : model.config.max_position_embeddings]
    with np.errstate(all="ignore"):  # a flipped exponent bit makes a finite but huge weight: overflow is expected
        out = model(ids)
    assert out.last_hidden_state.shape == (*ids.shape, model.config.hidden_size)
    return "loaded"


def fuzz_saved_model_once(data: bytes, directory: Path) -> str:
    """A mutated saved_model.pb of a TF1 Hub module through BertModel.from_pretrained and Tokenizer.from_pretrained:
    a CheckpointError or ConfigError (a graph whose epsilon is mutated to 0 reads as a config that is refused), or a
    model and tokenizer that run."""
    (directory / "saved_model.pb").write_bytes(data)
    try:
        model = minibert.BertModel.from_pretrained(directory)
        tokenizer = minibert.Tokenizer.from_pretrained(directory)
    except (CheckpointError, ConfigError):
        return "refused"
    ids = tokenizer(["Why is the pooled output different?"])["input_ids"]
    with np.errstate(all="ignore"):  # a mutated mask constant or epsilon may be extreme but is still the graph's
        out = model(ids)
    assert out.last_hidden_state.shape == (*ids.shape, model.config.hidden_size)
    return "loaded"


# --- tokenizer texts ------------------------------------------------------------------------------------------------

# Pools of code points: ASCII, C0/C1 controls, whitespace of many kinds, combining marks, CJK, emoji, private use,
# noncharacters, the BOM and zero-width characters. Surrogates (U+D800-U+DFFF) are left out: they are not text, and
# the Tokenizer refuses them by name (tests/test_robustness.py).
POOLS = [
    (0x20, 0x7E),
    (0x00, 0x1F),
    (0x7F, 0x9F),
    (0x2000, 0x200F),
    (0x0300, 0x036F),
    (0x4E00, 0x9FFF),
    (0x1F300, 0x1FAFF),
    (0xE000, 0xF8FF),
    (0xFDD0, 0xFDEF),
    (0xFEFF, 0xFEFF),
    (0x0590, 0x06FF),
    (0x10000, 0x10FFFF),
]


def random_text(rng, max_length: int) -> str:
    length = int(np.exp(rng.uniform(0, np.log(max_length + 1)))) - 1  # log-uniform: mostly short, sometimes long
    if rng.random() < 0.01:
        length = 100_000  # a whole document in one text: truncation, not a crash or a slow path
    if rng.random() < 0.1:
        return pick(rng, ["", " ", "\t\n", "\x00", "[CLS]", "[SEP] [PAD]", "##", "a" * 300])
    pools = [POOLS[i] for i in rng.choice(len(POOLS), size=rng.integers(1, 4), replace=False)]
    chars = []
    for _ in range(length):
        low, high = pools[rng.integers(len(pools))]
        code = int(rng.integers(low, high + 1))
        chars.append(chr(code) if not 0xD800 <= code <= 0xDFFF else "?")
    if rng.random() < 0.5:  # words: spaces let the pre-tokenizer split, so WordPiece sees short and long words
        chars = [c if rng.random() > 0.2 else " " for c in chars]
    return "".join(chars)


def fuzz_tokenizer_once(tokenizer, rng, max_text_length: int = 2000) -> str:
    """Random texts (and sometimes pairs) with random padding/truncation: consistent arrays, or an InputError."""
    batch = int(rng.integers(1, 5))
    texts = [random_text(rng, max_text_length) for _ in range(batch)]
    pairs = [random_text(rng, max_text_length) for _ in range(batch)] if rng.random() < 0.3 else None
    padding = pick(rng, [True, "max_length"] if batch > 1 else [True, False, "max_length"])
    truncation = bool(rng.random() < 0.8) or padding == "max_length"
    max_length = None if rng.random() < 0.5 else int(rng.integers(2, 40))
    try:
        encoded = tokenizer(texts, pairs, padding=padding, truncation=truncation, max_length=max_length)
    except InputError:
        return "refused"
    ids, types, mask = encoded["input_ids"], encoded["token_type_ids"], encoded["attention_mask"]
    assert ids.dtype == types.dtype == mask.dtype == np.int64
    assert ids.shape == types.shape == mask.shape and ids.shape[0] == batch, {k: v.shape for k, v in encoded.items()}
    limit = tokenizer.model_max_length if max_length is None else max_length
    if padding == "max_length":
        assert ids.shape[1] == limit or (not truncation and ids.shape[1] >= limit)
    if truncation:
        assert ids.shape[1] <= limit, (ids.shape, limit)
    vocab = tokenizer.backend.get_vocab_size()
    assert ids.min() >= 0 and ids.max() < vocab
    cls, sep = tokenizer.backend.token_to_id("[CLS]"), tokenizer.backend.token_to_id("[SEP]")
    lengths = mask.sum(axis=1)
    for row in range(batch):
        n = lengths[row]
        assert (mask[row, :n] == 1).all() and (mask[row, n:] == 0).all(), "padding must be on the right"
        assert ids[row, 0] == cls and ids[row, n - 1] == sep, tokenizer.convert_ids_to_tokens(ids[row, :n])
        assert set(np.unique(types[row, :n])) <= ({0} if pairs is None else {0, 1})
    return "encoded"


# --- the driver -----------------------------------------------------------------------------------------------------


def run(target: str, seed: int, iterations: int | None = None, seconds: float | None = None, out: Path | None = None):
    """Fuzz `target` for `iterations` or `seconds`; returns a Counter of outcomes. Re-raises the first bug found,
    after saving its input under `out`."""
    rng = np.random.default_rng(seed)
    outcomes: Counter = Counter()
    deadline = None if seconds is None else time.monotonic() + seconds
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if target == "safetensors":
            base = seed_file()
        elif target == "model":
            base = (TINY / "model.safetensors").read_bytes()
            (tmp / "config.json").write_bytes((TINY / "config.json").read_bytes())
        elif target == "bin":
            base = torch_bin_of_tiny()
            (tmp / "config.json").write_bytes((TINY / "config.json").read_bytes())
        elif target == "saved_model":
            base = (TF1_MODULE / "saved_model.pb").read_bytes()
            shutil.copytree(TF1_MODULE, tmp / "module")
        else:
            from support.helpers import minilm_dir  # the real checkpoint's tokenizer

            tokenizer = minibert.Tokenizer.from_pretrained(minilm_dir())
        i = 0
        while (iterations is None or i < iterations) and (deadline is None or time.monotonic() < deadline):
            data = None
            try:
                if target == "safetensors":
                    data = mutate(base, rng)
                    outcomes[fuzz_safetensors_once(data, tmp / "x.safetensors")] += 1
                elif target == "model":
                    data = mutate(base, rng)
                    outcomes[fuzz_model_once(data, tmp)] += 1
                elif target == "bin":
                    data = mutate_bytes(base, rng)
                    outcomes[fuzz_model_once(data, tmp, "pytorch_model.bin")] += 1
                elif target == "saved_model":
                    data = mutate_bytes(base, rng)
                    outcomes[fuzz_saved_model_once(data, tmp / "module")] += 1
                else:
                    outcomes[fuzz_tokenizer_once(tokenizer, rng)] += 1
            except BaseException as error:
                if out is not None and data is not None:
                    out.mkdir(parents=True, exist_ok=True)
                    saved = out / f"{target}-seed{seed}-iteration{i}.bin"
                    saved.write_bytes(data)
                    error.add_note(f"input saved to {saved}")
                error.add_note(f"fuzz target {target}, seed {seed}, iteration {i}")
                raise
            i += 1
    return outcomes


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--target", choices=["safetensors", "model", "bin", "saved_model", "tokenizer", "all"], default="all"
    )
    parser.add_argument("--seconds", type=float, default=60.0, help="time per target")
    parser.add_argument("--seed", type=int, default=None, help="default: a random seed, printed")
    parser.add_argument("--out", type=Path, default=Path("fuzz-crashes"), help="where failing inputs are saved")
    args = parser.parse_args(argv)
    seed = int(np.random.default_rng().integers(2**31)) if args.seed is None else args.seed
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/, for support.helpers.minilm_dir
    targets = ["safetensors", "model", "bin", "saved_model", "tokenizer"] if args.target == "all" else [args.target]
    for target in targets:
        try:
            outcomes = run(target, seed, seconds=args.seconds, out=args.out)
        except Exception:
            import traceback

            traceback.print_exc()
            return 1
        print(f"{target}: seed {seed}, {sum(outcomes.values())} inputs: {dict(outcomes)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
