"""Check that the TF Hub fixtures' golden outputs are plain BERT math on their own variables.

A float64 NumPy BERT (GELU tanh or erf, mask adder (1 - mask) * -10000.0, LayerNorm eps 1e-12, heads N given here,
not read from the graph) runs on the variables TensorFlow reads from each artifact and is compared with the
outputs TensorFlow computed (weights/make_tf_hub_fixture.py, weights/make_tf_hub_real.py). It prints max |Δ| on
the positions the mask keeps and on all positions. It needs TensorFlow only to read the checkpoints:

    /work/tfvenv/bin/python weights/check_tf_hub_outputs.py [--real /work/tfhub-real]

Seen: at most 1.9e-6 on kept positions, for every output of every artifact here and in /work/tfhub-real (up to
8e-6 on the padding rows of the real-weights artifacts), so a float32 reader has room within the tests' 1e-5.
"""

import argparse
import os
from pathlib import Path

import numpy as np
from scipy.special import erf

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import tensorflow as tf  # noqa: E402
from tensorflow.core.protobuf import trackable_object_graph_pb2  # noqa: E402

FIXTURES = Path(__file__).resolve().parent / "tf_hub"


def gelu_tanh(x):
    return 0.5 * x * (1.0 + np.tanh(np.sqrt(2.0 / np.pi) * (x + 0.044715 * x**3)))


def gelu_erf(x):
    return 0.5 * x * (1.0 + erf(x / np.sqrt(2.0)))


def layer_norm(x, gamma, beta, eps=1e-12):
    mean = x.mean(-1, keepdims=True)
    variance = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(variance + eps) * gamma + beta


def bert(v: dict, input_ids, input_mask, segment_ids, num_heads: int, gelu):
    """google-research/bert's BertModel in float64 over Google's variable names."""
    seq = input_ids.shape[1]
    x = v["bert/embeddings/word_embeddings"][input_ids] + v["bert/embeddings/token_type_embeddings"][segment_ids]
    x = layer_norm(x + v["bert/embeddings/position_embeddings"][:seq], *ln(v, "bert/embeddings/LayerNorm"))
    batch, _, hidden = x.shape
    head = hidden // num_heads
    adder = (1.0 - input_mask[:, None, None, :]) * -10000.0  # [B, 1, 1, S]
    i = 0
    while f"bert/encoder/layer_{i}/intermediate/dense/kernel" in v:
        p = f"bert/encoder/layer_{i}/"

        def dense(t, name, p=p):
            return t @ v[p + name + "/kernel"] + v[p + name + "/bias"]

        def heads(t):
            return t.reshape(batch, seq, num_heads, head).transpose(0, 2, 1, 3)  # [B, N, S, D]

        q, k, val = (heads(dense(x, f"attention/self/{n}")) for n in ("query", "key", "value"))
        scores = q @ k.transpose(0, 1, 3, 2) / np.sqrt(head) + adder
        probs = np.exp(scores - scores.max(-1, keepdims=True))
        probs /= probs.sum(-1, keepdims=True)
        context = (probs @ val).transpose(0, 2, 1, 3).reshape(batch, seq, hidden)
        a = layer_norm(dense(context, "attention/output/dense") + x, *ln(v, p + "attention/output/LayerNorm"))
        x = layer_norm(dense(gelu(dense(a, "intermediate/dense")), "output/dense") + a, *ln(v, p + "output/LayerNorm"))
        i += 1
    pooled = np.tanh(x[:, 0] @ v["bert/pooler/dense/kernel"] + v["bert/pooler/dense/bias"])
    return x, pooled


def ln(v: dict, prefix: str):
    return v[prefix + "/gamma"], v[prefix + "/beta"]


def tf1_variables(directory: Path) -> dict:
    reader = tf.train.load_checkpoint(str(directory / "variables" / "variables"))
    return {name: reader.get_tensor(name).astype(np.float64) for name in reader.get_variable_to_shape_map()}


