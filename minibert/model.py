"""BERT's forward pass in NumPy, one function per module of transformers' modeling_bert.py, read top to bottom.

    input_ids -> bert_embeddings -> bert_encoder (num_hidden_layers x bert_layer) -> last_hidden_state
                                                                                  -> bert_pooler -> pooler_output

Shape legend, used in every comment:
    B batch, S sequence length, H hidden size, N attention heads, D head size (H / N), I intermediate size.

Parameters arrive as a nested dict that mirrors the checkpoint's tensor names: the tensor
`encoder.layer.3.attention.self.query.weight` is `params["encoder"]["layer"][3]["attention"]["self"]["query"]
["weight"]`, and a function receives the sub-dict of its own prefix, unpacked into keyword arguments. Weights keep
the checkpoint's [out, in] layout, so a tensor printed here and in transformers look the same. (In memory the
encoder's are column-major except on Intel's CPUs, whichever BLAS multiplies by faster there; checkpoint.load_order
says why. No line here depends on it.)

BertModel (pretrained.py) loads a checkpoint into these parameters and calls bert_model on the cores a call may use.

The upstream lines matched are those of transformers v5.24.0:
https://github.com/huggingface/transformers/blob/v5.24.0/src/transformers/models/bert/modeling_bert.py
"""

from dataclasses import dataclass

import numpy as np

from .attention import attention
from .config import BertConfig
from .functional import ACT2FN, apply_elementwise, layer_norm, linear
from .trace import NO_TRACE, Trace

Params = dict[str, "np.ndarray | Params | list[Params]"]  # nested by the checkpoint's names, as the docstring says


def bert_embeddings(
    input_ids,
    token_type_ids,
    position_ids,
    *,
    word_embeddings,
    position_embeddings,
    token_type_embeddings,
    LayerNorm,
    eps: float,
    trace: Trace = NO_TRACE,
) -> np.ndarray:
    """LayerNorm(word[input_ids] + token_type[token_type_ids] + position[position_ids]). [B, S] -> [B, S, H]"""
    words = word_embeddings["weight"][input_ids]  # [B, S] -> [B, S, H]
    token_types = token_type_embeddings["weight"][token_type_ids]  # [B, S] -> [B, S, H]
    positions = position_embeddings["weight"][position_ids]  # [B or 1, S] -> [B or 1, S, H]
    trace("word_embeddings", words)
    trace("token_type_embeddings", token_types)
    trace("position_embeddings", positions)
    # Summed in transformers' order (words + token types, then positions): float addition is not associative.
    embeddings = words + token_types
    embeddings += positions
    return trace("LayerNorm", layer_norm(embeddings, **LayerNorm, eps=eps))  # [B, S, H]


def extended_attention_mask(attention_mask: np.ndarray, dtype: np.dtype, value: float | None = None) -> np.ndarray:
    """0 where a token may be attended to, `value` where not (None: finfo.min). [B, S] -> [B, 1, 1, S]

    A row whose mask is all 0 (only padding) is no error: all its scores become exactly finfo.min, its softmax is
    uniform, its outputs finite and meaningless, and equal to transformers' eager ones (tests/test_bad_inputs.py)."""
    # transformers adds finfo(dtype).min rather than -inf, so that a row whose keys are all padding gets equal
    # scores (a uniform softmax) instead of NaN; padded positions match too. Google's TF graphs add -10000.0 instead.
    # https://github.com/huggingface/transformers/blob/v5.24.0/src/transformers/masking_utils.py#L615-L617
    mask = np.where(attention_mask[:, None, None, :] != 0, 0.0, np.finfo(dtype).min if value is None else value)
    return mask.astype(dtype, copy=False)  # [B, 1, 1, S]


