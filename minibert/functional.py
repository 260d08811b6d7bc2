"""The math of BERT as NumPy functions over arrays: no files, one dtype in and the same dtype out.

Every function computes in the dtype of its input. Python float constants are "weak" under NumPy 2's
promotion rules (NEP 50), so `0.5 * x` stays float32 when `x` is float32; nothing here upcasts.

Each fast path sits next to the plain form it computes, and tests/test_functional.py compares the two:
`linear` and `linear_reference`, `_gelu_float32` and `gelu_reference`, `apply_elementwise(fn, x)` and `fn(x)`.

One piece of state is read here, not passed: `linear` and `apply_elementwise` ask parallel.threads_here() how many
threads the calling thread may use. That budget is a thread-local set by the caller (`with parallel.budget(...)`, in
batch_threads.bert_model_in_threads: one thread for the work of a forward pass, which shares out its own parts);
outside any such block it is every core of the process. apply_elementwise's result does not depend on it (its pieces
are the same elementwise function, bit for bit), nor does `linear`'s: it cuts a product into blocks of output features
by the budget only where BLAS computes a block to the whole product's bits (parallel.SPLIT_KEEPS_BITS: OpenBLAS's
SkylakeX kernel). Its Haswell kernel rounds a block otherwise: there `linear` cuts only a head's products
(parallel.products_on, read by parallel.fixed_blocks_here()), into the machine's parallel.fixed_parts() blocks at any
budget.
"""

import numpy as np

from .parallel import (
    beside_others_here,
    blas_threads,
    deal,
    fixed_blocks_here,
    fixed_parts,
    map_in_threads,
    split,
    threads_here,
)
from .tuning import (
    CHUNK_ELEMENTS,
    FEW_ROWS,
    GELU_CHUNK_ELEMENTS,
    GELU_CHUNK_ELEMENTS_ALONE,
    MIN_PART_MACS,
    MIN_PIECE_ELEMENTS,
    SMALL_MATRIX_MACS,
    SMALL_MATRIX_OUTPUTS,
    SMALL_ROWS,
)

# ----------------------------------------------------------------------------------------------------------
# erf. NumPy has none and SciPy is not a dependency, so this is the classic rational-approximation scheme of
# Sun's fdlibm `s_erf.c` (the one glibc, musl and FreeBSD ship), evaluated on whole arrays. The coefficients
# below are fdlibm's, which carries this notice:
#   Copyright (C) 1993 by Sun Microsystems, Inc. All rights reserved. Developed at SunPro, a Sun Microsystems,
#   Inc. business. Permission to use, copy, modify, and distribute this software is freely granted, provided
#   that this notice is preserved.
# fdlibm bounds each approximation's error below 2**-57; tests/test_functional.py checks the result against
# math.erf on a dense grid over the whole real line (float64) and against float64 rounded to float32.

# |x| < 0.84375: erf(x) = x + x * P(x^2) / Q(x^2)
_P_SMALL = (
    1.28379167095512558561e-01,
    -3.25042107247001499370e-01,
    -2.84817495755985104766e-02,
    -5.77027029648944159157e-03,
    -2.37630166566501626084e-05,
)
_Q_SMALL = (
    1.0,
    3.97917223959155352819e-01,
    6.50222499887672944485e-02,
    5.08130628187576562776e-03,
    1.32494738004321644526e-04,
    -3.96022827877536812320e-06,
)
# 0.84375 <= |x| < 1.25: erf(|x|) = c + P(s) / Q(s) with s = |x| - 1, c = erf(1) rounded to 24 bits
_ERF_1 = 8.45062911510467529297e-01
_P_MID = (
    -2.36211856075265944077e-03,
    4.14856118683748331666e-01,
    -3.72207876035701323847e-01,
    3.18346619901161753674e-01,
    -1.10894694282396677476e-01,
    3.54783043256182359371e-02,
    -2.16637559486879084300e-03,
)
_Q_MID = (
    1.0,
    1.06420880400844228286e-01,
    5.40397917702171048937e-01,
    7.18286544141962662868e-02,
    1.26171219808761642112e-01,
    1.36370839120290507362e-02,
    1.19844998467991074170e-02,
)
# 1.25 <= |x| < 1/0.35: erfc(|x|) = exp(-x^2 - 0.5625 + R(z) / S(z)) / |x| with z = 1 / x^2
_R_TAIL1 = (
    -9.86494403484714822705e-03,
    -6.93858572707181764372e-01,
    -1.05586262253232909814e01,
    -6.23753324503260060396e01,
    -1.62396669462573470355e02,
    -1.84605092906711035994e02,
    -8.12874355063065934246e01,
    -9.81432934416914548592e00,
)
_S_TAIL1 = (
    1.0,
    1.96512716674392571292e01,
    1.37657754143519042600e02,
    4.34565877475229228821e02,
    6.45387271733267880336e02,
    4.29008140027567833386e02,
    1.08635005541779435134e02,
    6.57024977031928170135e00,
    -6.04244152148580987438e-02,
)
# 1/0.35 <= |x| < 6: the same form with other coefficients. From 6 on, erf(x) rounds to +-1 in float64.
_R_TAIL2 = (
    -9.86494292470009928597e-03,
    -7.99283237680523006574e-01,
    -1.77579549177547519889e01,
    -1.60636384855821916062e02,
    -6.37566443368389627722e02,
    -1.02509513161107724954e03,
    -4.83519191608651397019e02,
)
_S_TAIL2 = (
    1.0,
    3.03380607434824582924e01,
    3.25792512996573918826e02,
    1.53672958608443695994e03,
    3.19985821950859553908e03,
    2.55305040643316442583e03,
    4.74528541206955367215e02,
    -2.24409524465858183362e01,
)