def tf2_variables(directory: Path) -> dict:
    """BertEncoder's Keras names, through the object graph, turned into Google's names and [in, out] kernels."""
    reader = tf.train.load_checkpoint(str(directory / "variables" / "variables"))
    graph = trackable_object_graph_pb2.TrackableObjectGraph()
    graph.ParseFromString(reader.get_tensor("_CHECKPOINTABLE_OBJECT_GRAPH"))
    keras = {a.full_name: reader.get_tensor(a.checkpoint_key) for n in graph.nodes for a in n.attributes}
    v = {
        "bert/embeddings/word_embeddings": keras["word_embeddings/embeddings"],
        "bert/embeddings/position_embeddings": keras["position_embedding/embeddings"],
        "bert/embeddings/token_type_embeddings": keras["type_embeddings/embeddings"],
        "bert/embeddings/LayerNorm/gamma": keras["embeddings/layer_norm/gamma"],
        "bert/embeddings/LayerNorm/beta": keras["embeddings/layer_norm/beta"],
        "bert/pooler/dense/kernel": keras["pooler_transform/kernel"],
        "bert/pooler/dense/bias": keras["pooler_transform/bias"],
    }
    i = 0
    while f"transformer/layer_{i}/intermediate/kernel" in keras:
        t, p = f"transformer/layer_{i}/", f"bert/encoder/layer_{i}/"
        for name in ("query", "key", "value"):
            kernel = keras[t + f"self_attention/{name}/kernel"]  # [H, N, D]
            v[p + f"attention/self/{name}/kernel"] = kernel.reshape(kernel.shape[0], -1)
            v[p + f"attention/self/{name}/bias"] = keras[t + f"self_attention/{name}/bias"].reshape(-1)
        kernel = keras[t + "self_attention/attention_output/kernel"]  # [N, D, H]
        v[p + "attention/output/dense/kernel"] = kernel.reshape(-1, kernel.shape[-1])
        v[p + "attention/output/dense/bias"] = keras[t + "self_attention/attention_output/bias"]
        for ours, theirs in (
            ("attention/output/LayerNorm", "self_attention_layer_norm"),
            ("output/LayerNorm", "output_layer_norm"),
        ):
            v[p + ours + "/gamma"], v[p + ours + "/beta"] = keras[t + theirs + "/gamma"], keras[t + theirs + "/beta"]
        for ours, theirs in (("intermediate/dense", "intermediate"), ("output/dense", "output")):
            v[p + ours + "/kernel"], v[p + ours + "/bias"] = keras[t + theirs + "/kernel"], keras[t + theirs + "/bias"]
        i += 1
    return {name: value.astype(np.float64) for name, value in v.items()}


def check(directory: Path, outputs_path: Path, num_heads: int) -> None:
    v = tf2_variables(directory) if (directory / "keras_metadata.pb").exists() else tf1_variables(directory)
    outputs = np.load(outputs_path)
    for kind in ("batch", "pair"):
        mask = outputs[f"{kind}_input_mask"]
        for gelu, suffix in ((gelu_tanh, ""), (gelu_erf, "_erf")):
            sequence, pooled = bert(
                v, outputs[f"{kind}_input_ids"], mask, outputs[f"{kind}_segment_ids"], num_heads, gelu
            )
            delta = np.abs(sequence - outputs[f"{kind}_sequence_output{suffix}"])
            kept = delta[mask.astype(bool)].max()
            pooled_delta = np.abs(pooled - outputs[f"{kind}_pooled_output{suffix}"]).max()
            print(
                f"{directory.name:12} {kind:5} {suffix or '_tanh':5}  sequence_output {kept:.1e} "
                f"(all positions {delta.max():.1e})  pooled_output {pooled_delta:.1e}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--real", type=Path, help="also check make_tf_hub_real.py's artifacts in this directory")
    args = parser.parse_args()
    for name, heads in (("tf1_uncased", 4), ("tf1_cased", 6), ("tf2_uncased", 3)):
        check(FIXTURES / name, FIXTURES / f"{name}_outputs.npz", heads)
    if args.real:
        for name in ("tf1_minilm", "tf1_minilm_pypi", "tf2_minilm"):
            check(args.real / name, args.real / f"{name}_outputs.npz", 12)


if __name__ == "__main__":
    main()
