"""The math in minibert/functional.py against its definitions: erf against math.erf, the rest against formulas."""

import math

import numpy as np
import pytest

from minibert.functional import (
    ACT2FN,
    _gelu_float32,
    erf,
    gelu,
    gelu_new,
    gelu_reference,
    layer_norm,
    linear,
    linear_reference,
    sigmoid,
    silu,
    softmax,
)
from minibert.parallel import budget, map_in_threads
from minibert.tuning import FEW_ROWS

# fdlibm's erf is correctly rounded but for rare cases; a few ulp is the bar, one is what it reaches.
ERF_MAX_ULP_FLOAT64 = 1.0
# float32 erf evaluates the same rational functions in float32 arithmetic; against the exact value rounded to
# float32 it stays within a couple of ulp.
ERF_MAX_ULP_FLOAT32 = 2.0
# float32 GELU goes through a fit of ln Phi (functional._gelu_float32), not through erf. Against exact GELU (float64
# math.erfc) its error stays at float32's own rounding of the result: seen 2.4e-7 abs (half an ulp of 2..4). torch's
# float32 GELU differs from exact by up to 3.7e-7 on the same grid (1.2e-6 measured on another host).
GELU_F32_MAX_ABS_ERROR = 3e-7
# Relative to |gelu(x)|, for x >= GELU_F32_TAIL_START (where gelu(x) is a normal float32): seen 7.7e-7. torch's, with
# its 1 + erf cancelling for x < 0: 2.2e-4 (|gelu(x)| >= 1e-3).
GELU_F32_MAX_REL_ERROR = 1e-6
GELU_F32_TAIL_START = -3.4
# Further down the negative tail (to x = -13.1, where gelu(x) leaves float32's normal range) the relative error grows
# as the rounding of x^2 / 2 in the exponent does, in proportion to x^2: seen 7.6e-8 x^2 (7.8e-6 at x = -13).
GELU_F32_TAIL_REL_ERROR_PER_X2 = 1e-7
# gelu_reference is float64 arithmetic on fdlibm's erf and erfc pieces, each within an ulp or two of exact, so its
# relative error against math.erfc's GELU is a few float64 ulp, growing down the tail with the rounding of x^2 in the
# exponent (as the float32 one does): seen 6.9e-16 max(1, x^2) to x = -13.2, where gelu(x) leaves float32's range.
GELU_REFERENCE_REL_ERROR_PER_X2 = 2e-15


def dense_grid() -> np.ndarray:
    """The whole real line: a fine uniform grid where erf bends, log-spaced tails down to subnormals, and beyond 6."""
    rng = np.random.default_rng(0)
    tiny = np.geomspace(5e-324, 1e-3, 5000)
    wide = np.geomspace(1e-3, 1e300, 5000)
    grid = np.concatenate([np.linspace(-7, 7, 140_001), rng.normal(0, 3, 20_000), tiny, wide])
    # the edges of fdlibm's intervals, and a step either side of each
    edges = np.array([0.84375, 1.25, 1 / 0.35, 6.0, 2.0**-28])
    edges = np.concatenate([edges, np.nextafter(edges, 0), np.nextafter(edges, np.inf)])
    grid = np.concatenate([grid, edges])
    return np.concatenate([grid, -grid, [0.0, -0.0]])


def ulp_error(actual: np.ndarray, exact: np.ndarray, dtype) -> np.ndarray:
    spacing = np.spacing(np.abs(exact).astype(dtype)).astype(np.float64)
    return np.abs(actual.astype(np.float64) - exact) / spacing


def test_erf_float64_is_within_one_ulp_of_math_erf_on_the_whole_real_line():
    x = dense_grid()
    exact = np.array([math.erf(v) for v in x])
    assert ulp_error(erf(x), exact, np.float64).max() <= ERF_MAX_ULP_FLOAT64


