"""Inputs in batches of nearly one token length, as minibert's encoders run them, and their outputs back in input order.

    run_in_length_batches(items, tokenize, forward, out, batch_size)

Items are sorted longest first by characters (as sentence-transformers sorts them), tokenized in chunks of
TOKENIZE_CHUNK_BATCHES batches (one call each: the tokenizers library encodes a list on all cores unless
TOKENIZERS_PARALLELISM=false), then within a chunk sorted by token count and cut into batches of at most batch_size
rows of nearly the same length (length_batches), each padded only to its own longest row. Which items share a batch
changes only the rounding of their rows (the padding is masked).
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
# A batch ends before an item shorter than this share of its longest, so that at most ~10% of what it computes is
# padding (rows of fixed count, as sentence-transformers batches them, computed 27% padding on mixed-length prose).
SAME_LENGTH_SHARE = 0.9


def length_batches(lengths: np.ndarray, batch_size: int) -> list[slice]:
    """Consecutive batches of rows sorted longest first: at most batch_size rows, each at least SAME_LENGTH_SHARE of
    its batch's first (longest) row. [C] token counts, longest first -> slices of them"""
    batches, start = [], 0
    for i in range(1, len(lengths) + 1):
        if i == len(lengths) or i - start == batch_size or lengths[i] < SAME_LENGTH_SHARE * lengths[start]:
            batches.append(slice(start, i))
            start = i
    return batches


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
        raise InputError("show_progress_bar=True needs tqdm: pip install 'minibert[progress]'") from None
    bar = tqdm(total=total, desc="Batches", unit="text")
    return bar.update, bar
