"""Finding a model's files: a local directory as it is, or a hub id through huggingface_hub's own download and cache.

    resolve_model_dir("path/to/model")                -> path/to/model
    resolve_model_dir("org/name", revision="v1.0")    -> <HF_HUB_CACHE>/models--org--name/snapshots/<commit>/

For a hub id only what the caller needs is fetched, with huggingface_hub's `hf_hub_download` into its usual cache:
config.json and the weight files model_files.weight_files chooses (the best format the repository has) for a model
(Need.MODEL), the tokenizer files for a tokenizer (Need.TOKENIZER); for a sentence-transformers model
(Need.SENTENCE_MODEL), modules.json first, then the Transformer module's config, weights, tokenizer files and
sentence_bert_config.json, and the Pooling module's config.json, each in the folder modules.json names. Offline
(`local_files_only=True`, or HF_HUB_OFFLINE=1) nothing goes over the network: the snapshot folder is found with
`try_to_load_from_cache` and its files are whatever the cache holds.
"""

import enum
import logging
import os
from pathlib import Path

from .errors import CheckpointError, InputError
from .model_files import (
    CONFIG_FILES,
    MODULES_JSON,
    MODULES_WITH_CONFIG,
    PLAIN_BERT_CLI_FIX,
    PLAIN_BERT_FIX,
    SAVED_MODEL,
    SENTENCE_BERT_CONFIG,
    TOKENIZER_FILES,
    choose_weights,
    read_modules,
    read_sharded_index,
    weight_files,
)

logger = logging.getLogger("minibert")


class Need(enum.Enum):
    """What the caller will read from a model, so which of a repository's files a hub id fetches."""

    MODEL = "config.json"  # config.json and the weights, for BertModel and the heads
    TOKENIZER = "tokenizer files"  # tokenizer.json or vocab.txt, and tokenizer_config.json
    SENTENCE_MODEL = "modules.json"  # modules.json, then each sentence-transformers module's files
    CROSS_ENCODER = "cross-encoder"  # config.json, the weights, the tokenizer, and sentence-transformers' settings


# The files that mark a cached snapshot as holding what a Need reads, the first of them the likeliest.
_MARKERS = {
    Need.MODEL: (*CONFIG_FILES, SAVED_MODEL),
    Need.TOKENIZER: (*TOKENIZER_FILES, SAVED_MODEL),
    Need.SENTENCE_MODEL: (MODULES_JSON,),
    Need.CROSS_ENCODER: CONFIG_FILES,
}
# A sentence-transformers model's own settings (prompts, similarity, a CrossEncoder's activation_fn), at its top.
ST_SETTINGS_FILES = ("config_sentence_transformers.json",)


def resolve_model_dir(
    path_or_id, need: Need = Need.MODEL, *, revision: str | None = None, cache_dir=None, local_files_only: bool = False
) -> Path:
    """The local directory holding a model's files: `path_or_id` itself if it is a directory, else the hub snapshot
    of the repository `path_or_id`, with the files `need` names downloaded into it. Public from_pretrained methods
    call this once, at the door, and pass the directory down."""
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
    if not isinstance(need, Need):
        raise InputError(f"need must be a hub.Need ({', '.join(n.name for n in Need)}), found {need!r}")
    return _hub_snapshot(path_or_id, revision, cache_dir, local_files_only, need)


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


