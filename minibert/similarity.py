"""Similarity of embeddings, as sentence-transformers scores them: cosine, dot, and the negated euclidean and manhattan
distances, for every pair of rows (`similarity`) or row by row (`similarity_pairwise`).

    cos_sim(a [n, H], b [m, H])           -> [n, m]   a_i · b_j / (|a_i| |b_j|)
    pairwise_cos_sim(a [n, H], b [n, H])  -> [n]      a_i · b_i / (|a_i| |b_i|)

These mirror sentence-transformers v6.3's `sentence_transformers/util/similarity.py` (`cos_sim`, `dot_score`,
`euclidean_sim`, `manhattan_sim` and their `pairwise_` forms), with one difference: they take and return NumPy arrays
(sentence-transformers returns a torch.Tensor), in the embeddings' float dtype. A 1-D vector counts as one row, so
the all-pairs forms always return a 2-D array.
"""

import numpy as np

from .errors import InputError

# Rows of `a` compared at once by the distance forms: a [rows, m, H] difference of at most ~32 MiB in float32.
_DISTANCE_ELEMENTS = 8 * 2**20


def _as_rows(name: str, x, where: str) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim not in (1, 2) or x.dtype.kind != "f":
        raise InputError(f"{where}: {name} must be a 1-D or 2-D float array of embeddings, found {x.dtype} {x.shape}")
    return np.atleast_2d(x)


def _pair(a, b, where: str, pairwise: bool = False) -> tuple[np.ndarray, np.ndarray]:
    a, b = _as_rows("a", a, where), _as_rows("b", b, where)
    if a.shape[1] != b.shape[1]:
        raise InputError(f"{where}: a has {a.shape[1]} dimensions but b has {b.shape[1]}; they must match")
    if pairwise and len(a) != len(b):
        raise InputError(f"{where}: a has {len(a)} rows but b has {len(b)}; pairwise similarity pairs them one to one")
    dtype = np.result_type(a, b)
    return a.astype(dtype, copy=False), b.astype(dtype, copy=False)


def normalize(x: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """x / max(||x||_2, eps) along the last axis, as torch.nn.functional.normalize. [..., H] -> [..., H]"""
    norm = np.sqrt((x * x).sum(axis=-1, keepdims=True))  # [..., 1]
    return x / np.maximum(norm, x.dtype.type(eps))


def cos_sim(a, b) -> np.ndarray:
    """cos(a_i, b_j) for every pair of rows: [n, H] x [m, H] -> [n, m]."""
    a, b = _pair(a, b, "cos_sim")
    return normalize(a) @ normalize(b).T  # [n, H] @ [H, m] -> [n, m]


def dot_score(a, b) -> np.ndarray:
    """a_i · b_j for every pair of rows: [n, H] x [m, H] -> [n, m]."""
    a, b = _pair(a, b, "dot_score")
    return a @ b.T


def _negated_distance(a: np.ndarray, b: np.ndarray, p: int) -> np.ndarray:
    """-||a_i - b_j||_p for every pair, from the differences themselves (a |a|² + |b|² - 2 a·b expansion cancels
    to ~1e-3 in float32 for near-equal vectors). [n, H] x [m, H] -> [n, m]"""
    out = np.empty((len(a), len(b)), dtype=a.dtype)
    rows = max(1, _DISTANCE_ELEMENTS // max(1, len(b) * a.shape[1]))
    for start in range(0, len(a), rows):
        diff = a[start : start + rows, None, :] - b[None, :, :]  # [r, m, H]
        out[start : start + rows] = np.abs(diff).sum(axis=-1) if p == 1 else np.sqrt((diff * diff).sum(axis=-1))
    return -out


def euclidean_sim(a, b) -> np.ndarray:
    """-||a_i - b_j||_2 for every pair of rows: [n, H] x [m, H] -> [n, m]."""
    return _negated_distance(*_pair(a, b, "euclidean_sim"), p=2)


def manhattan_sim(a, b) -> np.ndarray:
    """-||a_i - b_j||_1 for every pair of rows: [n, H] x [m, H] -> [n, m]."""
    return _negated_distance(*_pair(a, b, "manhattan_sim"), p=1)


def pairwise_cos_sim(a, b) -> np.ndarray:
    """cos(a_i, b_i) row by row: [n, H] x [n, H] -> [n]."""
    a, b = _pair(a, b, "pairwise_cos_sim", pairwise=True)
    return (normalize(a) * normalize(b)).sum(axis=-1)


def pairwise_dot_score(a, b) -> np.ndarray:
    """a_i · b_i row by row: [n, H] x [n, H] -> [n]."""
    a, b = _pair(a, b, "pairwise_dot_score", pairwise=True)
    return (a * b).sum(axis=-1)


def pairwise_euclidean_sim(a, b) -> np.ndarray:
    """-||a_i - b_i||_2 row by row: [n, H] x [n, H] -> [n]."""
    a, b = _pair(a, b, "pairwise_euclidean_sim", pairwise=True)
    diff = a - b
    return -np.sqrt((diff * diff).sum(axis=-1))


def pairwise_manhattan_sim(a, b) -> np.ndarray:
    """-||a_i - b_i||_1 row by row: [n, H] x [n, H] -> [n]."""
    a, b = _pair(a, b, "pairwise_manhattan_sim", pairwise=True)
    return -np.abs(a - b).sum(axis=-1)


# similarity_fn_name -> (all pairs, row by row), sentence-transformers' SimilarityFunction values.
SIMILARITY_FUNCTIONS = {
    "cosine": (cos_sim, pairwise_cos_sim),
    "dot": (dot_score, pairwise_dot_score),
    "euclidean": (euclidean_sim, pairwise_euclidean_sim),
    "manhattan": (manhattan_sim, pairwise_manhattan_sim),
}
_ALIASES = {"dot_product": "dot", "cos_sim": "cosine", "dot_score": "dot"}


def similarity_function_name(name, where: str) -> str:
    """A similarity_fn_name checked against SIMILARITY_FUNCTIONS ('dot_product' is read as 'dot', as upstream)."""
    name = getattr(name, "value", name)  # a sentence-transformers SimilarityFunction member
    name = _ALIASES.get(name, name) if isinstance(name, str) else name
    if name not in SIMILARITY_FUNCTIONS:
        raise InputError(f"{where}: similarity_fn_name must be one of {list(SIMILARITY_FUNCTIONS)}, found {name!r}")
    return name


def cosine_similarity(a, b) -> np.ndarray:
    """cos(a_i, b_j) for every pair of rows: [n, H] x [m, H] -> [n, m]; a 1-D vector counts as one row.

    Like sentence_transformers.util.cos_sim, the result is always 2-D: `cosine_similarity(u, v)[0, 0]` for two
    vectors.
    """
    a, b = _pair(a, b, "cosine_similarity")
    return normalize(a) @ normalize(b).T  # [n, H] @ [H, m] -> [n, m]
