"""One layer shared among threads: model.bert_layer computed in parts, as Megatron-LM cuts a transformer layer
(Shoeybi et al. 2019, https://arxiv.org/abs/1909.08053, section 3).

A part is a group of attention heads, then a group of intermediate features. Each part's heads need only their own
columns of Q, K and V, and each part's features only their own columns of the widening product and of GELU, so a
thread runs its parts from the layer's input to their share of the narrowing product (the attention's output
projection, the feed-forward network's second half) with nothing from the other threads. The shares are summed, then
the bias, the residual and the LayerNorm follow as in bert_layer: two handoffs per layer. Handing work to a thread
costs ~130 us on a 2-core VM (parallel.py), so one handoff per product and per elementwise step, which is what
sharing each step does, cost more than the second core gave below 256 tokens (benchmarks/README.md).

The numbers are bert_layer's but for one rounding, and a second on some BLAS kernels: a narrowing product summed over P
parts, x Wᵀ = sum_p x_p W_pᵀ, rounds as P shorter dot products added; and a part's columns of Q, K, V and of the
widening product are the whole product's columns only where the BLAS kernel rounds a block of output columns as it does
the whole (OpenBLAS's SkylakeX kernel does at these cuts; its Haswell kernel does not). tests/test_layer_parts.py bounds
both against float64 as bert_layer is bounded, holds parts=1 equal to bert_layer bit for bit, and the rest bit for bit
where the kernel allows. Each part's products are its own, computed alone whichever thread runs it, and the parts are
fixed by the caller (parallel.fixed_parts()), not by the cores or the thread count: on 1 thread or 3 the same
products are made and the same shares summed in the same order, so the outputs are the same bits on any kernel; a traced
call computes what the untraced one does, and its record is bert_layer's, put together from the parts.

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
    [B, N, S, S] when asked for. A trace records what bert_layer's records, under the same names and in the same
    order, each array put together from the parts."""
    B, S, H = hidden_states.shape
    N, I = config.num_attention_heads, config.intermediate_size  # noqa: E741 (the paper's and transformers' name)
    D, dtype = H // N, hidden_states.dtype
    head_parts, feature_parts = split(N, parts), split(I, parts)  # at most N, I parts: a part is never empty
    traced = trace.collecting
    probs = np.empty((B, N, S, S), dtype) if output_attentions or traced else None
    whole = Whole(trace, B, S, H, N, I, dtype)  # the traced arrays, filled part by part
    self_attention, attention_output = attention["self"], attention["output"]["dense"]
    heads_shares = [None] * len(head_parts)  # [B*S, H] each: a group of heads' share of the output projection

    def project(name: str, columns: slice):  # [B, S, H] -> [B, n, S, D]: Q, K or V of the heads at these columns
        x = linear(hidden_states, self_attention[name]["weight"][columns], self_attention[name]["bias"][columns])
        whole.put(name, x, columns)
        return x.reshape(B, S, -1, D).transpose(0, 2, 1, 3)

    def attend(run: slice) -> None:  # a thread's groups of heads, head_parts[run], each computed on its own
        for i in range(run.start, run.stop):
            heads = head_parts[i]
            n, columns = heads.stop - heads.start, slice(heads.start * D, heads.stop * D)  # their columns of [B, S, H]
            q = np.ascontiguousarray(project("query", columns))  # [B, n, S, D]
            k_t = np.ascontiguousarray(project("key", columns).transpose(0, 1, 3, 2))  # [B, n, D, S]
            v = np.ascontiguousarray(project("value", columns))  # [B, n, S, D]
            mine_traced = Trace({}) if traced else NO_TRACE  # this group's scores, [B, n, S, S]
            context, p = scaled_dot_product_attention(q, k_t, v, mask, mine_traced, probs is not None)
            if probs is not None:
                probs[:, heads] = p  # [B, n, S, S]
            context = context.transpose(0, 2, 1, 3).reshape(B * S, n * D)  # [B, n, S, D] -> [B*S, n * D], a copy
            if traced:
                whole.put("scores", mine_traced.store["scores"], heads, axis=1)
                whole.put("context", context.reshape(B, S, n * D), columns)
            # the group's share of the output projection: its heads' context times their columns of Wᵀ
            put_share(heads_shares, i, context @ attention_output["weight"][:, columns].T, run)  # [B*S, H]

    map_in_threads(attend, split(len(head_parts), threads_here()))
    self_trace = trace.at("attention").at("self")
    for name in ("query", "key", "value", "scores"):
        self_trace(name, whole.get(name))
    self_trace("probs", probs)
    self_trace("context", whole.get("context"))
    output_trace = trace.at("attention").at("output")
    attention_output_states = summed(heads_shares, attention_output["bias"]).reshape(B, S, H)
    attention_output_states = output_trace("dense", attention_output_states)
    attention_output_states += hidden_states  # the residual
    attention_output_states = output_trace(
        "LayerNorm", layer_norm(attention_output_states, **attention["output"]["LayerNorm"], eps=config.layer_norm_eps)
    )

    widening, narrowing = intermediate["dense"], output["dense"]
    activation = ACT2FN[config.hidden_act]
    features_shares = [None] * len(feature_parts)  # [B*S, H] each: a group of features' share of the narrowing

    def feed_forward(run: slice) -> None:  # a thread's groups of features, feature_parts[run], each on its own
        for i in range(run.start, run.stop):
            features = feature_parts[i]
            x = linear(attention_output_states, widening["weight"][features], widening["bias"][features])  # [B, S, f]
            whole.put("dense", x, features)
            x = apply_elementwise(activation, x, out=x)
            whole.put("intermediate_act_fn", x, features)
            share = x.reshape(B * S, -1) @ narrowing["weight"][:, features].T  # [B*S, f] @ [f, H] -> [B*S, H]
            put_share(features_shares, i, share, run)

    map_in_threads(feed_forward, split(len(feature_parts), threads_here()))
    trace.at("intermediate")("dense", whole.get("dense"))
    trace.at("intermediate")("intermediate_act_fn", whole.get("intermediate_act_fn"))
    layer_output = trace.at("output")("dense", summed(features_shares, narrowing["bias"]).reshape(B, S, H))
    layer_output += attention_output_states  # the residual
    layer_output = layer_norm(layer_output, **output["LayerNorm"], eps=config.layer_norm_eps)
    return trace.at("output")("LayerNorm", layer_output), (probs if output_attentions else None)


