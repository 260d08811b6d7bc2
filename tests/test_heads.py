"""Masked-LM and sequence-classification heads against transformers' own head classes: golden logits made by
weights/make_heads_reference.py (no PyTorch needed), and live comparisons wherever transformers is installed."""

import logging
import shutil

import numpy as np
import pytest
from support.helpers import F32_TOL, F64_TOL, WEIGHTS

import minibert
from minibert.errors import CheckpointError, InputError
from minibert.functional import softmax

MLM_MODELS = ["tiny-mlm", "tiny-mlm-untied"]


def load_reference(name: str) -> dict[str, np.ndarray]:
    with np.load(WEIGHTS / name / "reference.npz") as f:
        return {k: f[k] for k in f.files}


def inputs_of(reference: dict) -> dict[str, np.ndarray]:
    return {k: reference[k] for k in ("input_ids", "attention_mask", "token_type_ids")}


def mlm_logits_diff(logits: np.ndarray, expected: np.ndarray, attention_mask, unmasked_only: bool) -> float:
    """Largest |difference| over [B, S, V], over real tokens only when unmasked_only."""
    where = np.broadcast_to(attention_mask.astype(bool)[:, :, None], expected.shape) if unmasked_only else ...
    return float(np.max(np.abs(logits.astype(np.float64) - expected)[where]))


@pytest.mark.parametrize("name", MLM_MODELS)
def test_masked_lm_float32_logits_match_transformers_on_real_tokens(name):
    ref = load_reference(name)
    model = minibert.BertForMaskedLM.from_pretrained(WEIGHTS / name, dtype=np.float32)
    logits = model(**inputs_of(ref)).logits
    assert logits.dtype == np.float32 and logits.shape == ref["float32/logits"].shape  # [B, S, V]
    assert mlm_logits_diff(logits, ref["float32/logits"], ref["attention_mask"], unmasked_only=True) <= F32_TOL


@pytest.mark.parametrize("name", MLM_MODELS)
def test_masked_lm_float64_logits_match_transformers_everywhere(name):
    ref = load_reference(name)
    model = minibert.BertForMaskedLM.from_pretrained(WEIGHTS / name, dtype=np.float64)
    logits = model(**inputs_of(ref)).logits
    assert logits.dtype == np.float64
    assert mlm_logits_diff(logits, ref["float64/logits"], ref["attention_mask"], unmasked_only=False) <= F64_TOL


def test_tied_decoder_is_the_word_embedding_matrix_and_untied_is_its_own():
    tied = minibert.BertForMaskedLM.from_pretrained(WEIGHTS / "tiny-mlm")
    assert tied.head["decoder"]["weight"] is tied.params["embeddings"]["word_embeddings"]["weight"]
    untied = minibert.BertForMaskedLM.from_pretrained(WEIGHTS / "tiny-mlm-untied")
    assert untied.head["decoder"]["weight"] is not untied.params["embeddings"]["word_embeddings"]["weight"]
    assert not np.allclose(untied.head["decoder"]["weight"], untied.params["embeddings"]["word_embeddings"]["weight"])


def rewrite_checkpoint(tmp_path, source: str, edit) -> "Path":  # noqa: F821
    """A copy of weights/<source> whose tensors are edit(tensors)."""
    from safetensors.numpy import save_file

    from minibert.checkpoint import read_tensors

    directory = tmp_path / source
    shutil.copytree(WEIGHTS / source, directory)
    tensors, _ = read_tensors(directory)
    save_file(edit(dict(tensors)), str(directory / "model.safetensors"))
    return directory


def test_tied_checkpoint_that_stores_the_decoder_weight_gives_the_same_logits(tmp_path):
    def add_decoder(tensors):
        tensors["cls.predictions.decoder.weight"] = tensors["bert.embeddings.word_embeddings.weight"].copy()
        tensors["cls.predictions.decoder.bias"] = tensors["cls.predictions.bias"].copy()
        return tensors

    ref = load_reference("tiny-mlm")
    model = minibert.BertForMaskedLM.from_pretrained(rewrite_checkpoint(tmp_path, "tiny-mlm", add_decoder))
    assert (
        mlm_logits_diff(model(**inputs_of(ref)).logits, ref["float32/logits"], ref["attention_mask"], True) <= F32_TOL
    )


def test_tied_checkpoint_with_a_different_stored_decoder_uses_the_embeddings_and_warns(tmp_path, caplog):
    def add_decoder(tensors):
        tensors["cls.predictions.decoder.weight"] = np.zeros_like(tensors["bert.embeddings.word_embeddings.weight"])
        return tensors

    with caplog.at_level(logging.WARNING, logger="minibert"):
        model = minibert.BertForMaskedLM.from_pretrained(rewrite_checkpoint(tmp_path, "tiny-mlm", add_decoder))
    assert "differs from the word embeddings" in caplog.text
    assert model.head["decoder"]["weight"] is model.params["embeddings"]["word_embeddings"]["weight"]


