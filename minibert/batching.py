"""Inputs in batches of nearly one token length, as minibert's encoders run them, and their outputs back in input order.

    run_in_length_batches(items, tokenize, forward, out, batch_size)

Items are sorted longest first by characters (as sentence-transformers sorts them), tokenized in chunks of
TOKENIZE_CHUNK_BATCHES batches (one call each: the tokenizers library encodes a list on all cores unless
TOKENIZERS_PARALLELISM=false), then within a chunk sorted by token count and cut into batches of at most batch_size
rows (length_batches), each padded only to its own longest row. Which items share a batch changes only the rounding
of their rows (the padding is masked).
"""

import logging
from collections.abc import Callable, Sequence

import numpy as np

from .errors import InputError

logger = logging.getLogger("minibert")

# Tokenize this many batches in one call: enough items for the tokenizers library to spread over the cores and to cut
# batches of similar token counts from, few enough that the padded id arrays stay small (64 x 32 x 256 int64 ids:
# 4 MiB per array at MiniLM's max_seq_length).
TOKENIZE_CHUNK_BATCHES = 64
# What a forward pass costs beyond its tokens, counted in tokens: reading the encoder's weights from memory (MiniLM's
# 42 MB do not stay in a 32 MiB L3 from one call to the next) and the calls of every layer. Fitted as time = a + b x
# tokens over MiniLM and bert-base calls of 4 to 2,048 tokens (Zen 4): a/b = 27 and 24 tokens on one core, 64 and 43 on
# two, where b halves and a does not.
CALL_TOKENS = 32


def length_batches(lengths: np.ndarray, batch_size: int) -> list[slice]:
    """Consecutive batches of rows sorted longest first, at most batch_size rows each, that compute the fewest tokens,
    padding included, counting each batch's forward pass as CALL_TOKENS more: sum over batches of CALL_TOKENS + rows x
    longest. Rows of nearly one length share a batch; a few short rows are not a batch of their own, where their own
    forward pass would cost more than their padding. [C] token counts, longest first -> slices of them

    The fewest is found exactly (dynamic programming): cost[j], the least for rows [0, j), is the least over the last
    batch's first row i of cost[i] + CALL_TOKENS + (j - i) x lengths[i] (lengths[i] is that batch's longest)."""
    n = len(lengths)
    lengths = np.asarray(lengths, dtype=np.int64)
    cost = np.zeros(n + 1, dtype=np.int64)  # [n + 1] the least cost of rows [0, j)
    start = np.zeros(n + 1, dtype=np.int64)  # [n + 1] where the last batch of that least cost starts
    for j in range(1, n + 1):
        first = np.arange(max(0, j - batch_size), j)  # the last batch's possible first rows
        candidates = cost[first] + CALL_TOKENS + (j - first) * lengths[first]
        best = len(first) - 1 - int(np.argmin(candidates[::-1]))  # the last of equal costs: earlier batches full
        cost[j], start[j] = candidates[best], first[best]
    batches, j = [], n
    while j > 0:
        batches.append(slice(int(start[j]), j))
        j = int(start[j])
    return batches[::-1]


def run_in_length_batches(
    items: Sequence,
    tokenize: Callable[[list], dict[str, np.ndarray]],
    forward: Callable[[dict[str, np.ndarray]], np.ndarray],
    out: np.ndarray,
    batch_size: int,
    size: Callable = len,
    on_batch: Callable[[int], None] | None = None,
) -> np.ndarray:
    """out[i] = forward(tokenized batch holding items[i]) for every item, in length-sorted batches; returns `out`.

    tokenize(list of items) -> [C, S] arrays padded on the right; forward(batch of those rows) -> [B, ...];
    size(item) is the character count items are first sorted by; on_batch(rows) is called after each batch."""
    order = np.argsort([-size(item) for item in items], kind="stable")  # longest first, by characters
    chunk = batch_size * TOKENIZE_CHUNK_BATCHES
    for start in range(0, len(items), chunk):
        rows = order[start : start + chunk]  # [C] indices into items
        encoded = tokenize([items[i] for i in rows])  # [C, S_chunk]
        lengths = encoded["attention_mask"].sum(axis=1)  # [C] tokens per row
        by_tokens = np.argsort(-lengths, kind="stable")  # longest first, by tokens
        for batch_rows in length_batches(lengths[by_tokens], batch_size):
            pick = by_tokens[batch_rows]  # [B] positions in the chunk
            longest = int(lengths[pick].max())
            batch = {name: array[pick, :longest] for name, array in encoded.items()}  # [B, S]
            out[rows[pick]] = forward(batch)
            if on_batch is not None:
                on_batch(len(pick))
    return out


def progress_bar(show_progress_bar, total: int):
    """on_batch for run_in_length_batches: a tqdm bar when asked for (None: when logging is at INFO or DEBUG, as
    upstream decides), else None."""
    if show_progress_bar is None:
        show_progress_bar = logger.getEffectiveLevel() in (logging.INFO, logging.DEBUG)
    if not show_progress_bar:
        return None, None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        raise InputError("show_progress_bar=True needs tqdm: pip install 'minibert-numpy[progress]'") from None
    bar = tqdm(total=total, desc="Batches", unit="text")
    return bar.update, bar
