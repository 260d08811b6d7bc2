"""The corpus embedding job in one process: rows in input order, bad lines as NaN rows, resume, refusals, CLI."""

import io
import json
import time

import numpy as np
import pytest
from support.embed_corpus import mixed_lines, write_lines
from support.helpers import WEIGHTS

from minibert import InputError, SentenceEncoder, embed_file, read_embeddings
from minibert.cli import main
from minibert.embed import job, read_manifest

# The job batches and pads differently from one SentenceEncoder.encode call over all texts (per partition, shortest
# first), so float32 sums may differ by an ulp or so; 1e-6 is the bound the job promises.
EMBED_TOL = 1e-6
PARTITION_SIZE = 1024  # bytes: the 120-line corpus makes ~8 partitions, so every test crosses partition boundaries
N_LINES = 120


class CountingEncoder:
    """A SentenceEncoder that counts the texts it is asked to embed, to prove a resumed run recomputes nothing."""

    def __init__(self, encoder):
        self.encoder = encoder
        self.texts = 0
        self.dim = encoder.dim

    def embed_batch(self, texts):
        self.texts += len(texts)
        return self.encoder.embed_batch(texts)

    def encode(self, texts, **options):
        self.texts += len(texts)
        return self.encoder.encode(texts, **options)


class Interrupted(Exception):
    pass


def interrupt_after(k):
    done = []

    def hook(summary):
        done.append(summary["index"])
        if len(done) == k:
            raise Interrupted(f"stopped after partitions {done}")

    return hook


@pytest.fixture(scope="module")
def encoder(minilm_dir):
    return SentenceEncoder.from_pretrained(minilm_dir)


@pytest.fixture(scope="module")
def corpus(minilm_dir, tmp_path_factory):
    lines = mixed_lines(minilm_dir, N_LINES, seed=5)
    return lines, write_lines(tmp_path_factory.mktemp("corpus") / "corpus.txt", lines)


@pytest.fixture(scope="module")
def clean_run(corpus, minilm_dir, encoder, tmp_path_factory):
    """One uninterrupted run over the corpus, the reference the other tests compare with."""
    out = tmp_path_factory.mktemp("clean") / "out"
    report = embed_file(corpus[1], out, minilm_dir, encoder=encoder, partition_size=PARTITION_SIZE, progress=False)
    return out, report


def test_job_rows_equal_sentence_encoder_rows_in_input_order(corpus, encoder, clean_run):
    lines, _ = corpus
    out, report = clean_run
    embeddings = read_embeddings(out)
    expected = encoder.encode(lines)
    assert embeddings.dtype == np.float32 and embeddings.shape == expected.shape == (N_LINES, 384)
    assert float(np.abs(embeddings - expected).max()) <= EMBED_TOL
    manifest = read_manifest(out)
    assert len(manifest["partitions"]) >= 4, "the corpus should span several partitions"
    assert manifest["complete"] and manifest["rows"] == N_LINES and manifest["bad_lines"] == []
    assert manifest["model"]["pooling"]["pooling_mode_mean_tokens"] and manifest["model"]["dtype"] == "float32"
    assert report.texts_encoded == N_LINES and report.bad_lines == []


def test_npy_output_equals_directory_output_and_is_memory_mapped(corpus, minilm_dir, encoder, clean_run, tmp_path):
    out = tmp_path / "emb.npy"
    embed_file(corpus[1], out, minilm_dir, encoder=encoder, partition_size=PARTITION_SIZE, progress=False)
    embeddings = read_embeddings(out)
    assert isinstance(embeddings, np.memmap)
    np.testing.assert_array_equal(embeddings, read_embeddings(clean_run[0]))
    assert read_manifest(out)["complete"] and not (tmp_path / "emb.parts").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["emb.manifest.json", "emb.npy"]


