"""TF Hub BERTs opened without TensorFlow: a TF1 Hub module (google-research/bert's modeling.py) and a TF2 SavedModel
(TF Model Garden's BertEncoder), against what TensorFlow computes running them.

The modules and TensorFlow's outputs on them are weights/tf_hub/, made by weights/make_tf_hub_fixture.py with real
TensorFlow (2.21), tensorflow_hub's own TF1 export and Model Garden's own TF Hub export.
"""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from support.hostile_files import tf_bundle

import minibert
from minibert.cli import main
from minibert.errors import CheckpointError, ConfigError
from minibert.explainer.page import read_page_data
from minibert.formats.saved_model import read_checkpoint_object_graph, read_inference_graph
from minibert.formats.tf_checkpoint import load_tf_checkpoint
from minibert.tf_module import FROM_GRAPH, module_config

TF_HUB = Path(__file__).resolve().parent.parent / "weights" / "tf_hub"
MODULES = ["tf1_uncased", "tf1_cased", "tf2_uncased"]
TF1_MODULES = ["tf1_uncased", "tf1_cased"]

# float32 through a few layers, summed in another order than TensorFlow's (its LayerNorm is batch_normalization's
# x * (gamma * rsqrt(var + eps)) + (beta - mean * ...)): the bound; seen up to 2e-6 (tanh GELU, 2 layers).
FLOAT32_TOLERANCE = 1e-5
# The exact and the tanh GELU differ by up to ~1e-3 where the fixture's activations spread over [-4, 4]; this is far
# above rounding and far below that, so a model that computes the other GELU fails it.
OTHER_GELU_AT_LEAST = 1e-4


def golden(name: str):
    return np.load(TF_HUB / f"{name}_outputs.npz")


@pytest.fixture(scope="module", params=MODULES)
def module(request):
    return request.param, minibert.BertModel.from_pretrained(TF_HUB / request.param)


def run(model, outputs, kind: str, **kwargs):
    return model(outputs[f"{kind}_input_ids"], outputs[f"{kind}_input_mask"], outputs[f"{kind}_segment_ids"], **kwargs)


@pytest.mark.parametrize("kind", ["batch", "pair"])
def test_every_output_of_the_signature_matches_tensorflow(module, kind):
    """The `tokens` signature's pooled_output and sequence_output (TF1), and also encoder_outputs (TF2), on a padded
    batch and on sentence pairs with segment ids: every position, padding included."""
    name, model = module
    outputs = golden(name)
    out = run(model, outputs, kind, output_hidden_states=True)
    np.testing.assert_allclose(out.pooler_output, outputs[f"{kind}_pooled_output"], rtol=0, atol=FLOAT32_TOLERANCE)
    np.testing.assert_allclose(
        out.last_hidden_state, outputs[f"{kind}_sequence_output"], rtol=0, atol=FLOAT32_TOLERANCE
    )
    if f"{kind}_encoder_outputs" in outputs:
        np.testing.assert_allclose(
            np.stack(out.hidden_states[1:]), outputs[f"{kind}_encoder_outputs"], rtol=0, atol=FLOAT32_TOLERANCE
        )


def test_pooled_output_is_not_the_first_tokens_sequence_output(module):
    """The question, in the module's own names: pooled_output[0] is tanh(W sequence_output[0, 0, :] + b)."""
    name, model = module
    outputs = golden(name)
    pooled, sequence = outputs["batch_pooled_output"], outputs["batch_sequence_output"]
    assert np.abs(pooled[0] - sequence[0, 0, :]).max() > 0.1
    dense = model.params["pooler"]["dense"]
    np.testing.assert_allclose(
        np.tanh(sequence[0, 0, :] @ dense["weight"].T + dense["bias"]), pooled[0], rtol=0, atol=FLOAT32_TOLERANCE
    )


def test_the_module_computes_the_tanh_gelu_and_the_override_gives_the_exact_one(module):
    """TensorFlow's outputs with the tanh GELU are matched; those of the same weights with the Erf GELU are not,
    and are matched by hidden_act="gelu"."""
    name, model = module
    outputs = golden(name)
    out = run(model, outputs, "batch")
    assert np.abs(out.last_hidden_state - outputs["batch_sequence_output_erf"]).max() > OTHER_GELU_AT_LEAST
    exact = minibert.BertModel.from_pretrained(TF_HUB / name, hidden_act="gelu")
    assert exact.config.hidden_act == "gelu" and exact.config.hidden_act_source == "the override hidden_act='gelu'"
    for kind in ("batch", "pair"):
        erf = run(exact, outputs, kind)
        np.testing.assert_allclose(erf.pooler_output, outputs[f"{kind}_pooled_output_erf"], atol=FLOAT32_TOLERANCE)
        np.testing.assert_allclose(
            erf.last_hidden_state, outputs[f"{kind}_sequence_output_erf"], atol=FLOAT32_TOLERANCE
        )


