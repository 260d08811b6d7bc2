"""What a model directory holds: the names of its files, which weight files to read, and the small JSON files
that say so (config.json is config.py's; the sharded index; a sentence-transformers model's modules.json).

A local directory and a hub repository hold the same files, so hub.py asks the same questions of a repository's
listing that checkpoint.py asks of a directory:

    choose_weights(names)                     -> "model.safetensors" (the best format there, by WEIGHT_FILES)
    weight_files(names, read_index)           -> [the marker file, and every shard or TF .data-* file it needs]

No tensor is read here; the readers (safetensors.py, torch_pickle.py, tf_checkpoint.py) do that.
"""

from collections.abc import Callable, Collection
from pathlib import Path, PurePosixPath

from .errors import CheckpointError, MinibertError
from .untrusted import MAX_JSON_BYTES, UntrustedJSONError, json_kind, parse_json, quote, read_bounded

# config.json as transformers writes it; bert_config.json is the original Google release's, the same fields.
CONFIG_FILES = ("config.json", "bert_config.json")

# The weight files minibert reads, best first; each marks one format, and a directory is read with the first one it
# holds (checkpoint.py maps each to its reader; hub.py downloads the same one).
SAFETENSORS = "model.safetensors"
SHARDED_INDEX = "model.safetensors.index.json"  # names the model-0000i-of-0000n.safetensors shards beside it
TORCH_BIN = "pytorch_model.bin"
TF_INDEX = "bert_model.ckpt.index"  # Google's TF checkpoint; its bert_model.ckpt.data-* files sit beside it
# A TensorFlow SavedModel: a TF1 Hub module or a TF2 SavedModel (tf_module.py), which needs no config.json: its graph
# and variables/variables.{index,data-*} (a TF checkpoint) say everything, its assets/ hold the vocabulary.
SAVED_MODEL = "saved_model.pb"
SAVED_MODEL_VARIABLES = "variables/variables"
WEIGHT_FILES = (SAFETENSORS, SHARDED_INDEX, TORCH_BIN, TF_INDEX, SAVED_MODEL)

# What a tokenizer reads: tokenizer.json, or vocab.txt with tokenizer_config.json's settings.
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json")

# A sentence-transformers model: modules.json lists its modules and their folders; the Transformer module's folder
# holds sentence_bert_config.json (max_seq_length, do_lower_case, transformer_task), the Pooling, Dense and
# SpladePooling modules' folders a config.json (Dense its weights too).
MODULES_JSON = "modules.json"
# What to do with a directory or repository that has no modules.json: from Python, and on the command line. A plain
# BERT was trained to give no sentence embedding; the usual stand-in is the mean of its token states, not
# pooler_output, which only heads trained on it read (the README's "Which vector to use").
PLAIN_BERT_FIX = (
    "for a plain BERT checkpoint use minibert.BertModel, and as a sentence embedding the mean of last_hidden_state "
    "over the attention mask (pooler_output is for heads trained on it)"
)
PLAIN_BERT_CLI_FIX = (
    "`minibert embed --model` needs one (e.g. sentence-transformers/all-MiniLM-L6-v2). A plain BERT checkpoint was "
    "not trained to give sentence embeddings; the usual stand-in is mean pooling, not pooler_output: `minibert run "
    "--input FILE --model DIR --output out.npz` writes last_hidden_state and attention_mask to average over"
)
SENTENCE_BERT_CONFIG = "sentence_bert_config.json"
# The module classes minibert implements, by class name; MLMTransformer is the SPLADE models' Transformer before v5.4
# (a Transformer with transformer_task "fill-mask").
SENTENCE_MODULES = ("Transformer", "MLMTransformer", "Pooling", "Dense", "Normalize", "SpladePooling")
# Modules whose folder holds a config.json that minibert reads.
MODULES_WITH_CONFIG = ("Pooling", "Dense", "SpladePooling")


def read_json(path, expect: type = dict, error: type[MinibertError] = CheckpointError):
    """The one reader of a model directory's JSON files (config.json, the shard index, tokenizer.json and
    tokenizer_config.json, modules.json, sentence_bert_config.json, a Pooling config.json): a regular file of bounded
    size holding a JSON `expect` (dict or list). Every failure, from a missing file to 100,000 nested brackets or a
    5,000-digit number, is an `error` naming the file (untrusted.parse_json says why)."""
    path = Path(path)
    try:
        values = parse_json(read_bounded(path, MAX_JSON_BYTES, error))
    except UntrustedJSONError as e:
        # The file's name twice over: the reason reads on its own, "config.json: invalid JSON at line 3 ...".
        raise error(f"{path}: cannot be read as JSON ({path.name}: {e}); re-download or repair it") from None
    if not isinstance(values, expect):
        what = {dict: "a JSON object", list: "a JSON array"}.get(expect, expect.__name__)
        raise error(f"{path}: expected {what}, found {json_kind(values)}")
    return values


def config_file(directory: Path) -> Path:
    """The directory's config file (config.json, else bert_config.json); config.json if it has neither, so that
    reading it names the file a model directory needs."""
    return next((directory / name for name in CONFIG_FILES if (directory / name).is_file()), directory / "config.json")


def choose_weights(names: Collection[str], where: str, holds: str = "the directory holds") -> str:
    """The weight file to read out of the file names a model directory (or a hub repository) holds: the best format
    there, by WEIGHT_FILES. `where` and `holds` word the error when there is none."""
    present = set(names)
    chosen = next((name for name in WEIGHT_FILES if name in present), None)
    if chosen is None:
        raise CheckpointError(
            f"{where}: no weights to load; expected one of {list(WEIGHT_FILES)} (none of the weight files minibert "
            f"reads is there); {holds} {sorted(present)}"
        )
    return chosen