def test_bad_lines_get_nan_rows_and_are_reported_with_their_line_numbers(minilm_dir, encoder, tmp_path):
    path = tmp_path / "in.txt"
    path.write_bytes(
        b"\xef\xbb\xbfa first line after a byte-order mark\n"  # 1
        b"\n"  # 2: empty
        b"   \t \n"  # 3: only spaces
        b"caf\xe9 in latin-1\n"  # 4: not UTF-8
        b"a windows line\r\n"  # 5
        b"the last line, without a newline"  # 6
    )
    log = io.StringIO()
    report = embed_file(path, tmp_path / "out", minilm_dir, encoder=encoder, partition_size=16, progress=False, log=log)
    expected_bad = [
        (2, "blank line"),
        (3, "blank line"),
        (4, "not valid UTF-8 (byte 0xe9 at byte 3 of the line)"),
    ]
    assert report.bad_lines == expected_bad
    assert read_manifest(tmp_path / "out")["bad_lines"] == [list(b) for b in expected_bad]
    assert "2 blank line(s) skipped, each kept as a row of NaN (line 2, 3)" in log.getvalue()
    assert "1 bad input line(s) of 6, embedded as rows of NaN" in log.getvalue()
    assert "line 4: not valid UTF-8 (byte 0xe9 at byte 3 of the line)" in log.getvalue()
    embeddings = read_embeddings(tmp_path / "out")
    assert embeddings.shape == (6, 384)
    assert np.isnan(embeddings[[1, 2, 3]]).all()
    good = ["a first line after a byte-order mark", "a windows line", "the last line, without a newline"]
    assert float(np.abs(embeddings[[0, 4, 5]] - encoder.encode(good)).max()) <= EMBED_TOL


def test_jsonl_embeds_the_field_and_reports_records_without_it(minilm_dir, encoder, tmp_path):
    records = [
        json.dumps({"id": 1, "body": "the first document"}),
        json.dumps({"id": 2, "text": "no body field"}),
        "{not json",
        json.dumps(["a", "list"]),
        json.dumps({"body": 42}),
        json.dumps({"body": "the second document", "extra": [1, 2]}),
    ]
    path = write_lines(tmp_path / "docs.jsonl", records)
    report = embed_file(
        path, tmp_path / "out", minilm_dir, encoder=encoder, field="body", progress=False, log=io.StringIO()
    )
    assert [line for line, _ in report.bad_lines] == [2, 3, 4, 5]
    assert "without a 'body' field" in report.bad_lines[0][1]
    assert "not valid JSON" in report.bad_lines[1][1]
    assert "not a JSON object with a 'body' field but an array" in report.bad_lines[2][1]
    assert report.bad_lines[3][1] == "field 'body' is a number, not a string"  # JSON's words, not Python's int
    embeddings = read_embeddings(tmp_path / "out")
    expected = encoder.encode(["the first document", "the second document"])
    assert float(np.abs(embeddings[[0, 5]] - expected).max()) <= EMBED_TOL
    assert np.isnan(embeddings[1:5]).all()


@pytest.mark.parametrize("name", ["out", "emb.npy"])
def test_interrupted_run_resumes_without_recomputing_and_equals_a_clean_run(
    corpus, minilm_dir, encoder, clean_run, tmp_path, name, monkeypatch
):
    monkeypatch.setattr(job, "GROUP_BYTES", 1)  # one partition per group: what is embedded is what is kept
    monkeypatch.setattr(job, "GROUP_LINES", 1)
    counting = CountingEncoder(encoder)
    out = tmp_path / name
    with pytest.raises(Interrupted):
        embed_file(
            corpus[1],
            out,
            minilm_dir,
            encoder=counting,
            partition_size=PARTITION_SIZE,
            progress=False,
            on_partition_done=interrupt_after(3),
        )
    manifest = json.loads(((tmp_path / "emb.parts" if name.endswith(".npy") else out) / "manifest.json").read_text())
    first_three = sum(p["lines"] for p in manifest["partitions"][:3])
    assert counting.texts == first_three
    with pytest.raises(InputError, match="has not finished"):
        read_embeddings(out)

    report = embed_file(corpus[1], out, minilm_dir, encoder=counting, partition_size=PARTITION_SIZE, progress=False)
    assert report.skipped == [0, 1, 2]
    assert report.computed == list(range(3, len(manifest["partitions"])))
    assert report.texts_encoded == N_LINES - first_three
    assert counting.texts == N_LINES, "every line encoded exactly once over the two runs"
    expected = read_embeddings(clean_run[0])
    assert float(np.abs(read_embeddings(out) - expected).max()) <= EMBED_TOL
    assert not list(tmp_path.rglob("*.tmp")), "no temporary files left behind"


