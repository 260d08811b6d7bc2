"""BertModel.trace: every intermediate of the forward pass, named after the checkpoint's modules, checked against
the outputs of transformers' own modules (captured with forward hooks) on the real MiniLM checkpoint."""

import numpy as np
import pytest
from support.helpers import F32_TOL, F64_TOL, WEIGHTS, minilm_dir

import minibert
from minibert.functional import softmax

TEXTS = ["Why is the pooled output different?", "A second, longer sentence, so that the first row gets padding."]

# Before their LayerNorm, the feed-forward outputs (`encoder.layer.*.output.dense`, sums of 1536 products) reach
# ~200 on MiniLM's outlier dimensions, where one float32 ulp (1.5e-5) already exceeds F32_TOL. Float32 therefore also
# allows 1e-6 of the value itself (8 ulp); seen: 3.6e-7 beyond F32_TOL. Float64 keeps the absolute F64_TOL alone.
F32_RTOL = 1e-6
# Where a float32 value of ours is further than that from transformers' float32 one, both are roundings of the same
# sums, by different kernels: ours must then be as close to the exact value (transformers in float64) as theirs is,
# within the same bound. Seen on OpenBLAS's SkylakeX kernel (AMD Zen 4): encoder.layer.5.output.dense, 6.5347,
# 2.5e-5 from transformers' float32 value, where ours is 1.66e-5 from float64 and theirs 1.46e-5 (the Haswell kernel
# keeps within F32_RTOL).

# Traced names that are not the output of a transformers module, and what to compare them with instead.
NOT_MODULES = ("scores", "first_token")  # scores: inside eager_attention_forward (a function); first_token: a slice


def hooked_transformers_outputs(torch_dtype, inputs) -> dict[str, np.ndarray]:
    """Run transformers' BertModel on `inputs` and return every named submodule's output, by module name."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    model = transformers.BertModel.from_pretrained(minilm_dir(), attn_implementation="eager", dtype=torch_dtype)
    model.eval()
    captured = {}

    def keep(name):
        def hook(module, args, output):
            if name.endswith("attention.self"):  # BertSelfAttention returns (context, attention probabilities)
                captured[f"{name}.context"] = output[0].detach().numpy().copy()
                captured[f"{name}.probs"] = output[1].detach().numpy().copy()
            elif isinstance(output, torch.Tensor):  # layers and the encoder return tuples or output classes
                captured[name] = output.detach().numpy().copy()

        return hook

    for name, module in model.named_modules():
        if name:
            module.register_forward_hook(keep(name))
    with torch.no_grad():
        model(**{k: torch.from_numpy(v) for k, v in inputs.items()})
    return captured


def real_token_rows(name: str, array: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
    """The elements of a traced tensor that belong to real tokens: padded query rows and key columns dropped."""
    m = attention_mask.astype(bool)
    if array.ndim == 4:  # [B, N, S, S]
        return array[np.broadcast_to(m[:, None, :, None] & m[:, None, None, :], array.shape)]
    if name.startswith("pooler"):  # [B, H]: token 0 is a real token in every row
        return array
    if array.shape[0] == 1 and m.shape[0] > 1:  # position embeddings, [1, S, H], shared by the batch
        return array[0][m.any(axis=0)]
    return array[m]  # [B, S, X] -> [real tokens, X]


@pytest.mark.parametrize("dtype, tol, rtol", [(np.float32, F32_TOL, F32_RTOL), (np.float64, F64_TOL, 0.0)])
def test_every_traced_intermediate_matches_the_transformers_module_of_that_name(dtype, tol, rtol):
    torch = pytest.importorskip("torch")
    tokenizer = minibert.Tokenizer.from_pretrained(minilm_dir())
    inputs = tokenizer(TEXTS)
    assert not inputs["attention_mask"].all(), "the inputs must include padding, to test the masking"
    out, trace = minibert.BertModel.from_pretrained(minilm_dir(), dtype=dtype).trace(**inputs)
    theirs = hooked_transformers_outputs(torch.float32 if dtype == np.float32 else torch.float64, inputs)
    exact = hooked_transformers_outputs(torch.float64, inputs) if dtype == np.float32 else theirs

    compared = [name for name in trace if name in theirs]
    not_compared = {name for name in trace if name not in theirs}
    # Everything but the two traced names that no module returns is compared: 79 names on this 6-layer model.
    assert not_compared == {n for n in trace if n.rsplit(".", 1)[-1] in NOT_MODULES}
    assert len(compared) == len(trace) - 6 - 1 == 72
    for name in compared:  # forward order, so the first failure is where the two start to diverge
        ours, expected, truth = trace[name], theirs[name], exact[name]
        assert ours.shape == expected.shape, f"{name}: shape {ours.shape}, transformers {expected.shape}"
        assert ours.dtype == dtype, f"{name}: dtype {ours.dtype}"
        if dtype == np.float32:  # padded positions agree only loosely in float32; compare the real tokens
            ours, expected, truth = (
                real_token_rows(name, a, inputs["attention_mask"]) for a in (ours, expected, truth)
            )
        ours = ours.astype(np.float64)
        allowed = tol + rtol * np.abs(expected)
        diff = np.abs(ours - expected)
        # Beyond the bound from transformers' float32 value, ours must be no further from the exact value than theirs.
        diff = np.where(diff <= allowed, diff, np.abs(ours - truth) - np.abs(expected.astype(np.float64) - truth))
        worst = np.unravel_index(np.argmax(diff - allowed), diff.shape)
        assert diff[worst] <= allowed[worst], (
            f"{name} is the first traced tensor off from transformers: {ours[worst]} vs {expected[worst]} "
            f"(float64: {truth[worst]}), off by {diff[worst]:.3g} beyond transformers' own rounding where "
            f"{allowed[worst]:.3g} is allowed"
        )


def test_traced_pieces_recompose_into_the_outputs():
    """The names mean what they say: probs is softmax(scores), the pooler's three steps give pooler_output."""
    model = minibert.BertModel.from_pretrained(minilm_dir(), dtype=np.float64)
    out, trace = model.trace(**minibert.Tokenizer.from_pretrained(minilm_dir())(TEXTS))
    layer3 = "encoder.layer.3.attention.self."
    np.testing.assert_array_equal(trace[layer3 + "probs"], softmax(trace[layer3 + "scores"], axis=-1))
    np.testing.assert_array_equal(trace["pooler.first_token"], out.last_hidden_state[:, 0])
    np.testing.assert_array_equal(trace["pooler.activation"], np.tanh(trace["pooler.dense"]))
    np.testing.assert_array_equal(trace["pooler.activation"], out.pooler_output)
    np.testing.assert_array_equal(trace["encoder.layer.5.output.LayerNorm"], out.last_hidden_state)