def weight_files(
    names: Collection[str],
    read_index: Callable[[str], dict[str, str]],
    where: str,
    holds: str = "the directory holds",
) -> list[str]:
    """Every file the chosen weights need, in a fixed order: the file choose_weights picks and, for a sharded
    safetensors, the shards its index names (`read_index(name)` -> the index's weight_map), for a TF checkpoint the
    .data-* files beside its index."""
    chosen = choose_weights(names, where, holds)
    if chosen == SHARDED_INDEX:
        return [chosen, *sorted(set(read_index(chosen).values()))]
    if chosen == TF_INDEX:
        data_prefix = chosen.removesuffix(".index") + ".data-"
        return [chosen, *sorted(name for name in names if name.startswith(data_prefix))]
    if chosen == SAVED_MODEL:  # the variables, and the vocabulary the module's tokenizer reads
        parts = (SAVED_MODEL_VARIABLES + ".", "assets/")
        return [chosen, *sorted(name for name in names if name.startswith(parts))]
    return [chosen]


def local_names(directory: Path) -> list[str]:
    """The names of a directory's files as a hub listing gives them: the directory's own, and a SavedModel's under
    variables/ and assets/ as "variables/variables.index", ... (a symlinked folder is followed, as a symlinked file
    is; the files' readers then refuse what is not a regular file)."""
    names = [path.name for path in directory.iterdir()]
    if SAVED_MODEL in names:
        for folder in ("variables", "assets"):
            if (directory / folder).is_dir():
                names += [f"{folder}/{path.name}" for path in (directory / folder).iterdir()]
    return names


def is_saved_model(directory: Path) -> bool:
    """Whether `directory` holds a SavedModel and no config file: then its config is read from the module."""
    return (directory / SAVED_MODEL).is_file() and not any((directory / name).is_file() for name in CONFIG_FILES)


def local_weight_files(directory: Path) -> list[Path]:
    """weight_files of a local directory, as paths: what checkpoint.read_tensors(directory) reads. For hashing a
    model's identity."""
    names = local_names(directory)
    chosen = weight_files(names, lambda name: read_sharded_index(directory / name), str(directory))
    return [directory / name for name in chosen]


def read_sharded_index(index_path: Path) -> dict[str, str]:
    """model.safetensors.index.json's weight_map: tensor name -> the shard file, beside the index, that holds it."""
    weight_map = read_json(index_path).get("weight_map")
    if not isinstance(weight_map, dict) or not all(
        isinstance(name, str) and isinstance(shard, str) for name, shard in weight_map.items()
    ):
        raise CheckpointError(f"{index_path}: expected a 'weight_map' object of tensor name -> shard file name")
    for name, shard in weight_map.items():
        # A name like "../x" would read outside the model directory.
        if Path(shard).name != shard or shard in ("", ".", ".."):
            raise CheckpointError(
                f"{index_path}: tensor {quote(name)} is in shard {quote(shard)}, which is not a plain file name; "
                "shards sit "
                "beside the index"
            )
    return weight_map


def _module_kind(entry, modules_json: Path) -> str:
    """The class name of a modules.json entry (one of SENTENCE_MODULES), or a CheckpointError naming the module."""
    if not isinstance(entry, dict) or not isinstance(entry.get("type"), str):
        raise CheckpointError(f"{modules_json}: each entry needs a 'type' string, found {quote(entry)}")
    kind = entry["type"].rsplit(".", 1)[-1]
    # The same class has lived under several module paths (sentence_transformers.models.Pooling before v6,
    # sentence_transformers.sentence_transformer.modules.pooling.Pooling after); the class name decides.
    if entry["type"].startswith("sentence_transformers.") and kind in SENTENCE_MODULES:
        return kind
    raise CheckpointError(
        f"{modules_json}: module {quote(entry.get('idx', '?'))} ({quote(entry.get('path', ''))}) has type "
        f"{quote(entry['type'])}, "
        "which minibert does not implement; supported: sentence_transformers "
        f"{', '.join(SENTENCE_MODULES)} (the Transformer a BERT). "
        "Skipping it would give different embeddings, so use sentence-transformers for this model."
    )


def _module_path(entry: dict, modules_json: Path) -> str:
    """The module's folder, relative to the model directory ("" for the directory itself); never outside it."""
    path = entry.get("path", "")
    if not isinstance(path, str) or PurePosixPath(path).is_absolute() or ".." in PurePosixPath(path).parts:
        raise CheckpointError(
            f"{modules_json}: module {quote(entry.get('idx', '?'))} has path {quote(path)}; expected a folder inside "
            "the model "
            "directory, such as '1_Pooling' (no '..', not absolute)"
        )
    return path


def read_modules(modules_json: Path) -> list[tuple[str, str]]:
    """modules.json -> [(kind, folder)], the Transformer first (an MLMTransformer is returned as a Transformer). Which
    modules may follow it is for the model class to check (SentenceEncoder, SparseEncoder, CrossEncoder)."""
    entries = read_json(modules_json, expect=list)
    if not entries:
        raise CheckpointError(f"{modules_json}: expected a non-empty JSON list of modules")
    kinds = [_module_kind(entry, modules_json) for entry in entries]
    kinds = ["Transformer" if kind == "MLMTransformer" else kind for kind in kinds]
    if kinds[0] != "Transformer" or kinds.count("Transformer") != 1:
        raise CheckpointError(f"{modules_json}: modules are {kinds}; minibert runs one Transformer, first")
    return [(kind, _module_path(entry, modules_json)) for kind, entry in zip(kinds, entries, strict=True)]
