"""Build tiny TF Hub BERTs with Google's and TF Model Garden's own code, and TensorFlow's outputs on them.

Writes weights/tf_hub/ (2.4 MB on disk, about 0.5 MB as git stores it), which the tests read without TensorFlow:

  tf1_uncased/  a TF1 Hub module (the format of tfhub.dev/google/bert_uncased_L-12_H-768_A-12/1) built by
                google-research/bert's modeling.py at commit bee6030 ("Adding TF Hub support"): vocab 98,
                hidden 32, 2 layers, 4 heads (head size 8), intermediate 37, 64 positions, do_lower_case=True;
                TF 1.x variables (VariableV2 ops, each read through an Identity `<name>/read`), as in 2019.
  tf1_cased/    the same code, vocab 99, hidden 24, 2 layers, 6 heads (head size 4), intermediate 29,
                48 positions, do_lower_case=False; resource variables (VarHandleOp, read by ReadVariableOp), which
                is what hub's create_module_spec makes by default.
  tf2_uncased/  a TF2 SavedModel (the format of tensorflow/bert_en_uncased_L-12_H-768_A-12/4) exported by TF Model
                Garden's official/nlp/tools/export_tfhub_lib.export_model from its BertEncoder, with_mlm=True:
                vocab 98, hidden 36, 2 layers, 3 heads (head size 12), intermediate 41, 64 positions.
  tf1_uncased_outputs.npz, tf1_cased_outputs.npz, tf2_uncased_outputs.npz
                what TensorFlow computes running each artifact (below), with the inputs it was given.
  tokenizer_outputs.npz
                the ids and tokens that google-research/bert's FullTokenizer gives on a few texts.

No head count is 64 per head, so a reader cannot guess heads as hidden / 64: it must read them from the graph.

## The TF1 Hub module (tf1_uncased/, tf1_cased/)

    tfhub_module.pb                       hub's ModuleDef (format version 3), written by hub's own export
    saved_model.pb                        two MetaGraphDefs: tags {} (inference, is_training=False) and
                                          tags {"train"} (is_training=True: dropout ops present)
    variables/variables.{index,data-00000-of-00001}   the variables, named as Google's checkpoints name them
                                          (bert/encoder/layer_0/attention/self/query/kernel [H, H], ...,
                                          cls/predictions/output_bias [V], ...)
    assets/vocab.txt

Built with tensorflow_hub's own TF1 export (hub.create_module_spec, hub.Module(spec), module.export) from
tensorflow-hub 0.15.0, the last release that has it, which still works under TF 2.21 in tf.compat.v1 graph mode.
The signatures are those of Google's BERT modules:
  tokens             inputs input_ids, input_mask, segment_ids (int32 [B, S]);
                     outputs pooled_output [B, H], sequence_output [B, S, H]
  tokenization_info  outputs vocab_file (string, the asset's path), do_lower_case (bool)
  mlm                inputs input_ids, input_mask, segment_ids, mlm_positions (int32 [B, P]);
                     outputs mlm_logits [B * P, V] (run_pretraining.py's gather_indexes flattens B and P)

What a reader finds in the inference graph (all of it from modeling.py at bee6030, unchanged):
  - GELU, in bert/encoder/layer_<i>/intermediate/dense/ (and cls/predictions/transform/): the tanh form
    x * 0.5 * (1 + tanh(sqrt(2/pi) * (x + 0.044715 * x^3))): ops Pow (exponent Const 3.0), Mul (Const 0.044715),
    AddV2, Mul (Const sqrt(2/pi) = 0.7978845834732056), Tanh, AddV2 (Const 1.0), Mul (Const 0.5), Mul. No Erf op.
  - the attention mask: bert/encoder/layer_<i>/attention/self/: (1.0 - cast(mask)) * -10000.0, a Mul with the
    float Const -10000.0, added to the scores before Softmax.
  - the heads: bert/encoder/layer_<i>/attention/self/Reshape (and Reshape_1, Reshape_2, Reshape_3): transpose_for_scores
    reshapes [B*S, H] to [B, S, N, D] with a shape that is a Pack of (batch, seq, N, D), N and D being int Consts
    (batch and seq come from the dynamic shape since the placeholders are [None, None]); the scores are multiplied
    by the Const 1/sqrt(D).
  - LayerNorm: .../LayerNorm/moments/{mean,SquaredDifference,variance} then .../LayerNorm/batchnorm/add with the
    Const variance_epsilon 1e-12 (y input .../LayerNorm/batchnorm/add/y), Rsqrt, Mul by gamma, and so on:
    tf.nn.batch_normalization as tf.contrib.layers.layer_norm called it.
  - the pooler: bert/pooler/dense, a MatMul + BiasAdd + Tanh on sequence_output[:, 0].
  - the vocabulary: collection saved_model_assets holds an AssetFileDef (tensor "Const:0", filename "vocab.txt");
    tokenization_info's vocab_file is that Const (stored value b"SAVEDMODEL-ASSET"); do_lower_case is the bool
    Const "Const_1:0". Default-valued attrs are stripped (stripped_default_attrs; see stripped_op_list).
  - op names are TF 2.21's (AddV2, BatchMatMulV2); modules exported with TF 1.12/1.13 in 2019 say Add and
    BatchMatMul for the same ops.

modeling.py at bee6030 (`import tensorflow as tf`) is TF 1 code. It runs here unchanged: this script loads the file
with its `tensorflow` bound to a module that is tf.compat.v1 plus `contrib.layers.layer_norm` and `flags`, for the
two things TF 2 removed. The layer_norm is tf_slim's (pip tf-slim), which is tf.contrib.layers' code moved out of
TF: variables LayerNorm/beta, LayerNorm/gamma; moments over the last axis; variance_epsilon 1e-12 for float32.
The PyPI package bert-tensorflow (1.0.4) is not bee6030's modeling.py: it already has the tanh GELU, but its
attention is an einsum rewrite (dense_layer_3d, kernels reshaped to [H, N, D]) that Google's Hub modules do not
contain, so this script uses the google-research/bert source at bee6030 instead (its modeling.py is also the one
on master, eedf571; the SHA-256s are checked below).

## The TF2 SavedModel (tf2_uncased/)

    saved_model.pb, keras_metadata.pb, fingerprint.pb, variables/variables.{index,data-00000-of-00001},
    assets/vocab.txt

Inputs: a dict input_word_ids, input_mask, input_type_ids (int32 [B, S]); outputs pooled_output, sequence_output,
encoder_outputs (one [B, S, H] per layer), default (= pooled_output). `.mlm` takes masked_lm_positions too and
adds mlm_logits [B, P, V]. `.vocab_file` is a tracked asset, `.do_lower_case` a tf.Variable. The variables are
addressed through the checkpoint's object graph; their Keras names are in the object graph's attributes
(word_embeddings/embeddings, transformer/layer_0/self_attention/query/kernel [H, N, D],
.../attention_output/kernel [N, D, H], pooler_transform/kernel, ...; the MLM head's under mlm/variables/<k>:
bert/cls/predictions/transform/dense/kernel, .../transform/LayerNorm/gamma, bert/cls/predictions/output_bias/bias,
its output weights tied to word_embeddings). The activation is
tf_keras.activations.gelu(x, approximate=True), Model Garden's "gelu" (Pow 3.0, Mul 0.044715, Mul 0.7978846, Tanh
in the saved functions' bodies); LayerNorm epsilon 1e-12 (Keras LayerNormalization, norm_epsilon); the attention
mask adds (1 - mask) * -1e9 (official/nlp/modeling/layers/masked_softmax.py in tf-models-official 2.20; the 2020
exports on TF Hub added -10000.0: in float32 both make exp() exactly 0 unless a whole row is padding). The scores
are scaled by 1/sqrt(D) (Const 0.28867513 here, D = 12). The serving_default signature names its outputs after the
Keras layer (bert_encoder_1, bert_encoder_1_1, ...), not pooled_output: the npz key serving_default_names maps
them, found by comparing values.

## Golden outputs

tf1_*_outputs.npz: TensorFlow 2 in graph mode loads the module directory with hub.Module (tags {}, the inference
graph) and runs every signature; tf2_*_outputs.npz: tf.saved_model.load(dir) called on the inputs dict, and .mlm.
Keys (float32 outputs, int32 inputs, text as unicode arrays):
  batch_texts, batch_input_ids, batch_input_mask, batch_segment_ids   three texts of different lengths, padded
  batch_pooled_output, batch_sequence_output, batch_encoder_outputs (TF2 only, [L, B, S, H])
  pair_texts_a, pair_texts_b, pair_input_ids, pair_input_mask, pair_segment_ids   two text pairs, padded
  pair_pooled_output, pair_sequence_output, pair_encoder_outputs (TF2 only)
  mlm_positions, mlm_logits   the batch's positions 1..3 (TF1 [B*P, V], TF2 [B, P, V])
  vocab_file (the asset's file name), do_lower_case
  serving_default_names (TF2 only)   e.g. "bert_encoder_1_3=sequence_output"
  batch_*_erf / pair_*_erf   the same graph with the Erf GELU substituted (TF1: modeling.gelu replaced by the
                             exact form in a second build; TF2: hidden_act "gelu" with approximate=False), so a
                             test can show that the tanh form, and not the exact one, is what the module computes
tokenizer_outputs.npz: texts, and for each of uncased/cased (the tiny vocabs) and for each FullTokenizer version
(bee6030, eedf571 which changed _is_control to Cc/Cf only) the tokens and ids, '\\n'-joined per text.
Seen: the `tokenizers` library's BertWordPieceTokenizer (clean_text, handle_chinese_chars, lowercase and
strip_accents = do_lower_case) gives bee6030's tokens on all seven texts; eedf571 differs from both on one text only,
where it keeps the private-use character U+E000 (category Co) as a word, [UNK], that bee6030 and `tokenizers' drop.

## Rerun

    /work/tfvenv/bin/pip install tensorflow-cpu==2.21.0 tf-keras==2.21.0 tensorflow-hub==0.16.1 tf-slim==1.1.0 \
        bert-tensorflow==1.0.4 safetensors gin-config pyyaml immutabledict scipy
    /work/tfvenv/bin/pip install --no-deps tf-models-official==2.20.0   # its pins ask for TF 2.20 and tf-text
    /work/tfvenv/bin/pip install --no-deps --target /work/tfvenv/src/tensorflow-hub-0.15.0 tensorflow-hub==0.15.0
    git clone https://github.com/google-research/bert && git -C bert checkout bee6030
    git clone https://github.com/google-research/bert bert-master   # eedf571: its later tokenization.py, optional
    PYTHONPATH=/work/tfvenv/src/tensorflow-hub-0.15.0 \
        /work/tfvenv/bin/python weights/make_tf_hub_fixture.py --google-bert ./bert --google-bert-eedf571 ./bert-master

(On this machine the two checkouts are /work/tfvenv/src/google-bert-bee6030 and .../google-bert-eedf571, the
defaults; the SHA-256 of each file is checked, so another commit's files are refused by name.)

Values come from a seeded NumPy generator, so reruns write the same variables; the versions used are recorded in
weights/tf_hub/versions.json.
"""