def test_trace_records_copies_not_arrays_changed_later_in_place():
    # bert_self_output adds the residual into the dense output in place; the trace keeps the value before that.
    model = minibert.BertModel.from_pretrained(WEIGHTS / "tiny-gelu", dtype=np.float64)
    _, trace = model.trace([[1, 2, 3, 4]])
    params = model.params["encoder"]["layer"][0]["attention"]["output"]["dense"]
    context = trace["encoder.layer.0.attention.self.context"]
    np.testing.assert_allclose(
        trace["encoder.layer.0.attention.output.dense"], context @ params["weight"].T + params["bias"], atol=1e-14
    )


def test_trace_gives_the_same_output_as_the_untraced_call_and_names_in_forward_order():
    model = minibert.BertModel.from_pretrained(WEIGHTS / "tiny-gelu")
    ids = [[1, 2, 3, 4], [5, 6, 7, 0]]
    mask = [[1, 1, 1, 1], [1, 1, 1, 0]]
    out, trace = model.trace(ids, attention_mask=mask, output_attentions=True)
    plain = model(ids, attention_mask=mask, output_attentions=True)
    np.testing.assert_array_equal(out.last_hidden_state, plain.last_hidden_state)
    np.testing.assert_array_equal(out.pooler_output, plain.pooler_output)
    names = list(trace)
    assert names[:4] == [
        "embeddings.word_embeddings",
        "embeddings.token_type_embeddings",
        "embeddings.position_embeddings",
        "embeddings.LayerNorm",
    ]
    assert names[-3:] == ["pooler.first_token", "pooler.dense", "pooler.activation"]
    assert names.index("encoder.layer.1.attention.self.query") > names.index("encoder.layer.0.output.LayerNorm")
    for i in range(model.config.num_hidden_layers):
        np.testing.assert_array_equal(trace[f"encoder.layer.{i}.attention.self.probs"], out.attentions[i])


def test_checkpoint_without_pooler_traces_no_pooler():
    model = minibert.BertModel.from_pretrained(WEIGHTS / "tiny-relu-no-pooler")
    _, trace = model.trace([[1, 2, 3]])
    assert not any(name.startswith("pooler") for name in trace)
    assert "encoder.layer.0.intermediate.intermediate_act_fn" in trace
