"""Bounded fuzzing with fixed seeds (tests/support/fuzz_robustness.py holds the fuzzers and runs them for longer), and
property tests over random ids, masks and texts that need no PyTorch.

Every outcome must be a CheckpointError/InputError or a correct result, never another exception.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.fuzz_robustness import check_loaded, fuzz_tokenizer_once, run, seed_file
from support.helpers import minilm_dir

import minibert

SEED = 20261125  # fixed, so CI runs the same inputs every time; the script draws fresh seeds


@pytest.mark.parametrize(
    "target, iterations",
    [("safetensors", 1000), ("model", 300), ("bin", 300), ("saved_model", 300), ("tokenizer", 300)],
)
def test_fuzzed_inputs_give_a_clear_error_or_a_correct_result(target, iterations):
    if target == "bin":
        pytest.importorskip("torch")  # only to write the original pytorch_model.bin; reading it needs no torch
    outcomes = run(target, SEED, iterations=iterations)
    assert sum(outcomes.values()) == iterations
    # Both outcomes occur: the mutations reach past the first check, and the checks do refuse.
    if target != "tokenizer":
        assert outcomes["refused"] > 0 and outcomes["loaded"] > 0, outcomes


@pytest.fixture(scope="module")
def tokenizer():
    return minibert.Tokenizer.from_pretrained(minilm_dir())


@settings(max_examples=60, deadline=None, database=None)
@given(
    ids=st.lists(
        st.lists(st.integers(-(2**63), 2**63 - 1) | st.integers(0, 98), min_size=1, max_size=6), min_size=1, max_size=3
    ),
    mask_values=st.lists(st.sampled_from([0, 1, 1, 1, 2, -1, 0.5, float("nan")]), min_size=1, max_size=18),
)
def test_random_ids_and_masks_give_a_finite_output_or_an_input_error(tiny_model, ids, mask_values):
    width = len(ids[0])
    mask = [[mask_values[(r * width + c) % len(mask_values)] for c in range(width)] for r in range(len(ids))]
    valid = (
        all(len(row) == width for row in ids)
        and all(0 <= i < tiny_model.config.vocab_size for row in ids for i in row)
        and all(m in (0, 1) for row in mask for m in row)
    )
    try:
        out = tiny_model(ids, attention_mask=mask)
    except minibert.InputError:
        assert not valid
    else:
        assert valid
        assert out.last_hidden_state.shape == (len(ids), width, tiny_model.config.hidden_size)
        assert np.isfinite(out.last_hidden_state).all()  # fully padded rows included


@settings(max_examples=60, deadline=None, database=None)
@given(texts=st.lists(st.text(st.characters(exclude_categories=["Cs"]), max_size=300), min_size=1, max_size=4))
def test_any_unicode_text_encodes_to_cls_text_sep_rows(tokenizer, texts):
    encoded = tokenizer(texts)
    ids, mask = encoded["input_ids"], encoded["attention_mask"]
    assert ids.shape == mask.shape == encoded["token_type_ids"].shape and ids.shape[0] == len(texts)
    lengths = mask.sum(axis=1)
    assert (ids[:, 0] == 101).all() and (ids[np.arange(len(texts)), lengths - 1] == 102).all()
    assert ids.shape[1] <= tokenizer.model_max_length


def test_the_load_oracle_fails_on_tensors_that_differ_from_the_header():
    from safetensors.numpy import load

    data = seed_file()
    tensors = load(data)
    check_loaded(data, tensors)
    for change in (lambda t: t["a"].__setitem__((0, 0), 7.0), lambda t: t.update(b=t["b"][:3]), lambda t: t.pop("e")):
        changed = {name: array.copy() for name, array in tensors.items()}
        change(changed)
        with pytest.raises(AssertionError):
            check_loaded(data, changed)


def test_fuzz_tokenizer_once_checks_something(tokenizer):
    """The fuzzer's own oracle fails on a wrong result: a tokenizer whose rows lose their [SEP]."""

    class Broken:
        backend, model_max_length = tokenizer.backend, tokenizer.model_max_length

        def __call__(self, texts, *args, **kwargs):
            encoded = tokenizer(texts, *args, **kwargs)
            encoded["input_ids"][:, :] = 101
            return encoded

        convert_ids_to_tokens = tokenizer.convert_ids_to_tokens

    with pytest.raises(AssertionError):
        for _ in range(20):
            fuzz_tokenizer_once(Broken(), np.random.default_rng(0))
