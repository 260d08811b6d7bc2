"""A run's identity: what must be equal for shards to belong together, its fingerprint, and the resume checks.

A shard or manifest made for another model, dtype, pooling or input is refused, never mixed in.
"""

import hashlib
import json
from pathlib import Path

from ..errors import InputError
from ..model_files import config_file, local_weight_files
from ..sentence import read_sentence_config
from .settings import DEFAULTS

FORMAT = "minibert-embeddings"
FORMAT_VERSION = 1

# What must be equal for shards to belong together. Not batch size or partition size: neither changes which vectors
# a line gets (batch composition moves float32 results by an ulp or so, well inside the 1e-6 the job promises).
IDENTITY_FIELDS = [
    ("model", "sha256", "model weights (SHA-256 of config.json and weights)"),
    ("model", "dtype", "dtype"),
    ("model", "modules", "sentence-transformers modules"),
    ("model", "pooling", "pooling"),
    ("model", "max_seq_length", "max_seq_length (sentence_bert_config.json)"),
    ("model", "do_lower_case", "do_lower_case (sentence_bert_config.json)"),
    ("input", "path", "input path"),
    ("input", "size", "input size in bytes"),
    ("input", "mtime", "input modification time"),
    ("input", "format", "input format"),
    ("input", "field", "JSONL field"),
    ("settings", "prompt", "prompt"),
    ("settings", "normalize", "normalize"),
    ("settings", "precision", "precision"),
    ("settings", "truncate_dim", "truncate_dim"),
]


def run_identity(
    model_identity: dict, input_identity: dict, input_format: str, field: str, settings: dict | None = None
) -> dict:
    """The manifest's header: what a resumed run must find unchanged (settings: embed.settings.resolve_settings')."""
    return {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "model": model_identity,
        "input": {**input_identity, "format": input_format, "field": field},
        "settings": dict(DEFAULTS) if settings is None else settings,
    }


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


def model_identity(directory: Path, dtype: str) -> dict:
    """The model's path, its weights' SHA-256 (what the shards are checked against), revision if known, pooling.

    Reading the sentence-transformers config checks it too, so a directory that is not such a model is refused here,
    before the output is created. The SHA-256 covers the Transformer module's config and exactly the weight files
    minibert would read from its folder (model_files.local_weight_files: every shard, every TF .data-* file), and
    each Dense module's config.json and weights.
    """
    directory = directory.resolve()
    config = read_sentence_config(directory)
    transformer = config.transformer_dir
    config_json = config_file(transformer)
    files = [*([config_json] if config_json.is_file() else []), *local_weight_files(transformer)]
    for dense in config.dense:
        files += [dense.folder / "config.json", *local_weight_files(dense.folder)]
    digest = hashlib.sha256()
    for path in files:
        digest.update(f"{path.relative_to(directory).as_posix()}:{_sha256(path)}\n".encode())
    # A hub cache keeps each revision in snapshots/<commit>/.
    revision = directory.name if directory.parent.name == "snapshots" else None
    return {
        "path": str(directory),
        "revision": revision,
        "sha256": digest.hexdigest(),
        "files": [path.relative_to(directory).as_posix() for path in files],
        "dtype": dtype,
        "modules": list(config.modules),
        "pooling": config.pooling_config,
        "max_seq_length": config.max_seq_length,
        "do_lower_case": config.do_lower_case,
    }


def fingerprint(manifest: dict) -> str:
    values = [manifest[section][key] for section, key, _ in IDENTITY_FIELDS]
    return hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()


def check_same_run(found: dict, identity: dict, where) -> None:
    """Refuse a manifest `found` at `where` unless it was made by a run of this `identity`."""
    if found.get("format") != FORMAT or found.get("version") != FORMAT_VERSION:
        raise InputError(
            f"{where}: not a minibert embeddings manifest of version {FORMAT_VERSION}; pass another --output"
        )
    for section, key, label in IDENTITY_FIELDS:
        before, now = found.get(section, {}).get(key), identity[section][key]
        if before != now:
            raise InputError(
                f"{where}: the shards there were made with {label} {before!r}, this run has {now!r}; refusing to mix "
                "them. Pass another --output, or delete it to start over"
            )