def bert_self_attention(
    hidden_states,
    mask,
    *,
    query,
    key,
    value,
    num_attention_heads: int,
    output_attentions: bool = False,
    trace: Trace = NO_TRACE,
) -> tuple[np.ndarray, np.ndarray | None]:
    """softmax(Q Kᵀ / sqrt(D) + mask) V for every head. Returns the context [B, S, H] and, when asked for, the
    probabilities [B, N, S, S] (else None)."""
    B, S, H = hidden_states.shape
    N = num_attention_heads
    D = H // N

    def split_heads(x):  # [B, S, H] -> [B, N, S, D]
        return x.reshape(B, S, N, D).transpose(0, 2, 1, 3)

    q = trace("query", linear(hidden_states, **query))  # [B, S, H]
    k = trace("key", linear(hidden_states, **key))  # [B, S, H]
    v = trace("value", linear(hidden_states, **value))  # [B, S, H]
    # NumPy's batched matmul runs at BLAS speed only when every matrix of the stack is C-contiguous; on the strided
    # views that split_heads makes it falls back to a loop ~15x slower (measured at 32x128). So each operand is
    # copied into place once, and K straight into its transposed layout.
    q = np.ascontiguousarray(split_heads(q))  # [B, S, H] -> [B, N, S, D]
    k_t = np.ascontiguousarray(split_heads(k).transpose(0, 1, 3, 2))  # [B, S, H] -> [B, N, D, S]
    v = np.ascontiguousarray(split_heads(v))  # [B, S, H] -> [B, N, S, D]

    # softmax(Q Kᵀ / sqrt(D) + mask) V: [B, N, S, D], and the probabilities [B, N, S, S] when asked for
    context, probs = attention(q, k_t, v, mask, trace, output_attentions)
    context = context.transpose(0, 2, 1, 3).reshape(B, S, H)  # [B, N, S, D] -> [B, S, N, D] -> [B, S, H]
    return trace("context", context), probs


def bert_self_output(context, input_tensor, *, dense, LayerNorm, eps: float, trace: Trace = NO_TRACE) -> np.ndarray:
    """LayerNorm(context Wᵀ + b + input): project the heads back and add the residual. [B, S, H] -> [B, S, H]"""
    hidden_states = trace("dense", linear(context, **dense))  # [B, S, H] -> [B, S, H]
    hidden_states += input_tensor  # the residual: the attention's input
    return trace("LayerNorm", layer_norm(hidden_states, **LayerNorm, eps=eps))


