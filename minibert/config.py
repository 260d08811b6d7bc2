"""BertConfig: the hyper-parameters in a checkpoint's config.json, with transformers' defaults and names."""

import dataclasses
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .model_files import read_json
from .untrusted import json_kind, json_value, quote

# The activations functional.ACT2FN computes, by transformers' names (tests/test_config.py holds the two equal); named
# here so that reading a config imports no math.
HIDDEN_ACTS = frozenset(
    [
        "gelu",
        "gelu_python",
        "gelu_new",
        "gelu_pytorch_tanh",
        "gelu_python_tanh",
        "gelu_fast",
        "quick_gelu",
        "relu",
        "silu",
        "swish",
        "tanh",
    ]
)

# Upper bounds on what config.json may ask for, far above any BERT (BERT-large: 24 layers, hidden 1024, intermediate
# 4096, vocabularies up to ~250k, 512 positions) and far below what would exhaust memory or overflow int64 while the
# table of expected tensors and the position ids are built. Checked before anything is allocated from them.
MAX_SIZES = {
    "vocab_size": 2**24,
    "hidden_size": 2**16,
    "num_hidden_layers": 1024,
    "num_attention_heads": 2**16,
    "intermediate_size": 2**18,
    "max_position_embeddings": 2**20,
    "type_vocab_size": 2**16,
}
MAX_LABELS = 100_000  # num_labels and id2label: a classifier head of 100k classes is already unusual