def _polyval(coefficients: tuple[float, ...], x: np.ndarray) -> np.ndarray:
    """c0 + c1 x + c2 x^2 + ... by Horner's rule, in the dtype of x."""
    result = x * coefficients[-1]  # the first Horner step, c_n * x, without a pass filling an array with c_n
    result += coefficients[-2]
    for c in reversed(coefficients[:-2]):
        result *= x
        result += c
    return result


def _high_part(x: np.ndarray) -> np.ndarray:
    """x with the low half of its significand cleared, so that hi * hi is exact (fdlibm's SET_LOW_WORD)."""
    if x.dtype == np.float64:
        return (x.view(np.uint64) & np.uint64(0xFFFFFFFF00000000)).view(np.float64)
    return (x.view(np.uint32) & np.uint32(0xFFFFE000)).view(np.float32)


def _erfc_tail(ax: np.ndarray, r: tuple[float, ...], s: tuple[float, ...]) -> np.ndarray:
    """erfc(|x|) for |x| >= 1.25: exp(-x^2 - 0.5625 + R/S) / |x|, with x^2 split so its rounding error stays out."""
    z = 1.0 / (ax * ax)
    hi = _high_part(ax)
    # -x^2 = -hi^2 + (hi - x)(hi + x), and hi^2 is exact, so exp sees no rounding error of x^2.
    return np.exp(-hi * hi - 0.5625) * np.exp((hi - ax) * (hi + ax) + _polyval(r, z) / _polyval(s, z)) / ax


def erf(x: np.ndarray) -> np.ndarray:
    """The error function erf(x) = 2/sqrt(pi) * integral_0^x exp(-t^2) dt, elementwise, in the dtype of x."""
    x = np.asarray(x)
    if x.dtype not in (np.float32, np.float64):
        raise TypeError(f"erf: expected a float32 or float64 array, got {x.dtype}")
    # Each element takes the branch of its interval. The first branch, cheap and the commonest in GELU, is computed
    # for every element (overflowing to NaN beyond it, silenced); the elements beyond |x| = 0.84375 are then gathered
    # by a flat index array once, and each further interval is found within that smaller set. `take`/`put` instead
    # of boolean masks (x[mask]): those cost ~10x as much per element (measured: 15 against 1.5 ns on float32).
    shape, x = x.shape, x.ravel()
    with np.errstate(over="ignore", invalid="ignore"):
        z = x * x
        out = x + x * (_polyval(_P_SMALL, z) / _polyval(_Q_SMALL, z))  # |x| < 0.84375: x + x P(x^2) / Q(x^2)
    rest = np.flatnonzero(~(np.abs(x) < 0.84375))  # NaN included: it stays NaN below
    if rest.size:
        xr = x.take(rest)
        ar = np.abs(xr)
        erf_rest = xr.copy()  # NaN stays NaN; every other element is overwritten below
        mid = np.flatnonzero(ar < 1.25)
        tail1 = np.flatnonzero((ar >= 1.25) & (ar < 1 / 0.35))
        tail2 = np.flatnonzero((ar >= 1 / 0.35) & (ar < 6.0))
        huge = np.flatnonzero(ar >= 6.0)  # +-inf included
        sm = ar.take(mid) - 1.0
        erf_rest.put(mid, np.copysign(_ERF_1 + _polyval(_P_MID, sm) / _polyval(_Q_MID, sm), xr.take(mid)))
        for where, r, s in ((tail1, _R_TAIL1, _S_TAIL1), (tail2, _R_TAIL2, _S_TAIL2)):
            erf_rest.put(where, np.copysign(1.0 - _erfc_tail(ar.take(where), r, s), xr.take(where)))
        erf_rest.put(huge, np.copysign(1.0, xr.take(huge)))
        out.put(rest, erf_rest)
    return out.reshape(shape)