def test_checkpoint_without_bert_prefix_gives_the_same_logits(tmp_path):
    def strip_prefix(tensors):
        return {name.removeprefix("bert."): tensor for name, tensor in tensors.items()}

    ref = load_reference("tiny-mlm")
    model = minibert.BertForMaskedLM.from_pretrained(rewrite_checkpoint(tmp_path, "tiny-mlm", strip_prefix))
    assert (
        mlm_logits_diff(model(**inputs_of(ref)).logits, ref["float32/logits"], ref["attention_mask"], True) <= F32_TOL
    )


def test_head_tensors_in_use_are_not_reported_unused_but_other_heads_are(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="minibert"):
        minibert.BertForMaskedLM.from_pretrained(WEIGHTS / "tiny-mlm")
        minibert.BertForSequenceClassification.from_pretrained(WEIGHTS / "tiny-classifier")
    assert "task-head" not in caplog.text

    def add_nsp_head(tensors):  # BertForPreTraining's next-sentence head, which BertForMaskedLM does not use
        tensors["cls.seq_relationship.weight"] = np.ones((2, 32), dtype=np.float32)
        return tensors

    with caplog.at_level(logging.WARNING, logger="minibert"):
        minibert.BertForMaskedLM.from_pretrained(rewrite_checkpoint(tmp_path, "tiny-mlm", add_nsp_head))
    assert "cls.seq_relationship.weight" in caplog.text


def test_missing_head_tensors_are_named():
    with pytest.raises(CheckpointError, match=r"cls\.predictions\.transform\.dense\.weight"):
        minibert.BertForMaskedLM.from_pretrained(WEIGHTS / "tiny-gelu")
    with pytest.raises(CheckpointError, match=r"classifier\.weight"):
        minibert.BertForSequenceClassification.from_pretrained(WEIGHTS / "tiny-gelu")
    with pytest.raises(CheckpointError, match="no pooler weights"):
        minibert.BertForSequenceClassification.from_pretrained(WEIGHTS / "tiny-mlm")


def test_trace_names_follow_the_transformers_head_class():
    store = {}
    model = minibert.BertForMaskedLM.from_pretrained(WEIGHTS / "tiny-mlm")
    model([[2, 5, 4, 3]], trace=minibert.Trace(store))
    for name in (
        "bert.embeddings.LayerNorm",
        "bert.encoder.layer.1.output.LayerNorm",
        "cls.predictions.transform.dense",
        "cls.predictions.transform.transform_act_fn",
        "cls.predictions.transform.LayerNorm",
        "cls.predictions.decoder",
    ):
        assert name in store, name


# ------------------------------------------------------------------------------------------------------
# fill_mask


def test_fill_mask_returns_top_k_of_the_softmax_at_each_mask_best_first():
    ref = load_reference("tiny-mlm")
    text = str(ref["texts"][1])  # two masks
    model = minibert.BertForMaskedLM.from_pretrained(WEIGHTS / "tiny-mlm")
    tokenizer = minibert.Tokenizer.from_pretrained(WEIGHTS / "tiny-mlm")
    results = minibert.fill_mask(model, tokenizer, text, top_k=4)
    positions = np.flatnonzero(ref["input_ids"][1] == 4)  # [MASK] is id 4 in the tiny vocabulary
    assert len(results) == len(positions) == 2
    for candidates, position in zip(results, positions, strict=True):
        probs = softmax(ref["float64/logits"][1, position])  # transformers' logits, float64
        expected_ids = np.argsort(-probs)[:4]
        assert [c.token for c in candidates] == expected_ids.tolist()
        np.testing.assert_allclose([c.score for c in candidates], probs[expected_ids], rtol=0, atol=F32_TOL)
        assert [c.token_str for c in candidates] == tokenizer.convert_ids_to_tokens(expected_ids)
        assert np.all(np.diff([c.score for c in candidates]) <= 0)
    # Each sequence fills its own mask; with two masks the other one stays visible.
    assert results[0][0].sequence.count("[MASK]") == 1


def test_fill_mask_refuses_text_without_mask_and_bad_top_k():
    model = minibert.BertForMaskedLM.from_pretrained(WEIGHTS / "tiny-mlm")
    tokenizer = minibert.Tokenizer.from_pretrained(WEIGHTS / "tiny-mlm")
    with pytest.raises(InputError, match="no \\[MASK\\]"):
        minibert.fill_mask(model, tokenizer, "the cat sat")
    with pytest.raises(InputError, match="top_k"):
        minibert.fill_mask(model, tokenizer, "the [MASK] sat", top_k=0)


# ------------------------------------------------------------------------------------------------------
# Sequence classification