import argparse
import hashlib
import importlib.util
import json
import os
import shutil
import sys
import tempfile
import types
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")  # plain Eigen kernels: the same float32 sums on every rerun
os.environ["TF_USE_LEGACY_KERAS"] = "1"  # Model Garden and tf.compat.v1.layers need Keras 2 (tf-keras)

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

# tensorflow_hub 0.16 dropped the TF1 Module API (hub.create_module_spec, hub.Module); 0.15.0 is the last release
# with it, and its package __init__ imports tf.compat.v1.estimator (removed in TF 2.16) for an Estimator exporter
# this script never uses: a placeholder lets the import through.
tf.compat.v1.estimator = types.SimpleNamespace(Exporter=object)
import tensorflow_hub as hub  # noqa: E402

if not hasattr(hub, "create_module_spec"):
    sys.exit(
        f"tensorflow_hub {hub.__version__} has no TF1 Module API: install tensorflow-hub==0.15.0 with "
        "pip install --no-deps --target DIR and put DIR first on PYTHONPATH"
    )
import tf_keras  # noqa: E402
import tf_slim  # noqa: E402
from absl import flags as absl_flags  # noqa: E402

tf1 = tf.compat.v1
OUT = Path(__file__).resolve().parent / "tf_hub"
FIXED_SCRATCH = Path("/tmp/make_tf_hub_fixture")

