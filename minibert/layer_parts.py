"""One layer shared among threads: model.bert_layer computed in parts, as Megatron-LM cuts a transformer layer
(Shoeybi et al. 2019, https://arxiv.org/abs/1909.08053, section 3).

A part is a group of attention heads, then a group of intermediate features. Each part's heads need only their own
columns of Q, K and V, and each part's features only their own columns of the widening product and of GELU, so a
thread runs its parts from the layer's input to their share of the narrowing product (the attention's output
projection, the feed-forward network's second half) with nothing from the other threads. The shares are summed, then
the bias, the residual and the LayerNorm follow as in bert_layer: two handoffs per layer. Handing work to a thread
costs ~130 us on a 2-core VM (parallel.py), so one handoff per product and per elementwise step, which is what
sharing each step does, cost more than the second core gave below 256 tokens (benchmarks/README.md).

The numbers are bert_layer's but for one rounding: a narrowing product summed over P parts, x Wᵀ = sum_p x_p W_pᵀ,
rounds as P shorter dot products added (tests/test_layer_parts.py bounds it against bert_layer, and holds parts=1
equal to it bit for bit). Every other step is bert_layer's bit for bit: a part's columns of a product are the whole
product's columns, and each head's attention is its own. The parts are fixed by the caller (batch_threads.layer_parts:
one per core of the process), not by the thread count: on 1 thread or 3 the same parts are summed in the same order,
so the outputs are the same bits. A traced call runs bert_layer itself (batch_threads).

Shape legend: B batch, S sequence length, H hidden size, N heads, D head size, I intermediate size, P parts.
"""

import numpy as np

from .attention import attention as scaled_dot_product_attention
from .config import BertConfig
from .functional import ACT2FN, apply_elementwise, layer_norm, linear
from .parallel import map_in_threads, split, threads_here
from .trace import NO_TRACE, Trace


def bert_layer_in_parts(
    hidden_states,
    mask,
    *,
    attention,
    intermediate,
    output,
    config: BertConfig,
    parts: int,
    output_attentions: bool = False,
    trace: Trace = NO_TRACE,
) -> tuple[np.ndarray, np.ndarray | None]:
    """bert_layer(hidden_states, mask, ...) with its heads and intermediate features cut into `parts` groups, each
    group's work on one of the call's threads (parallel.threads_here). [B, S, H] -> [B, S, H], probabilities
    [B, N, S, S] when asked for. Untraced calls only: a trace records bert_layer's own steps."""
    if trace.collecting:
        raise ValueError("bert_layer_in_parts records no trace: trace model.bert_layer itself")
    B, S, H = hidden_states.shape
    N, I = config.num_attention_heads, config.intermediate_size  # noqa: E741 (the paper's and transformers' name)
    D = H // N
    head_parts, feature_parts = split(N, parts), split(I, parts)  # at most N, I parts: a part is never empty
    probs = np.empty((B, N, S, S), hidden_states.dtype) if output_attentions else None
    self_attention, attention_output = attention["self"], attention["output"]["dense"]
    heads_shares = [None] * len(head_parts)  # [B*S, H] each: a group of heads' share of the output projection

    def attend(mine: list[slice]) -> None:  # a thread's consecutive groups of heads
        heads = slice(mine[0].start, mine[-1].stop)
        n, columns = heads.stop - heads.start, slice(heads.start * D, heads.stop * D)  # their columns of [B, S, H]

        def project(linear_params):  # [B, S, H] -> [B, n, S, D], this thread's heads of Q, K or V
            x = linear(hidden_states, linear_params["weight"][columns], linear_params["bias"][columns])
            return x.reshape(B, S, n, D).transpose(0, 2, 1, 3)

        q = np.ascontiguousarray(project(self_attention["query"]))  # [B, n, S, D]
        k_t = np.ascontiguousarray(project(self_attention["key"]).transpose(0, 1, 3, 2))  # [B, n, D, S]
        v = np.ascontiguousarray(project(self_attention["value"]))  # [B, n, S, D]
        context, p = scaled_dot_product_attention(q, k_t, v, mask, output_attentions=output_attentions)
        if probs is not None:
            probs[:, heads] = p  # [B, n, S, S]
        context = context.transpose(0, 2, 1, 3)  # [B, n, S, D] -> [B, S, n, D]
        for group in mine:  # each group's share: its heads' context times their columns of Wᵀ
            i, local = head_parts.index(group), slice(group.start - heads.start, group.stop - heads.start)
            context_group = context[:, :, local].reshape(B * S, -1)  # [B*S, n_group * D]
            weight = attention_output["weight"][:, group.start * D : group.stop * D]  # [H, n_group * D]
            heads_shares[i] = context_group @ weight.T  # [B*S, H]

    map_in_threads(attend, [head_parts[run] for run in split(len(head_parts), threads_here())])
    attention_output_states = summed(heads_shares, attention_output["bias"], hidden_states)  # [B, S, H]
    attention_output_states = layer_norm(
        attention_output_states, **attention["output"]["LayerNorm"], eps=config.layer_norm_eps
    )

    widening, narrowing = intermediate["dense"], output["dense"]
    activation = ACT2FN[config.hidden_act]
    features_shares = [None] * len(feature_parts)  # [B*S, H] each: a group of features' share of the narrowing

    def feed_forward(mine: list[slice]) -> None:  # a thread's consecutive groups of intermediate features
        features = slice(mine[0].start, mine[-1].stop)
        x = linear(attention_output_states, widening["weight"][features], widening["bias"][features])  # [B, S, f]
        x = apply_elementwise(activation, x, out=x).reshape(B * S, -1)  # [B*S, f]
        for group in mine:
            i, local = feature_parts.index(group), slice(group.start - features.start, group.stop - features.start)
            features_shares[i] = x[:, local] @ narrowing["weight"][:, group].T  # [B*S, f_group] @ [f_group, H]

    map_in_threads(feed_forward, [feature_parts[run] for run in split(len(feature_parts), threads_here())])
    layer_output = summed(features_shares, narrowing["bias"], attention_output_states)  # [B, S, H]
    return layer_norm(layer_output, **output["LayerNorm"], eps=config.layer_norm_eps), probs


def summed(shares: list[np.ndarray], bias: np.ndarray, residual: np.ndarray) -> np.ndarray:
    """shares[0] + shares[1] + ... + bias + residual, in that order: the parts' narrowing product, its bias (as
    functional.linear adds it), then the residual (as bert_self_output and bert_output add it). P x [B*S, H] ->
    [B, S, H]"""
    total = shares[0]  # a fresh array of this call's: summed in place
    for share in shares[1:]:
        total += share
    total += bias
    total = total.reshape(residual.shape)
    total += residual
    return total
