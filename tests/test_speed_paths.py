"""The arrangements made for speed compute what the plain formulas compute.

linear switches to W xᵀ below FEW_ROWS rows (for either layout of W; from FEW_ROWS on it is x Wᵀ), activations run
in pieces on a thread pool, erf gathers its intervals by index, LayerNorm and GELU work in place: each is checked here
against the straightforward expression. The timings themselves live in benchmarks/run.py, never in the test suite.
"""

import warnings

import numpy as np
import pytest

from minibert import functional as F
from minibert.parallel import blas_threads, budget

# Two BLAS products over the same data may sum in another order; float64 keeps them within a few ulp of ~1.
PRODUCT_TOL_F64 = 1e-13


@pytest.mark.parametrize("rows", [1, F.FEW_ROWS - 1, F.FEW_ROWS, 3 * F.FEW_ROWS])
@pytest.mark.parametrize("order", ["C", "F"])
def test_linear_equals_x_times_w_transposed_plus_b_on_both_sides_of_few_rows(rows, order):
    rng = np.random.default_rng(rows)
    x = rng.standard_normal((rows, 48))
    weight, bias = np.asarray(rng.standard_normal((80, 48)), order=order), rng.standard_normal(80)
    out = F.linear(x.reshape(1, rows, 48), weight, bias)
    assert out.shape == (1, rows, 80) and out.flags.c_contiguous
    np.testing.assert_allclose(out[0], x @ weight.T + bias, rtol=0, atol=PRODUCT_TOL_F64)


@pytest.mark.parametrize("rows", [5, 3 * F.FEW_ROWS])
@pytest.mark.parametrize("threads", [2, 3])
@pytest.mark.parametrize("order", ["C", "F"])
def test_linear_shared_among_threads_equals_one_product(rows, threads, order, monkeypatch):
    """Cut into blocks of output features (here 3 features per part at least), each thread's part lands in its own
    columns: a misplaced block would be off by O(1), not by rounding. A column-major weight's block is a block of
    Wᵀ's columns, read in place."""
    monkeypatch.setattr(F, "MIN_PART_MACS", 1)
    rng = np.random.default_rng(threads)
    x = rng.standard_normal((2, rows, 48))
    weight, bias = np.asarray(rng.standard_normal((80, 48)), order=order), rng.standard_normal(80)
    with budget(threads):
        out = F.linear(x, weight, bias)
    assert out.shape == (2, rows, 80) and out.flags.c_contiguous
    np.testing.assert_allclose(out, x @ weight.T + bias, rtol=0, atol=PRODUCT_TOL_F64)


def test_linear_on_one_thread_is_one_product_when_the_parts_would_be_small(monkeypatch):
    calls = []
    monkeypatch.setattr(F, "map_in_threads", lambda fn, parts: calls.append(len(parts)) or [fn(p) for p in parts])
    x, weight, bias = np.ones((4, 48)), np.ones((80, 48)), np.zeros(80)
    with budget(2):
        F.linear(x, weight, bias)  # 4 x 48 x 80 multiply-adds: far below MIN_PART_MACS
    assert calls == [1]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_activation_in_pieces_on_threads_is_bit_identical_to_one_call(dtype):
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((3, 1000, 37)) * 3).astype(dtype)  # 111000 elements: 7 pieces, the last one short
    for fn in (F.gelu, F.gelu_new, F.silu):
        np.testing.assert_array_equal(F.apply_elementwise(fn, x, chunk_elements=16384), fn(x))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("threads", [1, 2])
def test_activation_in_place_in_pieces_is_bit_identical_to_one_call(dtype, threads):
    """out=x, as bert_intermediate calls it: each piece reads its x before writing its result over it."""
    rng = np.random.default_rng(1)
    x = (rng.standard_normal((3, 1000, 37)) * 3).astype(dtype)
    x[0, 0, :4] = [np.inf, -np.inf, np.nan, 0.0]
    for name in sorted(set(F.ACT2FN)):
        fn = F.ACT2FN[name]
        with np.errstate(all="ignore"):  # the infinities and NaN: some activations warn on them, as NumPy does
            expected = fn(x)
        y = x.copy()
        with budget(threads), np.errstate(all="ignore"):
            result = F.apply_elementwise(fn, y, out=y, chunk_elements=16384)
        assert result.base is y or result is y
        np.testing.assert_array_equal(y, expected, err_msg=name)


def test_activation_in_pieces_raises_what_a_piece_raises():
    def fails(x, out=None):
        raise ValueError("piece failed")

    with pytest.raises(ValueError, match="piece failed"):
        F.apply_elementwise(fails, np.zeros(100), chunk_elements=10)


