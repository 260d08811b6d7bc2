"""sentence-transformers' API (issue 23): SentenceEncoder / SentenceTransformer, CrossEncoder and SparseEncoder
against sentence-transformers itself, live, on models that weights/make_st_api_models.py builds from the real
all-MiniLM-L6-v2 weights and seeded heads (in a temporary folder, once per session: the directories are ~90 MB
each). These tests skip where torch, sentence-transformers or sentencepiece is missing; the suite runs them in CI.
The tokenizer's regular-expression guard and the hub names need no PyTorch."""

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
import test_hub
from support.helpers import F32_TOL, ROOT, WEIGHTS, minilm_dir

import minibert
from minibert.errors import CheckpointError, InputError
from minibert.st_config import hub_name

# SPLADE's weights reach ~2 on this seeded head (up to ~10 on real models): float32 rounding grows with the value, so
# the bound is relative to max(|value|, 1), 1e-5 as for the embeddings.
SPLADE_REL_TOL = 1e-5
# int8 / uint8 buckets are floor((x - min) / step): a value within a few ulp of a bucket edge lands on either side
# depending on float32 rounding of x (ours and torch's differ by ~1e-7), so a few values may be one bucket off.
INT8_MAX_STEPS = 1
INT8_SHARE_WITHIN = 0.999

TEXTS = [
    "A man is eating food.",
    "Where do cats like to sleep? Kittens like to nap in the sun.",
    "Der schnelle braune Fuchs springt über den faulen Hund.",
    "Größere Städte haben öfter Probleme mit dem Verkehr.",
    "東京は日本の首都で、多くの人が住んでいます。",
    "猫が窓のそばで静かに眠っている。",
    "Москва является столицей России.",
    "Кошка спит на тёплом подоконнике.",
    "Crème brûlée, naïve café-goers, and the façade of the Ångström hôtel.",
    "Ｆｕｌｌ－ｗｉｄｔｈ ｔｅｘｔ： ＡＢＣ １２３ ｈｅｌｌｏ",
    "Stock markets fell sharply after the announcement of new tariffs.",
    "x",
]
MANY_TEXTS = [f"{text} ({i})" for i in range(4) for text in TEXTS]  # 48 rows, for the int8 share


@pytest.fixture(scope="session")
def st_models(tmp_path_factory):
    pytest.importorskip("torch")
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("sentencepiece")
    sys.path.insert(0, str(WEIGHTS))
    from make_st_api_models import build

    return build(tmp_path_factory.mktemp("st-models"))


online, serve = test_hub.online, test_hub.serve  # test_hub's fixtures: the fake hub on loopback

_REFERENCES = {}


def reference(kind: str, path):
    """sentence-transformers' own model of the directory (cached: loading one takes a few seconds)."""
    import sentence_transformers as st

    key = (kind, str(path))
    if key not in _REFERENCES:
        _REFERENCES[key] = getattr(st, kind)(str(path), device="cpu")
    return _REFERENCES[key]


def max_abs_diff(a, b) -> float:
    return float(np.max(np.abs(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64))))


# ------------------------------------------------------------------------------------------------------
# SentenceEncoder / SentenceTransformer


@pytest.mark.parametrize("name", ["bge", "e5", "dense"])
def test_encode_encode_query_and_encode_document_match_sentence_transformers(st_models, name):
    ours, theirs = minibert.SentenceTransformer(st_models[name]), reference("SentenceTransformer", st_models[name])
    assert ours.prompts == theirs.prompts and ours.similarity_fn_name == theirs.similarity_fn_name
    assert ours.get_sentence_embedding_dimension() == theirs.get_embedding_dimension()
    assert ours.max_seq_length == theirs.max_seq_length
    for method in ("encode", "encode_query", "encode_document"):
        expected = getattr(theirs, method)(TEXTS, batch_size=4)
        got = getattr(ours, method)(TEXTS, batch_size=4)
        assert got.dtype == np.float32 and got.shape == expected.shape
        assert max_abs_diff(got, expected) <= F32_TOL, method


