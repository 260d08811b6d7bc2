"""Scaled dot-product attention, softmax(Q Kᵀ / sqrt(D) + mask) V: the plain form, and the fast form model.py calls.

The fast form computes exactly the plain form's numbers (tests/test_attention.py holds them equal, bit for bit): the
same products, scale, mask and softmax, per (sequence, head) block. Each block's scores stay in cache from their
product to their context, instead of a [B, N, S, S] array making every pass of the softmax a trip to memory, and
the blocks are shared among the threads of the call (parallel.threads_here). The probabilities are kept only when
asked for (output_attentions) or traced; otherwise each thread's blocks reuse one scratch array, and the pass never
holds [B, N, S, S] at all (MiniLM at 32x512: a peak of 486 MiB instead of 1,254). A traced call is one block, so
that the trace holds every score.

Shape legend: B batch, N heads, S sequence length, D head size.
"""

import math

import numpy as np

from .functional import softmax
from .parallel import deal, map_in_threads, threads_here
from .trace import NO_TRACE, Trace
from .tuning import ATTENTION_BLOCK_SCORES


def attention_reference(q, k_t, v, mask, trace: Trace = NO_TRACE) -> tuple[np.ndarray, np.ndarray]:
    """softmax(Q Kᵀ / sqrt(D) + mask) V over every head at once. Returns the context [B, N, S, D] and the
    probabilities [B, N, S, S]; q and v are [B, N, S, D], k_t is [B, N, D, S], mask [B, 1, 1, S]."""
    D = q.shape[-1]
    scores = q @ k_t  # [B, N, S, D] @ [B, N, D, S] -> [B, N, S, S]
    scores *= D**-0.5  # transformers scales after the product; scaling q first would round differently
    scores += mask  # [B, 1, 1, S] broadcasts over heads and query positions
    trace("scores", scores)
    probs = trace("probs", softmax(scores, axis=-1))  # [B, N, S, S]
    return probs @ v, probs  # [B, N, S, S] @ [B, N, S, D] -> [B, N, S, D]


def attention_blocks(B: int, N: int, S: int, in_blocks: bool = True) -> list[list[tuple[slice, slice]]]:
    """(sequences, heads) blocks of about ATTENTION_BLOCK_SCORES scores, dealt out to the threads of the call: one list
    per thread. With in_blocks False, one block of everything."""
    if not in_blocks:
        return [[(slice(None), slice(None))]]
    if N * S * S <= ATTENTION_BLOCK_SCORES:  # short sequences: every head of several sequences, fewer NumPy calls
        sequences = ATTENTION_BLOCK_SCORES // (N * S * S)
        return deal([(slice(b, b + sequences), slice(None)) for b in range(0, B, sequences)], threads_here())
    heads = max(1, min(N, ATTENTION_BLOCK_SCORES // (S * S)))
    return deal([(slice(b, b + 1), slice(n, n + heads)) for b in range(B) for n in range(0, N, heads)], threads_here())


def attention(
    q, k_t, v, mask, trace: Trace = NO_TRACE, output_attentions: bool = False
) -> tuple[np.ndarray, np.ndarray | None]:
    """attention_reference's numbers, computed in cache-sized (sequence, heads) blocks shared among the threads: the
    context [B, N, S, D], and the probabilities [B, N, S, S] when asked for or traced (else None)."""
    B, N, S, D = q.shape
    keep = output_attentions or trace.collecting
    probs = np.empty((B, N, S, S), q.dtype) if keep else None  # [B, N, S, S], filled block by block
    context = np.empty((B, N, S, D), q.dtype)  # [B, N, S, D]
    # Adding a mask of zeros changes no score, so a sequence without padding skips it (one of seven passes per score).
    padded = mask.reshape(B, S).any(axis=1)  # [B, 1, 1, S] -> [B]

    def attend(b: slice, n: slice, scores: np.ndarray) -> None:  # heads n of sequences b; scores: [b, n, S, S]
        np.matmul(q[b, n], k_t[b, n], out=scores)  # [b, n, S, D] @ [b, n, D, S] -> [b, n, S, S]
        scores *= D**-0.5
        if padded[b].any():
            scores += mask[b]  # [b, 1, 1, S]
        trace("scores", scores)
        softmax(scores, axis=-1, out=scores)  # in place: the scores are spent
        np.matmul(scores, v[b, n], out=context[b, n])  # [b, n, S, S] @ [b, n, S, D] -> [b, n, S, D]

    def attend_all(blocks: list[tuple[slice, slice]]) -> None:  # one thread's blocks
        shapes = [(*q[b, n].shape[:3], S) for b, n in blocks]  # [b, n, S, S] each
        # Scores not kept go to one scratch array per thread, reused block after block while it is still in cache.
        scratch = None if keep else np.empty(max(map(math.prod, shapes), default=0), q.dtype)
        for (b, n), shape in zip(blocks, shapes, strict=True):
            attend(b, n, probs[b, n] if keep else scratch[: math.prod(shape)].reshape(shape))

    map_in_threads(attend_all, attention_blocks(B, N, S, not trace.collecting))
    trace("probs", probs)
    return context, probs