# ----------------------------------------------------------------------------------------------------------
# Activations, chosen by config.hidden_act. Each mirrors the transformers function of the same name
# (transformers/activations.py) in the order of its floating-point operations.
_SQRT_1_2 = 0.7071067811865476  # 1 / sqrt(2)
_SQRT_2_PI = 0.7978845608028654  # sqrt(2 / pi)


def _into(result: np.ndarray, out: np.ndarray | None) -> np.ndarray:
    """`result`, copied into `out` when one is given: every activation takes out= (it may be x itself), so that
    apply_elementwise can write straight into its output."""
    if out is None:
        return result
    np.copyto(out, result)
    return out


def gelu(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Exact GELU, x * Phi(x) = x/2 * (1 + erf(x / sqrt(2))): what BERT's checkpoints were trained with."""
    x = np.asarray(x)
    if x.dtype == np.float32:
        return _gelu_float32(x, out)
    # torch's order, (x * 0.5) * (1 + erf(x / sqrt(2))), computed in place in erf's result to spare temporaries.
    result = erf(x * _SQRT_1_2)
    result += 1.0
    result *= x * 0.5
    return _into(result, out)


def gelu_reference(x: np.ndarray) -> np.ndarray:
    """Exact GELU, x Phi(x), in float64 whatever x's dtype: the plain form that _gelu_float32 is tested against.

    Phi(x) = erfc(-x / sqrt(2)) / 2, with erfc from fdlibm's pieces above: 1 - erf(z) where z < 1.25 (there erfc(z)
    > 0.07, so the subtraction keeps float64's digits), the tail formula from there on, which keeps its relative
    precision down to gelu(x)'s last float32 (x = -13.2) where 1 + erf(x / sqrt(2)) would have cancelled to 0."""
    x = np.asarray(x, np.float64)
    z = -x * _SQRT_1_2
    with np.errstate(over="ignore", invalid="ignore"):
        erfc = 1.0 - erf(z)
        tail = np.flatnonzero(z >= 1.25)
        zt = z.take(tail)
        erfc.put(tail, np.where(zt < 1 / 0.35, _erfc_tail(zt, _R_TAIL1, _S_TAIL1), _erfc_tail(zt, _R_TAIL2, _S_TAIL2)))
        erfc[z >= 27.0] = 0.0  # erfc(27) < 1e-318: gone, and the tail formula's x^2 would overflow further out
        return x * 0.5 * erfc


# float32 GELU through one exp: the fast path of gelu_reference. With a = |x|,
#     gelu(x) = relu(x) - a Phi(-a) = (x/2 + a/2) - (a/2) t exp(P(t) - x^2/2),    t = K / (K + a/2),
# one formula for both signs (x/2 + a/2 is relu(x), exactly), no branch, no cancellation for x < 0: the result keeps
# its relative precision down the negative tail. P is a degree-7 polynomial fitted to ln(2 Phi(-a) / t) + a^2/2 by
# benchmarks/gelu_fit.py (minimax, 1.1e-7 in the exponent, weighted as the tests bound the result); it replaced
# Numerical Recipes' degree-9 erfc fit (1.2e-7), and t as one division replaced three reciprocals: 24 passes over the
# array instead of 34, ~3.0 against ~4.0 ns per element (benchmarks/README.md). tests/test_functional.py bounds it
# against gelu_reference: abs error <= GELU_F32_MAX_ABS_ERROR, relative <= GELU_F32_MAX_REL_ERROR. torch's float32
# GELU itself is 3.7e-7 from exact.
_GELU_K = 1.55
_GELU_P = (  # P(t) = c0 + c1 t + ... + c7 t^7
    -1.3564715866799335,
    0.9867007394713042,
    0.4979059742122106,
    -0.29807244170004926,
    0.9927727148207667,
    -1.552225994242194,
    0.9305700185206682,
    -0.2011795345702194,
)


def _gelu_float32(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """gelu(x) = (x/2 + |x|/2) - (|x|/2) t exp(P(t) - x^2/2) in float32, in cache-sized chunks, scratch reused; into
    `out` (a C-contiguous float32 array of x's shape, x itself allowed) when given. Each element is computed alone,
    so the chunks' size (larger beside the call's other threads: tuning.GELU_CHUNK_ELEMENTS) changes no bit."""
    flat = np.ascontiguousarray(x).reshape(-1)
    result = np.empty_like(flat) if out is None else out.reshape(-1)  # a view: reshape of a C-contiguous array
    k = min(GELU_CHUNK_ELEMENTS if beside_others_here() else GELU_CHUNK_ELEMENTS_ALONE, flat.size)
    half_x, half_a, t, square = (np.empty(k, np.float32) for _ in range(4))
    # x^2 overflows at large |x| and -inf + inf is NaN (torch gives NaN for -inf too): each lands where it should
    # (exp(-inf) = 0), so the warnings are noise. At x = +inf the term is inf * 0 = NaN, mended after the chunk.
    with np.errstate(over="ignore", invalid="ignore"):
        for start in range(0, flat.size, k):
            xs, o = flat[start : start + k], result[start : start + k]  # o may be xs itself: xs is read first
            h, a, tt, sq = half_x[: xs.size], half_a[: xs.size], t[: xs.size], square[: xs.size]
            np.multiply(xs, 0.5, out=h)  # x/2
            np.multiply(h, xs, out=sq)  # x^2 / 2, rounded once as (x * x) * 0.5 would be
            np.abs(h, out=a)  # a/2
            np.add(a, _GELU_K, out=tt)
            np.divide(_GELU_K, tt, out=tt)  # t = K / (K + a/2)
            np.multiply(tt, _GELU_P[-1], out=o)  # Horner's rule for P(t), in place in the output chunk
            o += _GELU_P[-2]
            for c in reversed(_GELU_P[:-2]):
                o *= tt
                o += c
            o -= sq
            np.exp(o, out=o)
            o *= tt
            o *= a  # (a/2) t exp(P(t) - x^2/2) = a Phi(-a)
            a += h  # x/2 + a/2 = relu(x), halved first so that no finite x overflows
            np.subtract(a, o, out=o)
            if np.fmax.reduce(h) == np.inf:  # a cached max, ~0.03 ns per element; the NaN of (inf/2) * 0 mended
                o[h == np.inf] = np.inf
    return result.reshape(x.shape)


def gelu_new(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """GELU's tanh approximation, x/2 * (1 + tanh(sqrt(2/pi) * (x + 0.044715 x^3))) (Google BERT's, GPT-2's)."""
    return _into(0.5 * x * (1.0 + np.tanh(_SQRT_2_PI * (x + 0.044715 * x**3))), out)


def gelu_fast(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """The tanh approximation written as transformers' FastGELUActivation writes it."""
    return _into(0.5 * x * (1.0 + np.tanh(x * 0.7978845608 * (1.0 + 0.044715 * x * x))), out)


def quick_gelu(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """x * sigmoid(1.702 x)."""
    return _into(x * sigmoid(1.702 * x), out)


def sigmoid(x: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-x)), written so that large |x| neither overflows nor loses precision."""
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def silu(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """x * sigmoid(x), also called swish."""
    return _into(x * sigmoid(x), out)


def relu(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """max(x, 0)."""
    return np.maximum(x, 0.0, out=out)


ACT2FN = {
    "gelu": gelu,
    "gelu_python": gelu,
    "gelu_new": gelu_new,
    "gelu_pytorch_tanh": gelu_new,
    "gelu_python_tanh": gelu_new,
    "gelu_fast": gelu_fast,
    "quick_gelu": quick_gelu,
    "relu": relu,
    "silu": silu,
    "swish": silu,
    "tanh": np.tanh,
}


# ----------------------------------------------------------------------------------------------------------
# The building blocks of every layer.


def linear_reference(x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """x Wᵀ + b, with W in the checkpoint's [out, in] layout, as one product: the plain form of `linear`. [..., in] ->
    [..., out]"""
    return x @ weight.T + bias


def linear(x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """x Wᵀ + b, with W of the checkpoint's [out, in] shape: linear_reference's dot products, in blocks of output
    features on the calling thread's budget (see the module docstring), as W xᵀ for few rows, and for fewer on one
    thread in the blocks of OpenBLAS's small-matrix kernels (small_matrix_linear).
    [..., in] -> [..., out]

    The encoder's weights are loaded column-major except on Intel's CPUs (checkpoint.load_order: the same [out, in]
    array to a reader, Wᵀ C-contiguous in memory), so from FEW_ROWS rows on BLAS reads Wᵀ as it is: on OpenBLAS's
    SkylakeX kernel 8-17% faster than the row-major weight read transposed from 64 rows on (MiniLM's [1536, 384] at
    128 rows: 91.6 against 81.7 GFLOP/s, Zen 4); on the Intel host the row-major weight was as fast or faster. Below
    FEW_ROWS, W xᵀ whatever W's layout (see tuning.FEW_ROWS)."""
    # Fold the leading axes into one so that BLAS runs one large matrix product instead of one per batch item;
    # `weight.T` is a view that BLAS reads transposed, not a copy. (One product per sequence would make a row's result
    # independent of the batch around it, bit for bit, OpenBLAS rounding by a product's row count; it was tried, and
    # put MiniLM's float32 trace 1.1x beyond tests/test_trace.py's bound on one tensor, so it is not done.)
    rows = x.reshape(-1, x.shape[-1])  # [..., in] -> [n, in]
    n, out_features = rows.shape[0], weight.shape[0]
    threads = threads_here()
    # One thread for the call and for BLAS, few rows and a row-major float32 W: OpenBLAS's small-matrix kernels
    # (tuning.SMALL_ROWS). They run on one thread: where BLAS's own threads share a product, or ours, the ordinary
    # product is faster (MiniLM 1x16 on two cores 1.35-1.5x slower in small blocks).
    if n < SMALL_ROWS and threads == 1 and rows.dtype == np.float32 and weight.flags.c_contiguous:
        step = small_matrix_block(n, rows.shape[1])
        if step and blas_threads.small_matrices() and blas_threads.on_one_thread():
            return small_matrix_linear(rows, weight, bias, step).reshape(*x.shape[:-1], out_features)
    # Shared among the call's threads (parallel.threads_here), a product is cut into blocks of output features, so that
    # each thread reads its own part of W, not all of it (cut by rows, every thread would pack all of W: 1.3x slower).
    # Only where BLAS computes a block to the whole product's bits (parallel.SPLIT_KEEPS_BITS), and not for a single
    # row, a vector product whose bits a cut changes there too: elsewhere the bits would follow the thread count. There
    # a head's products (parallel.products_on) are cut into the machine's fixed_parts() blocks at any thread count
    # instead: their bits are not the whole product's, and follow no thread count.
    most = max(1, n * rows.shape[1] * out_features // MIN_PART_MACS)
    if blas_threads.split_keeps_bits():
        blocks = min(threads, most) if n > 1 else 1
    else:
        blocks = min(fixed_parts(), most) if fixed_blocks_here() else 1
    parts = split(out_features, blocks)
    if n < FEW_ROWS:
        # With few rows OpenBLAS is up to ~2x faster at W xᵀ than at x Wᵀ, for either layout of W (tuning.FEW_ROWS):
        # the same dot products, the big matrix as BLAS's first operand.
        out_t = np.empty((out_features, n), rows.dtype)  # [out, n]

        def product(part: slice) -> None:  # [part, in] @ [in, n] -> [part, n]
            np.matmul(weight[part], rows.T, out=out_t[part])

        map_in_threads(lambda mine: [product(part) for part in mine], deal(parts, threads))
        out = np.add(out_t.T, bias, order="C")  # [out, n] -> [n, out]; adding the bias makes it C-ordered
    else:
        out = np.empty((n, out_features), rows.dtype)  # [n, out]

        def product(part: slice) -> None:  # [n, in] @ [in, part] -> [n, part]; Wᵀ's columns, read as stored
            np.matmul(rows, weight[part].T, out=out[:, part])
            out[:, part] += bias[part]

        map_in_threads(lambda mine: [product(part) for part in mine], deal(parts, threads))
    return out.reshape(*x.shape[:-1], out_features)


def small_matrix_block(n: int, in_features: int) -> int:
    """Output features per product that OpenBLAS's small-matrix kernels take at n rows of in_features (tuning.
    SMALL_MATRIX_MACS, SMALL_MATRIX_OUTPUTS), a multiple of 8; 0 where not even 8 fit."""
    return min(SMALL_MATRIX_MACS // (n * in_features), SMALL_MATRIX_OUTPUTS // n) // 8 * 8


def small_matrix_linear(rows: np.ndarray, weight: np.ndarray, bias: np.ndarray, step: int) -> np.ndarray:
    """linear's few-row path for a row-major W on one thread: x Wᵀ + b as one product per `step` output features, each
    small enough for OpenBLAS's small-matrix kernels, which read W as stored instead of packing it (tuning.SMALL_ROWS).
    NumPy runs the blocks as one batched call, [blocks, n, in] @ [blocks, in, step], written into the output's
    columns; the last `out % step` features, if any, are one product more. [n, in] -> [n, out]"""
    n, in_features = rows.shape
    out_features = weight.shape[0]
    out = np.empty((n, out_features), rows.dtype)  # [n, out]
    whole = out_features // step * step  # the features in whole blocks
    w_t = weight[:whole].reshape(-1, step, in_features).transpose(0, 2, 1)  # [blocks, in, step], a view
    np.matmul(rows, w_t, out=out[:, :whole].reshape(n, -1, step).transpose(1, 0, 2))  # [blocks, n, step]
    if whole < out_features:
        np.matmul(rows, weight[whole:].T, out=out[:, whole:])  # [n, in] @ [in, out - whole]
    out += bias
    return out


def layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    """(x - mean) / sqrt(var + eps) * weight + bias over the last axis (biased variance, as torch)."""
    mean = x.mean(axis=-1, keepdims=True)  # [..., 1]
    centered = x - mean
    variance = np.mean(centered * centered, axis=-1, keepdims=True)  # [..., 1]
    # ((x - mean) / sqrt(var + eps)) * weight + bias, the same operations in the same order, in place: no temporaries.
    centered /= np.sqrt(variance + eps)
    centered *= weight
    centered += bias
    return centered


def softmax(x: np.ndarray, axis: int = -1, out: np.ndarray | None = None) -> np.ndarray:
    """exp(x - max) / sum(exp(x - max)) along `axis`; the max keeps exp from overflowing; out=x: in place."""
    # np.fmax skips NaN where np.maximum returns it, and is ~30% faster at a row of 128 (0.57 against 0.81 ns a score,
    # Intel host). The outputs are the same bits: a row with a NaN sums to NaN and comes out all NaN either way.
    e = np.subtract(x, np.fmax.reduce(x, axis=axis, keepdims=True), out=out)
    np.exp(e, out=e)
    e *= np.reciprocal(e.sum(axis=axis, keepdims=True))  # one division per row, then a product: cheaper, within 1 ulp
    return e


# ----------------------------------------------------------------------------------------------------------
# Elementwise work on big arrays. One erf costs dozens of passes over its array; on [B*S, I] (25 MB at 32x128 for
# MiniLM) each pass goes to memory. Cut into pieces of about the L2 size, the passes stay in cache, and NumPy
# releases the GIL inside its loops, so the pieces can run on several cores: those the call may use
# (parallel.threads_here: one inside a slice of a batch, whose other slices keep the other cores busy).


def apply_elementwise(fn, x: np.ndarray, out: np.ndarray | None = None, chunk_elements: int = CHUNK_ELEMENTS):
    """fn(x) for an elementwise activation fn (one of ACT2FN's: each takes out=), computed in cache-sized pieces on the
    call's threads, into `out` when given (x itself: in place); equal to fn(x) bit for bit. model.bert_intermediate
    passes out=x: the product's output is spent, and a trace keeps a copy of it (Trace copies what it records)."""
    threads = threads_here()
    # Smaller arrays are still shared among the threads, down to pieces of MIN_PIECE_ELEMENTS: GELU on 16 x 1536
    # (MiniLM at 1x16) took 344 us on two threads against 404-498 us in one call. Every thread gets as many pieces
    # as the others: 3 pieces of 2^18 on 2 threads (MiniLM at 1x512) left one thread with two thirds of the work.
    per_thread = -(-x.size // (threads * chunk_elements))  # pieces per thread, each at most chunk_elements
    size = max(MIN_PIECE_ELEMENTS, -(-x.size // (threads * per_thread)))
    if x.size <= size:
        return fn(x, out=out)
    flat = np.ascontiguousarray(x).reshape(-1)
    result = np.empty_like(flat) if out is None else out.reshape(-1)  # a view: out is C-contiguous, x's shape

    def pieces(starts: list[int]) -> None:  # this thread's pieces, each written straight into its place
        for start in starts:
            fn(flat[start : start + size], out=result[start : start + size])

    map_in_threads(pieces, deal(range(0, flat.size, size), threads))
    return result.reshape(x.shape)
