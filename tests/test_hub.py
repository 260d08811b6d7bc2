"""Hub ids through huggingface_hub's cache, tested offline: this machine cannot reach the hub.

`make_cached_repo` lays a model out exactly as huggingface_hub's `hf_hub_download` does (read from its source,
file_download.py: `models--{org}--{name}/refs/{revision}` holds the commit hash, `snapshots/{commit}/{file}` is a
relative symlink to `blobs/{etag}`, the etag being the file's SHA-256 for LFS files and its git blob SHA-1 for
the others), and the tests check that huggingface_hub's own `scan_cache_dir` reads it back without a warning.
The online path runs huggingface_hub's real download code against tests/support/fake_hub.py, a local HTTP stand-in
for the hub, and checks which files were fetched.
"""

import hashlib
import json
import logging
import os
import shutil
from pathlib import Path

import huggingface_hub
import numpy as np
import pytest
from huggingface_hub import constants
from support.helpers import MINILM_SHA256, WEIGHTS, minilm_dir

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
    make_cached_repo(
        cache, MINILM_ID, {"main": (MAIN_COMMIT, minilm_dir()), "tiny-gelu": (TINY_COMMIT, WEIGHTS / "tiny-gelu")}
    )
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


# The online path: huggingface_hub's real hf_hub_download and list_repo_files, talking to tests/support/fake_hub.py.

COMMIT_1 = hashlib.sha1(b"commit 1").hexdigest()
COMMIT_2 = hashlib.sha1(b"commit 2").hexdigest()


@pytest.fixture
def serve(monkeypatch, online):
    """serve({(repo_id, ref): (commit, directory)}) -> a FakeHub that huggingface_hub now talks to."""
    from support.fake_hub import FakeHub

    hubs = []

    def start(repos):
        hub = FakeHub(repos)
        hubs.append(hub)
        # What HF_ENDPOINT sets when huggingface_hub is imported (constants.py): the API root and the file URL.
        monkeypatch.setattr(constants, "ENDPOINT", hub.url)
        monkeypatch.setattr(
            constants, "HUGGINGFACE_CO_URL_TEMPLATE", hub.url + "/{repo_id}/resolve/{revision}/{filename}"
        )
        return hub

    yield start
    for hub in hubs:
        hub.close()


def repo_like_bert_base_uncased(directory: Path) -> Path:
    """tiny-gelu's config and weights, MiniLM's tokenizer files, and the other formats a hub repo holds."""
    directory.mkdir()
    for name in ("config.json", "model.safetensors"):
        shutil.copy(WEIGHTS / "tiny-gelu" / name, directory)
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        shutil.copy(minilm_dir() / name, directory)
    for name in ("pytorch_model.bin", "tf_model.h5", "flax_model.msgpack", "rust_model.ot", "model.onnx", "README.md"):
        (directory / name).write_bytes(b"never downloaded")
    return directory


def test_hub_id_downloads_only_config_best_weights_and_tokenizer_files_then_works_offline(serve, tmp_path, monkeypatch):
    hub = serve({("org/bert-like", "main"): (COMMIT_1, repo_like_bert_base_uncased(tmp_path / "repo"))})
    cache = tmp_path / "cache"
    model = minibert.BertModel.from_pretrained("org/bert-like", cache_dir=cache)
    assert hub.downloads == ["config.json", "model.safetensors"]
    tokenizer = minibert.Tokenizer.from_pretrained("org/bert-like", cache_dir=cache)
    assert hub.downloads[2:] == ["tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"]
    # huggingface_hub wrote its own cache: it reads it back cleanly, and it serves the model with the hub gone.
    assert huggingface_hub.scan_cache_dir(cache).warnings == []
    hub.close()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    again = minibert.BertModel.from_pretrained("org/bert-like", cache_dir=cache)
    ids = [[1, 4, 9, 2]]
    np.testing.assert_array_equal(again(ids).last_hidden_state, model(ids).last_hidden_state)
    assert minibert.Tokenizer.from_pretrained("org/bert-like", cache_dir=cache)("hub")["input_ids"].tolist() == (
        tokenizer("hub")["input_ids"].tolist()
    )


