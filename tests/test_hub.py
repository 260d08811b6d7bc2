"""Hub ids through huggingface_hub's cache, tested offline: this machine cannot reach the hub.

`make_cached_repo` lays a model out exactly as huggingface_hub's `hf_hub_download` does (read from its source,
file_download.py: `models--{org}--{name}/refs/{revision}` holds the commit hash, `snapshots/{commit}/{file}` is a
relative symlink to `blobs/{etag}`, the etag being the file's SHA-256 for LFS files and its git blob SHA-1 for
the others), and the tests check that huggingface_hub's own `scan_cache_dir` reads it back without a warning.
"""

import hashlib
import logging
import os
import shutil
from pathlib import Path

import huggingface_hub
import numpy as np
import pytest
from helpers import MINILM_SHA256, WEIGHTS, minilm_dir
from huggingface_hub import constants

import minibert
from minibert.errors import CheckpointError, InputError

MINILM_ID = "sentence-transformers/all-MiniLM-L6-v2"
MAIN_COMMIT = hashlib.sha1(b"main").hexdigest()
TINY_COMMIT = hashlib.sha1(b"tiny-gelu").hexdigest()
LFS_SUFFIXES = (".safetensors", ".bin")  # stored with git LFS on the hub, so their etag is the SHA-256


def etag(path: Path) -> str:
    if path.suffix in LFS_SUFFIXES:
        if path.name == "model.safetensors" and path.stat().st_size == 90868376:
            return MINILM_SHA256  # checked by minilm_dir(); spares hashing 90 MB again
        return hashlib.sha256(path.read_bytes()).hexdigest()
    data = path.read_bytes()
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()  # git's blob id


def make_cached_repo(cache: Path, repo_id: str, revisions: dict[str, tuple[str, Path]]) -> Path:
    """{ref: (commit, source directory)} -> the repo folder in `cache`, as hf_hub_download leaves it."""
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    for ref, (commit, source) in revisions.items():
        (repo / "refs").mkdir(parents=True, exist_ok=True)
        (repo / "refs" / ref).write_text(commit)  # no newline, as huggingface_hub writes it
        for file in sorted(p for p in source.rglob("*") if p.is_file()):
            relative = file.relative_to(source)
            blob = repo / "blobs" / etag(file)
            blob.parent.mkdir(parents=True, exist_ok=True)
            if not blob.exists():
                shutil.copyfile(file, blob)
            link = repo / "snapshots" / commit / relative
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(os.path.relpath(blob, link.parent))
    return repo


@pytest.fixture(scope="module")
def hub_cache(tmp_path_factory) -> Path:
    """A cache holding MiniLM at `main` and, as a second ref `tiny-gelu`, the tiny-gelu checkpoint."""
    cache = tmp_path_factory.mktemp("hub-cache")
    make_cached_repo(cache, MINILM_ID, {"main": (MAIN_COMMIT, minilm_dir()),
                                        "tiny-gelu": (TINY_COMMIT, WEIGHTS / "tiny-gelu")})  # fmt: skip
    return cache


@pytest.fixture
def no_network(monkeypatch):
    """Fail the test if anything asks the hub: listing a repository or downloading a file."""

    def refuse(*args, **kwargs):
        raise AssertionError(f"the hub was contacted: {args} {kwargs}")

    monkeypatch.setattr(huggingface_hub.HfApi, "list_repo_files", refuse)
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", refuse)


