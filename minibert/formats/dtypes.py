"""Conversions for dtypes NumPy does not have.

bfloat16 is the upper half of an IEEE float32: 1 sign bit, 8 exponent bits, 7 mantissa bits
(https://cloud.google.com/tpu/docs/bfloat16). Checkpoint readers get its raw bits as uint16 and widen them
here, exactly, to float32.
"""

import numpy as np


def bfloat16_bits_to_float32(bits: np.ndarray) -> np.ndarray:
    """Widen bfloat16 values, given as their raw uint16 bits, to float32 exactly: float32 bits = bits << 16.

    The conversion is lossless for every bit pattern, including infinities, NaNs (payload kept) and
    subnormals, which is also what torch's `tensor.to(torch.float32)` does.
    """
    bits = np.asarray(bits)
    if bits.dtype != np.uint16:
        raise TypeError(f"bfloat16_bits_to_float32 expects the raw bits as uint16, got {bits.dtype}")
    wide = bits.astype(np.uint32)  # [...] uint16 -> [...] uint32
    wide <<= 16  # in place, so a 0-d array stays an array rather than becoming a NumPy scalar
    return wide.view(np.float32)  # [...] same bytes read as float32
