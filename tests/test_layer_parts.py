"""layer_parts.bert_layer_in_parts against model.bert_layer, its plain form: the same numbers but for the narrowing
products' sums over the parts, which are held to the bound bert_layer itself meets against float64."""

import tracemalloc

import numpy as np
import pytest
from support.helpers import minilm_dir

import minibert
from minibert import model as bert
from minibert.functional import linear
from minibert.layer_parts import bert_layer_in_parts
from minibert.parallel import budget, split
from minibert.trace import Trace

# A layer's float32 output against the same layer in float64 (float64 weights, the same float64 input rounded to
# float32), over real tokens, relative to the output's largest magnitude. Seen on MiniLM over this suite's texts:
# bert_layer 1.1e-7-1.9e-7, in 2, 3 or 4 parts 0.9e-7-1.8e-7; over six 290-token pieces of the README, 1.8e-7-3.7e-7
# and 1.3e-7-3.5e-7 (the parts' sums are no less exact, only other).
LAYER_F32_TOL = 5e-7
# The same for every array a layer's trace records after the first narrowing sum (the dense outputs, the intermediate
# features): seen on MiniLM, bert_layer up to 1.1e-6 of each array's largest magnitude, in 2 parts up to 1.1e-6.
TRACED_F32_TOL = 2e-6
# float64 in parts against float64 whole, every position: the sums' rounding, ~1e-16 of the scale.
LAYER_F64_TOL = 1e-13
# A layer's attention probabilities in parts against bert_layer's, where the BLAS kernel rounds a part's columns of
# Q, K and V otherwise than the whole products (else they are equal). Seen with OpenBLAS's Haswell kernel
# (OPENBLAS_CORETYPE=Haswell) on MiniLM over TEXTS: float32 up to 3.9e-7, float64 up to 8.9e-16.
PROBS_TOL = {np.float32: 1e-6, np.float64: 1e-14}
TEXTS = [
    "Why is the pooled output different from the first token's hidden state? One more dense layer and a tanh.",
    "A padded row: shorter than the others.",
    "Heads go to threads for Q, K, V and the attention; intermediate features go to threads for the feed-forward "
    "network; each thread's share of the two narrowing products is summed, then the bias, residual and LayerNorm.",
]


@pytest.fixture(scope="module")
def layers():
    """Each MiniLM layer's float64 input (from a float64 forward pass over TEXTS), with both models and the mask."""
    directory = minilm_dir()
    models = {dtype: minibert.BertModel.from_pretrained(directory, dtype=dtype) for dtype in (np.float32, np.float64)}
    inputs = minibert.Tokenizer.from_pretrained(directory)(TEXTS)
    ids, attention_mask = inputs["input_ids"], inputs["attention_mask"]
    assert (attention_mask == 0).any()
    m64 = models[np.float64]
    out = bert.bert_model(
        m64.params, m64.config, ids, attention_mask, np.zeros_like(ids), np.arange(ids.shape[1])[None],
        output_hidden_states=True,
    )  # fmt: skip
    return models, out.hidden_states[:-1], attention_mask


def run(model, layer: int, hidden_states, attention_mask, parts=None, threads=1):
    """Layer `layer` of `model` on hidden_states, whole (parts None) or in parts, on `threads` threads."""
    mask = bert.extended_attention_mask(attention_mask, model.dtype)
    params = model.params["encoder"]["layer"][layer]
    x = hidden_states.astype(model.dtype)
    with budget(threads):
        if parts is None:
            return bert.bert_layer(x, mask, **params, config=model.config, output_attentions=True)
        return bert_layer_in_parts(x, mask, **params, config=model.config, parts=parts, output_attentions=True)