def test_bge_query_prompt_changes_the_query_embedding_and_scores_by_dot_product(st_models):
    ours, theirs = minibert.SentenceTransformer(st_models["bge"]), reference("SentenceTransformer", st_models["bge"])
    assert ours.pooling_modes == ("cls",) and ours.normalize and ours.similarity_fn_name == "dot"
    query, docs = ours.encode_query("Where do cats like to sleep?"), ours.encode_document(TEXTS)
    assert query.shape == (384,)
    assert max_abs_diff(query, ours.encode("Where do cats like to sleep?")) > 1e-3  # the prompt is used
    expected = theirs.similarity(theirs.encode_query(["Where do cats like to sleep?"]), theirs.encode_document(TEXTS))
    assert max_abs_diff(ours.similarity(query, docs), expected.numpy()) <= F32_TOL
    np.testing.assert_allclose(ours.similarity(query, docs)[0], docs @ query, rtol=0, atol=1e-6)


def test_e5_prompts_by_name_by_text_and_the_document_prompt_rule(st_models):
    ours, theirs = minibert.SentenceTransformer(st_models["e5"]), reference("SentenceTransformer", st_models["e5"])
    assert ours.prompts["query"] == "query: " and ours.prompts["passage"] == "passage: "
    for kwargs in ({"prompt_name": "passage"}, {"prompt": "passage: "}, {"prompt": "something else: "}):
        assert max_abs_diff(ours.encode(TEXTS, **kwargs), theirs.encode(TEXTS, **kwargs)) <= F32_TOL, kwargs
    # encode_document tries "document" first, and sentence-transformers gives every model an empty "document" prompt
    # unless it has its own: so an e5 model's documents get no "passage: " unless asked for by name, as upstream.
    np.testing.assert_array_equal(ours.encode_document(TEXTS), ours.encode(TEXTS))
    assert max_abs_diff(ours.encode_document(TEXTS), theirs.encode_document(TEXTS)) <= F32_TOL
    with pytest.raises(InputError, match=r"prompt name 'nope' not found.*\['query', 'document', 'passage'\]"):
        ours.encode(TEXTS, prompt_name="nope")


def test_pooling_without_the_prompt_matches_sentence_transformers(st_models, tmp_path):
    directory = tmp_path / "e5-no-prompt"
    shutil.copytree(st_models["e5"], directory)
    config = json.loads((directory / "1_Pooling" / "config.json").read_text())
    (directory / "1_Pooling" / "config.json").write_text(json.dumps({**config, "include_prompt": False}))
    ours, theirs = minibert.SentenceTransformer(directory), reference("SentenceTransformer", directory)
    assert ours.include_prompt is False
    got, expected = ours.encode_query(TEXTS), theirs.encode_query(TEXTS)
    assert max_abs_diff(got, expected) <= F32_TOL
    assert max_abs_diff(got, minibert.SentenceTransformer(st_models["e5"]).encode_query(TEXTS)) > 1e-3


def test_truncate_dim_then_normalize_embeddings_as_upstream_orders_them(st_models):
    ours, theirs = (
        minibert.SentenceTransformer(st_models["dense"]),
        reference("SentenceTransformer", st_models["dense"]),
    )
    got = ours.encode(TEXTS, truncate_dim=32, normalize_embeddings=True)
    assert got.shape == (len(TEXTS), 32)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-6)
    assert max_abs_diff(got, theirs.encode(TEXTS, truncate_dim=32, normalize_embeddings=True)) <= F32_TOL
    # The model's Normalize runs before the truncation, so a truncated row is shorter than 1 without the flag.
    assert np.all(np.linalg.norm(ours.encode(TEXTS, truncate_dim=32), axis=1) < 1)
    truncated = minibert.SentenceTransformer(st_models["dense"], truncate_dim=16)
    assert truncated.get_embedding_dimension() == 16 and truncated.encode("x").shape == (16,)