def test_small_partitions_are_embedded_together_sorted_by_length_each_in_its_own_shard(
    corpus, minilm_dir, encoder, clean_run, tmp_path, monkeypatch
):
    """In this process, the first group (GROUP_LINES, here one partition) measures the rate, then up to
    GROUP_SECONDS (and GROUP_BYTES) of partitions go through one encode call, which sorts them by length across
    partitions; each partition still gets its own shard, and the rows are a clean run's."""
    monkeypatch.setattr(job, "GROUP_SECONDS", 1e9)  # groups by bytes only: this test is about grouping, not timing
    monkeypatch.setattr(job, "GROUP_LINES", 1)  # the first group: one partition
    counting = CountingEncoder(encoder)
    calls = []
    real_encode = counting.encode
    counting.encode = lambda texts, **options: calls.append(len(texts)) or real_encode(texts, **options)
    out = tmp_path / "out"
    report = embed_file(corpus[1], out, minilm_dir, encoder=counting, partition_size=PARTITION_SIZE, progress=False)
    partitions = read_manifest(out)["partitions"]
    # The first partition, then one group of all the rest (far below GROUP_BYTES).
    assert len(partitions) > 2 and calls == [partitions[0]["lines"], N_LINES - partitions[0]["lines"]]
    assert report.computed == list(range(len(partitions)))
    assert sorted(p.name for p in out.glob("part-*.npz")) == [f"part-{i:05d}.npz" for i in range(len(partitions))]
    assert float(np.abs(read_embeddings(out) - read_embeddings(clean_run[0])).max()) <= EMBED_TOL


def test_a_truncated_shard_is_recomputed_and_only_it(corpus, minilm_dir, encoder, clean_run, tmp_path):
    out = tmp_path / "out"
    embed_file(corpus[1], out, minilm_dir, encoder=encoder, partition_size=PARTITION_SIZE, progress=False)
    shard = out / "part-00002.npz"
    shard.write_bytes(shard.read_bytes()[:500])  # what a crash mid-write could leave without the atomic rename
    counting = CountingEncoder(encoder)
    report = embed_file(corpus[1], out, minilm_dir, encoder=counting, partition_size=PARTITION_SIZE, progress=False)
    assert report.computed == [2]
    assert counting.texts == read_manifest(out)["partitions"][2]["lines"]
    assert float(np.abs(read_embeddings(out) - read_embeddings(clean_run[0])).max()) <= EMBED_TOL


def test_rerun_refuses_to_mix_shards_of_another_dtype_or_input(corpus, minilm_dir, encoder, tmp_path):
    lines, _ = corpus
    path = write_lines(tmp_path / "in.txt", lines[:20])
    out = tmp_path / "out"
    embed_file(path, out, minilm_dir, encoder=encoder, partition_size=PARTITION_SIZE, progress=False)
    with pytest.raises(InputError, match="dtype 'float32', this run has 'float64'"):
        embed_file(path, out, minilm_dir, dtype="float64", progress=False)
    write_lines(path, lines[:21])
    with pytest.raises(InputError, match="input size in bytes"):
        embed_file(path, out, minilm_dir, encoder=encoder, progress=False)


def test_a_shard_from_another_run_is_refused_not_overwritten(corpus, minilm_dir, encoder, tmp_path):
    lines, _ = corpus
    a, b = write_lines(tmp_path / "a.txt", lines[:30]), write_lines(tmp_path / "b.txt", lines[30:60])
    embed_file(a, tmp_path / "out-a", minilm_dir, encoder=encoder, partition_size=PARTITION_SIZE, progress=False)
    with pytest.raises(Interrupted):
        embed_file(
            b,
            tmp_path / "out-b",
            minilm_dir,
            encoder=encoder,
            partition_size=PARTITION_SIZE,
            progress=False,
            on_partition_done=interrupt_after(1),
        )
    foreign = (tmp_path / "out-a" / "part-00001.npz").read_bytes()
    (tmp_path / "out-b" / "part-00001.npz").write_bytes(foreign)
    with pytest.raises(InputError, match="made by another run"):
        embed_file(b, tmp_path / "out-b", minilm_dir, encoder=encoder, partition_size=PARTITION_SIZE, progress=False)
    assert (tmp_path / "out-b" / "part-00001.npz").read_bytes() == foreign


def test_progress_bar_counts_lines(corpus, minilm_dir, encoder, tmp_path, capsys):
    pytest.importorskip("tqdm")
    lines, _ = corpus
    path = write_lines(tmp_path / "in.txt", lines[:40])
    embed_file(path, tmp_path / "out", minilm_dir, encoder=encoder, partition_size=PARTITION_SIZE, progress=True)
    assert "40/40" in capsys.readouterr().err


def test_cli_embed_writes_rows_and_reports_errors_in_one_line(corpus, minilm_dir, clean_run, tmp_path, capsys):
    lines, _ = corpus
    path = write_lines(tmp_path / "in.txt", lines[:12] + [""])
    assert main(["embed", str(path), "--output", str(tmp_path / "e.npy"), "--model", str(minilm_dir), "--quiet"]) == 0
    out, err = capsys.readouterr()
    assert "13 rows x 384" in out and "1 blank line(s) skipped, each kept as a row of NaN (line 13)" in err
    embeddings = read_embeddings(tmp_path / "e.npy")
    assert float(np.abs(embeddings[:12] - read_embeddings(clean_run[0])[:12]).max()) <= EMBED_TOL
    assert np.isnan(embeddings[12]).all()

    assert (
        main(["embed", str(tmp_path / "missing.txt"), "--output", str(tmp_path / "x"), "--model", str(minilm_dir)]) == 2
    )
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "missing.txt: cannot read the input file" in err
    assert (
        main(["embed", str(path), "--output", str(tmp_path / "y.npy"), "--model", str(minilm_dir), "--workers", "2"])
        == 2
    )
    assert "a single .npy output is for in-process runs" in capsys.readouterr().err