@dataclass
class BertConfig:
    """The fields of transformers' BertConfig that shape the forward pass; the defaults are bert-base-uncased's."""

    vocab_size: int = 30522
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12
    pad_token_id: int = 0
    position_embedding_type: str = "absolute"
    is_decoder: bool = False
    add_cross_attention: bool = False
    # What the attention mask adds at padded keys: None is transformers' finfo(dtype).min; Google's TF graphs add
    # -10000.0 (modeling.py; Model Garden's MaskedSoftmax), which tf_module reads from a SavedModel's graph. It
    # changes only a row whose keys are all padding: -10000 keeps its scores apart, finfo.min makes them equal.
    attention_mask_value: float | None = None
    # Where hidden_act came from, for explain: the config file, the module's graph, or an override. Not a field of
    # config.json: set by whoever reads the config.
    hidden_act_source: str = field(default="the config", compare=False, repr=False)
    # Everything else config.json holds (dropout rates, id2label, architectures, ...), kept for the heads.
    extra: dict[str, Any] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.validate()

    @property
    def attention_head_size(self) -> int:
        return self.hidden_size // self.num_attention_heads

    # What the heads read from config.json, typed and checked. They stay in `extra` rather than becoming fields, so
    # that the fields are exactly the forward pass's (to_dict writes config.json's own values back either way).

    @property
    def tie_word_embeddings(self) -> bool:
        """Whether the masked-LM decoder is the word-embedding matrix (transformers' default: true)."""
        tied = self.extra.get("tie_word_embeddings", True)
        if not isinstance(tied, bool):  # a string "false" would otherwise count as true
            raise ConfigError(f"config.json: tie_word_embeddings must be true or false, found {tied!r}")
        return tied

    @property
    def id2label(self) -> dict[int, str]:
        """{label id: name} from config.json's id2label (keys are strings there); LABEL_i when absent, 2 labels by
        default, as transformers' PretrainedConfig."""
        raw = self.extra.get("id2label")
        if raw is None:
            return {i: f"LABEL_{i}" for i in range(self.extra.get("num_labels", 2))}
        try:
            labels = {int(k): str(v) for k, v in raw.items()}
        except (AttributeError, TypeError, ValueError):
            raise ConfigError(f"config.json: id2label must map label ids to names, found {quote(raw)}") from None
        if sorted(labels) != list(range(len(labels))):
            raise ConfigError(f"config.json: id2label keys must be 0..{len(labels) - 1}, found {quote(sorted(labels))}")
        return labels

    @property
    def problem_type(self) -> str | None:
        """ "regression", "single_label_classification", "multi_label_classification", or None (from num_labels)."""
        return self.extra.get("problem_type")

    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str = "config") -> "BertConfig":
        if not isinstance(values, dict):
            raise ConfigError(f"{source}: expected a JSON object, found {json_kind(values)}")
        known = {f.name for f in dataclasses.fields(cls)} - {"extra", "hidden_act_source"}
        model_type = values.get("model_type", "bert")
        if model_type != "bert":
            raise ConfigError(
                f"{source}: model_type is {quote(model_type)}; minibert implements BERT only ('bert'). "
                "Other architectures (RoBERTa's position offsets, DistilBERT's weights, ...) would give wrong numbers."
            )
        kwargs = {k: v for k, v in values.items() if k in known}
        extra = {k: v for k, v in values.items() if k not in known}
        try:
            return cls(**kwargs, extra=extra)
        except ConfigError as error:
            raise ConfigError(f"{source}: {error}") from None

    @classmethod
    def from_json_file(cls, path: str | Path, hidden_act: str | None = None) -> "BertConfig":
        """The config file at `path`; `hidden_act`, if given, replaces the file's before the config is checked."""
        path = Path(path)
        if not os.path.lexists(path):
            raise ConfigError(
                f"{path}: no such file; a model directory needs the config.json its weights were saved with"
            )
        return cls.from_values(read_json(path, dict, ConfigError), str(path), path.name, hidden_act)

    @classmethod
    def from_values(
        cls, values: dict[str, Any], source: str, hidden_act_source: str, hidden_act: str | None = None
    ) -> "BertConfig":
        """from_dict, with `hidden_act` (if given) overriding the values' before they are checked, and the source of
        the activation recorded for explain."""
        if hidden_act is not None:
            values, hidden_act_source = {**values, "hidden_act": hidden_act}, f"the override hidden_act={hidden_act!r}"
        config = cls.from_dict(values, source=source)
        config.hidden_act_source = hidden_act_source
        return config

    def to_dict(self) -> dict[str, Any]:
        values = {k: v for k, v in dataclasses.asdict(self).items() if k not in ("extra", "hidden_act_source")}
        if values["attention_mask_value"] is None:  # transformers' behaviour, which its config does not name
            del values["attention_mask_value"]
        return {**self.extra, "model_type": "bert", **values}

    def validate(self) -> None:
        """Refuse any config this implementation would compute wrongly, naming the field and the fix."""
        for name, maximum in MAX_SIZES.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ConfigError(f"field {name!r} must be an integer, found {json_value(value)}")
            if value < 1:
                raise ConfigError(f"field {name!r} must be at least 1, found {value}")
            if value > maximum:
                raise ConfigError(
                    f"field {name!r} is {quote(value)}, more than the {maximum} minibert accepts; no BERT is that "
                    "large, so the config.json is corrupt or not a BERT's"
                )
        self._validate_labels()
        if isinstance(self.layer_norm_eps, bool) or not isinstance(self.layer_norm_eps, int | float):
            raise ConfigError(f"field 'layer_norm_eps' must be a number, found {quote(self.layer_norm_eps)}")
        # An infinite eps would turn every LayerNorm into its bias: a config that loads and computes nothing.
        # (1e-12 < float max: compared as Python numbers, an integer too large for a float is refused too.)
        if not 0 < self.layer_norm_eps <= sys.float_info.max:
            raise ConfigError(f"field 'layer_norm_eps' must be positive and finite, found {self.layer_norm_eps}")
        pad = self.pad_token_id  # unused by the forward pass, but heads and tokenizers read it
        if pad is not None and (isinstance(pad, bool) or not isinstance(pad, int)):
            raise ConfigError(f"field 'pad_token_id' must be an integer or null, found {quote(pad)}")
        if self.hidden_size % self.num_attention_heads:
            raise ConfigError(
                f"hidden_size ({self.hidden_size}) is not a multiple of num_attention_heads "
                f"({self.num_attention_heads}); each head gets hidden_size / num_attention_heads dimensions"
            )
        mask_value = self.attention_mask_value
        if mask_value is not None and (
            isinstance(mask_value, bool)
            or not isinstance(mask_value, int | float)
            or not -sys.float_info.max <= mask_value < 0
        ):
            raise ConfigError(
                f"field 'attention_mask_value' must be a finite negative number or null, found {quote(mask_value)}"
            )
        if not isinstance(self.hidden_act, str) or self.hidden_act not in HIDDEN_ACTS:
            raise ConfigError(
                f"hidden_act {quote(self.hidden_act)} is not supported; supported: {', '.join(sorted(HIDDEN_ACTS))}"
            )
        if self.position_embedding_type != "absolute":
            raise ConfigError(
                f"position_embedding_type {quote(self.position_embedding_type)} is not supported; minibert implements "
                "BERT's learned absolute position embeddings ('absolute') only"
            )
        for name in ("is_decoder", "add_cross_attention"):
            if getattr(self, name) is not False:
                raise ConfigError(
                    f"{name} is {quote(getattr(self, name))}; minibert runs BERT as a bidirectional encoder only. "
                    f"Set {name} to false if the checkpoint was trained as an encoder"
                )

    def _validate_labels(self) -> None:
        """num_labels and id2label (kept in `extra`, read by the classification head): types, and a bounded size."""
        num_labels = self.extra.get("num_labels")
        if num_labels is not None and (
            isinstance(num_labels, bool) or not isinstance(num_labels, int) or not 1 <= num_labels <= MAX_LABELS
        ):
            raise ConfigError(
                f"field 'num_labels' must be an integer from 1 to {MAX_LABELS}, found {quote(num_labels)}"
            )
        id2label = self.extra.get("id2label")
        if id2label is not None and (not isinstance(id2label, dict) or len(id2label) > MAX_LABELS):
            size = f"{len(id2label)} entries" if isinstance(id2label, dict) else quote(id2label)
            raise ConfigError(f"field 'id2label' must map at most {MAX_LABELS} label ids to names, found {size}")