@pytest.mark.parametrize("precision", ["binary", "ubinary"])
def test_binary_precisions_equal_sentence_transformers_exactly(st_models, precision):
    ours, theirs = minibert.SentenceTransformer(st_models["e5"]), reference("SentenceTransformer", st_models["e5"])
    got, expected = ours.encode(MANY_TEXTS, precision=precision), theirs.encode(MANY_TEXTS, precision=precision)
    assert got.dtype == expected.dtype and got.shape == (len(MANY_TEXTS), 48)
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("precision", ["int8", "uint8"])
def test_int8_precisions_are_within_one_bucket_of_sentence_transformers(st_models, precision):
    ours, theirs = minibert.SentenceTransformer(st_models["e5"]), reference("SentenceTransformer", st_models["e5"])
    got, expected = ours.encode(MANY_TEXTS, precision=precision), theirs.encode(MANY_TEXTS, precision=precision)
    assert got.dtype == expected.dtype and got.shape == expected.shape
    steps = np.abs(got.astype(np.int64) - expected.astype(np.int64))
    assert np.mean(steps <= INT8_MAX_STEPS) >= INT8_SHARE_WITHIN, f"largest difference {steps.max()} buckets"


def test_quantize_embeddings_equals_sentence_transformers_on_the_same_floats():
    from sentence_transformers.util import quantize_embeddings as theirs

    rng = np.random.default_rng(0)
    x, calibration = rng.standard_normal((50, 40)).astype(np.float32), rng.standard_normal((200, 40))
    ranges = np.vstack([calibration.min(axis=0), calibration.max(axis=0)])
    for precision in ("float32", "int8", "uint8", "binary", "ubinary"):
        np.testing.assert_array_equal(minibert.quantize_embeddings(x, precision), theirs(x, precision))
    for precision in ("int8", "uint8"):
        got = minibert.quantize_embeddings(x, precision, calibration_embeddings=calibration)
        np.testing.assert_array_equal(got, theirs(x, precision, calibration_embeddings=calibration))
        np.testing.assert_array_equal(minibert.quantize_embeddings(x, precision, ranges=ranges), got)
    with pytest.raises(InputError, match="single embedding"):
        minibert.quantize_embeddings(x[:1], "int8")


@pytest.mark.parametrize("name", ["cosine", "dot", "euclidean", "manhattan"])
def test_similarity_functions_match_sentence_transformers(name):
    torch = pytest.importorskip("torch")
    from sentence_transformers.util import SimilarityFunction

    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((7, 16)).astype(np.float32), rng.standard_normal((5, 16)).astype(np.float32)
    every, pairwise = minibert.similarity.SIMILARITY_FUNCTIONS[name]
    expected = SimilarityFunction.to_similarity_fn(name)(torch.from_numpy(a), torch.from_numpy(b)).numpy()
    assert every(a, b).shape == (7, 5) and max_abs_diff(every(a, b), expected) <= F32_TOL
    expected = SimilarityFunction.to_similarity_pairwise_fn(name)(torch.from_numpy(a[:5]), torch.from_numpy(b))
    assert max_abs_diff(pairwise(a[:5], b), expected.numpy()) <= F32_TOL
    assert every(a[0], a[0]).shape == (1, 1)


def test_inputs_sentence_transformers_accepts_are_accepted(st_models):
    ours = minibert.SentenceTransformer(st_models["e5"])
    expected = ours.encode(TEXTS[:3])
    for texts in (tuple(TEXTS[:3]), np.array(TEXTS[:3]), (t for t in TEXTS[:3])):
        np.testing.assert_array_equal(ours.encode(texts), expected)
    np.testing.assert_array_equal(ours.encode(inputs=TEXTS[:3]), expected)
    np.testing.assert_array_equal(ours.encode(TEXTS[:3], convert_to_numpy=False), expected)
    assert ours.encode(TEXTS[0]).shape == (384,)
    padded = ours.tokenizer(TEXTS[:3])["attention_mask"].sum(axis=1)  # [3] tokens per text
    np.testing.assert_array_equal(ours.count_tokens(TEXTS[:3]), padded)
    assert ours.count_tokens("x", prompt_name="query") == 2 + len(
        ours.tokenizer.backend.encode("query: x", add_special_tokens=False).ids
    )


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"convert_to_tensor": True}, "convert_to_tensor=True asks for a torch tensor"),
        ({"device": "cuda"}, "CPU only"),
        ({"precision": "float16"}, "precision must be one of"),
        ({"truncate_dim": 0}, "truncate_dim must be a positive integer"),
        ({"output_value": "token_embeddings"}, "output_value must be 'sentence_embedding'"),
        ({"batch_size": 0}, "batch_size must be a positive integer"),
    ],
)
def test_encode_refuses_what_minibert_does_not_do_by_name(kwargs, message):
    encoder = minibert.SentenceTransformer(minilm_dir())
    with pytest.raises(InputError, match=message):
        encoder.encode(["a text"], **kwargs)