def test_erf_float32_stays_float32_and_within_two_ulp():
    x = dense_grid()
    x = x[np.abs(x) < np.finfo(np.float32).max].astype(np.float32)
    exact = np.array([math.erf(float(v)) for v in x])
    y = erf(x)
    assert y.dtype == np.float32
    assert ulp_error(y, exact, np.float32).max() <= ERF_MAX_ULP_FLOAT32


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_erf_special_values(dtype):
    x = np.array([np.inf, -np.inf, np.nan, 0.0, -0.0, 30.0, -30.0], dtype=dtype)
    y = erf(x)
    np.testing.assert_array_equal(y[:2], [1.0, -1.0])
    assert np.isnan(y[2])
    assert y[3] == 0 and not np.signbit(y[3]) and y[4] == 0 and np.signbit(y[4])  # the sign of zero is kept
    np.testing.assert_array_equal(y[5:], [1.0, -1.0])


def test_erf_is_odd_exactly():
    x = dense_grid()
    np.testing.assert_array_equal(erf(-x), -erf(x))


def test_erf_refuses_integer_arrays():
    with pytest.raises(TypeError, match="float32 or float64"):
        erf(np.arange(3))


def test_gelu_is_x_times_normal_cdf():
    x = np.linspace(-10, 10, 2001)
    expected = np.array([v * 0.5 * (1 + math.erf(v / math.sqrt(2))) for v in x])
    # Absolute: for x << 0 both sides compute 1 + erf(x) ~ 0 and keep few significant digits, as torch does.
    np.testing.assert_allclose(gelu(x), expected, rtol=1e-15, atol=1e-15)


def exact_gelu(x: np.ndarray) -> np.ndarray:
    """x Phi(x) in float64 through math.erfc, which keeps its relative precision in the negative tail."""
    return np.array([v * 0.5 * math.erfc(-v / math.sqrt(2)) for v in x.astype(np.float64)])


def float32_grid() -> np.ndarray:
    x = dense_grid()
    x = x[np.abs(x) < np.finfo(np.float32).max].astype(np.float32)
    return np.concatenate([x, np.linspace(-15, 15, 600_001, dtype=np.float32)])


def test_gelu_float32_is_within_its_bounds_of_exact_gelu():
    x = float32_grid()
    y = gelu(x)
    assert y.dtype == np.float32
    exact = exact_gelu(x)
    error = np.abs(y.astype(np.float64) - exact)
    assert error.max() <= GELU_F32_MAX_ABS_ERROR
    normal = np.abs(exact) >= np.finfo(np.float32).tiny  # zero and gelu's subnormals (x < -13.1) have no bound
    near, tail = normal & (x >= GELU_F32_TAIL_START), normal & (x < GELU_F32_TAIL_START)
    assert (error[near] / np.abs(exact[near])).max() <= GELU_F32_MAX_REL_ERROR
    assert x[tail].min() < -13
    assert (error[tail] / np.abs(exact[tail]) / x[tail].astype(np.float64) ** 2).max() <= GELU_F32_TAIL_REL_ERROR_PER_X2


def test_gelu_reference_is_exact_gelu_down_the_negative_tail():
    x = float32_grid().astype(np.float64)
    x = x[x > -13.2]  # every x whose gelu(x) is a normal float32
    exact = exact_gelu(x)
    y = gelu_reference(x)
    assert y.dtype == np.float64
    normal = np.abs(exact) >= np.finfo(np.float64).tiny
    error = np.abs(y - exact)[normal] / np.abs(exact[normal]) / np.maximum(1.0, x[normal] ** 2)
    assert error.max() <= GELU_REFERENCE_REL_ERROR_PER_X2
    np.testing.assert_array_equal(y[~normal], exact[~normal])  # gelu's float64 subnormals, next to x = 0