def columns_round_as_the_whole_product(model, x, parts: int) -> bool:
    """Whether this BLAS kernel computes each part's columns of Q and of the widening product as the whole product
    computes them, bit for bit (OpenBLAS's SkylakeX kernel does at these cuts; its Haswell kernel does not). Where it
    does, every step of a layer in parts but the narrowing sums is bert_layer's bit for bit."""
    layer = model.params["encoder"]["layer"][0]
    N, D = model.config.num_attention_heads, model.config.hidden_size // model.config.num_attention_heads
    cuts = {"query": [slice(h.start * D, h.stop * D) for h in split(N, parts)]}
    cuts["widening"] = split(model.config.intermediate_size, parts)
    for name, dense in (("query", layer["attention"]["self"]["query"]), ("widening", layer["intermediate"]["dense"])):
        whole = linear(x, **dense)
        for columns in cuts[name]:
            if not np.array_equal(linear(x, dense["weight"][columns], dense["bias"][columns]), whole[..., columns]):
                return False
    return True


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_one_part_is_bert_layer_bit_for_bit(layers, dtype):
    models, inputs, attention_mask = layers
    for layer, x in enumerate(inputs):
        whole, whole_probs = run(models[dtype], layer, x, attention_mask)
        one, one_probs = run(models[dtype], layer, x, attention_mask, parts=1)
        np.testing.assert_array_equal(one, whole, err_msg=f"layer {layer}")
        np.testing.assert_array_equal(one_probs, whole_probs, err_msg=f"layer {layer}")


@pytest.mark.parametrize("parts", [2, 3, 4])
def test_parts_are_as_exact_as_bert_layer_against_float64(layers, parts):
    models, inputs, attention_mask = layers
    real = attention_mask.astype(bool)[:, :, None]
    for layer, x in enumerate(inputs):
        truth, _ = run(models[np.float64], layer, x, attention_mask)
        where = np.broadcast_to(real, truth.shape)
        scale = float(np.abs(truth[where]).max())
        for name, (ours, _) in {
            "bert_layer": run(models[np.float32], layer, x, attention_mask),
            f"{parts} parts": run(models[np.float32], layer, x, attention_mask, parts=parts),
        }.items():
            error = float(np.abs(ours[where] - truth[where]).max())
            assert error <= LAYER_F32_TOL * scale, f"layer {layer}, {name}: {error:.3g} > {LAYER_F32_TOL} x {scale:.3g}"
        in_parts, _ = run(models[np.float64], layer, x, attention_mask, parts=parts)
        np.testing.assert_allclose(in_parts, truth, rtol=0, atol=LAYER_F64_TOL * scale, err_msg=f"layer {layer}")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_every_step_but_the_narrowing_sums_is_bert_layers_own(layers, dtype):
    """Each head's attention is its own: the probabilities of every head in 2 to 4 parts are bert_layer's, bit for bit
    where the BLAS kernel computes a part's columns of Q, K and V as the whole products do; on any kernel within
    PROBS_TOL of them (the same dot products, other last bits of Q, K and V)."""
    models, inputs, attention_mask = layers
    _, probs = run(models[dtype], 2, inputs[2], attention_mask)
    for parts in (2, 3, 4):
        ours = run(models[dtype], 2, inputs[2], attention_mask, parts=parts)[1]
        if columns_round_as_the_whole_product(models[dtype], inputs[2].astype(dtype), parts):
            np.testing.assert_array_equal(ours, probs, err_msg=f"{parts} parts")
        np.testing.assert_allclose(ours, probs, rtol=0, atol=PROBS_TOL[dtype], err_msg=f"{parts} parts")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_same_parts_give_the_same_bits_on_any_number_of_threads(layers, dtype):
    models, inputs, attention_mask = layers
    for parts in (2, 3):
        one = run(models[dtype], 1, inputs[1], attention_mask, parts=parts, threads=1)
        for threads in (2, 3, 4):
            ours = run(models[dtype], 1, inputs[1], attention_mask, parts=parts, threads=threads)
            np.testing.assert_array_equal(ours[0], one[0], err_msg=f"{parts} parts, {threads} threads")
            np.testing.assert_array_equal(ours[1], one[1], err_msg=f"{parts} parts, {threads} threads")