def test_short_names_are_completed_as_sentence_transformers_completes_them(tmp_path):
    assert hub_name("all-MiniLM-L6-v2", "sentence-transformers") == "sentence-transformers/all-MiniLM-L6-v2"
    assert hub_name("ms-marco-MiniLM-L6-v2", "cross-encoder") == "cross-encoder/ms-marco-MiniLM-L6-v2"
    assert hub_name("BAAI/bge-small-en-v1.5", "sentence-transformers") == "BAAI/bge-small-en-v1.5"
    assert hub_name("bert-base-uncased", "sentence-transformers") == "bert-base-uncased"
    assert hub_name(str(tmp_path), "sentence-transformers") == str(tmp_path)  # a directory stays a directory


def test_constructor_takes_a_directory_and_model_attributes_read_like_upstream():
    encoder = minibert.SentenceTransformer(minilm_dir())
    assert isinstance(encoder, minibert.SentenceEncoder) and minibert.SentenceTransformer is minibert.SentenceEncoder
    assert encoder.get_max_seq_length() == encoder.max_seq_length == 256
    assert encoder.get_sentence_embedding_dimension() == 384 and encoder.similarity_fn_name == "cosine"
    with pytest.raises(InputError, match="similarity_fn_name must be one of"):
        encoder.similarity_fn_name = "maxsim"


# ------------------------------------------------------------------------------------------------------
# CrossEncoder


QUERY = "Where do cats like to sleep?"
DOCS = [
    "The cat sleeps on the warm windowsill.",
    "Stock markets fell sharply after the announcement.",
    "Kittens like to nap in the sun.",
    "Eine Katze schläft auf dem Sofa.",
    "猫が窓のそばで静かに眠っている。",
]


def test_one_label_reranker_predict_and_rank_match_sentence_transformers(st_models):
    import torch

    ours, theirs = minibert.CrossEncoder(st_models["rerank1"]), reference("CrossEncoder", st_models["rerank1"])
    assert ours.num_labels == 1 and ours.activation_fn == "torch.nn.modules.linear.Identity"
    pairs = [[QUERY, doc] for doc in DOCS]
    assert max_abs_diff(ours.predict(pairs, batch_size=2), theirs.predict(pairs, batch_size=2)) <= F32_TOL
    sigmoid = ours.predict(pairs, activation_fn=torch.nn.Sigmoid())
    assert max_abs_diff(sigmoid, theirs.predict(pairs, activation_fn=torch.nn.Sigmoid())) <= F32_TOL
    assert np.ndim(ours.predict(pairs[0])) == 0
    got, expected = (
        ours.rank(QUERY, DOCS, top_k=3, return_documents=True),
        theirs.rank(QUERY, DOCS, top_k=3, return_documents=True),
    )
    assert [(r["corpus_id"], r["text"]) for r in got] == [(r["corpus_id"], r["text"]) for r in expected]
    assert max_abs_diff([r["score"] for r in got], [r["score"] for r in expected]) <= F32_TOL
    assert set(ours.rank(QUERY, DOCS)[0]) == {"corpus_id", "score"}


