"""Finding a model's files: a local directory as it is, or a hub id through huggingface_hub's own download and cache.

    resolve_model_dir("path/to/model")                -> path/to/model
    resolve_model_dir("org/name", revision="v1.0")    -> <HF_HUB_CACHE>/models--org--name/snapshots/<commit>/

For a hub id only what the caller needs is fetched, with huggingface_hub's `hf_hub_download` into its usual cache:
config.json and the best weight format the repository has (checkpoint.WEIGHT_FILES, best first) for a model, the
tokenizer files for a tokenizer; for a sentence-transformers model ("sentence"), modules.json first, then the
Transformer module's config, weights, tokenizer files and sentence_bert_config.json, and the Pooling module's
config.json, each in the folder modules.json names. Offline (`local_files_only=True`, or HF_HUB_OFFLINE=1) nothing
goes over the network: the snapshot folder is found with `try_to_load_from_cache` and its files are whatever the cache
holds.
"""

import logging
import os
import posixpath
from pathlib import Path

from .errors import CheckpointError, InputError

logger = logging.getLogger("minibert")

# What each caller needs from a repository, besides the weights (which checkpoint.WEIGHT_FILES chooses).
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json")
PURPOSES = ("model", "tokenizer", "sentence")


def resolve_model_dir(
    path_or_id, *, revision: str | None = None, cache_dir=None, local_files_only: bool = False, purpose: str = "model"
) -> Path:
    """The local directory holding a model's files: `path_or_id` itself if it is a directory, else the hub snapshot
    of the repository `path_or_id`, with the files `purpose` ("model", "tokenizer" or "sentence", a
    sentence-transformers model) needs downloaded into it."""
    if not isinstance(path_or_id, str | os.PathLike):
        raise InputError(
            f"expected a model directory or a hub id like 'org/name' (a str or a path), found "
            f"{type(path_or_id).__name__} {path_or_id!r}"
        )
    path = Path(path_or_id).expanduser()
    if path.is_dir():
        if revision is not None:
            raise InputError(f"revision={revision!r} applies to hub ids, but {path} is a local directory")
        return path
    if path.exists():
        raise CheckpointError(f"{path}: is a file; pass the directory that holds config.json and the weights")
    if isinstance(path_or_id, os.PathLike) or not _is_repo_id(path_or_id):
        raise CheckpointError(
            f"{path}: no such directory (and not a hub id like 'org/name'); pass a model directory holding "
            "config.json and model.safetensors, or a hub id"
        )
    if purpose not in PURPOSES:
        raise InputError(f"purpose must be one of {PURPOSES}, found {purpose!r}")
    return _hub_snapshot(path_or_id, revision, cache_dir, local_files_only, purpose)


def is_offline(local_files_only: bool = False) -> bool:
    """True when the hub must not be contacted: local_files_only, or HF_HUB_OFFLINE set now or at import."""
    from huggingface_hub import constants

    # huggingface_hub reads HF_HUB_OFFLINE once, when it is imported; reading it again here also honours a value
    # set later in the same process (a notebook cell, a test), before any request is attempted.
    set_now = os.environ.get("HF_HUB_OFFLINE", "").upper() in ("1", "ON", "YES", "TRUE")
    return local_files_only or set_now or constants.HF_HUB_OFFLINE


def _is_repo_id(text: str) -> bool:
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(text)
    except HFValidationError:
        return False
    return True


def _hub_snapshot(repo_id: str, revision: str | None, cache_dir, local_files_only: bool, purpose: str) -> Path:
    from huggingface_hub import constants

    where = f"hub id {repo_id!r}" + (f" at revision {revision!r}" if revision else "") + " (not a local directory)"
    cache = Path(cache_dir or constants.HF_HUB_CACHE).expanduser() / ("models--" + repo_id.replace("/", "--"))
    if is_offline(local_files_only):
        return _snapshot_from_cache(repo_id, revision, cache_dir, purpose, where, cache, reason="offline")
    try:
        repo_files = _list_repo_files(repo_id, revision)
    except CheckpointError:
        raise
    except Exception as error:
        # The transport's exception types depend on the huggingface_hub version (requests or httpx); whatever
        # kept us from the hub, fall back to the cache, as transformers does.
        logger.warning("%s: cannot reach the hub (%s); using the local cache", where, error)
        return _snapshot_from_cache(repo_id, revision, cache_dir, purpose, where, cache, reason=f"unreachable: {error}")
    snapshot = None
    if purpose == "sentence":
        # Which folders to fetch from is known only from modules.json, so it comes first.
        if "modules.json" not in repo_files:
            raise CheckpointError(
                f"{where}: the repository has no modules.json, so it is not a sentence-transformers model; "
                "for a plain BERT checkpoint use minibert.BertModel"
            )
        from .sentence import read_modules

        local = Path(_download(repo_id, "modules.json", revision, cache_dir, where))
        snapshot = local.parent
        revision = snapshot.name  # the commit, as below
        modules = read_modules(local)
        wanted = [name for kind, path in modules for name in _module_files(repo_files, kind, path, where)]
        wanted = list(dict.fromkeys(wanted))  # a Pooling in the Transformer's folder would list config.json twice
    else:
        wanted = _files_to_download(repo_files, purpose, where)
    for filename in wanted:
        local = _download(repo_id, filename, revision, cache_dir, where)
        # The first download records which commit `revision` names (refs/<revision>); the rest ask for that commit,
        # so that every file lands in one snapshot folder even if the branch moves meanwhile.
        snapshot = Path(local).parents[filename.count("/")]  # a module's file sits in a folder of the snapshot
        revision = snapshot.name
        if posixpath.basename(filename) == "model.safetensors.index.json":  # the shards are known only from the index
            from .checkpoint import read_sharded_index

            for shard in sorted(set(read_sharded_index(Path(local)).values())):
                _download(repo_id, posixpath.join(posixpath.dirname(filename), shard), revision, cache_dir, where)
    return snapshot


