"""Write the tiny TensorFlow checkpoints under weights/tf_tiny/ that tests/test_tf_checkpoint.py reads.

Run once, with TensorFlow installed (it is not a minibert dependency; the tests never import it):

    python -m venv /tmp/venv/tf && /tmp/venv/tf/bin/pip install tensorflow-cpu numpy
    /tmp/venv/tf/bin/python weights/make_tf_fixture.py

It writes
  bert_model.ckpt.{index,data-00000-of-00001}  a Google-BERT-style checkpoint (vocab 99, hidden 32, 2 layers,
      4 heads, intermediate 37, 64 positions, 2 token types) with the variable names of the original release
      (google-research/bert modeling.py), the AdamWeightDecayOptimizer slots `<name>/adam_m`, `<name>/adam_v`
      and `global_step`, saved by tf.compat.v1.train.Saver as run_pretraining.py did;
  bert_config.json  the matching config in Google's format;
  dtypes.ckpt.{index,data-0000k-of-00003}  one variable per dtype the reader maps and a DT_STRING one it
      skips, saved by Saver(sharded=True) over three devices, hence three data shards;
  sliced.ckpt.*  a TF2 object checkpoint whose one variable is cut into slices, which the reader refuses;
  *_values.npz  every tensor as TensorFlow's own reader returns it (tf.train.load_checkpoint), bfloat16
      widened to float32 and strings left out, so the tests compare against TF without TF.

Values come from a seeded NumPy generator, so reruns write the same tensors.
"""

import json
import os
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import tensorflow as tf  # after setting the log level, which TF reads at import

OUT = Path(__file__).resolve().parent / "tf_tiny"

BERT_CONFIG = {
    "attention_probs_dropout_prob": 0.1,
    "hidden_act": "gelu",
    "hidden_dropout_prob": 0.1,
    "hidden_size": 32,
    "initializer_range": 0.02,
    "intermediate_size": 37,
    "max_position_embeddings": 64,
    "num_attention_heads": 4,
    "num_hidden_layers": 2,
    "type_vocab_size": 2,
    "vocab_size": 99,
}


def google_bert_shapes(config: dict) -> dict[str, tuple[int, ...]]:
    """Variable name -> shape, as google-research/bert's BertModel and pretraining heads create them."""
    hidden, inner, vocab = config["hidden_size"], config["intermediate_size"], config["vocab_size"]
    shapes = {
        "bert/embeddings/word_embeddings": (vocab, hidden),
        "bert/embeddings/token_type_embeddings": (config["type_vocab_size"], hidden),
        "bert/embeddings/position_embeddings": (config["max_position_embeddings"], hidden),
        "bert/embeddings/LayerNorm/beta": (hidden,),
        "bert/embeddings/LayerNorm/gamma": (hidden,),
    }
    for i in range(config["num_hidden_layers"]):
        layer = f"bert/encoder/layer_{i}"
        for name in ("query", "key", "value"):
            shapes[f"{layer}/attention/self/{name}/kernel"] = (hidden, hidden)  # TF kernels are [in, out]
            shapes[f"{layer}/attention/self/{name}/bias"] = (hidden,)
        shapes[f"{layer}/attention/output/dense/kernel"] = (hidden, hidden)
        shapes[f"{layer}/attention/output/dense/bias"] = (hidden,)
        shapes[f"{layer}/attention/output/LayerNorm/beta"] = (hidden,)
        shapes[f"{layer}/attention/output/LayerNorm/gamma"] = (hidden,)
        shapes[f"{layer}/intermediate/dense/kernel"] = (hidden, inner)
        shapes[f"{layer}/intermediate/dense/bias"] = (inner,)
        shapes[f"{layer}/output/dense/kernel"] = (inner, hidden)
        shapes[f"{layer}/output/dense/bias"] = (hidden,)
        shapes[f"{layer}/output/LayerNorm/beta"] = (hidden,)
        shapes[f"{layer}/output/LayerNorm/gamma"] = (hidden,)
    shapes["bert/pooler/dense/kernel"] = (hidden, hidden)
    shapes["bert/pooler/dense/bias"] = (hidden,)
    # run_pretraining.py's heads: get_masked_lm_output and get_next_sentence_output.
    shapes["cls/predictions/transform/dense/kernel"] = (hidden, hidden)
    shapes["cls/predictions/transform/dense/bias"] = (hidden,)
    shapes["cls/predictions/transform/LayerNorm/beta"] = (hidden,)
    shapes["cls/predictions/transform/LayerNorm/gamma"] = (hidden,)
    shapes["cls/predictions/output_bias"] = (vocab,)
    shapes["cls/seq_relationship/output_weights"] = (2, hidden)  # [out, in], unlike the kernels
    shapes["cls/seq_relationship/output_bias"] = (2,)
    return shapes