def test_input_given_as_a_url_is_read_through_fsspec(corpus, minilm_dir, encoder, clean_run, tmp_path):
    pytest.importorskip("fsspec")
    lines, _ = corpus
    path = write_lines(tmp_path / "in.txt", lines[:30])
    embed_file(
        path.as_uri(), tmp_path / "out", minilm_dir, encoder=encoder, partition_size=PARTITION_SIZE, progress=False
    )
    assert read_manifest(tmp_path / "out")["input"]["path"] == path.as_uri()
    expected = read_embeddings(clean_run[0])[:30]
    assert float(np.abs(read_embeddings(tmp_path / "out") - expected).max()) <= EMBED_TOL


# The model's identity, and runs that fail at their start. A tiny sentence-transformers model keeps these fast.

TINY_PHRASES = ["a cat sat", "on the mat", "tok3", "a dog ran far"]  # words of test_sentence.TINY_VOCAB
TINY_LINES = [" ".join([TINY_PHRASES[i % 4]] * (1 + i % 3)) for i in range(40)]


def interrupted_tiny_run(tmp_path, model):
    path = write_lines(tmp_path / "in.txt", TINY_LINES)
    out = tmp_path / "out"
    with pytest.raises(Interrupted):
        embed_file(path, out, model, partition_size=100, progress=False, on_partition_done=interrupt_after(1))
    return path, out


def test_changed_weights_of_a_sharded_checkpoint_in_a_module_folder_are_refused_on_resume(tmp_path):
    from safetensors.numpy import load_file, save_file
    from test_sentence import tiny_sentence_repo

    model = tiny_sentence_repo(tmp_path / "st", transformer="0_BERT", sharded=True)
    path, out = interrupted_tiny_run(tmp_path, model)
    files = read_manifest(out)["model"]["files"]
    assert files == [
        "0_BERT/config.json",
        "0_BERT/model.safetensors.index.json",
        *(f"0_BERT/model-0000{i}-of-00003.safetensors" for i in (1, 2, 3)),
    ]
    shard = model / "0_BERT" / "model-00003-of-00003.safetensors"
    tensors = load_file(shard)
    name = sorted(tensors)[0]
    tensors[name] = tensors[name] + np.float32(1e-3)  # a fine-tuned copy: same names, shapes and config
    save_file(tensors, shard)
    with pytest.raises(InputError, match=r"made with model weights \(SHA-256 of config.json and weights\) '"):
        embed_file(path, out, model, partition_size=100, progress=False)


def test_changed_max_seq_length_is_refused_on_resume(tmp_path):
    from test_sentence import tiny_sentence_repo

    model = tiny_sentence_repo(tmp_path / "st")
    path, out = interrupted_tiny_run(tmp_path, model)
    (model / "0_BERT" / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 8}))
    with pytest.raises(InputError, match="max_seq_length .* 16, this run has 8"):
        embed_file(path, out, model, partition_size=100, progress=False)


def test_a_run_with_a_model_that_cannot_load_creates_no_output_and_the_right_model_then_runs(tmp_path):
    from test_sentence import tiny_sentence_repo

    from minibert import CheckpointError

    path = write_lines(tmp_path / "in.txt", TINY_LINES)
    out = tmp_path / "out"
    with pytest.raises(CheckpointError, match="no modules.json, so this is not a sentence-transformers model"):
        embed_file(path, out, WEIGHTS / "tiny-mlm", progress=False)  # a plain BERT, no sentence-transformers model
    assert not out.exists()
    broken = tiny_sentence_repo(tmp_path / "broken")
    weights = broken / "0_BERT" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])  # passes the identity hash, fails when the weights are read
    with pytest.raises(CheckpointError, match="not a readable safetensors file"):
        embed_file(path, out, broken, progress=False)
    assert not out.exists()
    model = tiny_sentence_repo(tmp_path / "st")
    report = embed_file(path, out, model, partition_size=100, progress=False)
    assert report.rows == len(TINY_LINES) and report.skipped == []


