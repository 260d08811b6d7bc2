"""Make the tiny task-head checkpoints in weights/ and the reference outputs the head tests compare against.

Run from the repository root, with the `reference` extra installed (torch and transformers):

    python weights/make_heads_reference.py

It writes, each with config.json, model.safetensors, a WordPiece tokenizer (vocab.txt, tokenizer.json, ...) and
reference.npz (the inputs and transformers' logits in float32 and float64, eager attention):
  weights/tiny-mlm/          BertForMaskedLM, decoder tied to the word embeddings (transformers' default)
  weights/tiny-mlm-untied/   BertForMaskedLM with tie_word_embeddings=false: its own decoder weight and bias
  weights/tiny-classifier/   BertForSequenceClassification, 3 labels with id2label
Every parameter is random (seeds fixed), LayerNorms and biases included, so none is trivially 1 or 0.
"""

import json
from pathlib import Path

import numpy as np
import torch
import transformers

WEIGHTS = Path(__file__).resolve().parent

# A tiny WordPiece vocabulary: BERT's special tokens, then words and a few suffix pieces.
WORDS = (
    "the a of and is in on to it was he she they cat dog sat ran mat park house city paris france capital "
    "big small red blue green good bad happy sad movie film book great terrible fine day night sun moon "
    "eats eat food water tree car road river this that what where . , ? !"
).split()
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + WORDS + ["##s", "##ed", "##ing", "##ly"]

TINY = dict(
    vocab_size=len(VOCAB),
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=4,
    intermediate_size=37,
    max_position_embeddings=64,
    type_vocab_size=2,
)

MLM_TEXTS = [
    "the cat sat on the [MASK] .",
    "paris is the [MASK] of france and the [MASK] is big .",
    "[MASK] dog ran",
]
CLASSIFIER_TEXTS = ["this movie is great !", "a terrible , sad film", "the book was fine", "what ?"]
CLASSIFIER_PAIRS = ["good", "bad day", "it is", "this that"]
ID2LABEL = {0: "negative", 1: "neutral", 2: "positive"}


def randomize(model: torch.nn.Module) -> None:
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn_like(p) * 0.5)


def save_tokenizer(directory: Path) -> transformers.PreTrainedTokenizerBase:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "vocab.txt").write_text("\n".join(VOCAB) + "\n", encoding="utf-8")
    tokenizer = transformers.BertTokenizer(vocab={token: i for i, token in enumerate(VOCAB)}, do_lower_case=True)
    tokenizer.save_pretrained(directory)
    unknown = [t for t in tokenizer.tokenize(" ".join(MLM_TEXTS + CLASSIFIER_TEXTS)) if t == "[UNK]"]
    assert not unknown, "every word of the reference texts must be in the vocabulary"
    return tokenizer


def logits_of(model, inputs: dict[str, np.ndarray]) -> np.ndarray:
    with torch.no_grad():
        return model(**{k: torch.from_numpy(v) for k, v in inputs.items()}).logits.numpy()


def make(name: str, model_class, config_values: dict, texts, pairs, seed: int) -> None:
    torch.manual_seed(seed)
    config = transformers.BertConfig(**TINY, **config_values, attn_implementation="eager")
    model = model_class(config).eval()
    randomize(model)
    if config.tie_word_embeddings and hasattr(model, "tie_weights"):
        model.tie_weights()  # randomize() wrote each tied tensor once; make sure they are still one tensor
    directory = WEIGHTS / name
    tokenizer = save_tokenizer(directory)
    model.save_pretrained(directory, safe_serialization=True)
    encoded = tokenizer(texts, pairs, padding=True, return_tensors="np")
    inputs = {k: encoded[k].astype(np.int64) for k in ("input_ids", "token_type_ids", "attention_mask")}
    reference = {**inputs, "texts": np.array(texts)}
    if pairs is not None:
        reference["text_pairs"] = np.array(pairs)
    for dtype, suffix in ((torch.float32, "float32"), (torch.float64, "float64")):
        reference[f"{suffix}/logits"] = logits_of(model.to(dtype), inputs)
    np.savez_compressed(directory / "reference.npz", **reference)
    with (directory / "config.json").open() as f:
        saved = json.load(f)
    print(f"wrote {directory}: {sorted(p.name for p in directory.iterdir())}, architectures {saved['architectures']}")


if __name__ == "__main__":
    print(f"transformers {transformers.__version__}, torch {torch.__version__}")
    make("tiny-mlm", transformers.BertForMaskedLM, dict(hidden_act="gelu"), MLM_TEXTS, None, seed=10)
    make(
        "tiny-mlm-untied",
        transformers.BertForMaskedLM,
        dict(hidden_act="gelu_new", tie_word_embeddings=False),
        MLM_TEXTS,
        None,
        seed=11,
    )
    make(
        "tiny-classifier",
        transformers.BertForSequenceClassification,
        dict(hidden_act="gelu", num_labels=3, id2label=ID2LABEL, label2id={v: k for k, v in ID2LABEL.items()}),
        CLASSIFIER_TEXTS,
        CLASSIFIER_PAIRS,
        seed=12,
    )
