"""The forward pass against golden outputs of transformers (weights/make_reference.py made them); no PyTorch."""

import subprocess
import sys

import numpy as np
import pytest
from support.helpers import F32_TOL, F64_TOL, ROOT, TINY_MODELS, WEIGHTS, first_divergence, minilm_dir, named_outputs

import minibert
from minibert.functional import linear


def golden(path, dtype: str) -> dict[str, np.ndarray]:
    with np.load(path) as f:
        return {k.split("/", 1)[1]: f[k] for k in f.files if k.startswith(dtype + "/")}


def inputs_of(path) -> dict[str, np.ndarray]:
    with np.load(path) as f:
        return {k: f[k] for k in ("input_ids", "attention_mask", "token_type_ids")}


@pytest.mark.parametrize("name", TINY_MODELS)
def test_tiny_checkpoint_float32_matches_transformers_on_every_layer(name):
    reference = WEIGHTS / name / "reference.npz"
    inputs = inputs_of(reference)
    model = minibert.BertModel.from_pretrained(WEIGHTS / name, dtype=np.float32)
    out = model(**inputs, output_hidden_states=True, output_attentions=True)
    assert out.last_hidden_state.dtype == np.float32
    assert first_divergence(named_outputs(out), golden(reference, "float32"), F32_TOL, inputs["attention_mask"]) is None


@pytest.mark.parametrize("name", TINY_MODELS)
def test_tiny_checkpoint_float64_matches_transformers_everywhere_padding_included(name):
    reference = WEIGHTS / name / "reference.npz"
    model = minibert.BertModel.from_pretrained(WEIGHTS / name, dtype=np.float64)
    out = model(**inputs_of(reference), output_hidden_states=True, output_attentions=True)
    assert out.last_hidden_state.dtype == np.float64
    assert first_divergence(named_outputs(out), golden(reference, "float64"), F64_TOL) is None


@pytest.mark.parametrize("dtype, tol", [("float32", F32_TOL), ("float64", F64_TOL)])
def test_minilm_matches_transformers_golden_outputs_on_every_layer(dtype, tol):
    """Every hidden state and attention of the real checkpoint, then last_hidden_state and pooler_output, in the order
    the forward pass makes them: float32 on real tokens, float64 everywhere, padding included."""
    reference = WEIGHTS / "minilm-reference.npz"
    inputs = inputs_of(reference)
    model = minibert.BertModel.from_pretrained(minilm_dir(), dtype=dtype)
    out = model(**inputs, output_hidden_states=True, output_attentions=True)
    assert out.last_hidden_state.dtype == np.dtype(dtype)
    expected = golden(reference, dtype)
    assert len(expected) == 2 * model.config.num_hidden_layers + 3  # 7 hidden states, 6 attentions, last, pooler
    mask = inputs["attention_mask"] if dtype == "float32" else None
    assert first_divergence(named_outputs(out), expected, tol, mask) is None


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("threads", [1, 2])
def test_asking_for_the_attentions_changes_no_output(dtype, threads):
    """Without output_attentions no probabilities are kept (the scores go through scratch arrays), and every other
    output is the same bits as with them: a padded batch, and a sequence long enough for the long-sequence path."""
    model = minibert.BertModel.from_pretrained(minilm_dir(), dtype=dtype)
    reference = WEIGHTS / "minilm-reference.npz"
    long = np.random.default_rng(0).integers(1000, 20000, size=(1, 300))
    for inputs in (inputs_of(reference), {"input_ids": long}):
        kept = model(**inputs, output_hidden_states=True, output_attentions=True, threads=threads)
        plain = model(**inputs, output_hidden_states=True, threads=threads)
        assert plain.attentions is None and len(kept.attentions) == model.config.num_hidden_layers
        np.testing.assert_array_equal(plain.last_hidden_state, kept.last_hidden_state)
        np.testing.assert_array_equal(plain.pooler_output, kept.pooler_output)
        for ours, theirs in zip(plain.hidden_states, kept.hidden_states, strict=True):
            np.testing.assert_array_equal(ours, theirs)


