"""Live comparison with transformers' BertModel (eager attention) on the same weights and inputs, layer by layer.

Runs wherever torch and transformers are installed (CI installs both). A failure names the first tensor, in forward
order, that is off: the embedding output, a layer's attention probabilities, a layer's hidden state, the pooler.
"""

import numpy as np
import pytest
from safetensors import safe_open
from support.helpers import F32_TOL, F64_TOL, TINY_MODELS, WEIGHTS, first_divergence, minilm_dir, named_outputs

import minibert

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

TEXTS = ["Why does BERT's pooled output differ from the first token?", "Short.", "Crème brûlée 中文 naïve café."]
PAIRS = ["A second segment for the first text.", "Pair.", "Third pair, somewhat longer than the others are."]


def theirs(directory, inputs, dtype):
    # transformers would give a checkpoint without pooler weights a randomly initialised pooler; ask it not to.
    with safe_open(directory / "model.safetensors", "np") as f:
        has_pooler = "pooler.dense.weight" in f.keys()
    model = transformers.BertModel.from_pretrained(directory, attn_implementation="eager", add_pooling_layer=has_pooler)
    model = model.eval().to(dtype)
    with torch.no_grad():
        out = model(
            **{k: torch.from_numpy(np.asarray(v)) for k, v in inputs.items()},
            output_hidden_states=True,
            output_attentions=True,
        )
    return named_outputs(out)


def ours(directory, inputs, dtype, break_layer=None):
    model = minibert.BertModel.from_pretrained(directory, dtype=dtype)
    if break_layer is not None:  # swap query and key of one layer: a plausible wiring mistake
        attention = model.params["encoder"]["layer"][break_layer]["attention"]["self"]
        attention["query"], attention["key"] = attention["key"], attention["query"]
    return named_outputs(model(**inputs, output_hidden_states=True, output_attentions=True))


def minilm_inputs():
    return minibert.Tokenizer.from_pretrained(minilm_dir())(TEXTS, PAIRS)


def test_minilm_float32_within_1e_5_on_real_tokens_at_every_layer():
    inputs = minilm_inputs()
    assert inputs["attention_mask"].min() == 0  # the batch really has padding
    divergence = first_divergence(
        ours(minilm_dir(), inputs, np.float32),
        theirs(minilm_dir(), inputs, torch.float32),
        F32_TOL,
        inputs["attention_mask"],
    )
    assert divergence is None, f"first tensor off by more than {F32_TOL}: {divergence}"


def test_minilm_float64_within_1e_10_at_every_position_padding_included():
    inputs = minilm_inputs()
    divergence = first_divergence(
        ours(minilm_dir(), inputs, np.float64), theirs(minilm_dir(), inputs, torch.float64), F64_TOL
    )
    assert divergence is None, f"first tensor off by more than {F64_TOL}: {divergence}"


@pytest.mark.parametrize("name", TINY_MODELS)
def test_tiny_checkpoints_float64_live(name):
    rng = np.random.default_rng(7)
    config = minibert.BertConfig.from_json_file(WEIGHTS / name / "config.json")
    inputs = {
        "input_ids": rng.integers(0, config.vocab_size, size=(2, 9)),
        "attention_mask": np.array([[1] * 9, [1] * 4 + [0] * 5]),
        "token_type_ids": rng.integers(0, config.type_vocab_size, size=(2, 9)),
    }
    expected = theirs(WEIGHTS / name, inputs, torch.float64)
    divergence = first_divergence(ours(WEIGHTS / name, inputs, np.float64), expected, F64_TOL)
    assert divergence is None, divergence


def test_a_miswired_layer_is_caught_and_named():
    """The comparison can fail, and says where: breaking layer 3 makes layer 3's attention the first tensor off."""
    inputs = minilm_inputs()
    divergence = first_divergence(
        ours(minilm_dir(), inputs, np.float64, break_layer=3), theirs(minilm_dir(), inputs, torch.float64), F64_TOL
    )
    assert divergence is not None and divergence[0] == "attentions.3", divergence