def test_a_manifest_without_shards_is_replaced_but_one_with_shards_is_refused_if_damaged(tmp_path):
    from test_sentence import tiny_sentence_repo

    model = tiny_sentence_repo(tmp_path / "st")
    path = write_lines(tmp_path / "in.txt", TINY_LINES)
    out = tmp_path / "out"
    out.mkdir()
    (out / "manifest.json").write_text('{"format": "minibert-embe')  # a run killed while writing it, before atomicity
    log = io.StringIO()
    report = embed_file(path, out, model, partition_size=100, progress=False, log=log)
    assert "manifest.json: replaced, since no shard was written under it (" in log.getvalue()
    assert report.rows == len(TINY_LINES) and read_embeddings(out).shape == (len(TINY_LINES), 32)

    manifest = read_manifest(out)
    (out / "manifest.json").write_text(json.dumps({k: v for k, v in manifest.items() if k != "rows"}))
    with pytest.raises(InputError, match="manifest.json: a minibert embeddings manifest without a valid rows; it is"):
        read_embeddings(out)
    with pytest.raises(InputError, match="without a valid rows"):
        embed_file(path, out, model, partition_size=100, progress=False)
    (out / "manifest.json").write_text("{")
    with pytest.raises(InputError, match="manifest.json: cannot be read as JSON .*damaged. Delete the output"):
        read_embeddings(out)
    with pytest.raises(InputError, match="manifest.json: cannot be read as JSON"):
        embed_file(path, out, model, partition_size=100, progress=False)
    (out / "manifest.json").write_text("[1, 2]")
    with pytest.raises(InputError, match="manifest.json: not a minibert embeddings manifest"):
        read_embeddings(out)


def test_a_manifest_of_another_run_without_shards_is_replaced(tmp_path):
    from test_sentence import tiny_sentence_repo

    model = tiny_sentence_repo(tmp_path / "st")
    a = write_lines(tmp_path / "a.txt", TINY_LINES)
    b = write_lines(tmp_path / "b.txt", TINY_LINES[:7])
    out = tmp_path / "out"
    embed_file(a, out, model, partition_size=100, progress=False)
    for shard in out.glob("part-*.npz"):
        shard.unlink()
    log = io.StringIO()
    report = embed_file(b, out, model, partition_size=100, progress=False, log=log)
    assert "replaced, since no shard was written under it (" in log.getvalue() and "input path" in log.getvalue()
    assert report.rows == 7 and read_embeddings(out).shape == (7, 32)


# What a user of `minibert embed` sees: the tiny model keeps these fast.


@pytest.fixture
def tiny(tmp_path):
    from test_sentence import tiny_sentence_repo

    return tiny_sentence_repo(tmp_path / "st")


def cli_embed(path, out, model, *flags):
    return main(["embed", str(path), "--output", str(out), "--model", str(model), "--quiet", *flags])


def test_bad_lines_are_said_to_be_listed_in_the_manifest_file_not_in_the_npy(tiny, tmp_path, capsys):
    path = tmp_path / "in.txt"
    path.write_bytes("".join(line + "\n" for line in TINY_LINES[:5]).encode() + b"caf\xe9\n")  # line 6: latin-1
    assert cli_embed(path, tmp_path / "corpus.npy", tiny) == 0
    err = capsys.readouterr().err
    where = tmp_path / "corpus.manifest.json"
    assert f"1 bad input line(s) of 6, embedded as rows of NaN and listed in {where}:" in err
    assert (tmp_path / "corpus.manifest.json").is_file()
    assert cli_embed(path, tmp_path / "out", tiny) == 0
    assert f"listed in {tmp_path / 'out' / 'manifest.json'}:" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["out.csv", "emb.txt", "vectors.npz"])
def test_an_output_neither_npy_nor_directory_like_is_refused_before_any_work(tmp_path, capsys, name):
    path = write_lines(tmp_path / "in.txt", TINY_LINES)
    missing_model = tmp_path / "no-such-model"  # refused first: the output is checked before the model is looked at
    with pytest.raises(InputError, match=r"the output must be a \.npy file or a directory .* found '\."):
        embed_file(path, tmp_path / name, missing_model, progress=False)
    assert cli_embed(path, tmp_path / name, missing_model) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{tmp_path / name}: the output must be a .npy file or a directory" in err
    assert not (tmp_path / name).exists()


def test_a_directory_output_may_have_a_suffix_when_it_ends_in_a_slash_or_exists(tiny, tmp_path):
    path = write_lines(tmp_path / "in.txt", TINY_LINES[:6])
    assert embed_file(path, f"{tmp_path / 'emb.v2'}/", tiny, progress=False).rows == 6
    (tmp_path / "run.1").mkdir()
    assert embed_file(path, tmp_path / "run.1", tiny, progress=False).rows == 6
    assert read_embeddings(tmp_path / "emb.v2").shape == read_embeddings(tmp_path / "run.1").shape == (6, 32)