def put_share(shares: list, i: int, share: np.ndarray, run: slice) -> None:
    """Keep part i's share of a narrowing product for `summed`; the thread that runs part 0 adds each share of its run
    into shares[0] at once instead (the order of the sum is kept, and one share less is held per part it runs)."""
    if run.start == 0 and i > 0:
        shares[0] += share  # shares[0] is shares[0] + ... + shares[i - 1] by now: this thread made them, in order
    else:
        shares[i] = share


def summed(shares: list, bias: np.ndarray) -> np.ndarray:
    """shares[0] + shares[1] + ... + bias, in that order: the parts' narrowing product, then its bias as
    functional.linear adds it. The shares that put_share has already added into shares[0] are None here.
    P x [B*S, H] -> [B*S, H]"""
    total = shares[0]  # a fresh array of this call's: summed in place
    for share in shares[1:]:
        if share is not None:
            total += share
    total += bias
    return total


class Whole:
    """A traced layer's arrays put together from its parts: Q, K, V and the context [B, S, H] by head columns, the
    scores [B, N, S, S] by heads, the intermediate features [B, S, I] by features. Untraced, it holds nothing."""

    def __init__(self, trace: Trace, B: int, S: int, H: int, N: int, I: int, dtype):  # noqa: E741
        shapes = {"query": (B, S, H), "key": (B, S, H), "value": (B, S, H), "context": (B, S, H)}
        shapes |= {"scores": (B, N, S, S), "dense": (B, S, I), "intermediate_act_fn": (B, S, I)}
        self.arrays = {name: np.empty(shape, dtype) for name, shape in shapes.items()} if trace.collecting else None

    def put(self, name: str, part: np.ndarray, where: slice, axis: int = -1) -> None:
        if self.arrays is not None:
            index = (slice(None),) * (axis % self.arrays[name].ndim) + (where,)
            self.arrays[name][index] = part

    def get(self, name: str) -> np.ndarray | None:
        return None if self.arrays is None else self.arrays[name]