@pytest.mark.parametrize("name", MODULES)
def test_masked_lm_logits_match_the_mlm_signature(name):
    """TF1's `mlm` signature ([B * P, V]) and TF2's `.mlm` ([B, P, V]) at the batch's positions 1..3."""
    outputs = golden(name)
    model = minibert.BertForMaskedLM.from_pretrained(TF_HUB / name)
    logits = run(model, outputs, "batch").logits  # [B, S, V]
    positions = outputs["mlm_positions"]  # [B, P]
    ours = np.take_along_axis(logits, positions[:, :, None], axis=1)  # [B, P, V]
    expected = outputs["mlm_logits"].reshape(ours.shape)
    # Logits reach ~10: the bound is relative to them (the same float32 sums, one more dense layer and the decoder).
    np.testing.assert_allclose(ours, expected, rtol=0, atol=FLOAT32_TOLERANCE * np.abs(expected).max())


def test_classification_head_is_refused_naming_the_missing_tensors():
    with pytest.raises(CheckpointError, match="missing task-head tensor"):
        minibert.BertForSequenceClassification.from_pretrained(TF_HUB / "tf1_uncased")


@pytest.mark.parametrize(
    "name, expected",
    [
        ("tf1_uncased", dict(hidden_size=32, num_attention_heads=4, intermediate_size=37, attention_mask_value=-1e4)),
        ("tf1_cased", dict(hidden_size=24, num_attention_heads=6, intermediate_size=29, attention_mask_value=-1e4)),
        # Model Garden's MaskedSoftmax adds -1e9 (official/nlp/modeling/layers/masked_softmax.py, float32)
        ("tf2_uncased", dict(hidden_size=36, num_attention_heads=3, intermediate_size=41, attention_mask_value=-1e9)),
    ],
)
def test_config_comes_from_the_module(name, expected):
    """No config.json: sizes from the variables, the rest from the inference graph. No fixture has 64 dimensions
    per head, so the heads cannot have been guessed as hidden / 64."""
    assert not (TF_HUB / name / "config.json").exists()
    config = minibert.BertModel.from_pretrained(TF_HUB / name).config
    for field, value in expected.items():
        assert getattr(config, field) == value, field
    assert config.hidden_act == "gelu_new" and config.hidden_act_source == FROM_GRAPH
    assert config.layer_norm_eps == 1e-12 and config.num_hidden_layers == 2 and config.type_vocab_size == 2


def test_only_the_inference_graph_is_read():
    """A TF1 module has a second meta graph tagged "train" (with dropout); the one read has no tags."""
    graph = read_inference_graph(TF_HUB / "tf1_uncased" / "saved_model.pb")
    assert graph.tags == frozenset()
    assert not any("dropout" in name for name in graph.nodes)
    assert {"tokens", "mlm", "tokenization_info"} <= set(graph.signatures)


def test_tf2_variables_are_named_through_the_checkpoints_object_graph():
    nodes = read_checkpoint_object_graph(TF_HUB / "tf2_uncased" / "variables" / "variables")
    names = {node.attributes["VARIABLE_VALUE"][0] for node in nodes if "VARIABLE_VALUE" in node.attributes}
    assert {"word_embeddings/embeddings", "transformer/layer_0/self_attention/query/kernel"} <= names
    assert "pooler_transform/kernel" in names


def test_a_fully_padded_row_adds_the_modules_mask_constant(module):
    """A row of only padding gets the scores plus the module's constant, as its graph computes them: Google's -10000
    keeps the scores apart (finfo.min would flatten them to a uniform softmax); Model Garden's -1e9 flattens them."""
    name, model = module
    ids = np.array([[4, 20, 21, 5]])
    _, trace = model.trace(ids, attention_mask=np.zeros_like(ids))
    scores = trace["encoder.layer.0.attention.self.scores"]
    unmasked = model.trace(ids)[1]["encoder.layer.0.attention.self.scores"]
    np.testing.assert_array_equal(scores, unmasked + np.float32(model.config.attention_mask_value))
    assert bool(np.ptp(scores) > 0) == (name in TF1_MODULES)