def test_ctrl_c_says_what_is_kept_where_and_the_command_that_resumes(tiny, tmp_path, monkeypatch, capsys):
    import shlex

    path = write_lines(tmp_path / "in.txt", TINY_LINES)
    out = tmp_path / "corpus.npy"
    monkeypatch.setattr(job, "GROUP_BYTES", 1)  # one partition per group, one encode call each
    monkeypatch.setattr(job, "GROUP_LINES", 1)
    real, calls = SentenceEncoder.encode, []

    def ctrl_c_in_the_fourth_partition(self, texts, **options):
        calls.append(len(texts))
        if len(calls) == 4:
            raise KeyboardInterrupt
        return real(self, texts, **options)

    monkeypatch.setattr(SentenceEncoder, "encode", ctrl_c_in_the_fourth_partition)
    assert cli_embed(path, out, tiny, "--partition-size", "100") == 130
    err = capsys.readouterr().err
    partitions = len(read_manifest(out)["partitions"])
    command = f"minibert embed {path} --output {out} --model {tiny} --partition-size 100 --quiet"
    assert err == (
        f"minibert embed: interrupted; 3 of {partitions} partitions are kept in {tmp_path / 'corpus.parts'}; "
        f"to resume, run the same command again: {command}\n"
    )
    monkeypatch.setattr(SentenceEncoder, "encode", real)
    assert main(shlex.split(command)[1:]) == 0
    assert f"{partitions - 3} partition(s) embedded, 3 already done" in capsys.readouterr().out
    assert read_embeddings(out).shape == (len(TINY_LINES), 32)


def test_a_finished_rerun_says_one_thing(tiny, tmp_path, capsys):
    path = write_lines(tmp_path / "in.txt", TINY_LINES)
    for out in (tmp_path / "corpus.npy", tmp_path / "out"):
        assert cli_embed(path, out, tiny) == 0
        capsys.readouterr()
        assert cli_embed(path, out, tiny) == 0
        said = capsys.readouterr()
        assert said.err == ""
        # The tiny model's max_seq_length is 16 tokens: 16 of its lines are longer.
        shape = (
            "40 rows x 32 (float32, input order), 0 bad line(s) and 0 blank line(s) as NaN rows, 16 text(s) cut to "
            "the model's length"
        )
        assert said.out == f"{out}: already complete, nothing embedded: {shape}\n"


def test_the_default_partitions_give_a_small_input_many_so_an_interrupted_run_keeps_most(tiny, tmp_path):
    lines = [TINY_LINES[i % len(TINY_LINES)] + f" {i}" for i in range(3000)]  # ~65 KB, a few seconds of MiniLM
    path = write_lines(tmp_path / "in.txt", lines)
    out = tmp_path / "out"
    with pytest.raises(Interrupted):
        embed_file(path, out, tiny, progress=False, on_partition_done=interrupt_after(12))
    manifest = read_manifest(out)
    assert len(manifest["partitions"]) == 16
    report = embed_file(path, out, tiny, progress=False)
    assert report.skipped == list(range(12)) and report.computed == [12, 13, 14, 15]


def test_a_run_planned_with_other_partitions_resumes_with_its_own(tiny, tmp_path):
    """A manifest keeps its partitions: one planned with an explicit size (or the 1 MiB default of before) resumes
    as it was planned under the automatic size, and an explicit other size is said to be overridden."""
    path = write_lines(tmp_path / "in.txt", TINY_LINES * 10)
    out = tmp_path / "out"
    with pytest.raises(Interrupted):
        embed_file(path, out, tiny, partition_size=1000, progress=False, on_partition_done=interrupt_after(2))
    planned = read_manifest(out)["partitions"]
    log = io.StringIO()
    report = embed_file(path, out, tiny, progress=False, log=log)
    assert report.skipped == [0, 1] and report.computed == list(range(2, len(planned)))
    assert read_manifest(out)["partitions"] == planned
    assert "resuming with the partitions" not in log.getvalue()
    assert read_embeddings(out).shape == (len(TINY_LINES) * 10, 32)

    with pytest.raises(Interrupted):
        embed_file(
            path, tmp_path / "b", tiny, partition_size=1000, progress=False, on_partition_done=interrupt_after(2)
        )
    log = io.StringIO()
    embed_file(path, tmp_path / "b", tiny, partition_size=300, progress=False, log=log)
    assert "resuming with the partitions of the first run (1000 bytes), not 300" in log.getvalue()


