"""A forward pass on several cores: model.bert_model run on slices of the batch at once, or its layers shared.

NumPy releases the GIL inside its products and ufunc loops, so Python threads that each run bert_model over a slice
of the batch keep every core busy with all of the work (softmax, LayerNorm, GELU, the residual adds), not only the
products; BLAS then runs one thread per product. The rows of a batch never meet, so each slice's rows are what the
whole batch gives them, to within the rounding of BLAS's kernels (tests/test_threads.py bounds it). A call too small
to cut into slices shares each layer among its threads instead (layer_parts.py). bert_model and bert_pooler arrive as
arguments: this module sits below model.py and never imports it.
"""

from dataclasses import fields, replace
from functools import partial

import numpy as np

from .layer_parts import bert_layer_in_parts
from .memory import keep_freed_memory
from .parallel import blas_threads, budget, fixed_parts, map_in_threads, resolve_threads, split
from .trace import NO_TRACE, Trace
from .tuning import LAYER_IN_PARTS_TOKENS, MIN_LAYER_PARTS_MACS, MIN_SLICE_MACS


def bert_model_in_threads(
    bert_model,
    bert_pooler,
    params,
    config,
    input_ids,
    attention_mask,
    token_type_ids,
    position_ids,
    *,
    threads: int | None = None,
    output_hidden_states: bool = False,
    output_attentions: bool = False,
    trace: Trace = NO_TRACE,
):
    """bert_model(params, config, ...) on `threads` slices of the batch at once, BLAS on one thread. One slice for a
    single sequence, a batch of little work (MIN_SLICE_MACS) or a traced call: its products then run on BLAS's
    `threads` threads or, from LAYER_IN_PARTS_TOKENS tokens on, each layer's parts on ours (layer_parts.py).
    `threads` None: $MINIBERT_NUM_THREADS, else every core this process may run on."""
    threads = resolve_threads(threads)
    keep_freed_memory()  # once per process: the temporaries of one pass are reused by the next, not faulted in again
    B, S = input_ids.shape
    H, I = config.hidden_size, config.intermediate_size  # noqa: E741 (the paper's and transformers' name)
    macs = B * S * config.num_hidden_layers * (4 * H * H + 2 * H * I)  # the encoder's products, all of the batch
    # Where BLAS rounds a product cut by rows or by output features otherwise than the whole (kernels not of
    # parallel.SPLIT_KEEPS_BITS, OpenBLAS's Haswell kernel among them), a batch is not cut into slices, and every call's
    # layers are in parts, which share the cores in their stead: so the outputs follow no thread count there either.
    # Against a batch cut into the same two slices at any thread count (the other way to keep the bits), on OpenBLAS's
    # Haswell kernel (Zen 4): MiniLM 16x32 0.945 (one core) and 0.944 (two), bert-base 8x32 0.927 and 0.961, MiniLM
    # 32x128 0.998 and 1.054; against BLAS's threads below LAYER_IN_PARTS_TOKENS on two cores (which changed bits
    # there), MiniLM 1x16 1.14-1.39, 1x64 1.14, bert-base 1x16 0.91-1.05 (benchmarks/README.md, eighth pass).
    keeps_bits = blas_threads.split_keeps_bits()
    pieces = min(threads, B, max(1, macs // MIN_SLICE_MACS)) if keeps_bits and not trace.collecting else 1
    # From LAYER_IN_PARTS_TOKENS on, every slice computes its layers in fixed_parts() parts, whatever the process's
    # cores, the thread count or a trace: the outputs depend on none of them (the parts' sums round as one product
    # would not). Where BLAS's threads would change the bits, shorter calls too, but for the smallest
    # (MIN_LAYER_PARTS_MACS): whole layers on one thread, at any thread count.
    shared_exactly = not keeps_bits and macs >= MIN_LAYER_PARTS_MACS
    parts = fixed_parts() if B * S >= LAYER_IN_PARTS_TOKENS or shared_exactly else 1
    layer_function = {"layer_function": partial(bert_layer_in_parts, parts=parts)} if parts > 1 else {}

    def run(rows: slice, params):  # [B, S] -> [rows, S]
        positions = position_ids[rows] if position_ids.shape[0] == B else position_ids  # [B or 1, S]
        return bert_model(
            params,
            config,
            input_ids[rows],
            attention_mask[rows],
            token_type_ids[rows],
            positions,
            output_hidden_states=output_hidden_states,
            output_attentions=output_attentions,
            trace=trace,
            **layer_function,
        )

    if pieces == 1:
        # One sequence, or a batch of little work. Its layers in parts go to our threads, two handoffs per layer.
        # Below LAYER_IN_PARTS_TOKENS (on a kernel of SPLIT_KEEPS_BITS) those handoffs (~130 us each when the thread
        # has gone to sleep) cost more than the second core gives, and BLAS's own threads share each product instead:
        # they take up work within microseconds. But they spin on the other cores for a while after each product, so
        # the rest of the work stays on this thread. (Where they would change the bits, blas_threads holds them to one.)
        ours = parts > 1
        with blas_threads(1 if ours else threads), budget(threads if ours else 1):
            return run(slice(None), params)
    # The pooler runs once, over the joined batch: its one product over every row's token 0 then rounds as it does
    # on one thread, and pooler_output is tanh(h0 Wᵀ + b) of the whole batch's h0, bit for bit (tests/test_model.py).
    encoder_params = {name: p for name, p in params.items() if name != "pooler"}
    with blas_threads(1):
        outputs = map_in_threads(lambda rows: run(rows, encoder_params), split(B, pieces))
        output = replace(outputs[0], **{f.name: join_slices(outputs, f.name) for f in fields(outputs[0])})
        if "pooler" in params:
            output.pooler_output = bert_pooler(output.last_hidden_state, **params["pooler"])  # [B, S, H] -> [B, H]
    return output


def join_slices(outputs: list, name: str):
    """One field of the slices' outputs joined along the batch: pieces x [rows, ...] -> [B, ...], layer by layer for
    the tuples."""
    parts = [getattr(o, name) for o in outputs]
    if parts[0] is None:
        return None
    if isinstance(parts[0], tuple):
        return tuple(np.concatenate(layer) for layer in zip(*parts, strict=True))
    return np.concatenate(parts)