# The tokenizer.


def test_tokenizer_reads_vocab_and_do_lower_case_from_the_module():
    for name, lower in [("tf1_uncased", True), ("tf1_cased", False), ("tf2_uncased", True)]:
        assert bool(golden(name)["do_lower_case"]) is lower
        tokenizer = minibert.Tokenizer.from_pretrained(TF_HUB / name)
        text = "Hello World"
        tokens = tokenizer.convert_ids_to_tokens(tokenizer(text)["input_ids"][0])
        assert ("hello" in tokens) is lower
        assert tokenizer.model_max_length == module_config(TF_HUB / name)["max_position_embeddings"]


@pytest.mark.parametrize("name", MODULES)
def test_tokenizer_gives_the_ids_tensorflow_was_given(name):
    outputs = golden(name)
    tokenizer = minibert.Tokenizer.from_pretrained(TF_HUB / name)
    batch = tokenizer([str(text) for text in outputs["batch_texts"]])
    np.testing.assert_array_equal(batch["input_ids"], outputs["batch_input_ids"])
    np.testing.assert_array_equal(batch["attention_mask"], outputs["batch_input_mask"])
    pair = tokenizer([str(t) for t in outputs["pair_texts_a"]], [str(t) for t in outputs["pair_texts_b"]])
    np.testing.assert_array_equal(pair["input_ids"], outputs["pair_input_ids"])
    np.testing.assert_array_equal(pair["token_type_ids"], outputs["pair_segment_ids"])


@pytest.mark.parametrize("case, module_name", [("uncased", "tf1_uncased"), ("cased", "tf1_cased")])
def test_tokenizer_matches_googles_full_tokenizer(case, module_name):
    """FullTokenizer at bee6030 (the modules' export) on every text. At eedf571 (master) _is_control counts only Cc
    and Cf, so a private-use character (Co) becomes [UNK] where bee6030 and transformers drop it: that one text
    differs, by that one token."""
    reference = np.load(TF_HUB / "tokenizer_outputs.npz")
    tokenizer = minibert.Tokenizer.from_pretrained(TF_HUB / module_name)
    for i, text in enumerate(reference["texts"]):
        ids = tokenizer(str(text))["input_ids"][0, 1:-1].tolist()  # without [CLS] and [SEP]
        assert ids == [int(x) for x in str(reference[f"{case}_bee6030_ids"][i]).split()], str(text)
        master = [int(x) for x in str(reference[f"{case}_eedf571_ids"][i]).split()]
        if "\ue000" in str(text):
            assert len(master) == len(ids) + 1
        else:
            assert ids == master, str(text)


# Google's checkpoints and the override.


def test_googles_checkpoint_keeps_gelu_as_the_exact_erf_and_the_override_changes_it():
    """bert_model.ckpt + bert_config.json "gelu" stays transformers' reading (exact erf), the suite's reference;
    hidden_act="gelu_new" computes Google's tanh form instead, and the tokenizer does not care."""
    tf_tiny = TF_HUB.parent / "tf_tiny"
    exact = minibert.BertModel.from_pretrained(tf_tiny)
    assert exact.config.hidden_act == "gelu" and exact.config.hidden_act_source == "bert_config.json"
    tanh = minibert.BertModel.from_pretrained(tf_tiny, hidden_act="gelu_new")
    assert tanh.config.hidden_act == "gelu_new" and "override" in tanh.config.hidden_act_source
    ids = [[2, 7, 9, 3]]
    assert np.abs(exact(ids).last_hidden_state - tanh(ids).last_hidden_state).max() > 0


def test_an_unknown_override_is_refused_before_loading():
    with pytest.raises(ConfigError, match="hidden_act 'gelu_tanh' is not supported"):
        minibert.BertModel.from_pretrained(TF_HUB / "tf1_uncased", hidden_act="gelu_tanh")


def test_a_config_json_beside_the_module_is_read_instead_of_the_graph(tmp_path):
    directory = shutil.copytree(TF_HUB / "tf1_uncased", tmp_path / "module")
    values = module_config(directory)
    (directory / "config.json").write_text(json.dumps({**values, "hidden_act": "gelu"}))
    model = minibert.BertModel.from_pretrained(directory)
    assert model.config.hidden_act == "gelu" and model.config.hidden_act_source == "config.json"


# Refusals.