@pytest.mark.parametrize("dtype, tol", [("float32", F32_TOL), ("float64", F64_TOL)])
def test_classifier_logits_match_transformers(dtype, tol):
    ref = load_reference("tiny-classifier")
    model = minibert.BertForSequenceClassification.from_pretrained(WEIGHTS / "tiny-classifier", dtype=dtype)
    out = model(**inputs_of(ref))
    assert out.logits.dtype == np.dtype(dtype) and out.logits.shape == (4, 3)
    assert float(np.max(np.abs(out.logits - ref[f"{dtype}/logits"]))) <= tol


def test_classifier_probabilities_are_softmax_and_labels_come_from_id2label():
    ref = load_reference("tiny-classifier")
    model = minibert.BertForSequenceClassification.from_pretrained(WEIGHTS / "tiny-classifier", dtype=np.float64)
    assert model.id2label == {0: "negative", 1: "neutral", 2: "positive"} and model.num_labels == 3
    out = model(**inputs_of(ref))
    np.testing.assert_allclose(out.probabilities, softmax(ref["float64/logits"]), rtol=0, atol=F64_TOL)
    np.testing.assert_allclose(out.probabilities.sum(axis=-1), 1.0, atol=1e-15)
    assert out.predicted_labels == [model.id2label[i] for i in np.argmax(ref["float64/logits"], axis=-1)]


def test_classifier_reads_sentence_pairs_through_token_type_ids():
    ref = load_reference("tiny-classifier")
    tokenizer = minibert.Tokenizer.from_pretrained(WEIGHTS / "tiny-classifier")
    encoded = tokenizer(list(ref["texts"]), list(ref["text_pairs"]))
    for key, value in inputs_of(ref).items():
        np.testing.assert_array_equal(encoded[key], value)


# ------------------------------------------------------------------------------------------------------
# Live, wherever transformers is installed.


def test_fill_mask_matches_live_transformers_pipeline():
    pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    directory = str(WEIGHTS / "tiny-mlm")
    pipe = transformers.pipeline("fill-mask", model=directory, tokenizer=directory, device="cpu", top_k=5)
    model = minibert.BertForMaskedLM.from_pretrained(directory)
    tokenizer = minibert.Tokenizer.from_pretrained(directory)
    for text in ["the cat sat on the [MASK] .", "paris is the [MASK] of [MASK] ."]:
        expected = pipe(text)
        expected = [expected] if isinstance(expected[0], dict) else expected  # one list per mask, as ours
        ours = minibert.fill_mask(model, tokenizer, text, top_k=5)
        for mine, theirs in zip(ours, expected, strict=True):
            assert [c.token for c in mine] == [e["token"] for e in theirs]
            np.testing.assert_allclose([c.score for c in mine], [e["score"] for e in theirs], rtol=0, atol=F32_TOL)
            assert [c.token_str for c in mine] == [e["token_str"] for e in theirs]
            assert [c.sequence for c in mine] == [e["sequence"] for e in theirs]


def test_classifier_matches_live_transformers_pipeline():
    pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    directory = str(WEIGHTS / "tiny-classifier")
    pipe = transformers.pipeline("text-classification", model=directory, tokenizer=directory, device="cpu", top_k=None)
    model = minibert.BertForSequenceClassification.from_pretrained(directory)
    tokenizer = minibert.Tokenizer.from_pretrained(directory)
    texts = ["a great day", "the film was bad"]
    out = model(**tokenizer(texts))
    for row, expected in zip(out.probabilities, pipe(texts), strict=True):
        scores = {e["label"]: e["score"] for e in expected}
        np.testing.assert_allclose(row, [scores[model.id2label[i]] for i in range(3)], rtol=0, atol=F32_TOL)


@pytest.mark.parametrize(
    "name, cls", [("tiny-mlm-untied", "BertForMaskedLM"), ("tiny-classifier", "BertForSequenceClassification")]
)
def test_heads_match_live_transformers_in_float64_on_new_inputs(name, cls):
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    theirs = getattr(transformers, cls).from_pretrained(WEIGHTS / name, attn_implementation="eager").eval()
    theirs = theirs.to(torch.float64)
    ours = getattr(minibert, cls).from_pretrained(WEIGHTS / name, dtype=np.float64)
    rng = np.random.default_rng(5)
    input_ids = rng.integers(0, ours.config.vocab_size, size=(2, 9))
    token_type_ids = (np.arange(9) >= 5).astype(np.int64)[None].repeat(2, axis=0)
    attention_mask = np.ones((2, 9), dtype=np.int64)
    attention_mask[1, 6:] = 0
    inputs = {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": token_type_ids}
    with torch.no_grad():
        expected = theirs(**{k: torch.from_numpy(v) for k, v in inputs.items()}).logits.numpy()
    assert float(np.max(np.abs(ours(**inputs).logits - expected))) <= F64_TOL