def test_pooler_output_is_tanh_of_dense_over_token_0():
    model = minibert.BertModel.from_pretrained(minilm_dir())
    tokenizer = minibert.Tokenizer.from_pretrained(minilm_dir())
    out = model(**tokenizer(["The pooled output is not token 0's hidden state.", "Two texts."]))
    h0 = out.last_hidden_state[:, 0]  # [B, H]
    dense = model.params["pooler"]["dense"]
    np.testing.assert_array_equal(out.pooler_output, np.tanh(h0 @ dense["weight"].T + dense["bias"]))
    # ... and the dense layer plus tanh really change the vector: it is not h0.
    assert np.abs(out.pooler_output - h0).max() > 0.1
    np.testing.assert_array_equal(out.pooler_output, np.tanh(linear(h0, **dense)))


def test_checkpoint_without_pooler_gives_pooler_output_none():
    model = minibert.BertModel.from_pretrained(WEIGHTS / "tiny-relu-no-pooler")
    out = model([[1, 2, 3]])
    assert out.pooler_output is None
    assert out.last_hidden_state.shape == (1, 3, 16)


def test_hidden_states_and_attentions_only_when_asked():
    model = minibert.BertModel.from_pretrained(WEIGHTS / "tiny-gelu")
    out = model([[1, 2, 3, 4]])
    assert out.hidden_states is None and out.attentions is None
    out = model([[1, 2, 3, 4]], output_hidden_states=True, output_attentions=True)
    assert len(out.hidden_states) == model.config.num_hidden_layers + 1
    assert len(out.attentions) == model.config.num_hidden_layers
    assert out.attentions[0].shape == (1, 4, 4, 4)  # [B, N, S, S]
    np.testing.assert_array_equal(out.hidden_states[-1], out.last_hidden_state)
    np.testing.assert_allclose(out.attentions[1].sum(-1), 1.0, rtol=1e-6)


def test_padding_does_not_change_the_real_tokens():
    """A row's outputs at its real tokens do not depend on how much padding follows it."""
    model = minibert.BertModel.from_pretrained(WEIGHTS / "tiny-gelu", dtype=np.float64)
    alone = model([[5, 6, 7]]).last_hidden_state
    padded = model([[5, 6, 7, 0, 0]], attention_mask=[[1, 1, 1, 0, 0]]).last_hidden_state
    np.testing.assert_allclose(padded[:, :3], alone, atol=1e-13)


def test_model_accepts_tokenizer_output_directly():
    model = minibert.BertModel.from_pretrained(minilm_dir())
    tokenizer = minibert.Tokenizer.from_pretrained(minilm_dir())
    encoded = tokenizer(["first text", "a second, longer text"], ["pair a", "pair b"])
    out = model(**encoded)
    assert out.last_hidden_state.shape == (*encoded["input_ids"].shape, 384)
    assert out.pooler_output.shape == (2, 384)


# The reference stack, and the optional extras (embed's dask/tqdm, explain's matplotlib, sentence-transformers,
# onnxruntime for the benchmarks): none may come with import + load + forward.
NEVER_IMPORTED_BY_THE_FORWARD_PASS = (
    "torch",
    "transformers",
    "tensorflow",
    "scipy",
    "dask",
    "distributed",
    "tqdm",
    "matplotlib",
    "fsspec",
    "sentence_transformers",
    "onnxruntime",
)


def test_forward_pass_never_imports_torch_or_transformers():
    script = (
        "import sys, numpy as np, minibert\n"
        f"m = minibert.BertModel.from_pretrained({str(minilm_dir())!r})\n"
        f"t = minibert.Tokenizer.from_pretrained({str(minilm_dir())!r})\n"
        "out = m(**t(['no torch here']))\n"
        "assert out.pooler_output.shape == (1, 384)\n"
        f"bad = sorted(k for k in sys.modules if k.split('.')[0] in {NEVER_IMPORTED_BY_THE_FORWARD_PASS!r})\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True, cwd=ROOT)


def test_results_keep_the_requested_dtype_without_upcasts():
    for dtype in (np.float32, np.float64):
        model = minibert.BertModel.from_pretrained(WEIGHTS / "tiny-gelu", dtype=dtype)
        out = model([[1, 2, 3]], output_hidden_states=True, output_attentions=True)
        arrays = [out.last_hidden_state, out.pooler_output, *out.hidden_states, *out.attentions]
        assert {a.dtype for a in arrays} == {np.dtype(dtype)}