def test_gelu_float32_fast_path_is_within_its_bounds_of_gelu_reference():
    x = float32_grid()
    y = _gelu_float32(x)
    assert y.dtype == np.float32
    reference = gelu_reference(x)  # float64
    error = np.abs(y.astype(np.float64) - reference)
    assert error.max() <= GELU_F32_MAX_ABS_ERROR
    normal = np.abs(reference) >= np.finfo(np.float32).tiny
    near, tail = normal & (x >= GELU_F32_TAIL_START), normal & (x < GELU_F32_TAIL_START)
    assert (error[near] / np.abs(reference[near])).max() <= GELU_F32_MAX_REL_ERROR
    assert x[tail].min() < -13
    tail_error = error[tail] / np.abs(reference[tail]) / x[tail].astype(np.float64) ** 2
    assert tail_error.max() <= GELU_F32_TAIL_REL_ERROR_PER_X2


def test_gelu_float32_special_values_are_torchs():
    x = np.array([np.inf, -np.inf, np.nan, 0.0, -0.0, 3e38, -3e38, 1e-45, 30.0, -30.0], dtype=np.float32)
    y = gelu(x)
    assert y[0] == np.inf and np.isnan(y[1]) and np.isnan(y[2])  # torch: gelu(-inf) is NaN, 0 * -inf
    np.testing.assert_array_equal(y[3:], np.array([0.0, 0.0, 3e38, 0.0, 0.0, 30.0, 0.0], dtype=np.float32))
    assert not np.signbit(y[3])


def test_gelu_float32_on_a_multi_chunk_array_equals_it_element_by_element():
    """In chunks of GELU_CHUNK_ELEMENTS_ALONE (2^16: 3.2 chunks here) and, beside the call's other threads, of
    GELU_CHUNK_ELEMENTS (2^18: one chunk): the same bits as one element at a time."""
    x = (np.random.default_rng(3).standard_normal((3, 70001)) * 4).astype(np.float32)
    expected = np.concatenate([gelu(v[None]) for v in x.ravel()])
    np.testing.assert_array_equal(gelu(x).ravel(), expected)
    for beside_another in map_in_threads(lambda _: gelu(x), [0, 1]):
        np.testing.assert_array_equal(beside_another.ravel(), expected)
    np.testing.assert_array_equal(gelu(x.T), gelu(np.ascontiguousarray(x.T)))


def test_gelu_new_is_the_tanh_approximation():
    x = np.linspace(-10, 10, 2001)
    expected = np.array([0.5 * v * (1 + math.tanh(math.sqrt(2 / math.pi) * (v + 0.044715 * v**3))) for v in x])
    np.testing.assert_allclose(gelu_new(x), expected, rtol=1e-14, atol=1e-15)
    # ... which is not the exact GELU: checkpoints trained with one must not be run with the other
    assert np.abs(gelu_new(x) - gelu(x)).max() > 1e-4


def test_sigmoid_and_silu_do_not_overflow_at_large_inputs():
    x = np.array([-1000.0, -50.0, 0.0, 50.0, 1000.0])
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        s = sigmoid(x)
    np.testing.assert_allclose(s, [0.0, 1 / (1 + math.exp(50)), 0.5, 1 / (1 + math.exp(-50)), 1.0], rtol=1e-15)
    np.testing.assert_allclose(silu(x), x * s)


@pytest.mark.parametrize("name", sorted(ACT2FN))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_every_activation_keeps_the_dtype(name, dtype):
    x = np.linspace(-5, 5, 11).astype(dtype)
    assert ACT2FN[name](x).dtype == dtype


def test_softmax_rows_sum_to_one_and_masked_entries_vanish():
    x = np.array([[1.0, 2.0, 3.0], [0.0, np.finfo(np.float64).min, 1.0]])
    p = softmax(x)
    np.testing.assert_allclose(p.sum(-1), 1.0, rtol=1e-15)
    assert p[1, 1] == 0.0
    np.testing.assert_allclose(p[0], np.exp([1, 2, 3]) / np.exp([1, 2, 3]).sum(), rtol=1e-15)


