"""Embeddings in fewer bits, as sentence-transformers' `quantize_embeddings` makes them:

    int8 / uint8     each dimension's [min, max] (the calibration range) cut into 256 steps: floor((x - min) / step)
    binary / ubinary one bit per dimension (x > 0), packed eight to a byte: [N, H] -> [N, ceil(H / 8)]

This mirrors sentence-transformers v6.3, `sentence_transformers/util/quantization.py`, `quantize_embeddings` and
`_get_quantization_ranges`, operation for operation, with NumPy arrays in and out as there.
"""

import logging

import numpy as np

from .errors import InputError

logger = logging.getLogger("minibert")

PRECISIONS = ("float32", "int8", "uint8", "binary", "ubinary")


def check_precision(precision, where: str) -> str:
    if precision not in PRECISIONS:
        raise InputError(f"{where}: precision must be one of {list(PRECISIONS)}, found {precision!r}")
    return precision


def quantization_ranges(embeddings: np.ndarray, precision: str, calibration_embeddings=None) -> np.ndarray:
    """[2, H]: each dimension's minimum and maximum over `calibration_embeddings`, else over `embeddings` itself
    (which needs more than one row; upstream warns below 100)."""
    if calibration_embeddings is None:
        if embeddings.ndim == 1 or embeddings.shape[0] == 1:
            raise InputError(
                f"cannot compute {precision} quantization ranges from a single embedding; pass `ranges` or "
                "`calibration_embeddings` from a representative set of embeddings (or encode more texts at once)"
            )
        if embeddings.shape[0] < 100:
            logger.warning(
                "Computing %s quantization buckets based on %d embeddings. %s quantization is more stable with "
                "`ranges` calculated from more embeddings or a `calibration_embeddings`.",
                precision,
                len(embeddings),
                precision,
            )
        calibration_embeddings = embeddings
    calibration_embeddings = np.asarray(calibration_embeddings)
    return np.vstack((np.min(calibration_embeddings, axis=0), np.max(calibration_embeddings, axis=0)))


def quantize_embeddings(embeddings, precision: str, ranges=None, calibration_embeddings=None) -> np.ndarray:
    """`embeddings` [N, H] (float) in `precision`: float32 [N, H], int8 or uint8 [N, H], binary (int8) or ubinary
    (uint8) [N, ceil(H / 8)]. `ranges` [2, H] (min, max per dimension) or `calibration_embeddings` set the int8
    buckets; without either they come from `embeddings` itself."""
    precision = check_precision(precision, "quantize_embeddings")
    embeddings = np.asarray(embeddings)
    if embeddings.dtype.kind != "f":
        raise InputError(f"quantize_embeddings: embeddings must be floats, found {embeddings.dtype}")
    if embeddings.ndim == 2 and embeddings.shape[0] == 0:
        dim = embeddings.shape[1]
        if precision.endswith("int8"):
            return np.zeros((0, dim), dtype=np.int8 if precision == "int8" else np.uint8)
        if precision.endswith("binary"):
            return np.zeros((0, (dim + 7) // 8), dtype=np.int8 if precision == "binary" else np.uint8)
    if precision == "float32":
        return embeddings.astype(np.float32)
    if precision.endswith("int8"):
        if ranges is None:
            ranges = quantization_ranges(embeddings, precision, calibration_embeddings)
        ranges = np.asarray(ranges).astype(np.float32, copy=False)
        if ranges.shape != (2, embeddings.shape[-1]):
            raise InputError(
                f"quantize_embeddings: ranges must have shape (2, {embeddings.shape[-1]}) (min and max of each "
                f"dimension), found {ranges.shape}"
            )
        starts = ranges[0, :]
        steps = (ranges[1, :] - starts) / 255
        steps = np.where(steps == 0, 1, steps)
        q_vals = np.clip(np.floor((embeddings - starts) / steps), 0, 255)
        return q_vals.astype(np.uint8) if precision == "uint8" else (q_vals - 128).astype(np.int8)
    packed = np.packbits(embeddings > 0, axis=-1)  # [N, ceil(H / 8)] uint8
    return packed if precision == "ubinary" else (packed - 128).astype(np.int8)