def test_embed_file_resolves_the_model_once_at_its_door(tiny, tmp_path, monkeypatch):
    import minibert.embed.job
    import minibert.pretrained
    import minibert.tokenizer
    from minibert import hub

    calls = []

    def counting(path_or_id, *args, **kwargs):
        calls.append(path_or_id)
        return hub.resolve_model_dir(path_or_id, *args, **kwargs)

    for module in (minibert.embed.job, minibert.pretrained, minibert.tokenizer):  # sentence.py's goes by pretrained
        monkeypatch.setattr(module, "resolve_model_dir", counting)
    monkeypatch.setattr(minibert.embed.job, "_ENCODERS", {})  # so that this run loads the model
    path = write_lines(tmp_path / "in.txt", TINY_LINES)
    embed_file(path, tmp_path / "out", tiny, partition_size=100, progress=False)
    assert calls == [tiny]


def test_cli_says_how_to_run_a_plain_bert_checkpoint_in_flags_not_python(tmp_path, capsys):
    path = write_lines(tmp_path / "in.txt", TINY_LINES[:3])
    assert cli_embed(path, tmp_path / "out", WEIGHTS / "tiny-mlm") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no modules.json, so this is not a sentence-transformers model" in err
    assert "minibert.BertModel" not in err
    assert "`minibert embed --model` needs one" in err and "`minibert run --input FILE --model DIR" in err
    # Mean pooling, as the README's "Which vector to use" argues, not pooler_output as a sentence embedding.
    assert "the usual stand-in is mean pooling, not pooler_output" in err and "--which pooler_output" not in err
    assert not (tmp_path / "out").exists()