@pytest.fixture
def offline(monkeypatch, hub_cache):
    """HF_HUB_OFFLINE=1 and the default cache pointed at `hub_cache`, as a user's environment would set them."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)  # huggingface_hub read the variable at import
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(hub_cache))


@pytest.fixture
def online(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)


def test_cache_built_here_is_one_huggingface_hub_reads_as_its_own(hub_cache):
    info = huggingface_hub.scan_cache_dir(hub_cache)
    assert info.warnings == []
    (repo,) = info.repos
    assert repo.repo_id == MINILM_ID
    refs = {revision.commit_hash: set(revision.refs) for revision in repo.revisions}
    assert refs == {MAIN_COMMIT: {"main"}, TINY_COMMIT: {"tiny-gelu"}}


def test_hub_id_loads_from_the_cache_with_HF_HUB_OFFLINE(offline, no_network):
    model = minibert.BertModel.from_pretrained(MINILM_ID)
    tokenizer = minibert.Tokenizer.from_pretrained(MINILM_ID)
    local = minibert.BertModel.from_pretrained(minilm_dir())
    inputs = minibert.Tokenizer.from_pretrained(minilm_dir())(["Loaded by its hub id.", "Offline."])
    assert {k: v.tolist() for k, v in tokenizer(["Loaded by its hub id.", "Offline."]).items()} == {
        k: v.tolist() for k, v in inputs.items()
    }
    np.testing.assert_array_equal(model(**inputs).pooler_output, local(**inputs).pooler_output)


def test_hub_id_loads_with_cache_dir_and_local_files_only(online, hub_cache, no_network):
    model = minibert.BertModel.from_pretrained(MINILM_ID, cache_dir=hub_cache, local_files_only=True)
    assert model.config.hidden_size == 384 and model.config.num_hidden_layers == 6
    tokenizer = minibert.Tokenizer.from_pretrained(MINILM_ID, cache_dir=hub_cache, local_files_only=True)
    assert tokenizer.convert_ids_to_tokens(tokenizer("hub")["input_ids"]) == ["[CLS]", "hub", "[SEP]"]


@pytest.mark.parametrize("revision", ["tiny-gelu", TINY_COMMIT])
def test_revision_selects_that_snapshot_by_ref_or_commit(revision, hub_cache, offline, no_network):
    model = minibert.BertModel.from_pretrained(MINILM_ID, revision=revision, dtype=np.float64)
    local = minibert.BertModel.from_pretrained(WEIGHTS / "tiny-gelu", dtype=np.float64)
    assert model.config.hidden_size == 32
    ids = [[1, 5, 7, 2]]
    np.testing.assert_array_equal(model(ids).last_hidden_state, local(ids).last_hidden_state)


def test_missing_model_offline_says_where_it_looked_and_what_to_do(hub_cache, offline, no_network):
    expected = f"not in the local cache at {hub_cache}/models--org--absent .*connect to the hub once.*local directory"
    with pytest.raises(CheckpointError, match=expected):
        minibert.BertModel.from_pretrained("org/absent")
    with pytest.raises(CheckpointError, match="revision 'v9'.*no config.json for revision 'v9'"):
        minibert.BertModel.from_pretrained(MINILM_ID, revision="v9")
    with pytest.raises(CheckpointError, match="not in the local cache"):
        minibert.Tokenizer.from_pretrained("org/absent")


def test_local_directory_still_wins_and_rejects_a_revision():
    assert minibert.BertModel.from_pretrained(str(WEIGHTS / "tiny-gelu")).config.hidden_size == 32
    with pytest.raises(InputError, match="revision='main' applies to hub ids"):
        minibert.BertModel.from_pretrained(WEIGHTS / "tiny-gelu", revision="main")
    with pytest.raises(CheckpointError, match="no such directory"):
        minibert.BertModel.from_pretrained(WEIGHTS / "not-there")  # a Path is never taken for a hub id
    with pytest.raises(CheckpointError, match="no such directory"):
        minibert.BertModel.from_pretrained("./not/a/hub/id")


# The online path, with huggingface_hub's two network calls replaced by fakes that serve from a prepared cache:
# what matters here is which files minibert asks for.

BERT_BASE_FILES = [".gitattributes", "LICENSE", "README.md", "config.json", "coreml/model.mlmodel",
                   "flax_model.msgpack", "model.onnx", "model.safetensors", "pytorch_model.bin", "rust_model.ot",
                   "tf_model.h5", "tokenizer.json", "tokenizer_config.json", "vocab.txt"]  # fmt: skip


@pytest.fixture
def fake_hub(monkeypatch, online, hub_cache):
    """Replace the hub by `listing` (repo files) and a download that returns the cached file; records requests."""
    requests = []
    listing = {}

    def list_repo_files(self, repo_id, revision=None, **kwargs):
        return listing[repo_id]

    def hf_hub_download(repo_id, filename, revision=None, cache_dir=None, **kwargs):
        requests.append(filename)
        found = huggingface_hub.try_to_load_from_cache(repo_id, filename, cache_dir=cache_dir, revision=revision)
        assert isinstance(found, str), f"{filename} is not in the prepared cache"
        return found

    monkeypatch.setattr(huggingface_hub.HfApi, "list_repo_files", list_repo_files)
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", hf_hub_download)
    return listing, requests


def test_online_model_downloads_config_and_the_best_weights_only(fake_hub, hub_cache):
    listing, requests = fake_hub
    listing[MINILM_ID] = BERT_BASE_FILES
    model = minibert.BertModel.from_pretrained(MINILM_ID, cache_dir=hub_cache)
    assert requests == ["config.json", "model.safetensors"]
    assert model.config.hidden_size == 384
    requests.clear()
    minibert.Tokenizer.from_pretrained(MINILM_ID, cache_dir=hub_cache)
    assert requests == ["tokenizer.json", "tokenizer_config.json", "vocab.txt"]


def test_online_sharded_checkpoint_downloads_the_index_then_each_shard(fake_hub, tmp_path):
    from test_checkpoint_layouts import shard_tiny_gelu

    source = tmp_path / "sharded"
    source.mkdir()
    shard_tiny_gelu(source)
    cache = tmp_path / "cache"
    make_cached_repo(cache, "org/sharded", {"main": (TINY_COMMIT, source)})
    listing, requests = fake_hub
    listing["org/sharded"] = sorted(p.name for p in source.iterdir()) + ["pytorch_model.bin"]
    model = minibert.BertModel.from_pretrained("org/sharded", cache_dir=cache)
    assert requests == ["config.json", "model.safetensors.index.json"] + [
        f"model-0000{i}-of-00003.safetensors" for i in (1, 2, 3)
    ]
    local = minibert.BertModel.from_pretrained(WEIGHTS / "tiny-gelu")
    np.testing.assert_array_equal(model([[3, 4]]).last_hidden_state, local([[3, 4]]).last_hidden_state)


def test_online_repository_without_readable_weights_lists_what_it_has(fake_hub, hub_cache):
    listing, requests = fake_hub
    listing[MINILM_ID] = ["config.json", "tf_model.h5", "vocab.txt"]
    with pytest.raises(CheckpointError, match=r"none of the weight files minibert reads .*'tf_model\.h5'"):
        minibert.BertModel.from_pretrained(MINILM_ID, cache_dir=hub_cache)
    assert requests == []


def test_unreachable_hub_falls_back_to_the_cache_with_a_warning(monkeypatch, online, hub_cache, caplog):
    def unreachable(*args, **kwargs):
        raise ConnectionError("Name or service not known")

    monkeypatch.setattr(huggingface_hub.HfApi, "list_repo_files", unreachable)
    with caplog.at_level(logging.WARNING, logger="minibert"):
        model = minibert.BertModel.from_pretrained(MINILM_ID, cache_dir=hub_cache)
    assert model.config.hidden_size == 384
    assert "cannot reach the hub (Name or service not known); using the local cache" in caplog.text
    with pytest.raises(CheckpointError, match="the hub is unreachable: Name or service not known; connect to it"):
        minibert.BertModel.from_pretrained("org/absent", cache_dir=hub_cache)


def test_HF_HUB_OFFLINE_set_after_huggingface_hub_was_imported_is_honoured(monkeypatch, online, hub_cache, no_network):
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(hub_cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # constants.HF_HUB_OFFLINE stays False: read at import
    assert minibert.BertModel.from_pretrained(MINILM_ID).config.num_hidden_layers == 6