def test_hub_revision_downloads_that_revision(serve, tmp_path):
    hub = serve(
        {("org/m", "main"): (COMMIT_1, WEIGHTS / "tiny-gelu"), ("org/m", "v2"): (COMMIT_2, WEIGHTS / "tiny-silu")}
    )
    assert minibert.BertModel.from_pretrained("org/m", revision="v2", cache_dir=tmp_path).config.hidden_size == 12
    assert minibert.BertModel.from_pretrained("org/m", revision=COMMIT_1, cache_dir=tmp_path).config.hidden_size == 32
    assert (tmp_path / "models--org--m" / "refs" / "v2").read_text() == COMMIT_2
    assert hub.downloads == ["config.json", "model.safetensors"] * 2


def test_hub_sharded_checkpoint_downloads_the_index_then_each_shard(serve, tmp_path):
    from test_checkpoint_layouts import shard_tiny_gelu

    source = tmp_path / "repo"
    source.mkdir()
    shard_tiny_gelu(source)
    (source / "pytorch_model.bin").write_bytes(b"never downloaded")
    hub = serve({("org/sharded", "main"): (COMMIT_1, source)})
    model = minibert.BertModel.from_pretrained("org/sharded", cache_dir=tmp_path / "cache")
    shards = [f"model-0000{i}-of-00003.safetensors" for i in (1, 2, 3)]
    assert hub.downloads == ["config.json", "model.safetensors.index.json", *shards]
    local = minibert.BertModel.from_pretrained(WEIGHTS / "tiny-gelu")
    np.testing.assert_array_equal(model([[3, 4]]).last_hidden_state, local([[3, 4]]).last_hidden_state)


def test_hub_google_tf_release_downloads_its_config_index_and_data(serve, tmp_path):
    source = tmp_path / "repo"
    source.mkdir()
    for name in ("bert_config.json", "bert_model.ckpt.index", "bert_model.ckpt.data-00000-of-00001"):
        shutil.copy(WEIGHTS / "tf_tiny" / name, source)
    hub = serve({("google/tiny-tf", "main"): (COMMIT_1, source)})
    model = minibert.BertModel.from_pretrained("google/tiny-tf", cache_dir=tmp_path / "cache", dtype=np.float64)
    assert hub.downloads == ["bert_config.json", "bert_model.ckpt.index", "bert_model.ckpt.data-00000-of-00001"]
    local = minibert.BertModel.from_pretrained(WEIGHTS / "tf_tiny", dtype=np.float64)
    np.testing.assert_array_equal(model([[3, 4]]).pooler_output, local([[3, 4]]).pooler_output)


def test_hub_errors_name_the_repository_revision_or_what_is_missing(serve, tmp_path):
    source = tmp_path / "repo"
    source.mkdir()
    shutil.copy(WEIGHTS / "tiny-gelu" / "config.json", source)
    (source / "tf_model.h5").write_bytes(b"Keras weights")
    hub = serve({("org/m", "main"): (COMMIT_1, source)})
    with pytest.raises(CheckpointError, match="'org/absent': no such repository on the hub"):
        minibert.BertModel.from_pretrained("org/absent", cache_dir=tmp_path)
    with pytest.raises(CheckpointError, match="'org/m': the repository has no revision 'v9'"):
        minibert.BertModel.from_pretrained("org/m", revision="v9", cache_dir=tmp_path)
    with pytest.raises(CheckpointError, match=r"none of the weight files minibert reads .*it has \['config.json', 'tf"):
        minibert.BertModel.from_pretrained("org/m", cache_dir=tmp_path)
    with pytest.raises(CheckpointError, match="the repository has no tokenizer.json or vocab.txt"):
        minibert.Tokenizer.from_pretrained("org/m", cache_dir=tmp_path)
    assert hub.downloads == []