def bert_attention(
    hidden_states,
    mask,
    *,
    self,
    output,
    config: BertConfig,
    output_attentions: bool = False,
    trace: Trace = NO_TRACE,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Self-attention, then its output projection with residual and LayerNorm. [B, S, H] -> [B, S, H]"""
    context, probs = bert_self_attention(
        hidden_states,
        mask,
        **self,
        num_attention_heads=config.num_attention_heads,
        output_attentions=output_attentions,
        trace=trace.at("self"),
    )
    attention_output = bert_self_output(
        context, hidden_states, **output, eps=config.layer_norm_eps, trace=trace.at("output")
    )
    return attention_output, probs


def bert_intermediate(hidden_states, *, dense, hidden_act: str, trace: Trace = NO_TRACE) -> np.ndarray:
    """act(x Wᵀ + b), the feed-forward network's widening half. [B, S, H] -> [B, S, I]"""
    hidden_states = trace("dense", linear(hidden_states, **dense))  # [B, S, H] -> [B, S, I]
    return trace("intermediate_act_fn", apply_elementwise(ACT2FN[hidden_act], hidden_states, out=hidden_states))


def bert_output(
    intermediate_output, input_tensor, *, dense, LayerNorm, eps: float, trace: Trace = NO_TRACE
) -> np.ndarray:
    """LayerNorm(x Wᵀ + b + input): the narrowing half of the feed-forward network. [B, S, I] -> [B, S, H]"""
    hidden_states = trace("dense", linear(intermediate_output, **dense))  # [B, S, I] -> [B, S, H]
    hidden_states += input_tensor  # the residual: the feed-forward network's input
    return trace("LayerNorm", layer_norm(hidden_states, **LayerNorm, eps=eps))


def bert_layer(
    hidden_states,
    mask,
    *,
    attention,
    intermediate,
    output,
    config: BertConfig,
    output_attentions: bool = False,
    trace: Trace = NO_TRACE,
) -> tuple[np.ndarray, np.ndarray | None]:
    """One transformer layer: attention, then the feed-forward network. [B, S, H] -> [B, S, H]"""
    attention_output, probs = bert_attention(
        hidden_states,
        mask,
        **attention,
        config=config,
        output_attentions=output_attentions,
        trace=trace.at("attention"),
    )
    intermediate_output = bert_intermediate(
        attention_output, **intermediate, hidden_act=config.hidden_act, trace=trace.at("intermediate")
    )
    layer_output = bert_output(
        intermediate_output, attention_output, **output, eps=config.layer_norm_eps, trace=trace.at("output")
    )
    return layer_output, probs


def bert_encoder(
    hidden_states,
    mask,
    *,
    layer,
    config: BertConfig,
    output_hidden_states: bool = False,
    output_attentions: bool = False,
    trace: Trace = NO_TRACE,
    layer_function=bert_layer,
):
    """The stack of layers. [B, S, H] -> [B, S, H], plus every hidden state (input first, num_layers + 1 of them)
    and every layer's attention probabilities when asked for (kept only then: they are [B, N, S, S] each).
    `layer_function` is bert_layer, or a faster form of it with its numbers (layer_parts.py)."""
    all_hidden_states = [hidden_states] if output_hidden_states else None
    all_attentions = [] if output_attentions else None
    for i, layer_params in enumerate(layer):
        hidden_states, probs = layer_function(
            hidden_states,
            mask,
            **layer_params,
            config=config,
            output_attentions=output_attentions,
            trace=trace.at(f"layer.{i}"),
        )
        if output_hidden_states:
            all_hidden_states.append(hidden_states)
        if output_attentions:
            all_attentions.append(probs)
    return hidden_states, all_hidden_states, all_attentions


def bert_pooler(hidden_states, *, dense, trace: Trace = NO_TRACE) -> np.ndarray:
    """tanh(W · h[:, 0] + b): the pooled output is token 0's last hidden state sent through one more dense layer and
    a tanh, which is why it is not `last_hidden_state[:, 0]` itself. [B, S, H] -> [B, H]"""
    first_token_tensor = trace("first_token", hidden_states[:, 0])  # [B, S, H] -> [B, H]
    pooled = trace("dense", linear(first_token_tensor, **dense))  # [B, H] -> [B, H]
    return trace("activation", np.tanh(pooled))


@dataclass
class BertModelOutput:
    """What BertModel returns, with transformers' names. hidden_states and attentions are filled when asked for."""

    last_hidden_state: np.ndarray  # [B, S, H]
    pooler_output: np.ndarray | None  # [B, H]; None when the checkpoint has no pooler weights
    hidden_states: tuple[np.ndarray, ...] | None = None  # num_layers + 1 arrays [B, S, H], embeddings first
    attentions: tuple[np.ndarray, ...] | None = None  # num_layers arrays [B, N, S, S]


def bert_model(
    params: Params,
    config: BertConfig,
    input_ids,
    attention_mask,
    token_type_ids,
    position_ids,
    *,
    output_hidden_states: bool = False,
    output_attentions: bool = False,
    trace: Trace = NO_TRACE,
    layer_function=bert_layer,
) -> BertModelOutput:
    """The whole forward pass over validated arrays, in the parameters' dtype. [B, S] ids -> BertModelOutput
    (`layer_function`: see bert_encoder)"""
    dtype = params["embeddings"]["word_embeddings"]["weight"].dtype
    embedding_output = bert_embeddings(
        input_ids,
        token_type_ids,
        position_ids,
        **params["embeddings"],
        eps=config.layer_norm_eps,
        trace=trace.at("embeddings"),
    )
    mask = extended_attention_mask(attention_mask, dtype, config.attention_mask_value)  # [B, S] -> [B, 1, 1, S]
    sequence_output, hidden_states, attentions = bert_encoder(
        embedding_output,
        mask,
        **params["encoder"],
        config=config,
        output_hidden_states=output_hidden_states,
        output_attentions=output_attentions,
        trace=trace.at("encoder"),
        layer_function=layer_function,
    )
    pooled_output = None
    if "pooler" in params:
        pooled_output = bert_pooler(sequence_output, **params["pooler"], trace=trace.at("pooler"))
    return BertModelOutput(
        last_hidden_state=sequence_output,
        pooler_output=pooled_output,
        hidden_states=tuple(hidden_states) if output_hidden_states else None,
        attentions=tuple(attentions) if output_attentions else None,
    )