def _hub_snapshot(repo_id: str, revision: str | None, cache_dir, local_files_only: bool, need: Need) -> Path:
    from huggingface_hub import constants

    where = f"hub id {repo_id!r}" + (f" at revision {revision!r}" if revision else "") + " (not a local directory)"
    cache = Path(cache_dir or constants.HF_HUB_CACHE).expanduser() / ("models--" + repo_id.replace("/", "--"))
    if is_offline(local_files_only):
        return _snapshot_from_cache(repo_id, revision, cache_dir, need, cache, reason="offline")
    try:
        _reach_hub_once(repo_id, revision, need)
        repo_files = _list_repo_files(repo_id, revision)
    except CheckpointError:
        raise
    except Exception as error:
        # The transport's exception types depend on the huggingface_hub version (requests or httpx); whatever
        # kept us from the hub, fall back to the cache, as transformers does.
        snapshot = _snapshot_from_cache(repo_id, revision, cache_dir, need, cache, reason=f"unreachable: {error}")
        logger.warning("%s: cannot reach the hub (%s); using the local cache", where, error)
        return snapshot
    snapshot = _Snapshot(repo_id, revision, cache_dir, where)
    if need is Need.SENTENCE_MODEL:
        _fetch_sentence_model(snapshot, repo_files)
    elif need is Need.CROSS_ENCODER:
        _fetch_model(snapshot, repo_files, "", where)
        for name in _tokenizer_files(repo_files, where) + [
            name for name in (MODULES_JSON, SENTENCE_BERT_CONFIG, *ST_SETTINGS_FILES) if name in repo_files
        ]:
            snapshot.fetch(name)
    elif need is Need.TOKENIZER:
        for name in _tokenizer_files(repo_files, where):
            snapshot.fetch(name)
    else:
        _fetch_model(snapshot, repo_files, "", where)
    return snapshot.folder


def _reach_hub_once(repo_id: str, revision: str | None, need: Need) -> None:
    """One request to the hub, not retried; raises whatever the transport raises if the hub cannot be reached.

    huggingface_hub retries a repository listing five times over some 24 s when the network fails, logging a warning
    each time. Any name that is no directory here may be a mistyped path, whatever it looks like ("my-model",
    "mymodels/minilm" when there is no folder mymodels), and its user should not wait that long to be told so; a
    real hub id pays one small request. Any answer will do (a 404 too): it means the hub is there, and the listing
    that follows says what is wrong.
    """
    import huggingface_hub as hf
    from huggingface_hub import constants
    from huggingface_hub.utils import build_hf_headers, http_backoff

    url = hf.hf_hub_url(repo_id, _MARKERS[need][0], revision=revision)
    http_backoff(
        "HEAD",
        url,
        headers=build_hf_headers(),
        timeout=constants.HF_HUB_ETAG_TIMEOUT,
        follow_redirects=False,
        retry_on_exceptions=(),
        retry_on_status_codes=(),
    )


class _Snapshot:
    """The files of one repository at one revision, downloaded into one snapshot folder, each at most once."""

    def __init__(self, repo_id: str, revision: str | None, cache_dir, where: str):
        self.repo_id, self.revision, self.cache_dir, self.where = repo_id, revision, cache_dir, where
        self.folder: Path | None = None
        self.fetched: dict[str, Path] = {}

    def fetch(self, filename: str) -> Path:
        """The local path of `filename` (a path in the repository), downloaded if it is not yet."""
        if filename not in self.fetched:
            local = Path(_download(self.repo_id, filename, self.revision, self.cache_dir, self.where))
            # The first download records which commit `revision` names (refs/<revision>); the rest ask for that
            # commit, so that every file lands in one snapshot folder even if the branch moves meanwhile.
            self.folder = local.parents[filename.count("/")]  # a module's file sits in a folder of the snapshot
            self.revision = self.folder.name
            self.fetched[filename] = local
        return self.fetched[filename]


def _fetch_model(snapshot: _Snapshot, names: list[str], prefix: str, where: str) -> None:
    """config.json and the weight files model_files.weight_files chooses, of the folder `prefix` of the repository,
    whose listing (relative to that folder) is `names`. Everything is checked before anything is downloaded."""
    config = _model_config_file(names, where)
    if config is not None:
        snapshot.fetch(prefix + config)

    def read_index(index: str) -> dict[str, str]:  # the shards are known only from the downloaded index
        return read_sharded_index(snapshot.fetch(prefix + index))

    for name in weight_files(names, read_index, where, holds="it has"):
        snapshot.fetch(prefix + name)