def test_unreachable_hub_falls_back_to_the_cache_with_a_warning(monkeypatch, online, hub_cache, caplog):
    def unreachable(*args, **kwargs):
        raise ConnectionError("Name or service not known")

    monkeypatch.setattr(huggingface_hub.HfApi, "list_repo_files", unreachable)
    monkeypatch.setattr(huggingface_hub.utils, "http_backoff", unreachable)  # hub._reach_hub_once's one request
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


# SentenceEncoder by hub id: modules.json decides which folders' files are fetched.


def test_sentence_encoder_by_hub_id_downloads_modules_json_then_each_modules_files_then_works_offline(
    serve, tmp_path, monkeypatch
):
    from test_sentence import TINY_TEXTS, tiny_sentence_repo

    source = tiny_sentence_repo(tmp_path / "repo", transformer="0_BERT")
    for name in (
        "0_BERT/pytorch_model.bin",
        "0_BERT/onnx/model.onnx",
        "README.md",
    ):
        (source / name).parent.mkdir(exist_ok=True)
        (source / name).write_bytes(b"never downloaded")
    (source / "config_sentence_transformers.json").write_text(json.dumps({"prompts": {"query": "tok1 "}}))
    hub = serve({("org/tiny-st", "main"): (COMMIT_1, source)})
    cache = tmp_path / "cache"
    encoder = minibert.SentenceEncoder.from_pretrained("org/tiny-st", cache_dir=cache)
    assert encoder.prompts["query"] == "tok1 "
    assert hub.downloads == [
        "modules.json",
        "config_sentence_transformers.json",
        "0_BERT/config.json",
        "0_BERT/model.safetensors",
        "0_BERT/vocab.txt",
        "0_BERT/sentence_bert_config.json",
        "1_Pooling/config.json",
    ]
    local = minibert.SentenceEncoder.from_pretrained(source)
    np.testing.assert_array_equal(encoder.encode(TINY_TEXTS), local.encode(TINY_TEXTS))
    assert huggingface_hub.scan_cache_dir(cache).warnings == []
    hub.close()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    again = minibert.SentenceEncoder.from_pretrained("org/tiny-st", cache_dir=cache)
    np.testing.assert_array_equal(again.encode(TINY_TEXTS), local.encode(TINY_TEXTS))


def test_sentence_encoder_by_hub_id_fetches_the_shards_of_a_sharded_transformer_module(serve, tmp_path):
    from test_sentence import TINY_TEXTS, tiny_sentence_repo

    source = tiny_sentence_repo(tmp_path / "repo", transformer="0_BERT", sharded=True)
    hub = serve({("org/tiny-st", "main"): (COMMIT_1, source)})
    encoder = minibert.SentenceEncoder.from_pretrained("org/tiny-st", cache_dir=tmp_path / "cache")
    shards = [f"0_BERT/model-0000{i}-of-00003.safetensors" for i in (1, 2, 3)]
    assert hub.downloads[:3] == ["modules.json", "0_BERT/config.json", "0_BERT/model.safetensors.index.json"]
    assert hub.downloads[3:6] == shards
    local = minibert.SentenceEncoder.from_pretrained(source)
    np.testing.assert_array_equal(encoder.encode(TINY_TEXTS), local.encode(TINY_TEXTS))


def test_sentence_encoder_by_hub_id_refuses_a_repository_without_modules_json(serve, tmp_path):
    hub = serve({("org/plain-bert", "main"): (COMMIT_1, repo_like_bert_base_uncased(tmp_path / "repo"))})
    with pytest.raises(
        CheckpointError, match="'org/plain-bert'.*no modules.json, so it is not a sentence-transformers"
    ):
        minibert.SentenceEncoder.from_pretrained("org/plain-bert", cache_dir=tmp_path / "cache")
    assert hub.downloads == []