def test_one_label_reranker_without_a_saved_activation_uses_sigmoid_as_upstream(st_models, tmp_path):
    directory = tmp_path / "rerank-sigmoid"
    shutil.copytree(st_models["rerank1"], directory)
    settings = json.loads((directory / "config_sentence_transformers.json").read_text())
    del settings["activation_fn"]
    (directory / "config_sentence_transformers.json").write_text(json.dumps(settings))
    ours, theirs = minibert.CrossEncoder(directory), reference("CrossEncoder", directory)
    pairs = [[QUERY, doc] for doc in DOCS]
    got = ours.predict(pairs)
    assert np.all((got > 0) & (got < 1)) and max_abs_diff(got, theirs.predict(pairs)) <= F32_TOL


def test_three_label_reranker_predicts_logits_or_softmax_and_refuses_rank(st_models):
    ours, theirs = minibert.CrossEncoder(st_models["rerank3"]), reference("CrossEncoder", st_models["rerank3"])
    pairs = [[QUERY, doc] for doc in DOCS]
    for apply_softmax in (False, True):
        got, expected = (
            ours.predict(pairs, apply_softmax=apply_softmax),
            theirs.predict(pairs, apply_softmax=apply_softmax),
        )
        assert got.shape == (len(DOCS), 3) and max_abs_diff(got, expected) <= F32_TOL
    np.testing.assert_allclose(ours.predict(pairs, apply_softmax=True).sum(axis=1), 1.0, atol=1e-6)
    with pytest.raises(InputError, match="rank\\(\\) works for models with one label; this one has 3"):
        ours.rank(QUERY, DOCS)
    with pytest.raises(InputError, match="num_labels=1, but the checkpoint's classifier has 3"):
        minibert.CrossEncoder(st_models["rerank3"], num_labels=1)


# ------------------------------------------------------------------------------------------------------
# SparseEncoder


def splade_rel_diff(a, b) -> float:
    b = np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(np.asarray(a, dtype=np.float64) - b) / np.maximum(np.abs(b), 1.0)))


def test_splade_encode_query_document_and_max_active_dims_match_sentence_transformers(st_models):
    ours, theirs = minibert.SparseEncoder(st_models["splade"]), reference("SparseEncoder", st_models["splade"])
    assert ours.similarity_fn_name == theirs.similarity_fn_name == "dot"
    for method in ("encode", "encode_query", "encode_document"):
        got, expected = getattr(ours, method)(TEXTS, batch_size=4), getattr(theirs, method)(TEXTS, batch_size=4)
        expected = expected.to_dense().numpy()
        assert got.shape == expected.shape == (len(TEXTS), 30522) and got.dtype == np.float32
        assert splade_rel_diff(got, expected) <= SPLADE_REL_TOL, method
    got = ours.encode(TEXTS, max_active_dims=16)
    assert np.all((got != 0).sum(axis=1) == 16)
    assert splade_rel_diff(got, theirs.encode(TEXTS, max_active_dims=16).to_dense().numpy()) <= SPLADE_REL_TOL


def test_splade_decode_gives_the_tokens_and_weights_sentence_transformers_gives(st_models):
    ours, theirs = minibert.SparseEncoder(st_models["splade"]), reference("SparseEncoder", st_models["splade"])
    got = ours.decode(ours.encode(TEXTS[0], max_active_dims=8))
    expected = theirs.decode(theirs.encode(TEXTS[0], max_active_dims=8))
    assert [token for token, _ in got] == [token for token, _ in expected]
    assert max_abs_diff([w for _, w in got], [w for _, w in expected]) <= F32_TOL * 2  # weights ~2
    assert len(ours.decode(ours.encode(TEXTS[:2]), top_k=3)[1]) == 3


# ------------------------------------------------------------------------------------------------------
# BERT with XLM-R's SentencePiece tokenizer