def test_embed_help_describes_the_command_with_examples_and_every_default(capsys):
    assert main(["embed", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines; compare words
    assert "one float32 row per input line, in input order" in text and "examples:" in text
    assert "minibert embed corpus.txt --output corpus.npy --model DIR" in text
    assert "--batch-size N texts per forward pass" in text and "(default: 32)" in text
    for default in ("(default: text)", "(default: auto)", "(default: float32)"):
        assert default in text
    assert "auto: 1/16 of the input, within 4K-1M" in text


# What a new user tripped on (issue 25): inputs with no text, most lines bad, long lines, Ctrl-C on a small file.


def test_jsonl_whose_text_is_in_another_field_is_refused_before_anything_is_written_naming_its_fields(tiny, tmp_path):
    records = [json.dumps({"id": i, "body": f"document number {i}"}) for i in range(120)]
    path = write_lines(tmp_path / "docs.jsonl", records)
    out = tmp_path / "out"
    with pytest.raises(InputError) as refused:
        embed_file(path, out, tiny, progress=False)
    message = str(refused.value)
    assert message.startswith(f"{path}: no line has a text to embed: JSON object without a 'text' field (120 lines)")
    assert "Its objects have the fields 'id' (number), 'body' (string)" in message
    assert message.endswith("; name the one holding the text: field='body'")  # from Python
    assert refused.value.for_command_line().endswith("; name the one holding the text: --field body")
    assert not out.exists()
    assert embed_file(path, out, tiny, field="body", progress=False).rows == 120


def test_cli_refuses_a_binary_file_and_a_file_of_blank_lines_in_one_line_writing_nothing(tiny, tmp_path, capsys):
    binary = tmp_path / "weights.bin"
    binary.write_bytes(bytes(range(256)) * 40)
    blank = tmp_path / "blank.txt"
    blank.write_text("\n  \n\t\n")
    for path, said in ((binary, "a binary file (a NUL byte at byte 0), not text"), (blank, "every line is blank")):
        assert cli_embed(path, tmp_path / "out.npy", tiny) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith(f"minibert embed: error: {path}: ") and said in err
        assert list(tmp_path.glob("out*")) == []


def test_most_lines_bad_is_said_in_the_summary(tiny, tmp_path):
    lines = [json.dumps({"text": "a good line"})] + [json.dumps({"body": f"line {i}"}) for i in range(9)]
    log = io.StringIO()
    report = embed_file(write_lines(tmp_path / "in.jsonl", lines), tmp_path / "out", tiny, progress=False, log=log)
    assert len(report.bad_lines) == 9
    assert "9 bad input line(s) of 10 (most of the input: is it the file, --format and --field you meant?)" in (
        log.getvalue()
    )


def test_texts_longer_than_the_model_are_counted_said_and_recorded_in_the_manifest(minilm_dir, encoder, tmp_path):
    model = minilm_dir
    long_text = " ".join(["word"] * 700)
    lines = ["short", long_text, "also short", long_text + " and more"]
    tokens = [int(encoder.tokenizer([text], truncation=False)["attention_mask"].sum()) for text in lines]
    assert tokens[1] > encoder.max_seq_length and tokens[0] < encoder.max_seq_length  # 702 tokens; 256 kept
    log = io.StringIO()
    out = tmp_path / "e.npy"
    report = embed_file(write_lines(tmp_path / "in.txt", lines), out, model, encoder=encoder, progress=False, log=log)
    assert report.cut_lines == [(2, tokens[1]), (4, tokens[3])]
    assert read_manifest(out)["cut_lines"] == [[2, tokens[1]], [4, tokens[3]]]
    assert (
        f"2 text(s) cut to the model's {encoder.max_seq_length} tokens (max_seq_length), their ends not embedded "
        f"(line 2: {tokens[1]} tokens, line 4: {tokens[3]} tokens)" in log.getvalue()
    )
    # A rerun of the finished output, and one that resumes from shards, report the same lines.
    assert embed_file(tmp_path / "in.txt", out, model, encoder=encoder, progress=False).cut_lines == report.cut_lines


def test_groups_hold_about_group_seconds_of_work_at_the_measured_rate_and_at_least_group_lines(monkeypatch):
    tasks = [{"start": 1000 * i, "end": 1000 * (i + 1), "lines": 10} for i in range(40)]
    monkeypatch.setattr(job, "GROUP_SECONDS", 3.0)
    monkeypatch.setattr(job, "GROUP_BYTES", 10_000)
    monkeypatch.setattr(job, "GROUP_LINES", 20)
    rates = iter([None, 3.0 / 4000, 3.0 / 4000, 3.0 / 500, 3.0 / 10**9, 3.0 / 10**9, 3.0 / 10**9])  # s per byte
    sizes = [len(group) for group in job._groups(tasks, lambda: next(rates))]
    # GROUP_LINES to measure; 4 KB of work in 3 s (twice); slower: still GROUP_LINES; fast: up to GROUP_BYTES.
    assert sizes == [2, 4, 4, 2, 10, 10, 8]


def test_ctrl_c_in_a_small_file_loses_at_most_the_group_in_flight(tiny, tmp_path, monkeypatch, capsys):
    """A 2,000-line file (233 KB) interrupted at 41% kept 0 of its 16 partitions: in this process they were all one
    256 KiB group (issue 25). Groups are sized by time: with each text taking 2 ms, a group holds at most
    GROUP_SECONDS of work, and that is all an interrupt loses."""
    monkeypatch.setattr(job, "GROUP_SECONDS", 0.5)
    monkeypatch.setattr(job, "GROUP_LINES", 100)  # below a partition's ~190 lines: the time decides
    lines = [TINY_LINES[i % len(TINY_LINES)] + f" {i}" for i in range(3000)]  # ~65 KB: 16 partitions
    path = write_lines(tmp_path / "in.txt", lines)
    real, calls = SentenceEncoder.encode, []

    def slow_then_ctrl_c(self, texts, **options):
        calls.append(len(texts))
        if sum(calls) > 0.41 * len(lines):
            raise KeyboardInterrupt
        time.sleep(0.002 * len(texts))
        return real(self, texts, **options)

    monkeypatch.setattr(SentenceEncoder, "encode", slow_then_ctrl_c)
    assert cli_embed(path, tmp_path / "corpus.npy", tiny) == 130
    manifest = read_manifest(tmp_path / "corpus.npy")
    kept = sorted(p.name for p in (tmp_path / "corpus.parts").glob("part-*.npz"))
    done = sum(p["lines"] for p in manifest["partitions"][: len(kept)])
    assert len(manifest["partitions"]) == 16 and len(kept) >= 5  # 41% of 16, less what was in flight
    assert sum(calls[:-1]) == done and calls[-1] <= 0.5 / 0.002  # what was lost: one group, at most 0.5 s of work
    assert f"interrupted; {len(kept)} of 16 partitions are kept" in capsys.readouterr().err


def test_cli_refuses_an_in_memory_output_that_would_end_with_the_process(tiny, tmp_path, capsys):
    path = write_lines(tmp_path / "in.txt", TINY_LINES[:3])
    assert cli_embed(path, "memory://emb/", tiny) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("minibert embed: error: --output memory://emb/: an in-memory store")
    url = f"memory://{tmp_path.name}/emb/"  # from Python (and tests) it stays
    assert embed_file(path, url, tiny, progress=False).rows == 3 and read_embeddings(url).shape == (3, 32)