def test_sentence_encoder_by_hub_id_loads_minilm_from_the_cache_offline(offline, no_network):
    encoder = minibert.SentenceEncoder.from_pretrained(MINILM_ID)
    local = minibert.SentenceEncoder.from_pretrained(minilm_dir())
    texts = ["Loaded by its hub id.", "Offline, from huggingface_hub's cache."]
    np.testing.assert_array_equal(encoder.encode(texts), local.encode(texts))
    assert (encoder.dim, encoder.max_seq_length, encoder.normalize) == (384, 256, True)


def test_sentence_encoder_by_hub_id_with_cache_dir_and_local_files_only(online, tmp_path, no_network):
    from test_sentence import TINY_TEXTS, tiny_sentence_repo

    source = tiny_sentence_repo(tmp_path / "repo", transformer="")
    make_cached_repo(tmp_path / "cache", "org/tiny-st", {"main": (COMMIT_1, source)})
    encoder = minibert.SentenceEncoder.from_pretrained(
        "org/tiny-st", cache_dir=tmp_path / "cache", local_files_only=True
    )
    local = minibert.SentenceEncoder.from_pretrained(source)
    np.testing.assert_array_equal(encoder.encode(TINY_TEXTS), local.encode(TINY_TEXTS))
    with pytest.raises(CheckpointError, match="'org/absent'.*not in the local cache.*no modules.json for revision"):
        minibert.SentenceEncoder.from_pretrained("org/absent", cache_dir=tmp_path / "cache", local_files_only=True)


# A name that is no directory and could be a mistyped one fails at once when the hub cannot be reached.


class SilentEndpoint:
    """A loopback port that accepts each connection and closes it without an answer, counting the attempts: to
    huggingface_hub, a network failure it would retry (RemoteProtocolError), with no real network involved."""

    def __init__(self):
        import socket
        import threading

        self.attempts = 0
        self.server = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.server.getsockname()[1]}"
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            try:
                connection, _ = self.server.accept()
            except OSError:  # closed
                return
            self.attempts += 1
            connection.close()


@pytest.fixture
def silent_hub(monkeypatch, online):
    endpoint = SilentEndpoint()
    monkeypatch.setattr(constants, "ENDPOINT", endpoint.url)
    monkeypatch.setattr(
        constants, "HUGGINGFACE_CO_URL_TEMPLATE", endpoint.url + "/{repo_id}/resolve/{revision}/{filename}"
    )
    yield endpoint
    endpoint.server.close()


def test_mistyped_local_name_with_the_hub_unreachable_fails_after_one_attempt_naming_both_readings(
    silent_hub, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    both = r"no folder 'my-model' here \(.*\), and the hub id 'my-model' could not be fetched: .*the hub is unreachable"
    with pytest.raises(CheckpointError, match=both):
        minibert.BertModel.from_pretrained("my-model", cache_dir=tmp_path / "cache")
    assert silent_hub.attempts == 1  # huggingface_hub's listing would have retried five times, over some 24 s
    (tmp_path / "weights").mkdir()  # a folder of the name exists here, so it reads as a path too
    with pytest.raises(CheckpointError, match="no folder 'weights/tiny' here .*hub id 'weights/tiny' could not be"):
        minibert.Tokenizer.from_pretrained("weights/tiny", cache_dir=tmp_path / "cache")
    assert silent_hub.attempts == 2


def test_mistyped_local_name_offline_names_both_readings_without_any_attempt(silent_hub, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(CheckpointError, match="no folder 'my-model' here .*hub id 'my-model' could not be fetched"):
        minibert.SentenceEncoder.from_pretrained("my-model", cache_dir=tmp_path)
    assert silent_hub.attempts == 0


def test_cli_model_name_that_is_neither_folder_nor_reachable_hub_id_says_both_in_one_line(
    silent_hub, tmp_path, monkeypatch, capsys
):
    from minibert.cli import main

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "cache"))
    assert main(["run", "--model", "my-model", "some text"]) == 2  # as every MinibertError
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("minibert run: error: no folder 'my-model' here")
    assert "and the hub id 'my-model' could not be fetched" in line
    assert silent_hub.attempts == 1