@pytest.mark.parametrize("name", ["xlmr", "xlmr-v5"])
def test_sentencepiece_tokenizer_gives_sentencepiece_ids_and_the_embeddings_match(st_models, name):
    import sentencepiece as spm

    ours, theirs = minibert.SentenceTransformer(st_models[name]), reference("SentenceTransformer", st_models[name])
    kinds = {
        part["type"]
        for part in json.loads((st_models[name] / "tokenizer.json").read_text())["normalizer"].get("normalizers", [])
    }
    assert ("Replace" in kinds) == (name == "xlmr")  # the hub's conversion carries the " {2,}" Replace
    ids = [ours.tokenizer(text)["input_ids"][0] for text in TEXTS]
    expected = theirs.tokenizer(TEXTS)["input_ids"]
    assert [list(row) for row in ids] == expected
    # The SentencePiece model itself: XLM-R's ids are its ids shifted by one (fairseq's <s> <pad> </s> <unk> first),
    # its <unk> (0) being XLM-R's 3.
    sp = spm.SentencePieceProcessor(model_file=str(st_models["xlmr"].parent / "sp.model"))
    for text, row in zip(TEXTS, ids, strict=True):
        pieces = [piece + 1 if piece != sp.unk_id() else 3 for piece in sp.encode(text)]
        assert list(row) == [0, *pieces, 2], text
    assert max_abs_diff(ours.encode(TEXTS), theirs.encode(TEXTS)) <= F32_TOL


def _unigram_tokenizer_json(tmp_path, normalizer):
    from tokenizers import Tokenizer, models

    backend = Tokenizer(models.Unigram([("<unk>", 0.0), ("▁a", -1.0), ("a", -2.0)], unk_id=0))
    backend.normalizer = normalizer
    (tmp_path / "tokenizer.json").write_text(backend.to_str())
    return tmp_path


def test_only_the_allowed_regular_expressions_are_read(tmp_path):
    from tokenizers import Regex, normalizers

    allowed = _unigram_tokenizer_json(tmp_path, normalizers.Replace(Regex(" {2,}"), " "))
    assert minibert.Tokenizer.from_pretrained(allowed).backend.normalizer is not None
    plain = _unigram_tokenizer_json(tmp_path, normalizers.Replace("``", '"'))  # a plain string, no regex
    assert minibert.Tokenizer.from_pretrained(plain).backend.normalizer is not None
    for pattern in ("(a+)+$", " {3,}", "\\s+"):  # a backtracking one, and near-misses of the allowed ones
        hostile = _unigram_tokenizer_json(tmp_path, normalizers.Replace(Regex(pattern), ""))
        with pytest.raises(CheckpointError, match=r"Replace with the pattern .*not one of the regular expressions"):
            minibert.Tokenizer.from_pretrained(hostile)