def rewrite_variables(directory: Path, rename) -> None:
    """The module's variables written again, under the names rename(name) gives (None: dropped)."""
    prefix = directory / "variables" / "variables"
    tensors = load_tf_checkpoint(prefix)
    for path in prefix.parent.iterdir():
        path.unlink()
    renamed = {rename(name): value for name, value in tensors.items() if rename(name) is not None}
    tf_bundle(prefix, renamed)


def test_albert_module_is_refused_naming_what_was_found(tmp_path):
    directory = shutil.copytree(TF_HUB / "tf1_uncased", tmp_path / "albert")
    rewrite_variables(
        directory, lambda name: name.replace("bert/encoder/layer_0/", "bert/encoder/transformer/group_0/inner_group_0/")
    )
    with pytest.raises(CheckpointError, match="look like ALBERT's"):
        minibert.BertModel.from_pretrained(directory)


def test_module_whose_variables_are_not_a_berts_is_refused(tmp_path):
    directory = shutil.copytree(TF_HUB / "tf1_uncased", tmp_path / "electra")
    rewrite_variables(directory, lambda name: name.replace("bert/", "electra/"))
    with pytest.raises(CheckpointError, match="look like ELECTRA's.*minibert opens BERT modules only"):
        minibert.BertModel.from_pretrained(directory)


def test_module_without_variables_names_the_missing_file(tmp_path):
    directory = shutil.copytree(TF_HUB / "tf2_uncased", tmp_path / "m")
    shutil.rmtree(directory / "variables")
    with pytest.raises(CheckpointError, match=r"variables\.index: no such file"):
        minibert.BertModel.from_pretrained(directory)


def test_symlinked_variables_folder_is_followed_as_symlinked_shards_are(tmp_path):
    """A variables/ that is a symlink (leading outside the module) is read like a symlinked shard: followed, and
    its files must be regular files; one that leads to /proc/self/mem is refused."""
    directory = shutil.copytree(TF_HUB / "tf1_uncased", tmp_path / "m", symlinks=True)
    outside = tmp_path / "elsewhere"
    shutil.move(directory / "variables", outside)
    (directory / "variables").symlink_to(outside)
    assert minibert.BertModel.from_pretrained(directory).config.num_attention_heads == 4
    data = outside / "variables.data-00000-of-00001"
    data.unlink()
    data.symlink_to("/proc/self/mem")
    with pytest.raises(CheckpointError, match="not a regular file"):
        minibert.BertModel.from_pretrained(directory)


# Every command that takes --model.