def _model_config_file(names: list[str], where: str) -> str | None:
    """The config file a model folder of the repository holds, after checking it holds weights minibert reads; None
    for a SavedModel without one, whose config is read from the module itself."""
    weights = choose_weights(names, where, holds="it has")
    config = next((name for name in CONFIG_FILES if name in names), None)
    if config is None and weights != SAVED_MODEL:
        raise CheckpointError(f"{where}: the repository has no config.json; it has {sorted(names)}")
    return config


def _tokenizer_files(names: list[str], where: str) -> list[str]:
    """The tokenizer files a repository listing holds: tokenizer.json or vocab.txt, else a SavedModel's (its
    tokenizer is read from the module: saved_model.pb, its variables and assets)."""
    if "tokenizer.json" not in names and "vocab.txt" not in names:
        if SAVED_MODEL in names:
            return weight_files(names, lambda name: {}, where, holds="it has")
        raise CheckpointError(f"{where}: the repository has no tokenizer.json or vocab.txt; it has {sorted(names)}")
    return [name for name in TOKENIZER_FILES if name in names]


def _fetch_sentence_model(snapshot: _Snapshot, repo_files: list[str]) -> None:
    """modules.json, then each module's files from the folder it names: the Transformer's config, weights,
    tokenizer files and sentence_bert_config.json, the config.json of Pooling, Dense and SpladePooling, a Dense's
    weights (Normalize has none), and config_sentence_transformers.json."""
    where = snapshot.where
    # Which folders to fetch from is known only from modules.json, so it comes first.
    if MODULES_JSON not in repo_files:
        raise CheckpointError(
            f"{where}: the repository has no modules.json, so it is not a sentence-transformers model;",
            fix=PLAIN_BERT_FIX,
            cli_fix=PLAIN_BERT_CLI_FIX,
        )
    modules = read_modules(snapshot.fetch(MODULES_JSON))
    for name in ST_SETTINGS_FILES:
        if name in repo_files:
            snapshot.fetch(name)
    for kind, folder in modules:
        prefix = folder.strip("/") + "/" if folder.strip("/") else ""
        inside = [name[len(prefix) :] for name in repo_files if name.startswith(prefix)]
        here = f"{where}, {kind} module folder {prefix.rstrip('/')!r}" if prefix else where
        if kind == "Transformer":
            _model_config_file(inside, here)  # checked, with the tokenizer files, before any download
            tokenizer_files = _tokenizer_files(inside, here)
            _fetch_model(snapshot, inside, prefix, here)
            for name in tokenizer_files + [name for name in (SENTENCE_BERT_CONFIG,) if name in inside]:
                snapshot.fetch(prefix + name)
        elif kind in MODULES_WITH_CONFIG:
            snapshot.fetch(prefix + "config.json")  # the module's reader says so by name if it is missing
            if kind == "Dense":
                snapshot.fetch(prefix + choose_weights(inside, here, holds="it has"))


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


def _snapshot_from_cache(repo_id: str, revision: str | None, cache_dir, need: Need, cache: Path, reason: str) -> Path:
    """The cached snapshot folder of `revision`, found through a file `need` reads; no network."""
    from huggingface_hub import try_to_load_from_cache

    for name in _MARKERS[need]:
        found = try_to_load_from_cache(repo_id, name, cache_dir=cache_dir, revision=revision)
        if isinstance(found, str):
            return Path(found).parent
    what = need.value
    how = (
        "connect to the hub once (without HF_HUB_OFFLINE=1 / local_files_only=True) to download it"
        if reason == "offline"
        else f"the hub is {reason}; connect to it once to download the model"
    )
    hub_id = f"the hub id {repo_id!r}" + (f" at revision {revision!r}" if revision else "")
    raise CheckpointError(
        f"no folder {repo_id!r} here ({Path.cwd()}), and {hub_id} could not be fetched: not in the local cache at "
        f"{cache} (no {what} for revision {revision or 'main'!r}); {how}. Check the folder's name, or pass a local "
        "directory"
    )