def test_on_one_thread_four_parts_hold_less_than_one_share_more_than_bert_layer(layers):
    """The thread that runs part 0 adds each next share of its run into the sum at once, so a layer in four parts on
    one thread holds one [B*S, H] share beside bert_layer's arrays, not four (seen: 0.65 of a share more at 4x256; it
    was 5.0 with every share held until the sum). NumPy reports its allocations to tracemalloc."""
    models, _, _ = layers
    model = models[np.float32]
    B, S, H = 4, 256, model.config.hidden_size
    x = np.random.default_rng(0).standard_normal((B, S, H)).astype(np.float32)
    mask = bert.extended_attention_mask(np.ones((B, S), np.int64), np.float32)
    params = model.params["encoder"]["layer"][0]

    def peak(**parts) -> int:  # the most bytes held at once during one layer, beyond what was held before it
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            with budget(1):
                layer = bert_layer_in_parts if parts else bert.bert_layer
                layer(x, mask, **params, config=model.config, **parts)
            return tracemalloc.get_traced_memory()[1] - before
        finally:
            tracemalloc.stop()

    share = B * S * H * 4
    extra = (peak(parts=4) - peak()) / share
    assert extra <= 1.0, f"four parts held {extra:.2f} shares of [B*S, H] more than bert_layer"


def test_more_parts_than_heads_leaves_no_part_empty(layers):
    """MiniLM has 12 heads: 16 parts are 12 groups of one head (and 16 groups of intermediate features)."""
    models, inputs, attention_mask = layers
    whole, probs = run(models[np.float64], 0, inputs[0], attention_mask)
    ours, ours_probs = run(models[np.float64], 0, inputs[0], attention_mask, parts=16, threads=3)
    np.testing.assert_allclose(ours, whole, rtol=0, atol=LAYER_F64_TOL * np.abs(whole).max())
    np.testing.assert_allclose(ours_probs, probs, rtol=0, atol=PROBS_TOL[np.float64])


@pytest.mark.parametrize("parts", [1, 2, 3])
def test_a_traced_layer_records_what_bert_layer_records(layers, parts):
    """The same names in the same order; every array as near float64's as bert_layer's own, and up to the first
    narrowing sum (query ... context) bert_layer's bit for bit where the BLAS kernel computes a part's columns of Q, K
    and V as the whole products do; the traced output is the untraced one, bit for bit."""
    models, inputs, attention_mask = layers
    records = {}
    for name, dtype, layer_parts in (
        ("truth", np.float64, None),
        ("plain", np.float32, None),
        ("ours", np.float32, parts),
    ):
        model = models[dtype]
        mask = bert.extended_attention_mask(attention_mask, dtype)
        x, params = inputs[3].astype(dtype), model.params["encoder"]["layer"][3]
        records[name] = {}
        with budget(1 if layer_parts is None else 2):  # bert_layer on one thread: its own products are not cut
            if layer_parts is None:
                bert.bert_layer(x, mask, **params, config=model.config, trace=Trace(records[name]))
            else:
                traced, _ = bert_layer_in_parts(
                    x, mask, **params, config=model.config, parts=parts, trace=Trace(records[name])
                )
                untraced, _ = bert_layer_in_parts(x, mask, **params, config=model.config, parts=parts)
    truth, plain, ours = records["truth"], records["plain"], records["ours"]
    assert list(ours) == list(plain) == [
        "attention.self.query", "attention.self.key", "attention.self.value", "attention.self.scores",
        "attention.self.probs", "attention.self.context", "attention.output.dense", "attention.output.LayerNorm",
        "intermediate.dense", "intermediate.intermediate_act_fn", "output.dense", "output.LayerNorm",
    ]  # fmt: skip
    np.testing.assert_array_equal(traced, untraced)
    np.testing.assert_array_equal(ours["output.LayerNorm"], traced)
    if columns_round_as_the_whole_product(models[np.float32], inputs[3].astype(np.float32), parts):
        for name in list(plain)[:6]:
            np.testing.assert_array_equal(ours[name], plain[name], err_msg=name)
    real = attention_mask.astype(bool)
    real_pairs = real[:, None, :, None] & real[:, None, None, :]  # [B, 1, S, S]: a real token and a real key
    for name in plain:
        where = np.broadcast_to(real_pairs if truth[name].ndim == 4 else real[:, :, None], truth[name].shape)
        scale = float(np.abs(truth[name][where]).max())
        for who, record in (("bert_layer", plain), (f"{parts} parts", ours)):
            error = float(np.abs(record[name][where] - truth[name][where]).max())
            assert error <= TRACED_F32_TOL * scale, f"{name}, {who}: {error:.3g} > {TRACED_F32_TOL} x {scale:.3g}"