def test_import_and_encode_never_import_torch(st_models):
    script = (
        "import sys, minibert\n"
        f"minibert.SentenceTransformer({str(st_models['bge'])!r}).encode_query(['a text'], normalize_embeddings=True)\n"
        f"minibert.SentenceTransformer({str(st_models['dense'])!r}).encode(['a text', 'b'], precision='int8')\n"
        f"minibert.CrossEncoder({str(st_models['rerank1'])!r}).rank('q', ['a', 'b'])\n"
        f"minibert.SparseEncoder({str(st_models['splade'])!r}).encode_query('q')\n"
        f"minibert.SentenceTransformer({str(st_models['xlmr'])!r}).encode('Größe')\n"
        "assert 'torch' not in sys.modules and 'sentence_transformers' not in sys.modules, 'torch was imported'\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-2000:]


# ------------------------------------------------------------------------------------------------------
# The embed job's settings and `minibert rerank`


def _corpus(tmp_path, lines=TEXTS):
    path = tmp_path / "corpus.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_embed_job_applies_prompt_truncate_dim_and_normalize_as_encode_and_records_them(st_models, tmp_path):
    from minibert.embed import embed_file, read_embeddings

    corpus, out = _corpus(tmp_path), tmp_path / "out"
    embed_file(corpus, out, st_models["e5"], progress=False, prompt_name="query", truncate_dim=64, normalize=True)
    expected = reference("SentenceTransformer", st_models["e5"]).encode(
        TEXTS, prompt_name="query", truncate_dim=64, normalize_embeddings=True
    )
    assert max_abs_diff(read_embeddings(out), expected) <= F32_TOL
    settings = json.loads((out / "manifest.json").read_text())["settings"]
    assert settings == {"prompt": "query: ", "normalize": True, "precision": "float32", "truncate_dim": 64}
    with pytest.raises(InputError, match=r"made with prompt 'query: ', this run has 'passage: '"):
        embed_file(corpus, out, st_models["e5"], progress=False, prompt_name="passage", truncate_dim=64, normalize=True)
    with pytest.raises(InputError, match=r"made with truncate_dim 64, this run has None"):
        embed_file(corpus, out, st_models["e5"], progress=False, prompt="query: ", normalize=True)


@pytest.mark.parametrize("precision, dtype", [("binary", np.int8), ("ubinary", np.uint8)])
def test_embed_job_binary_precision_gives_sentence_transformers_bits(st_models, tmp_path, precision, dtype):
    from minibert.embed import embed_file, read_embeddings

    out = tmp_path / "bits.npy"
    report = embed_file(_corpus(tmp_path), out, st_models["bge"], progress=False, precision=precision)
    assert report.dim == 48
    expected = reference("SentenceTransformer", st_models["bge"]).encode(TEXTS, precision=precision)
    np.testing.assert_array_equal(read_embeddings(out).astype(dtype), expected)


def test_embed_job_refuses_int8_and_says_how_to_quantize_afterwards(st_models, tmp_path):
    from minibert.embed import embed_file

    with pytest.raises(InputError, match=r"precision 'int8' takes its buckets from all the embeddings.*quantize_emb"):
        embed_file(_corpus(tmp_path), tmp_path / "x.npy", st_models["bge"], progress=False, precision="int8")


def test_embed_command_takes_the_settings_flags(st_models, tmp_path, capsys):
    from minibert.cli import main
    from minibert.embed import read_embeddings

    out = tmp_path / "q.npy"
    argv = ["embed", str(_corpus(tmp_path)), "--output", str(out), "--model", str(st_models["e5"]), "--quiet"]
    assert main([*argv, "--prompt", "query: ", "--truncate-dim", "32", "--normalize"]) == 0
    expected = reference("SentenceTransformer", st_models["e5"]).encode(
        TEXTS, prompt="query: ", truncate_dim=32, normalize_embeddings=True
    )
    assert max_abs_diff(read_embeddings(out), expected) <= F32_TOL
    assert main([*argv, "--precision", "uint8"]) == 2
    assert "quantize in Python: minibert.quantize_embeddings" in capsys.readouterr().err


def test_rerank_command_prints_documents_best_first_as_crossencoder_rank(st_models, tmp_path, capsys):
    from minibert.cli import main

    docs = tmp_path / "docs.txt"
    docs.write_text("\n".join(DOCS) + "\n", encoding="utf-8")
    expected = reference("CrossEncoder", st_models["rerank1"]).rank(QUERY, DOCS, top_k=3, return_documents=True)
    argv = ["rerank", QUERY, "--input", str(docs), "--model", str(st_models["rerank1"]), "--top-k", "3"]
    assert main([*argv, "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert [(r["corpus_id"], r["line"], r["text"]) for r in got] == [
        (r["corpus_id"], r["corpus_id"] + 1, r["text"]) for r in expected
    ]
    assert max_abs_diff([r["score"] for r in got], [r["score"] for r in expected]) <= F32_TOL
    assert main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["score", "line", "text"] and len(lines) == 4
    assert lines[1].split(maxsplit=2) == [f"{got[0]['score']:.4f}", str(got[0]["line"]), got[0]["text"]]
    assert main(["rerank", QUERY, "--input", str(docs), "--model", str(st_models["rerank3"])]) == 2
    assert "rank() works for models with one label; this one has 3" in capsys.readouterr().err


def test_tokenizer_takes_transformers_text_pair_and_return_tensors_np():
    tokenizer = minibert.Tokenizer.from_pretrained(minilm_dir())
    pairs = tokenizer(["a question"], text_pair=["an answer"], return_tensors="np")
    np.testing.assert_array_equal(pairs["input_ids"], tokenizer(["a question"], text_pairs=["an answer"])["input_ids"])
    assert pairs["token_type_ids"].tolist() == [[0, 0, 0, 0, 1, 1, 1]]
    assert tokenizer.token_counts(["a question", "x"], ["an answer", "y"]).tolist() == [7, 5]
    assert tokenizer.token_counts(["word " * 600], max_length=256).tolist() == [256]
    with pytest.raises(InputError, match="return_tensors='pt': minibert's tokenizer returns NumPy arrays"):
        tokenizer(["a"], return_tensors="pt")
    with pytest.raises(InputError, match="text_pair has 1 texts but texts has 2"):
        tokenizer.token_counts(["a", "b"], ["c"])


# ------------------------------------------------------------------------------------------------------
# By hub id: which files each kind fetches (huggingface_hub's real download code against tests/support/fake_hub.py)


def _serve_built(serve, st_models, name, repo_id):
    return serve({(repo_id, "main"): (test_hub.COMMIT_1, st_models[name])})


def test_hub_id_of_a_dense_model_fetches_its_settings_and_the_dense_module(serve, st_models, tmp_path):
    hub = _serve_built(serve, st_models, "dense", "org/dense")
    encoder = minibert.SentenceTransformer("org/dense", cache_folder=tmp_path / "cache")
    assert hub.downloads[:2] == ["modules.json", "config_sentence_transformers.json"]
    assert hub.downloads[-3:] == ["1_Pooling/config.json", "2_Dense/config.json", "2_Dense/model.safetensors"]
    np.testing.assert_array_equal(
        encoder.encode(TEXTS[:3]), minibert.SentenceTransformer(st_models["dense"]).encode(TEXTS[:3])
    )


def test_hub_id_of_a_cross_encoder_and_of_a_splade_model_fetch_what_they_read(serve, st_models, tmp_path):
    hub = _serve_built(serve, st_models, "rerank1", "org/rerank")
    model = minibert.CrossEncoder("org/rerank", cache_folder=tmp_path / "cache")
    assert hub.downloads[:2] == ["config.json", "model.safetensors"]
    assert {"tokenizer.json", "config_sentence_transformers.json", "modules.json"} <= set(hub.downloads)
    assert model.activation_fn == "torch.nn.modules.linear.Identity"  # from the fetched settings
    hub = _serve_built(serve, st_models, "splade", "org/splade")
    sparse = minibert.SparseEncoder("org/splade", cache_folder=tmp_path / "cache")
    assert hub.downloads[0] == "modules.json" and hub.downloads[-1] == "1_SpladePooling/config.json"
    assert sparse.prompts["query"] == "query: "


def test_activation_from_config_json_as_before_v4_and_an_unknown_one_refused_by_name(st_models, tmp_path):
    directory = tmp_path / "rerank-v3"
    shutil.copytree(st_models["rerank1"], directory)
    (directory / "config_sentence_transformers.json").unlink()
    config = json.loads((directory / "config.json").read_text())
    config["sentence_transformers"] = {"activation_fn": "torch.nn.modules.activation.Sigmoid"}
    (directory / "config.json").write_text(json.dumps(config))
    pairs = [[QUERY, doc] for doc in DOCS]
    got, expected = minibert.CrossEncoder(directory).predict(pairs), reference("CrossEncoder", directory).predict(pairs)
    assert np.all((got > 0) & (got < 1)) and max_abs_diff(got, expected) <= F32_TOL
    config["sentence_transformers"] = {"activation_fn": "torch.nn.modules.activation.ReLU"}
    (directory / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match=r"activation_fn is 'torch.nn.modules.activation.ReLU'.*does not compute"):
        minibert.CrossEncoder(directory)


def test_dense_activation_minibert_does_not_compute_is_refused_by_name(st_models, tmp_path):
    directory = tmp_path / "dense-gelu"
    shutil.copytree(st_models["dense"], directory)
    config = json.loads((directory / "2_Dense" / "config.json").read_text())
    config["activation_function"] = "torch.nn.modules.activation.GELU"
    (directory / "2_Dense" / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match=r"2_Dense/config.json: activation_function 'torch.nn.modules.activation"):
        minibert.SentenceTransformer(directory)
