"""bfloat16 widening, checked against torch's own upcast over every one of the 65536 bit patterns."""

import numpy as np
import pytest

from minibert.formats.dtypes import bfloat16_bits_to_float32

ALL_BITS = np.arange(2**16, dtype=np.uint16)


def test_bfloat16_widening_equals_torch_for_every_bit_pattern():
    torch = pytest.importorskip("torch")
    expected = torch.from_numpy(ALL_BITS.view(np.int16).copy()).view(torch.bfloat16).float().numpy()
    ours = bfloat16_bits_to_float32(ALL_BITS)
    assert ours.dtype == np.float32 and ours.shape == (2**16,)
    nan = np.isnan(expected)
    # NaN payloads may legitimately differ (torch may quiet them); every NaN must stay a NaN.
    np.testing.assert_array_equal(np.isnan(ours), nan)
    np.testing.assert_array_equal(ours[~nan].view(np.uint32), expected[~nan].view(np.uint32))


def test_bfloat16_widening_of_known_values():
    bits = np.array([0x0000, 0x8000, 0x3F80, 0xC000, 0x7F80, 0xFF80, 0x0001, 0x7F7F], dtype=np.uint16)
    got = bfloat16_bits_to_float32(bits)
    assert got[0] == 0.0 and not np.signbit(got[0])
    assert got[1] == 0.0 and np.signbit(got[1])
    assert got[2] == 1.0 and got[3] == -2.0
    assert got[4] == np.inf and got[5] == -np.inf
    assert got[6] == np.float32(2.0**-133)  # smallest subnormal: 2^-126 * 2^-7
    assert got[7] == np.float32(3.3895313892515355e38)  # largest finite bfloat16


def test_bfloat16_widening_keeps_shape_and_refuses_other_dtypes():
    assert bfloat16_bits_to_float32(np.zeros((2, 3, 0), np.uint16)).shape == (2, 3, 0)
    scalar = bfloat16_bits_to_float32(np.array(0x3F80, np.uint16))
    assert isinstance(scalar, np.ndarray) and scalar.shape == () and scalar == 1.0
    with pytest.raises(TypeError, match="uint16"):
        bfloat16_bits_to_float32(np.zeros(3, np.int16))
