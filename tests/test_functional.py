"""The math in minibert/functional.py against its definitions: erf against math.erf, the rest against formulas."""

import math

import numpy as np
import pytest

from minibert.functional import ACT2FN, erf, gelu, gelu_new, layer_norm, linear, sigmoid, silu, softmax

# fdlibm's erf is correctly rounded but for rare cases; a few ulp is the bar, one is what it reaches.
ERF_MAX_ULP_FLOAT64 = 1.0
# float32 erf evaluates the same rational functions in float32 arithmetic; against the exact value rounded to
# float32 it stays within a couple of ulp.
ERF_MAX_ULP_FLOAT32 = 2.0


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
