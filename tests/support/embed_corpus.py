"""Deterministic corpora for the embedding-job tests: lines of mixed length made of real words from MiniLM's vocab."""

from pathlib import Path

import numpy as np


def vocabulary_words(model_dir: Path) -> list[str]:
    """The whole, alphabetic words of the model's vocab.txt (no ##pieces, no [special] tokens)."""
    words = (model_dir / "vocab.txt").read_text(encoding="utf-8").split("\n")
    return [w for w in words if w.isascii() and w.isalpha() and len(w) > 2]


def mixed_lines(model_dir: Path, n: int, seed: int, max_words: int = 24) -> list[str]:
    """n lines of 1..max_words words, most short and some long, as a real corpus of sentences and paragraphs is."""
    rng = np.random.default_rng(seed)
    words = vocabulary_words(model_dir)
    lengths = np.minimum(rng.geometric(4 / max_words, size=n), max_words)
    return [" ".join(words[i] for i in rng.integers(len(words), size=k)) for k in lengths]


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path
