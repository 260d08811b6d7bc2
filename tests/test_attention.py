"""attention.py: the fast attention (cache-sized blocks shared among threads) against its plain reference form."""

import tracemalloc

import numpy as np
import pytest

from minibert import attention as attention_module
from minibert.attention import attention, attention_reference
from minibert.parallel import budget
from minibert.trace import Trace
from minibert.tuning import ATTENTION_BLOCK_SCORES


def random_heads(B, N, S, D, dtype, padded):
    rng = np.random.default_rng(0)
    q = rng.standard_normal((B, N, S, D)).astype(dtype)
    k_t = rng.standard_normal((B, N, D, S)).astype(dtype)
    v = rng.standard_normal((B, N, S, D)).astype(dtype)
    mask = np.zeros((B, 1, 1, S), dtype)
    if padded:
        mask[1:, ..., S // 2 :] = np.finfo(dtype).min  # every row but the first is half padding
    return q, k_t, v, mask


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("block_scores", [1 << 16, 2 * 4 * 24 * 24, 64])
def test_attention_in_blocks_on_threads_equals_the_reference_bit_for_bit(dtype, threads, block_scores, monkeypatch):
    """Blocks of every sequence (2^16), of two sequences (padded and not together, and one alone), of one head."""
    monkeypatch.setattr(attention_module, "ATTENTION_BLOCK_SCORES", block_scores)
    q, k_t, v, mask = random_heads(3, 4, 24, 8, dtype, padded=True)
    expected_context, expected_probs = attention_reference(q, k_t, v, mask)
    with budget(threads):
        context, probs = attention(q, k_t, v, mask, output_attentions=True)
        unkept_context, unkept = attention(q, k_t, v, mask)  # the scores through each thread's scratch array
    np.testing.assert_array_equal(context, expected_context)
    np.testing.assert_array_equal(probs, expected_probs)
    np.testing.assert_array_equal(unkept_context, expected_context)
    assert unkept is None


@pytest.mark.parametrize("threads", [1, 2])
def test_probabilities_not_asked_for_are_never_held_whole(threads):
    """Without output_attentions the pass allocates no [B, N, S, S] array, only a block's worth a thread (NumPy
    reports its allocations to tracemalloc). With it, the probabilities are held, as they must be."""
    q, k_t, v, mask = random_heads(4, 12, 128, 32, np.float32, padded=True)
    scores_bytes = 4 * 12 * 128 * 128 * 4  # [B, N, S, S] float32: 3 MiB
    block_bytes = 4 * ATTENTION_BLOCK_SCORES  # a thread's scratch array: 256 KiB

    def peak(**kwargs) -> int:
        tracemalloc.start()
        try:
            with budget(threads):
                attention(q, k_t, v, mask, **kwargs)
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    assert peak() < q.nbytes + threads * 2 * block_bytes  # the context, and twice a thread's scratch at most
    assert peak(output_attentions=True) > scores_bytes


def test_short_sequences_share_a_block_and_long_ones_split_their_heads(monkeypatch):
    monkeypatch.setattr(attention_module, "ATTENTION_BLOCK_SCORES", 1 << 16)
    with budget(2):  # blocks dealt out to two threads
        short = attention_module.attention_blocks(B=8, N=12, S=32)  # 12,288 scores a sequence: 5 to a block
        long = attention_module.attention_blocks(B=1, N=12, S=128)  # 16,384 scores a head: 4 heads to a block
    assert short == [[(slice(0, 5), slice(None))], [(slice(5, 10), slice(None))]]
    assert long == [[(slice(0, 1), slice(0, 4)), (slice(0, 1), slice(8, 12))], [(slice(0, 1), slice(4, 8))]]


def test_a_traced_attention_keeps_the_same_scores_and_probs_as_the_reference():
    q, k_t, v, mask = random_heads(2, 3, 10, 4, np.float32, padded=True)
    fast, plain = {}, {}
    attention(q, k_t, v, mask, Trace(fast))
    attention_reference(q, k_t, v, mask, Trace(plain))
    assert list(fast) == list(plain) == ["scores", "probs"]
    for name in plain:
        np.testing.assert_array_equal(fast[name], plain[name], err_msg=name)


def test_the_reference_is_the_formula():
    """softmax(Q Kᵀ / sqrt(D) + mask) V, written out with np.exp in float64."""
    q, k_t, v, mask = random_heads(2, 2, 6, 4, np.float64, padded=True)
    scores = np.einsum("bnsd,bndt->bnst", q, k_t) / np.sqrt(4) + mask
    weights = np.exp(scores - scores.max(-1, keepdims=True))
    weights /= weights.sum(-1, keepdims=True)
    context, probs = attention_reference(q, k_t, v, mask)
    np.testing.assert_allclose(probs, weights, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(context, weights @ v, rtol=1e-12, atol=1e-15)
