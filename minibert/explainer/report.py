"""The report `minibert explain` prints: where the pooled output of one text comes from, as numbers.

    pooler_report(model, tokenizer, text) -> (report, trace): token 0's last hidden state h0, the pooler's dense
        layer W h0 + b, its tanh, the pooled output, and tanh(W h0 + b) recomputed by hand from the weights

Shape legend: S sequence length, H hidden size.
"""

import numpy as np

from ..errors import InputError
from ..pretrained import BertModel
from ..sentence import cosine_similarity

# What each activation computes, for the report's line on which one runs.
ACTIVATION_FORMULAS = {
    "gelu": "exact GELU, 0.5 x (1 + erf(x / sqrt 2))",
    "gelu_new": "GELU's tanh form, 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))",
    "gelu_pytorch_tanh": "GELU's tanh form, 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))",
}


def pooler_report(
    model: BertModel, tokenizer, text: str, pair: str | None = None, encoded: dict | None = None
) -> tuple[dict, dict]:
    """Where the pooled output of `text` comes from, as numbers: returns (report, trace).

    The report's vectors come from the traced forward pass (pooler.first_token, pooler.dense, pooler.activation);
    `tanh_by_hand` recomputes tanh(W h0 + b) from the checkpoint's pooler weights with plain NumPy, as a check.
    `encoded` is the tokenizer's output for them if it is made already (the command line cuts it to --max-length).
    """
    pairs = None if pair is None else [pair]
    if encoded is None:
        encoded = tokenizer([text], pairs)
    out, trace = model.trace(**encoded)
    # How many tokens the cut dropped (transformers' name), so that the page can say what was not run.
    untruncated = int(tokenizer([text], pairs, truncation=False)["attention_mask"].sum())
    num_truncated_tokens = untruncated - int(encoded["attention_mask"][0].sum())
    if out.pooler_output is None:
        raise InputError("this checkpoint has no pooler weights, so it has no pooled output to explain")
    h0 = trace["pooler.first_token"][0]  # [H], = last_hidden_state[0, 0]
    dense = model.params["pooler"]["dense"]
    by_hand = np.tanh(dense["weight"] @ h0 + dense["bias"])  # [H, H] @ [H] -> [H]
    pooled = out.pooler_output[0]  # [H]
    mean = out.last_hidden_state[0].mean(axis=0)  # [S, H] -> [H]: mean pooling (one text, so no padding)
    report = {
        "text": text,
        "pair": pair,
        "tokens": tokenizer.convert_ids_to_tokens(encoded["input_ids"][0]),
        "input_ids": encoded["input_ids"][0].tolist(),
        "token_type_ids": encoded["token_type_ids"][0].tolist(),
        "num_truncated_tokens": num_truncated_tokens,
        "dtype": str(model.dtype),
        "hidden_act": model.config.hidden_act,
        "hidden_act_source": model.config.hidden_act_source,
        "h0": h0,
        "pooler_dense": trace["pooler.dense"][0],
        "pooler_activation": trace["pooler.activation"][0],
        "pooler_output": pooled,
        "tanh_by_hand": by_hand,
        "mean_pooling": mean,
        "cosine_h0_pooler_output": float(cosine_similarity(h0, pooled)[0, 0]),
        "cosine_h0_mean_pooling": float(cosine_similarity(h0, mean)[0, 0]),
        "max_abs_diff_by_hand": float(np.abs(by_hand - pooled).max()),
        "epsilon": float(np.finfo(model.dtype).eps),
    }
    # Reproduced "to float precision": W h0 may be summed in another order here than in the model (another BLAS
    # kernel), which moves each value by about sqrt(H) rounding errors of its terms' magnitudes; tanh only shrinks it.
    scale = np.abs(dense["weight"]) @ np.abs(h0) + np.abs(dense["bias"])  # [H]: the magnitude of each sum's terms
    allowed = np.sqrt(h0.size) * report["epsilon"] * scale
    report["reproduced"] = bool((np.abs(by_hand - pooled) <= allowed).all())
    return report, trace


def report_as_json(report: dict) -> dict:
    """The report with its arrays as lists: what `minibert explain --json` prints."""
    return {k: v.tolist() if isinstance(v, np.ndarray) else v for k, v in report.items()}
