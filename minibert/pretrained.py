"""BertModel: a checkpoint loaded from a directory or hub id, called as transformers' BertModel is.

The forward pass it runs is model.py's `bert_model`, read there top to bottom. What this class adds is what a user
needs around it: loading and checking the weights (checkpoint.py, hub.py), checking the call's arrays (inputs.py),
and running the pass on the cores the call may use (batch_threads.py).
"""

from pathlib import Path

import numpy as np

from . import model as bert
from .batch_threads import bert_model_in_threads
from .checkpoint import load_pretrained
from .config import BertConfig
from .hub import Need, resolve_model_dir
from .inputs import check_dtype, check_inputs
from .model import BertModelOutput, Params
from .trace import NO_TRACE, Trace


def resolve_pretrained(
    path, need: Need, dtype, *, revision: str | None = None, cache_dir=None, local_files_only: bool = False
) -> tuple[np.dtype, Path]:
    """(the dtype, checked before any download; the local directory of `path`, a directory or hub id): the door of
    every from_pretrained and of sentence-transformers' constructors."""
    dtype = check_dtype(dtype)
    return dtype, resolve_model_dir(
        path, need, revision=revision, cache_dir=cache_dir, local_files_only=local_files_only
    )


class BertModel:
    """A loaded checkpoint: `BertModel.from_pretrained(path)(input_ids, attention_mask, ...)`, as in transformers."""

    def __init__(self, config: BertConfig, params: Params):
        self.config = config
        self.params = params

    @property
    def dtype(self) -> np.dtype:
        return self.params["embeddings"]["word_embeddings"]["weight"].dtype

    @classmethod
    def from_pretrained(
        cls,
        path,
        dtype=np.float32,
        *,
        revision: str | None = None,
        cache_dir=None,
        local_files_only: bool = False,
        check_finite: bool = True,
        hidden_act: str | None = None,
    ) -> "BertModel":
        """Load config.json and the weights of a model directory or hub id, checking every tensor against the config.
        A TensorFlow SavedModel (a TF1 Hub module, a TF2 BertEncoder) needs no config.json: it is read from the module.

        A hub id ("bert-base-uncased", "org/name") is fetched through huggingface_hub's cache; `revision`,
        `cache_dir`, `local_files_only` and HF_HUB_OFFLINE mean what they mean there. check_finite=False skips the
        scan for NaN and infinite weights, for a checkpoint known to hold them or already checked. `hidden_act`
        replaces the config's activation before it is checked: "gelu_new" computes what Google's TF graphs compute
        for a checkpoint whose config says "gelu" (the tanh form, google-research/bert since bee6030).
        """
        dtype, directory = resolve_pretrained(
            path, Need.MODEL, dtype, revision=revision, cache_dir=cache_dir, local_files_only=local_files_only
        )
        return cls(*load_pretrained(directory, dtype=dtype, check_finite=check_finite, hidden_act=hidden_act))

    def __call__(
        self,
        input_ids,
        attention_mask=None,
        token_type_ids=None,
        position_ids=None,
        output_hidden_states: bool = False,
        output_attentions: bool = False,
        trace: Trace = NO_TRACE,
        threads: int | None = None,
    ) -> BertModelOutput:
        """Run the forward pass. Inputs are [B, S] integer arrays (or nested lists), as the Tokenizer returns them.

        `threads` (default: $MINIBERT_NUM_THREADS, else every core this process may run on) is how many cores the
        call uses; the outputs do not depend on it beyond rounding."""
        inputs = check_inputs(self.config, input_ids, attention_mask, token_type_ids, position_ids)
        # model.bert_model itself, on slices of the batch at once (batch_threads.py).
        return bert_model_in_threads(
            bert.bert_model,
            bert.bert_pooler,
            self.params,
            self.config,
            *inputs,
            threads=threads,
            output_hidden_states=output_hidden_states,
            output_attentions=output_attentions,
            trace=trace,
        )

    def trace(
        self,
        input_ids,
        attention_mask=None,
        token_type_ids=None,
        position_ids=None,
        output_hidden_states: bool = False,
        output_attentions: bool = False,
    ) -> tuple[BertModelOutput, dict[str, np.ndarray]]:
        """The forward pass with every intermediate kept: `out, trace = model.trace(**tokenizer(texts))`.

        `trace` maps names after the checkpoint's modules to copies of the arrays, in the order the forward pass made
        them: `embeddings.word_embeddings` [B, S, H], ..., `encoder.layer.3.attention.self.query` [B, S, H],
        `... .scores` (scaled, masked) and `... .probs` [B, N, S, S], `... .context` [B, S, H],
        `encoder.layer.3.intermediate.dense` [B, S, I] (before the activation) and `... .intermediate_act_fn`
        (after), ..., `pooler.first_token`, `pooler.dense`, `pooler.activation` [B, H]. Same code path as __call__, run
        as one slice (bert_model_in_threads): a split batch rounds its products to within tests/test_threads.py's bound.
        """
        store: dict[str, np.ndarray] = {}
        out = self(
            input_ids,
            attention_mask,
            token_type_ids,
            position_ids,
            output_hidden_states=output_hidden_states,
            output_attentions=output_attentions,
            trace=Trace(store),
        )
        return out, store

    def __repr__(self) -> str:
        pooler = "with pooler" if "pooler" in self.params else "no pooler"
        c = self.config
        return (
            f"BertModel(layers={c.num_hidden_layers}, hidden={c.hidden_size}, heads={c.num_attention_heads}, "
            f"vocab={c.vocab_size}, {pooler}, dtype={self.dtype})"
        )