@pytest.mark.parametrize("name", ["mymodels/minilm", "org/name-that-is-no-folder"])
def test_a_name_with_a_slash_and_no_such_folder_fails_after_one_attempt_and_no_hub_warnings(
    name, silent_hub, tmp_path, monkeypatch, capsys, caplog
):
    """`--model mymodels/minilm` (a mistyped path that reads as a hub id) waited 23.5 s while huggingface_hub retried
    its listing six times, with a warning on stderr each time (issue 25); one attempt, then the one-line error."""
    import time

    from minibert.cli import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "cache"))
    (tmp_path / "in.txt").write_text("a text\n")
    started = time.perf_counter()
    assert main(["embed", "in.txt", "--output", "out.npy", "--model", name]) == 2
    assert time.perf_counter() - started < FAILS_AT_ONCE_SECONDS
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"minibert embed: error: no folder '{name}' here") and "the hub is unreachable" in line
    assert silent_hub.attempts == 1
    assert not [r for r in caplog.records if r.name.startswith("huggingface_hub")]


# One refused connection on loopback takes milliseconds; huggingface_hub's retries took 23.5 s. Generous for a busy
# shared machine, and far below the retries.
FAILS_AT_ONCE_SECONDS = 5.0


# Resolving at the door: each public from_pretrained turns its path or hub id into a directory once.


@pytest.fixture
def count_resolutions(monkeypatch):
    """Wrap hub.resolve_model_dir wherever it was imported; `calls` lists the (path, need) of each resolution."""
    import sys

    from minibert import hub

    original, calls = hub.resolve_model_dir, []

    def counting(path_or_id, need=hub.Need.MODEL, **kwargs):
        calls.append((str(path_or_id), need))
        return original(path_or_id, need, **kwargs)

    for module in list(sys.modules.values()):
        if getattr(module, "__name__", "").startswith("minibert") and hasattr(module, "resolve_model_dir"):
            monkeypatch.setattr(module, "resolve_model_dir", counting)
    return calls


def test_each_from_pretrained_resolves_its_path_or_hub_id_once(count_resolutions, offline, no_network):
    from minibert import hub

    minibert.BertModel.from_pretrained(MINILM_ID)
    minibert.Tokenizer.from_pretrained(MINILM_ID)
    minibert.SentenceEncoder.from_pretrained(MINILM_ID)
    minibert.BertForMaskedLM.from_pretrained(WEIGHTS / "tiny-mlm")
    minibert.BertForSequenceClassification.from_pretrained(WEIGHTS / "tiny-classifier")
    assert count_resolutions == [
        (MINILM_ID, hub.Need.MODEL),
        (MINILM_ID, hub.Need.TOKENIZER),
        (MINILM_ID, hub.Need.SENTENCE_MODEL),
        (str(WEIGHTS / "tiny-mlm"), hub.Need.MODEL),
        (str(WEIGHTS / "tiny-classifier"), hub.Need.MODEL),
    ]


def test_hub_saved_model_downloads_the_module_variables_and_assets_with_no_config(serve, tmp_path):
    """A TF Hub module in a repository (no config.json): saved_model.pb, variables/ and assets/ are what is read."""
    source = WEIGHTS / "tf_hub" / "tf1_uncased"
    hub = serve({("google/tiny-hub", "main"): (COMMIT_1, source)})
    model = minibert.BertModel.from_pretrained("google/tiny-hub", cache_dir=tmp_path / "cache")
    files = ["assets/vocab.txt", "variables/variables.data-00000-of-00001", "variables/variables.index"]
    assert hub.downloads == ["saved_model.pb", *files]
    tokenizer = minibert.Tokenizer.from_pretrained("google/tiny-hub", cache_dir=tmp_path / "cache")
    local = minibert.BertModel.from_pretrained(source)
    ids = tokenizer("Why is the pooled output different?")["input_ids"]
    np.testing.assert_array_equal(model(ids).pooler_output, local(ids).pooler_output)
