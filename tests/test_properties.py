"""Property-based parity: random small configs, ids, token types, masks (fully padded rows included), lengths and
position ids, each run through minibert and through transformers' BertModel (eager attention) in float64, compared
at every position, padding included, within F64_TOL.

Needs torch and transformers (the `reference` extra), so it runs in CI; hypothesis draws MAX_EXAMPLES cases a run
(about ten seconds on two cores). To search harder, locally: HYPOTHESIS_MAX_EXAMPLES=2000 python -m pytest
tests/test_properties.py.
"""

import os

import numpy as np
import pytest
from support.helpers import F64_TOL, first_divergence, named_outputs

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import minibert  # noqa: E402
from minibert.checkpoint import to_params  # noqa: E402
from minibert.functional import ACT2FN  # noqa: E402

MAX_EXAMPLES = int(os.environ.get("HYPOTHESIS_MAX_EXAMPLES", 40))
# Random weights at the init scale (std 0.02) make every layer nearly linear and every softmax nearly uniform, which
# would hide a mis-wired mask or activation; std 0.5 gives scores of order 1-10 and activations far from 0.
WEIGHT_STD = 0.5

PROPERTY_SETTINGS = settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,  # the first example pays for building transformers' modules
    database=None,  # no .hypothesis/ directory in the worktree; a failure prints its reproduction blob instead
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@st.composite
def configs(draw) -> dict:
    heads = draw(st.integers(1, 4))
    return dict(
        vocab_size=draw(st.integers(2, 60)),
        # A head size of at least 2 and a hidden size of at least 4: with fewer, LayerNorm divides by the spread of
        # two or three numbers, which amplifies last-bit differences past any fixed tolerance.
        hidden_size=heads * draw(st.integers(2, 6)) if heads > 1 else draw(st.integers(4, 12)),
        num_hidden_layers=draw(st.integers(1, 2)),
        num_attention_heads=heads,
        intermediate_size=draw(st.integers(1, 40)),
        hidden_act=draw(st.sampled_from(sorted(ACT2FN))),
        max_position_embeddings=draw(st.integers(1, 24)),
        type_vocab_size=draw(st.integers(1, 3)),
        layer_norm_eps=draw(st.sampled_from([1e-12, 1e-5, 1e-3])),
    )


@st.composite
def cases(draw):
    config = draw(configs())
    batch = draw(st.integers(1, 3))
    seq = draw(st.integers(1, config["max_position_embeddings"]))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, config["vocab_size"], size=(batch, seq))
    token_types = rng.integers(0, config["type_vocab_size"], size=(batch, seq))
    mask_kind = draw(st.sampled_from(["none", "random", "right-padded", "one row fully padded"]))
    mask = None
    if mask_kind == "random":
        mask = rng.integers(0, 2, size=(batch, seq))
    elif mask_kind == "right-padded":
        lengths = rng.integers(1, seq + 1, size=batch)
        mask = (np.arange(seq)[None, :] < lengths[:, None]).astype(np.int64)
    elif mask_kind == "one row fully padded":
        mask = np.ones((batch, seq), dtype=np.int64)
        mask[rng.integers(batch)] = 0
    positions = None
    if draw(st.booleans()):  # explicit position ids: any in-range values, shared by the batch or per row
        rows = draw(st.sampled_from([1, batch]))
        positions = rng.integers(0, config["max_position_embeddings"], size=(rows, seq))
    return config, seed, dict(input_ids=ids, token_type_ids=token_types, attention_mask=mask, position_ids=positions)


def random_reference_model(config: dict, seed: int):
    torch.manual_seed(seed)
    reference = transformers.BertModel(transformers.BertConfig(**config, attn_implementation="eager"))
    reference = reference.to(torch.float64).eval()
    with torch.no_grad():
        for parameter in reference.parameters():
            parameter.normal_(0.0, WEIGHT_STD)
    return reference


@PROPERTY_SETTINGS
@given(cases())
def test_random_configs_and_inputs_match_transformers_in_float64_everywhere(case):
    config, seed, inputs = case
    reference = random_reference_model(config, seed)
    tensors = {name: tensor.numpy() for name, tensor in reference.state_dict().items()}
    model = minibert.BertModel(
        minibert.BertConfig(**config), to_params(tensors, minibert.BertConfig(**config), np.float64, source="random")
    )
    ours = model(**inputs, output_hidden_states=True, output_attentions=True)
    with torch.no_grad():
        theirs = reference(
            **{name: torch.from_numpy(value) for name, value in inputs.items() if value is not None},
            output_hidden_states=True,
            output_attentions=True,
        )
    assert first_divergence(named_outputs(ours), named_outputs(theirs), F64_TOL) is None