def test_erf_warns_about_nothing_on_huge_infinite_and_nan_inputs():
    x = np.array([np.nan, np.inf, -np.inf, 3e38, -1e30, 1e-45, 0.5, 2.0, 5.0], dtype=np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the first branch overflows beyond its interval; that must stay silent
        y = F.erf(x)
    assert np.isnan(y[0])
    np.testing.assert_array_equal(y[1:5], [1, -1, 1, -1])


@pytest.mark.parametrize("shape", [(5,), (4, 6), (2, 3, 70001)])
def test_erf_keeps_shape_and_matches_elementwise_erf_of_a_flat_copy(shape):
    x = np.random.default_rng(1).standard_normal(shape) * 4
    y = F.erf(x)
    assert y.shape == shape
    np.testing.assert_array_equal(y.ravel(), F.erf(x.ravel().copy()))
    # a non-contiguous view gives the same numbers as its contiguous copy
    np.testing.assert_array_equal(F.erf(x.T), F.erf(np.ascontiguousarray(x.T)))


def test_in_place_layer_norm_and_gelu_leave_their_input_alone():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((3, 5, 16)).astype(np.float32)
    before = x.copy()
    weight, bias = rng.standard_normal(16).astype(np.float32), rng.standard_normal(16).astype(np.float32)
    out = F.layer_norm(x, weight, bias, eps=1e-12)
    mean = x.mean(-1, keepdims=True)
    expected = (x - mean) / np.sqrt(((x - mean) ** 2).mean(-1, keepdims=True) + np.float32(1e-12)) * weight + bias
    np.testing.assert_array_equal(out, expected)
    F.gelu(x)
    np.testing.assert_array_equal(x, before)


@pytest.mark.parametrize("rows", [2, 16, F.SMALL_ROWS - 1])
@pytest.mark.parametrize("out_features", [1536, 3000])  # 3000 at 16 rows: 41 blocks of 72 features and a rest of 48
def test_small_matrix_blocks_equal_one_product_within_rounding(rows, out_features):
    """small_matrix_linear (linear's path below SMALL_ROWS on one thread, for a row-major float32 W where OpenBLAS has
    small-matrix kernels) cuts W into blocks of small_matrix_block features: within rounding of x Wᵀ + b, every block
    in its own columns (a misplaced one would be off by O(1))."""
    rng = np.random.default_rng(rows)
    x = rng.standard_normal((rows, 384)).astype(np.float32)
    weight = rng.standard_normal((out_features, 384)).astype(np.float32)
    bias = rng.standard_normal(out_features).astype(np.float32)
    step = F.small_matrix_block(rows, 384)
    assert step % 8 == 0 and step * rows <= F.SMALL_MATRIX_OUTPUTS and step * rows * 384 <= F.SMALL_MATRIX_MACS
    y = F.small_matrix_linear(x, weight, bias, step)
    reference = F.linear_reference(x.astype(np.float64), weight.astype(np.float64), bias.astype(np.float64))
    bound = 385 * np.finfo(np.float32).eps * (np.abs(x) @ np.abs(weight).T + np.abs(bias))
    assert y.dtype == np.float32 and y.shape == (rows, out_features) and y.flags.c_contiguous
    assert np.all(np.abs(y - reference) <= bound)


def test_linear_takes_the_small_matrix_path_only_on_one_thread_for_few_rows_a_row_major_float32_w_and_such_a_blas(
    monkeypatch,
):
    calls = []

    def small_matrix_linear(rows, weight, *args):
        calls.append(rows.shape[0])
        return np.zeros((rows.shape[0], weight.shape[0]), rows.dtype)

    monkeypatch.setattr(F, "small_matrix_linear", small_matrix_linear)
    monkeypatch.setattr(F.blas_threads, "_small_matrices", True)
    weight, bias = np.ones((80, 48), np.float32), np.zeros(80, np.float32)
    with budget(1), blas_threads(2):  # BLAS's two threads share an ordinary product
        F.linear(np.ones((16, 48), np.float32), weight, bias)
    with budget(1), blas_threads(1):
        for rows in (1, 16, F.SMALL_ROWS - 1, F.SMALL_ROWS):
            F.linear(np.ones((rows, 48), np.float32), weight, bias)
        F.linear(np.ones((16, 48), np.float64), weight.astype(np.float64), bias.astype(np.float64))  # float64: no
        F.linear(np.ones((16, 48), np.float32), np.asfortranarray(weight), bias)  # column-major W: no
    with budget(2):  # on two threads BLAS's own threads share an ordinary product instead
        F.linear(np.ones((16, 48), np.float32), weight, bias)
    assert calls == [1, 16, F.SMALL_ROWS - 1]
    monkeypatch.setattr(F.blas_threads, "_small_matrices", False)  # a BLAS without them (OpenBLAS's Haswell kernel)
    with budget(1), blas_threads(1):
        F.linear(np.ones((16, 48), np.float32), weight, bias)
    assert calls == [1, 16, F.SMALL_ROWS - 1]