# SHA-256 of google-research/bert's files at bee6030 (modeling.py, optimization.py, run_pretraining.py are unchanged
# up to master, eedf571; tokenization.py changed once, in _is_control).
GOOGLE_BERT_SHA256 = {
    "modeling.py": "6f5e7c2d157ef46c092f8bc0538e60775f9fa0d40f957c8a3529ead18ff4dded",
    "optimization.py": "5b0943f0f068320f2902e3ba103289737389e6103de4bc24afe3baa6e486268f",
    "run_pretraining.py": "96f34d5b4ee3bd54aa397b4d0817e93b2da7b832e794a9ecace7d06f4375df93",
    "tokenization.py": "f13d324edfe184565ae74a02b2e901c391d0319a30be3898405769f9eb09a675",
}
TOKENIZATION_EEDF571_SHA256 = "576f8e709eaa59c999a8aed3f32c581487d59ab47079fe64b3d3fa457bc7fb34"

SPECIAL = ["[PAD]", "[unused0]", "[unused1]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
PUNCTUATION = list("!\"'(),-./:;?[]")
UNCASED_WORDS = (
    "the a is not of to and why what how first token tokens pool output sequence different hub module tensor flow "
    "bert cafe naive resume zurich hello world question answer it this that was be"
).split()
CASED_WORDS = (
    "The the A a Why What How is not of first token Pool pool output sequence different Hub hub Module module "
    "BERT Café café naïve Zürich Hello hello World world Question answer It it This that"
).split()
PIECES = "##s ##ed ##ing ##er ##ly ##e ##a ##o ##t ##n ##é ##ï".split()
CHARACTERS = list("abcdefghijklmnopqrstuvwxyz") + ["北", "京", "東", "中", "文"]

TEXTS = [
    "Why is the pooled output different?",
    "Hello, world! Pooling tokens.",
    "Café naïve résumé, Zürich.",
    "北京 is 東京's neighbour?",
    "THE FIRST TOKEN's output",
    "tab\tnew\nline  and\u00a0nbsp",
    "private \ue000 use and \u200b zero width",
]
BATCH_TEXTS = TEXTS[:3]
PAIR_TEXTS = [("Why is the pooled output different?", "It is not the first token."), ("Hello world", "北京")]
KINDS = ("batch", "pair")  # the input sets: a padded batch of texts, a padded batch of text pairs

TF1_UNCASED = {
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
}
TF1_CASED = dict(TF1_UNCASED, hidden_size=24, intermediate_size=29, max_position_embeddings=48, num_attention_heads=6)
TF2_UNCASED = dict(TF1_UNCASED, hidden_size=36, intermediate_size=41, num_attention_heads=3)

# Weight scales large enough that the intermediate layer's inputs spread over [-4, 4], where the tanh GELU and the
# exact one differ by up to 1e-3 (with initializer_range 0.02 they would all sit near 0 and agree to 1e-6).
KERNEL_STD = 0.25
BIAS_STD = 0.1
EMBEDDING_STD = 0.5


def vocab_lines(words: list[str]) -> list[str]:
    """A vocab.txt in BERT's order: specials, punctuation, words, word pieces, single characters."""
    return list(dict.fromkeys(SPECIAL + PUNCTUATION + words + PIECES + CHARACTERS))  # first occurrence wins


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def tf1_namespace() -> types.ModuleType:
    """`tensorflow` as google-research/bert's TF 1 code expects it: tf.compat.v1 plus the two things TF 2 removed,
    tf.contrib.layers.layer_norm (tf_slim's copy of the same code) and tf.flags (absl's)."""
    shim = types.ModuleType("tensorflow")
    shim.__getattr__ = lambda name: getattr(tf1, name)  # PEP 562: everything else is tf.compat.v1
    shim.contrib = types.SimpleNamespace(layers=types.SimpleNamespace(layer_norm=tf_slim.layers.layer_norm))
    shim.flags = absl_flags
    return shim


def load_google_file(directory: Path, name: str, expected_sha256: str) -> types.ModuleType:
    """Import one of google-research/bert's files unchanged, with `import tensorflow` bound to tf1_namespace()."""
    path = directory / f"{name}.py"
    found = sha256(path)
    if found != expected_sha256:
        sys.exit(f"{path}: SHA-256 {found}, expected {expected_sha256} (google-research/bert at bee6030)")
    real_tf = sys.modules["tensorflow"]
    sys.modules["tensorflow"] = tf1_namespace()
    try:
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # run_pretraining.py does `import modeling` and `import optimization`
        spec.loader.exec_module(module)
    finally:
        sys.modules["tensorflow"] = real_tf
    return module


def load_google_bert(directory: Path) -> dict[str, types.ModuleType]:
    modules = {}
    for name in ("modeling", "optimization", "run_pretraining", "tokenization"):
        modules[name] = load_google_file(directory, name, GOOGLE_BERT_SHA256[f"{name}.py"])
    return modules


def seeded_values(seed: int):
    """A function (name, shape) -> value drawing from one generator, so values follow the order of the calls."""
    rng = np.random.default_rng(seed)
    return lambda name, shape: seeded_value(name, shape, rng)


def seeded_value(name: str, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """Distinct values for every variable, scaled so the activations reach the range where GELU forms differ."""
    if name.endswith("gamma"):
        value = 1.0 + 0.2 * rng.standard_normal(shape)
    elif name.endswith("beta") or name.endswith("bias"):
        value = BIAS_STD * rng.standard_normal(shape)
    elif "embeddings" in name:
        value = EMBEDDING_STD * rng.standard_normal(shape)
    else:
        value = KERNEL_STD * rng.standard_normal(shape)
    return value.astype(np.float32)


# ---------------------------------------------------------------------------------------------------------------
# TF1 Hub module


def exact_gelu(x):
    """modeling.py's gelu before bee6030 (the exact erf form), for the *_erf comparison outputs only."""
    return x * (0.5 * (1.0 + tf1.erf(x / tf1.sqrt(2.0))))


def tf1_module_fn(
    google: dict,
    config: dict,
    vocab_path: Path,
    do_lower_case: bool,
    is_training: bool,
    resource_variables: bool,
    with_mlm: bool,
) -> None:
    """The module as Google's BERT modules define it: BertModel over three placeholders, and three signatures.

    hub.create_module_spec wraps module_fn in variable_scope("", use_resource=True); use_resource=False gives
    TF 1.x's own variables (VariableV2 ops read through Identity `<name>/read`), as its docstring says to."""
    with tf1.variable_scope("", use_resource=resource_variables):
        tf1_module_graph(google, config, vocab_path, do_lower_case, is_training, with_mlm)


def tf1_module_graph(
    google: dict, config: dict, vocab_path: Path, do_lower_case: bool, is_training: bool, with_mlm: bool
) -> None:
    modeling = google["modeling"]
    bert_config = modeling.BertConfig.from_dict(config)
    input_ids = tf1.placeholder(tf.int32, [None, None], name="input_ids")
    input_mask = tf1.placeholder(tf.int32, [None, None], name="input_mask")
    segment_ids = tf1.placeholder(tf.int32, [None, None], name="segment_ids")
    model = modeling.BertModel(
        config=bert_config,
        is_training=is_training,
        input_ids=input_ids,
        input_mask=input_mask,
        token_type_ids=segment_ids,
        use_one_hot_embeddings=False,
    )
    token_inputs = {"input_ids": input_ids, "input_mask": input_mask, "segment_ids": segment_ids}
    hub.add_signature(
        "tokens",
        inputs=token_inputs,
        outputs={"pooled_output": model.get_pooled_output(), "sequence_output": model.get_sequence_output()},
    )

    if with_mlm:
        # run_pretraining.get_masked_lm_output builds cls/predictions; its labels only feed the loss, which no
        # signature exports. The logits are the input of its log_softmax.
        mlm_positions = tf1.placeholder(tf.int32, [None, None], name="mlm_positions")
        _, _, log_probs = google["run_pretraining"].get_masked_lm_output(
            bert_config,
            model.get_sequence_output(),
            model.get_embedding_table(),
            mlm_positions,
            tf1.zeros_like(mlm_positions),
            tf1.ones_like(mlm_positions, dtype=tf.float32),
        )
        mlm_inputs = dict(token_inputs, mlm_positions=mlm_positions)
        hub.add_signature("mlm", inputs=mlm_inputs, outputs={"mlm_logits": log_probs.op.inputs[0]})

    vocab_file = tf1.constant(str(vocab_path))
    tf1.add_to_collection(tf1.GraphKeys.ASSET_FILEPATHS, vocab_file)
    hub.add_signature(
        "tokenization_info",
        inputs={},
        outputs={"vocab_file": vocab_file, "do_lower_case": tf1.constant(do_lower_case)},
    )


def build_tf1_module(
    google: dict,
    config: dict,
    vocab: list[str],
    do_lower_case: bool,
    values,
    out: Path,
    resource_variables: bool,
    with_mlm: bool = True,
    gelu=None,
) -> None:
    """Export a TF1 Hub module with hub's own export, each variable set to values(name, shape), in name order."""
    modeling = google["modeling"]
    original_gelu = modeling.gelu
    if gelu is not None:
        modeling.gelu = gelu  # get_activation("gelu") looks the name up at call time
    # The graph keeps the asset's path as a string Const: a fixed path keeps reruns' saved_model.pb the same.
    vocab_path = FIXED_SCRATCH / "vocab.txt"
    vocab_path.parent.mkdir(parents=True, exist_ok=True)
    vocab_path.write_text("\n".join(vocab) + "\n", encoding="utf-8")
    config = dict(config, vocab_size=len(vocab))
    try:
        spec = hub.create_module_spec(
            lambda is_training: tf1_module_fn(
                google, config, vocab_path, do_lower_case, is_training, resource_variables, with_mlm
            ),
            tags_and_args=[(set(), {"is_training": False}), ({"train"}, {"is_training": True})],
            drop_collections=[],
        )
        with tf.Graph().as_default():
            module = hub.Module(spec, trainable=True)
            assigns = [
                tf1.assign(variable, values(name, tuple(variable.shape.as_list())))
                for name, variable in sorted(module.variable_map.items())
            ]
            with tf1.Session() as session:
                session.run(tf1.global_variables_initializer())
                session.run(assigns)
                if out.exists():
                    shutil.rmtree(out)
                module.export(str(out), session)
    finally:
        modeling.gelu = original_gelu


def run_tf1_module(path: Path, inputs: dict) -> dict[str, np.ndarray]:
    """What TensorFlow computes with the module's inference graph (tags {}), every signature."""
    outputs = {}
    with tf.Graph().as_default():
        module = hub.Module(str(path))
        fetches = {}
        for kind in KINDS:
            if f"{kind}_input_ids" not in inputs:
                continue
            tokens = module(
                {name: inputs[f"{kind}_{name}"] for name in ("input_ids", "input_mask", "segment_ids")},
                signature="tokens",
                as_dict=True,
            )
            fetches[f"{kind}_pooled_output"] = tokens["pooled_output"]
            fetches[f"{kind}_sequence_output"] = tokens["sequence_output"]
        if "mlm" in module.get_signature_names():
            mlm = module(
                {
                    "input_ids": inputs["batch_input_ids"],
                    "input_mask": inputs["batch_input_mask"],
                    "segment_ids": inputs["batch_segment_ids"],
                    "mlm_positions": inputs["mlm_positions"],
                },
                signature="mlm",
                as_dict=True,
            )
            fetches["mlm_logits"] = mlm["mlm_logits"]
        info = module(signature="tokenization_info", as_dict=True)
        fetches["vocab_file"] = info["vocab_file"]
        fetches["do_lower_case"] = info["do_lower_case"]
        with tf1.Session() as session:
            session.run(tf1.global_variables_initializer())
            session.run(tf1.tables_initializer())
            outputs = session.run(fetches)
    outputs["vocab_file"] = np.array(Path(outputs["vocab_file"].decode()).name)
    outputs["do_lower_case"] = np.array(bool(outputs["do_lower_case"]))
    return outputs


# ---------------------------------------------------------------------------------------------------------------
# TF2 SavedModel


def build_tf2_saved_model(
    config: dict, vocab: list[str], do_lower_case: bool, values, out: Path, with_mlm: bool = True
) -> None:
    """Export as TF Hub's BERT encoders were: Model Garden's export_tfhub_lib.export_model from a checkpoint."""
    from official.legacy.bert import configs
    from official.nlp.tools import export_tfhub_lib

    bert_config = configs.BertConfig.from_dict(dict(config, vocab_size=len(vocab)))
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        vocab_path = scratch / "vocab.txt"
        vocab_path.write_text("\n".join(vocab) + "\n", encoding="utf-8")
        # The checkpoint that export_model restores: a BertPretrainerV2 as Model Garden's pretraining saves it,
        # or the encoder alone.
        _, trained = export_tfhub_lib._create_model(bert_config=bert_config, with_mlm=with_mlm)
        for variable in sorted(trained.variables, key=lambda v: v.name):
            variable.assign(values(variable.name.split(":")[0], tuple(variable.shape)))
        items = trained.checkpoint_items if with_mlm else {"encoder": trained}
        checkpoint_path = tf.train.Checkpoint(**items).save(str(scratch / "ckpt"))
        if out.exists():
            shutil.rmtree(out)
        export_tfhub_lib.export_model(
            str(out),
            bert_config=bert_config,
            model_checkpoint_path=checkpoint_path,
            with_mlm=with_mlm,
            vocab_file=str(vocab_path),
            do_lower_case=do_lower_case,
        )


def run_tf2_saved_model(path: Path, inputs: dict) -> dict[str, np.ndarray]:
    """What TensorFlow computes calling the loaded SavedModel, and its .mlm."""
    model = tf.saved_model.load(str(path))
    outputs = {}
    for kind in [kind for kind in KINDS if f"{kind}_input_ids" in inputs]:
        result = model(
            {
                "input_word_ids": tf.constant(inputs[f"{kind}_input_ids"]),
                "input_mask": tf.constant(inputs[f"{kind}_input_mask"]),
                "input_type_ids": tf.constant(inputs[f"{kind}_segment_ids"]),
            },
            training=False,
        )
        outputs[f"{kind}_pooled_output"] = result["pooled_output"].numpy()
        outputs[f"{kind}_sequence_output"] = result["sequence_output"].numpy()
        outputs[f"{kind}_encoder_outputs"] = np.stack([layer.numpy() for layer in result["encoder_outputs"]])
        np.testing.assert_array_equal(result["default"].numpy(), outputs[f"{kind}_pooled_output"])
    if hasattr(model, "mlm"):
        mlm = model.mlm(
            {
                "input_word_ids": tf.constant(inputs["batch_input_ids"]),
                "input_mask": tf.constant(inputs["batch_input_mask"]),
                "input_type_ids": tf.constant(inputs["batch_segment_ids"]),
                "masked_lm_positions": tf.constant(inputs["mlm_positions"]),
            },
            training=False,
        )
        outputs["mlm_logits"] = mlm["mlm_logits"].numpy()
    outputs["serving_default_names"] = serving_default_names(model, inputs, outputs)
    outputs["vocab_file"] = np.array(Path(model.vocab_file.asset_path.numpy().decode()).name)
    outputs["do_lower_case"] = np.array(bool(model.do_lower_case.numpy()))
    return outputs


def serving_default_names(model, inputs: dict, outputs: dict) -> np.ndarray:
    """'signature output name=model output name' for each output of serving_default, matched by value."""
    result = model.signatures["serving_default"](
        input_word_ids=tf.constant(inputs["batch_input_ids"]),
        input_mask=tf.constant(inputs["batch_input_mask"]),
        input_type_ids=tf.constant(inputs["batch_segment_ids"]),
    )
    known = {"pooled_output": outputs["batch_pooled_output"], "sequence_output": outputs["batch_sequence_output"]}
    known |= {f"encoder_outputs[{i}]": layer for i, layer in enumerate(outputs["batch_encoder_outputs"])}
    names = []
    for name, value in sorted(result.items()):
        # The signature's function is traced apart from the call's, so float32 sums may round differently.
        matches = [k for k, v in known.items() if v.shape == value.shape and np.allclose(v, value, atol=1e-6)]
        names.append(f"{name}={'|'.join(matches)}")  # pooled_output and default are equal, so one name shows both
    return np.array(names)


def build_tf2_exact_gelu_outputs(path: Path, config: dict, vocab: list[str], inputs: dict) -> dict[str, np.ndarray]:
    """The same variables in a BertEncoder whose GELU is exact (approximate=False), for the *_erf outputs."""
    from official.nlp.modeling import networks

    loaded = tf.saved_model.load(str(path))
    encoder = networks.BertEncoder(
        vocab_size=len(vocab),
        hidden_size=config["hidden_size"],
        num_layers=config["num_hidden_layers"],
        num_attention_heads=config["num_attention_heads"],
        intermediate_size=config["intermediate_size"],
        activation=lambda x: tf_keras.activations.gelu(x, approximate=False),
        max_sequence_length=config["max_position_embeddings"],
        type_vocab_size=config["type_vocab_size"],
        dict_outputs=True,
    )
    by_name = {v.name: v for v in loaded.variables}
    for variable in encoder.variables:
        variable.assign(by_name[variable.name])
    outputs = {}
    for kind in ("batch", "pair"):
        result = encoder(
            {
                "input_word_ids": tf.constant(inputs[f"{kind}_input_ids"]),
                "input_mask": tf.constant(inputs[f"{kind}_input_mask"]),
                "input_type_ids": tf.constant(inputs[f"{kind}_segment_ids"]),
            },
            training=False,
        )
        outputs[f"{kind}_pooled_output_erf"] = result["pooled_output"].numpy()
        outputs[f"{kind}_sequence_output_erf"] = result["sequence_output"].numpy()
    return outputs


# ---------------------------------------------------------------------------------------------------------------
# Inputs and tokenizer


def encode_inputs(
    tokenizer, vocab: list[str], batch_texts: list[str] = BATCH_TEXTS, pair_texts: list[tuple[str, str]] = PAIR_TEXTS
) -> dict[str, np.ndarray]:
    """A padded batch of texts and a padded batch of pairs, as run_classifier.py lays them out."""
    cls_id, sep_id = vocab.index("[CLS]"), vocab.index("[SEP]")
    rows = []
    for text in batch_texts:
        ids = tokenizer.convert_tokens_to_ids(tokenizer.tokenize(text))
        rows.append(([cls_id, *ids, sep_id], [0] * (len(ids) + 2)))
    batch = pad(rows)
    rows = []
    for text_a, text_b in pair_texts:
        a = tokenizer.convert_tokens_to_ids(tokenizer.tokenize(text_a))
        b = tokenizer.convert_tokens_to_ids(tokenizer.tokenize(text_b))
        rows.append(([cls_id, *a, sep_id, *b, sep_id], [0] * (len(a) + 2) + [1] * (len(b) + 1)))
    pair = pad(rows)
    return {
        "batch_texts": np.array(batch_texts),
        **{f"batch_{name}": value for name, value in batch.items()},
        "pair_texts_a": np.array([a for a, _ in pair_texts]),
        "pair_texts_b": np.array([b for _, b in pair_texts]),
        **{f"pair_{name}": value for name, value in pair.items()},
        "mlm_positions": np.array([[1, 2, 3]] * len(batch_texts), dtype=np.int32),
    }


def pad(rows: list[tuple[list[int], list[int]]]) -> dict[str, np.ndarray]:
    length = max(len(ids) for ids, _ in rows)
    input_ids = np.zeros((len(rows), length), np.int32)
    input_mask = np.zeros((len(rows), length), np.int32)
    segment_ids = np.zeros((len(rows), length), np.int32)
    for i, (ids, segments) in enumerate(rows):
        input_ids[i, : len(ids)] = ids
        input_mask[i, : len(ids)] = 1
        segment_ids[i, : len(ids)] = segments
    return {"input_ids": input_ids, "input_mask": input_mask, "segment_ids": segment_ids}


def tokenizer_outputs(tokenizations: dict[str, types.ModuleType], vocabs: dict[str, Path]) -> dict[str, np.ndarray]:
    """FullTokenizer's tokens and ids on TEXTS, for each vocab and each version of tokenization.py."""
    outputs = {"texts": np.array(TEXTS)}
    for version, tokenization in tokenizations.items():
        for casing, vocab_path in vocabs.items():
            tokenizer = tokenization.FullTokenizer(str(vocab_path), do_lower_case=casing == "uncased")
            tokens = [tokenizer.tokenize(text) for text in TEXTS]
            outputs[f"{casing}_{version}_tokens"] = np.array(["\n".join(t) for t in tokens])
            outputs[f"{casing}_{version}_ids"] = np.array(
                ["\n".join(str(i) for i in tokenizer.convert_tokens_to_ids(t)) for t in tokens]
            )
    return outputs


def versions() -> dict[str, str]:
    from importlib.metadata import version

    names = ["tensorflow", "tensorflow-cpu", "tf-keras", "tensorflow-hub", "tf-slim", "tf-models-official", "numpy"]
    names.append("bert-tensorflow")  # make_tf_hub_real.py's tf1_minilm_pypi
    return {name: version(name) for name in names} | {"google-research/bert": "bee6030 (modeling.py = eedf571's)"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--google-bert", type=Path, default=Path("/work/tfvenv/src/google-bert-bee6030"))
    parser.add_argument("--google-bert-eedf571", type=Path, default=Path("/work/tfvenv/src/google-bert-eedf571"))
    args = parser.parse_args()
    google = load_google_bert(args.google_bert)
    tokenizations = {"bee6030": google["tokenization"]}
    eedf571 = args.google_bert_eedf571 / "tokenization.py"
    if eedf571.exists():
        sys.modules.pop("tokenization", None)
        tokenizations["eedf571"] = load_google_file(
            args.google_bert_eedf571, "tokenization", TOKENIZATION_EEDF571_SHA256
        )

    OUT.mkdir(exist_ok=True)
    vocabs = {"uncased": vocab_lines(UNCASED_WORDS), "cased": vocab_lines(CASED_WORDS)}
    vocab_paths = {}
    with tempfile.TemporaryDirectory() as scratch:
        for casing, vocab in vocabs.items():
            vocab_paths[casing] = Path(scratch) / f"{casing}.txt"
            vocab_paths[casing].write_text("\n".join(vocab) + "\n", encoding="utf-8")
        np.savez_compressed(OUT / "tokenizer_outputs.npz", **tokenizer_outputs(tokenizations, vocab_paths))

        plans = [
            ("tf1_uncased", TF1_UNCASED, "uncased", True, 20190207, False),  # 20190207: the date of bee6030
            ("tf1_cased", TF1_CASED, "cased", False, 20181031, True),
        ]
        for name, config, casing, do_lower_case, seed, resource_variables in plans:
            vocab = vocabs[casing]
            tokenizer = google["tokenization"].FullTokenizer(str(vocab_paths[casing]), do_lower_case=do_lower_case)
            inputs = encode_inputs(tokenizer, vocab)
            build_tf1_module(google, config, vocab, do_lower_case, seeded_values(seed), OUT / name, resource_variables)
            outputs = run_tf1_module(OUT / name, inputs)
            erf_dir = Path(scratch) / f"{name}_erf"
            values = seeded_values(seed)
            build_tf1_module(google, config, vocab, do_lower_case, values, erf_dir, resource_variables, gelu=exact_gelu)
            erf = run_tf1_module(erf_dir, inputs)
            for kind in ("batch", "pair"):
                for output in ("pooled_output", "sequence_output"):
                    outputs[f"{kind}_{output}_erf"] = erf[f"{kind}_{output}"]
            np.savez_compressed(OUT / f"{name}_outputs.npz", **inputs, **outputs)
            report(name, outputs)

        vocab = vocabs["uncased"]
        tokenizer = google["tokenization"].FullTokenizer(str(vocab_paths["uncased"]), do_lower_case=True)
        inputs = encode_inputs(tokenizer, vocab)
        build_tf2_saved_model(TF2_UNCASED, vocab, True, seeded_values(20201020), OUT / "tf2_uncased")
        outputs = run_tf2_saved_model(OUT / "tf2_uncased", inputs)
        outputs |= build_tf2_exact_gelu_outputs(OUT / "tf2_uncased", TF2_UNCASED, vocab, inputs)
        np.savez_compressed(OUT / "tf2_uncased_outputs.npz", **inputs, **outputs)
        report("tf2_uncased", outputs)

    (OUT / "versions.json").write_text(json.dumps(versions(), indent=2, sort_keys=True) + "\n")
    total = 0
    for path in sorted(OUT.rglob("*")):
        if path.is_file():
            total += path.stat().st_size
            print(f"{path.stat().st_size:>8}  {path.relative_to(OUT.parent.parent)}")
    print(f"{total:>8}  total")


def report(name: str, outputs: dict[str, np.ndarray]) -> None:
    """How far the exact GELU lands from the module's own, so a test at 1e-5 can tell them apart."""
    for kind in ("batch", "pair"):
        for output in ("pooled_output", "sequence_output"):
            delta = np.abs(outputs[f"{kind}_{output}"] - outputs[f"{kind}_{output}_erf"]).max()
            print(f"{name} {kind} {output}: max |tanh GELU - erf GELU| = {delta:.2e}")


if __name__ == "__main__":
    main()