def test_softmax_of_a_fully_masked_row_is_uniform():
    """What transformers' finfo.min mask gives a row whose keys are all padding."""
    row = np.full((1, 4), np.finfo(np.float32).min, dtype=np.float32) + np.float32(3.0)
    np.testing.assert_array_equal(softmax(row), np.full((1, 4), 0.25, dtype=np.float32))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_is_the_plain_row_max_form_bit_for_bit_with_nan_and_inf_rows(dtype):
    """softmax takes the row's max with np.fmax, which skips NaN: every row, NaN and infinities included, comes out as
    the plain form's (np.max, which returns NaN) to the bit."""
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((2, 3, 40, 128)) * 8).astype(dtype)
    x[0, 0, 0, 5] = np.nan  # a NaN among finite scores
    x[0, 0, 1, :] = np.nan  # a row of NaN
    x[0, 1, 2, 7] = np.inf
    x[0, 1, 3, 9] = -np.inf
    x[0, 1, 4, :] = -np.inf  # a row of -inf: NaN, as in the plain form
    x[0, 2, 5, ::2] = 0.0
    x[0, 2, 5, 1::2] = -0.0  # signed zeros
    x[1, 0, 6, :] = np.finfo(dtype).min  # a fully masked row
    with np.errstate(invalid="ignore"):
        e = np.exp(x - x.max(axis=-1, keepdims=True))
        plain = e * np.reciprocal(e.sum(axis=-1, keepdims=True))
        ours = softmax(x)
    assert ours.dtype == dtype and np.isnan(ours[0, 0, :2]).all() and np.isnan(ours[0, 1, [2, 4]]).all()
    assert not np.isnan(ours[0, 1, 3]).any() and ours[0, 1, 3, 9] == 0  # a -inf score alone weighs 0
    np.testing.assert_array_equal(ours, plain)


def test_layer_norm_normalises_then_scales_and_shifts():
    rng = np.random.default_rng(1)
    x, w, b = rng.normal(size=(2, 3, 8)), rng.normal(size=8), rng.normal(size=8)
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    np.testing.assert_allclose(layer_norm(x, w, b, eps=1e-12), (x - mean) / np.sqrt(var + 1e-12) * w + b, rtol=1e-13)


def test_linear_keeps_the_out_in_layout_and_any_leading_axes():
    rng = np.random.default_rng(2)
    x, weight, bias = rng.normal(size=(2, 3, 5)), rng.normal(size=(4, 5)), rng.normal(size=4)  # weight [out, in]
    y = linear(x, weight, bias)
    assert y.shape == (2, 3, 4)
    np.testing.assert_allclose(y, np.einsum("bsi,oi->bso", x, weight) + bias, rtol=1e-13)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("rows", [1, 16, FEW_ROWS - 1, FEW_ROWS, 300])
@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("order", ["C", "F"])  # F: column-major, as checkpoint.to_params loads the encoder's weights
def test_linear_fast_path_equals_linear_reference_within_rounding(dtype, rows, threads, order):
    rng = np.random.default_rng(rows)
    x = rng.normal(size=(rows, 384)).astype(dtype)
    weight, bias = rng.normal(size=(1536, 384)).astype(dtype, order=order), rng.normal(size=1536).astype(dtype)
    with budget(threads):
        y = linear(x, weight, bias)
    reference = linear_reference(x, weight, bias)
    assert y.dtype == reference.dtype == dtype and y.shape == reference.shape == (rows, 1536)
    # Both sum the same 384 products in some order: each within n u sum|x_i w_i| of the exact dot product (the
    # classical bound, u = eps / 2), the bias's rounding included; so the two are within twice that of each other.
    bound = (x.shape[1] + 1) * np.finfo(dtype).eps * (np.abs(x) @ np.abs(weight).T + np.abs(bias))
    assert np.all(np.abs(y.astype(np.float64) - reference) <= bound)