def google_bert_values(config: dict, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Distinct, non-trivial values for every variable, so a swapped or untransposed tensor shows."""
    values = {}
    for name, shape in google_bert_shapes(config).items():
        if name.endswith("gamma"):
            value = 1.0 + 0.1 * rng.standard_normal(shape)
        else:
            value = config["initializer_range"] * rng.standard_normal(shape)
        values[name] = value.astype(np.float32)
        # Optimizer slots: low-entropy values (multiples of 1/16 and 1/256, exact in float32) keep the npz small.
        values[f"{name}/adam_m"] = (rng.integers(-8, 8, shape) / 16).astype(np.float32)
        values[f"{name}/adam_v"] = (rng.integers(0, 16, shape) / 256).astype(np.float32)
    values["global_step"] = np.array(1000, dtype=np.int64)
    return values


def save_with_v1_saver(values: dict[str, np.ndarray], prefix: Path) -> None:
    """Save as google-research/bert did: graph variables, tf.compat.v1.train.Saver, V2 bundle format."""
    graph = tf.Graph()
    with graph.as_default():
        variables = [tf.compat.v1.get_variable(name, initializer=value) for name, value in values.items()]
        saver = tf.compat.v1.train.Saver(variables)
        with tf.compat.v1.Session(graph=graph) as session:
            session.run(tf.compat.v1.global_variables_initializer())
            saver.save(session, str(prefix), write_meta_graph=False, write_state=False)


def dtype_values(rng: np.random.Generator) -> dict[str, np.ndarray]:
    """One variable per dtype the reader maps, a scalar, and a string the reader skips."""
    return {
        "dtypes/float16": rng.standard_normal((3, 5)).astype(np.float16),
        "dtypes/bfloat16": rng.standard_normal((4, 3)).astype(tf.bfloat16.as_numpy_dtype),
        "dtypes/float64": rng.standard_normal((2, 3)),
        "dtypes/int32": rng.integers(-(2**31), 2**31, (7,), dtype=np.int32),
        "dtypes/int64": rng.integers(-(2**62), 2**62, (2, 2), dtype=np.int64),
        "dtypes/int16": rng.integers(-(2**15), 2**15, (3,), dtype=np.int16),
        "dtypes/int8": rng.integers(-128, 128, (5,), dtype=np.int8),
        "dtypes/uint8": rng.integers(0, 256, (5,), dtype=np.uint8),
        "dtypes/bool": rng.integers(0, 2, (6,)).astype(bool),
        "dtypes/scalar": np.float32(-1.25),
        "dtypes/matrix": rng.standard_normal((10, 12)).astype(np.float32),
        "dtypes/string": np.array([b"not", b"a number"]),
    }


def save_sharded_with_v1_saver(values: dict[str, np.ndarray], prefix: Path, num_devices: int) -> None:
    """Saver(sharded=True) writes one shard per device; variables go round-robin over logical CPUs."""
    graph = tf.Graph()
    with graph.as_default():
        variables = []
        for i, (name, value) in enumerate(values.items()):
            with tf.device(f"/cpu:{i % num_devices}"):
                variables.append(tf.compat.v1.get_variable(name, initializer=value))
        saver = tf.compat.v1.train.Saver(variables, sharded=True)
        with tf.compat.v1.Session(graph=graph) as session:
            session.run(tf.compat.v1.global_variables_initializer())
            saver.save(session, str(prefix), write_meta_graph=False, write_state=False)


def save_sliced_object_checkpoint(value: np.ndarray, prefix: Path) -> None:
    """A TF2 tf.train.Checkpoint whose one variable is larger than the shard size, so TF cuts it into
    slices (as a partitioned variable is saved)."""
    policy = tf.train.experimental.MaxShardSizePolicy(max_shard_size=value.nbytes // 4)
    options = tf.train.CheckpointOptions(experimental_sharding_callback=policy)
    tf.train.Checkpoint(big=tf.Variable(value)).write(str(prefix), options=options)


def read_with_tensorflow(prefix: Path) -> dict[str, np.ndarray]:
    """Every numeric tensor as TF reads it; bfloat16 widened to float32 (exact), strings left out."""
    reader = tf.train.load_checkpoint(str(prefix))
    tensors = {}
    for name, dtype in sorted(reader.get_variable_to_dtype_map().items()):
        if dtype == tf.string:
            continue
        value = reader.get_tensor(name)
        tensors[name] = value.astype(np.float32) if dtype == tf.bfloat16 else np.asarray(value)
    return tensors


def main() -> None:
    # Three logical CPUs give Saver(sharded=True) three devices, hence three data shards. This must run
    # before TensorFlow initializes its devices.
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 3)
    OUT.mkdir(exist_ok=True)
    for old in OUT.glob("*.ckpt.*"):
        old.unlink()  # a rerun with fewer shards must not leave stale ones behind
    rng = np.random.default_rng(20181011)  # the date BERT's paper appeared
    save_with_v1_saver(google_bert_values(BERT_CONFIG, rng), OUT / "bert_model.ckpt")
    (OUT / "bert_config.json").write_text(json.dumps(BERT_CONFIG, indent=2, sort_keys=True) + "\n")
    np.savez_compressed(OUT / "bert_model_values.npz", **read_with_tensorflow(OUT / "bert_model.ckpt"))

    save_sharded_with_v1_saver(dtype_values(rng), OUT / "dtypes.ckpt", num_devices=3)
    np.savez_compressed(OUT / "dtypes_values.npz", **read_with_tensorflow(OUT / "dtypes.ckpt"))
    save_sliced_object_checkpoint(rng.standard_normal((40, 30)).astype(np.float32), OUT / "sliced.ckpt")
    for path in sorted(OUT.iterdir()):
        print(f"{path.stat().st_size:>8}  {path.relative_to(OUT.parent.parent)}")


if __name__ == "__main__":
    main()
