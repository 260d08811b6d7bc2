"""Damaged embedding manifests: read_embeddings and read_manifest refuse each with an InputError naming the file.

Broken checkpoints are made in tmp_path from the tiny checkpoints in weights/ (weights/make_reference.py made those),
with tests/support/bad_checkpoints.py.
"""

import numpy as np
import pytest

import minibert
from minibert import InputError

# Damaged embedding manifests.


MANIFESTS = {
    "not JSON": (b'{"format": "minibert-embeddings", "rows": 3', "manifest.json: cannot be read as JSON"),
    "not UTF-8": (b"\xff\xfe{}", "manifest.json: cannot be read as JSON"),
    "a list": (b"[]", "manifest.json: not a minibert embeddings manifest"),
    "another format": (b'{"format": "parquet"}', "manifest.json: not a minibert embeddings manifest"),
    "no rows": (
        b'{"format": "minibert-embeddings", "version": 1, "model": {}, "input": {}, "partitions": [], '
        b'"fingerprint": "0", "complete": true, "dim": 4, "bad_lines": []}',
        "manifest.json: a minibert embeddings manifest without a valid rows",
    ),
    "complete without dim": (
        b'{"format": "minibert-embeddings", "version": 1, "model": {}, "input": {}, "partitions": [], "rows": 0, '
        b'"fingerprint": "0", "complete": true, "bad_lines": []}',
        "without a valid dim",
    ),
    "model not an object": (
        b'{"format": "minibert-embeddings", "version": 1, "model": 5, "input": {}, "partitions": [], "rows": 0, '
        b'"fingerprint": "0", "complete": false}',
        "without a valid model",
    ),
}


@pytest.mark.parametrize("content, match", MANIFESTS.values(), ids=MANIFESTS.keys())
def test_a_damaged_embeddings_manifest_is_input_error_naming_the_file(tmp_path, content, match):
    from minibert.embed import read_manifest

    out = tmp_path / "out"
    out.mkdir()
    (out / "manifest.json").write_bytes(content)
    for read in (minibert.read_embeddings, read_manifest):
        with pytest.raises(InputError, match=match):
            read(out)
    npy = tmp_path / "emb.npy"
    np.save(npy, np.zeros((0, 4), dtype=np.float32))
    (tmp_path / "emb.manifest.json").write_bytes(content)
    with pytest.raises(InputError, match=match.replace("manifest.json", "emb.manifest.json")):
        minibert.read_embeddings(npy)