def _module_files(repo_files: list[str], kind: str, folder: str, where: str) -> list[str]:
    """The files one sentence-transformers module reads, from its folder of the repository listing."""
    prefix = folder.strip("/") + "/" if folder.strip("/") else ""
    if kind == "Pooling":
        return [prefix + "config.json"]  # read_sentence_config says so by name if it is missing
    if kind == "Normalize":
        return []  # no parameters
    inside = [name[len(prefix) :] for name in repo_files if name.startswith(prefix)]
    where = f"{where}, Transformer module folder {folder!r}" if prefix else where
    wanted = _files_to_download(inside, "model", where) + _files_to_download(inside, "tokenizer", where)
    wanted += [name for name in ("sentence_bert_config.json",) if name in inside]
    return [prefix + name for name in wanted]


def _list_repo_files(repo_id: str, revision: str | None) -> list[str]:
    import huggingface_hub as hf
    from huggingface_hub.utils import GatedRepoError, RepositoryNotFoundError, RevisionNotFoundError

    try:
        return hf.HfApi().list_repo_files(repo_id, revision=revision)
    except RevisionNotFoundError:
        raise CheckpointError(
            f"hub id {repo_id!r}: the repository has no revision {revision!r}; check the branch, tag or commit"
        ) from None
    except GatedRepoError:
        raise CheckpointError(
            f"hub id {repo_id!r}: the repository is gated; accept its terms on the hub and log in (`hf auth login`)"
        ) from None
    except RepositoryNotFoundError:
        raise CheckpointError(
            f"hub id {repo_id!r}: no such repository on the hub (or it is private: log in with `hf auth login`)"
        ) from None


def _files_to_download(repo_files: list[str], purpose: str, where: str) -> list[str]:
    """The files of a repository listing that `purpose` needs: config + best weights, or the tokenizer files."""
    from .checkpoint import CONFIG_FILES, WEIGHT_FILES

    present = set(repo_files)
    if purpose == "tokenizer":
        wanted = [name for name in TOKENIZER_FILES if name in present]
        if "tokenizer.json" not in present and "vocab.txt" not in present:
            raise CheckpointError(
                f"{where}: the repository has no tokenizer.json or vocab.txt; it has {sorted(present)}"
            )
        return wanted
    weights = next((name for name, _ in WEIGHT_FILES if name in present), None)
    if weights is None:
        raise CheckpointError(
            f"{where}: the repository has none of the weight files minibert reads "
            f"({', '.join(name for name, _ in WEIGHT_FILES)}); it has {sorted(present)}"
        )
    config = next((name for name in CONFIG_FILES if name in present), None)
    if config is None:
        raise CheckpointError(f"{where}: the repository has no config.json; it has {sorted(present)}")
    wanted = [config, weights]
    if weights.endswith(".ckpt.index"):  # a TF checkpoint's data shards sit beside its index
        prefix = weights.removesuffix(".index")
        wanted += sorted(name for name in present if name.startswith(prefix + ".data-"))
    return wanted


def _download(repo_id: str, filename: str, revision: str | None, cache_dir, where: str) -> str:
    import huggingface_hub as hf
    from huggingface_hub.utils import EntryNotFoundError, HfHubHTTPError, LocalEntryNotFoundError

    try:
        return hf.hf_hub_download(repo_id, filename, revision=revision, cache_dir=cache_dir)
    except LocalEntryNotFoundError as error:  # a subclass of EntryNotFoundError: the network failed, not the file
        raise CheckpointError(
            f"{where}: cannot download {filename} and it is not in the local cache ({error}); try again when the "
            "hub is reachable, or pass a local directory"
        ) from None
    except EntryNotFoundError:
        raise CheckpointError(f"{where}: the repository has no file {filename!r}") from None
    except (OSError, HfHubHTTPError) as error:
        raise CheckpointError(
            f"{where}: cannot download {filename} ({error}); try again, or pass a local directory"
        ) from None


def _snapshot_from_cache(
    repo_id: str, revision: str | None, cache_dir, purpose: str, where: str, cache: Path, reason: str
) -> Path:
    """The cached snapshot folder of `revision`, found through a file `purpose` needs; no network."""
    from huggingface_hub import try_to_load_from_cache

    from .checkpoint import CONFIG_FILES

    markers = {"tokenizer": TOKENIZER_FILES, "sentence": ("modules.json",)}.get(purpose, CONFIG_FILES)
    for name in markers:
        found = try_to_load_from_cache(repo_id, name, cache_dir=cache_dir, revision=revision)
        if isinstance(found, str):
            return Path(found).parent
    what = {"tokenizer": "tokenizer files", "sentence": "modules.json"}.get(purpose, "config.json")
    how = (
        "connect to the hub once (without HF_HUB_OFFLINE=1 / local_files_only=True) to download it"
        if reason == "offline"
        else f"the hub is {reason}; connect to it once to download the model"
    )
    raise CheckpointError(
        f"{where}: not in the local cache at {cache} (no {what} for revision {revision or 'main'!r}); {how}, "
        "or pass a local directory"
    )