def cli(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize("name", MODULES)
def test_explain_on_a_module_says_which_activation_runs_and_gives_tensorflows_pooled_output(name, capsys, tmp_path):
    """explain with --plot and --html: the module's own pooled_output for its first text, and the page and the text
    both name the activation and that it came from the module's graph."""
    pytest.importorskip("matplotlib")
    outputs = golden(name)
    text = str(outputs["batch_texts"][0])
    page, plot = tmp_path / "page.html", tmp_path / "plot.png"
    code, out, err = cli(capsys, "explain", text, "--model", TF_HUB / name, "--plot", plot, "--html", page)
    assert code == 0, err
    assert (
        f"activation: gelu_new (GELU's tanh form, 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))), from {FROM_GRAPH}"
        in out
    )
    assert plot.stat().st_size > 0
    data = read_page_data(page.read_text(encoding="utf-8"))
    assert data["config"]["hidden_act"] == "gelu_new" and data["config"]["hidden_act_source"] == FROM_GRAPH
    np.testing.assert_allclose(
        data["explain"]["pooler_output"], outputs["batch_pooled_output"][0], rtol=0, atol=FLOAT32_TOLERANCE
    )


def test_explain_hidden_act_override_runs_the_exact_gelu_and_says_so(capsys):
    outputs = golden("tf1_uncased")
    text = str(outputs["batch_texts"][0])
    code, out, _ = cli(capsys, "explain", text, "--model", TF_HUB / "tf1_uncased", "--hidden-act", "gelu", "--json")
    assert code == 0
    report = json.loads(out)
    assert report["hidden_act"] == "gelu" and report["hidden_act_source"] == "the override hidden_act='gelu'"
    np.testing.assert_allclose(
        report["pooler_output"], outputs["batch_pooled_output_erf"][0], rtol=0, atol=FLOAT32_TOLERANCE
    )


@pytest.mark.parametrize("name", MODULES)
def test_run_on_a_module_writes_tensorflows_outputs(name, capsys, tmp_path):
    outputs = golden(name)
    path = tmp_path / "out.npz"
    texts = [str(text) for text in outputs["batch_texts"]]
    code, _, err = cli(
        capsys, "run", *texts, "--model", TF_HUB / name, "--which", "last_hidden_state,pooler_output", "--output", path
    )
    assert code == 0, err
    with np.load(path) as written:
        np.testing.assert_array_equal(written["input_ids"], outputs["batch_input_ids"])
        np.testing.assert_allclose(
            written["pooler_output"], outputs["batch_pooled_output"], rtol=0, atol=FLOAT32_TOLERANCE
        )
        np.testing.assert_allclose(
            written["last_hidden_state"], outputs["batch_sequence_output"], rtol=0, atol=FLOAT32_TOLERANCE
        )


@pytest.mark.parametrize("name", MODULES)
def test_trace_on_a_module_ends_in_tensorflows_pooled_output(name, capsys, tmp_path):
    outputs = golden(name)
    text, pair = str(outputs["pair_texts_a"][0]), str(outputs["pair_texts_b"][0])
    path = tmp_path / "trace.npz"
    code, _, err = cli(capsys, "trace", text, "--pair", pair, "--model", TF_HUB / name, "--output", path)
    assert code == 0, err
    with np.load(path) as trace:
        np.testing.assert_allclose(
            trace["pooler.activation"][0], outputs["pair_pooled_output"][0], rtol=0, atol=FLOAT32_TOLERANCE
        )


# all-MiniLM-L6-v2's real weights in both layouts, built by the tffix branch's weights/make_tf_hub_real.py with real
# TensorFlow (about 190 MB, not committed): checked where they are, skipped elsewhere.
TF_HUB_REAL = Path("/work/tfhub-real")


@pytest.mark.parametrize("name", ["tf1_minilm", "tf2_minilm"])
@pytest.mark.skipif(not TF_HUB_REAL.is_dir(), reason="the real-weights TF Hub artifacts are not on this machine")
def test_real_weights_modules_match_tensorflow_and_not_the_exact_gelu(name):
    outputs = np.load(TF_HUB_REAL / f"{name}_outputs.npz")
    model = minibert.BertModel.from_pretrained(TF_HUB_REAL / name)
    tokenizer = minibert.Tokenizer.from_pretrained(TF_HUB_REAL / name)
    assert model.config.num_attention_heads == 12 and model.config.hidden_act_source == FROM_GRAPH
    for kind in ("batch", "pair"):
        if kind == "batch":
            encoded = tokenizer([str(t) for t in outputs["batch_texts"]])
        else:
            encoded = tokenizer([str(t) for t in outputs["pair_texts_a"]], [str(t) for t in outputs["pair_texts_b"]])
        np.testing.assert_array_equal(encoded["input_ids"], outputs[f"{kind}_input_ids"])
        out = run(model, outputs, kind)
        np.testing.assert_allclose(out.pooler_output, outputs[f"{kind}_pooled_output"], atol=FLOAT32_TOLERANCE)
        np.testing.assert_allclose(out.last_hidden_state, outputs[f"{kind}_sequence_output"], atol=FLOAT32_TOLERANCE)
    exact = run(minibert.BertModel.from_pretrained(TF_HUB_REAL / name, hidden_act="gelu"), outputs, "batch")
    assert np.abs(exact.last_hidden_state - outputs["batch_sequence_output"]).max() > 1e-3


@pytest.mark.parametrize("command", ["run", "trace"])
def test_hidden_act_flag_on_run_and_trace_gives_the_exact_gelus_outputs(command, capsys, tmp_path):
    outputs = golden("tf1_uncased")
    text = str(outputs["batch_texts"][0])
    path = tmp_path / "out.npz"
    extra = ["--which", "pooler_output"] if command == "run" else ["--match", "pooler."]
    argv = [command, text, "--model", TF_HUB / "tf1_uncased", "--hidden-act", "gelu", *extra, "--output", path]
    assert cli(capsys, *argv)[0] == 0
    with np.load(path) as written:
        pooled = written["pooler_output"] if command == "run" else written["pooler.activation"]
    np.testing.assert_allclose(pooled[0], outputs["batch_pooled_output_erf"][0], rtol=0, atol=FLOAT32_TOLERANCE)
    assert np.abs(pooled[0] - outputs["batch_pooled_output"][0]).max() > OTHER_GELU_AT_LEAST
