"""A forward pass split over threads (model.bert_model_in_threads, minibert/parallel.py) computes what one thread does,
leaves BLAS's thread count as it found it, and stays right when callers run it from several threads at once."""

import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from support.helpers import WEIGHTS, blas_split_keeps_bits, minilm_dir, named_outputs, token_mask
from threadpoolctl import threadpool_info

import minibert
from minibert import attention as attention_module
from minibert import batch_threads, parallel, tuning
from minibert.errors import InputError

FILLER = " Each slice holds enough tokens to be worth a thread of its own, so the batch is really split." * 2
TEXTS = [
    "Why is the pooled output different?" + FILLER,
    "A second, longer sentence, so that the shorter rows of this batch get padding." + FILLER * 2,
    "Three." + FILLER,
    "Threads split the batch; each row is computed as if it were alone." + FILLER,
    "Five texts: the slices are 2 + 3 rows on two threads, 1 + 2 + 2 on three." + FILLER,
]
# OpenBLAS's sgemm may round a row's dot products in an order that depends on how many rows the product has (its tail
# kernels), so a slice of the batch and the whole batch agree to float32 rounding, not always bit for bit. Relative to
# the tensor's largest value (at least 1), over real tokens (padded positions are meaningless and drift more): issue
# 12's bound. Seen on a first-generation EPYC (OpenBLAS's Haswell kernel): 0, every tensor bit for bit, once the
# pooler also ran on one BLAS thread; 1.07e-6 before, on layer 4's attention probabilities.
THREADS_F32_TOL = 1e-6
# float64 on every position, padding included: seen 1.7e-16.
THREADS_F64_TOL = 1e-12


def blas_thread_counts() -> list[int]:
    """The thread counts of NumPy's BLAS, the one minibert's products run on (torch, when the suite has imported it,
    brings its own, which minibert neither uses nor sets)."""
    return [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas" and "numpy" in i["filepath"]]


@pytest.fixture(scope="module")
def tokenizer():
    return minibert.Tokenizer.from_pretrained(minilm_dir())


@pytest.fixture(scope="module", params=["float32", "float64"])
def model(request):
    return minibert.BertModel.from_pretrained(minilm_dir(), dtype=request.param)


def assert_close_across_threads(ours: dict, reference: dict, dtype, attention_mask) -> None:
    for name, expected in reference.items():
        actual = ours[name]
        assert actual.shape == expected.shape and actual.dtype == expected.dtype, name
        if dtype == np.float64:
            np.testing.assert_allclose(actual, expected, rtol=0, atol=THREADS_F64_TOL, err_msg=name)
            continue
        where = token_mask(name, attention_mask, expected.shape)
        scale = max(1.0, float(np.abs(expected[where]).max()))
        diff = float(np.abs(actual[where].astype(np.float64) - expected[where]).max())
        assert diff <= THREADS_F32_TOL * scale, f"{name}: {diff} > {THREADS_F32_TOL} x {scale}"


def record_batch_slices(monkeypatch) -> list[list[int]]:
    """The rows of each slice model.bert_model runs on, one list per call of the model (in the order the slices start
    in: threads run them at once)."""
    calls = []
    bert_model = minibert.model.bert_model

    def recorded(params, config, input_ids, *args, **kwargs):
        calls[-1].append(len(input_ids))
        return bert_model(params, config, input_ids, *args, **kwargs)

    monkeypatch.setattr(minibert.model, "bert_model", recorded)
    return calls


def test_one_two_and_three_threads_give_the_same_outputs_on_a_padded_batch(model, tokenizer, monkeypatch):
    inputs = tokenizer(TEXTS)
    assert (inputs["attention_mask"] == 0).any()  # the batch has padding
    calls = record_batch_slices(monkeypatch)
    monkeypatch.setattr(batch_threads, "MIN_SLICE_MACS", 1 << 30)  # 5 rows of ~90 tokens: worth three slices
    outputs = {}
    for threads in (1, 2, 3):
        calls.append([])
        outputs[threads] = named_outputs(
            model(**inputs, output_hidden_states=True, output_attentions=True, threads=threads)
        )
    assert len(outputs[1]) == 2 * model.config.num_hidden_layers + 3
    if parallel.blas_threads.split_keeps_bits():
        assert list(map(sorted, calls)) == [[5], [2, 3], [1, 2, 2]]  # one thread ran the batch whole, 2 and 3 split it
    else:  # BLAS rounds a product cut by rows otherwise: the batch whole, its layers in parts, on any thread count
        assert calls == [[5]] * 3
    for threads in (2, 3):
        assert_close_across_threads(outputs[threads], outputs[1], model.dtype, inputs["attention_mask"])


@pytest.mark.parametrize("keeps_bits", [True, False])
def test_a_batch_is_cut_into_slices_only_where_each_has_the_work_to_pay_for_its_thread(model, monkeypatch, keeps_bits):
    """MiniLM at 8x32 (1.4 G multiply-adds a slice) ran faster whole on BLAS's threads; 16x32 gains from slices. Where
    BLAS rounds a product cut by rows otherwise than the whole, a batch is never cut."""
    monkeypatch.setattr(parallel.blas_threads, "_keeps_bits", keeps_bits)
    calls = record_batch_slices(monkeypatch)
    for B in (8, 16):
        for threads in (2, 1):
            calls.append([])
            model(np.full((B, 32), 1000), threads=threads)
    assert list(map(sorted, calls)) == [[8], [8], [8, 8] if keeps_bits else [16], [16]]


def test_a_single_sequence_in_layer_parts_gives_the_same_bits_on_any_thread_count(model, tokenizer):
    """One sequence is not split: from tuning.LAYER_IN_PARTS_TOKENS tokens on, each layer is cut into the same parts
    whatever the thread count (parallel.fixed_parts()), and the threads share them out."""
    inputs = tokenizer([" ".join(TEXTS * 2)])
    assert inputs["input_ids"].shape[1] >= tuning.LAYER_IN_PARTS_TOKENS
    outputs = {
        threads: named_outputs(model(**inputs, output_hidden_states=True, output_attentions=True, threads=threads))
        for threads in (1, 2, 3, 5)
    }
    for threads in (2, 3, 5):
        for name, expected in outputs[1].items():
            np.testing.assert_array_equal(outputs[threads][name], expected, err_msg=f"{threads} threads: {name}")


@pytest.mark.parametrize("cores", [1, 2, 8])
def test_layers_are_cut_into_the_same_parts_whatever_the_cores_the_threads_or_a_trace(
    model, tokenizer, monkeypatch, cores
):
    """From LAYER_IN_PARTS_TOKENS tokens on, fixed_parts() parts on a process of any number of cores, for any thread
    count, traced or not, and the outputs the same bits; shorter inputs run bert_layer."""
    seen = []
    in_parts = batch_threads.bert_layer_in_parts

    def recorded(*args, parts, **kwargs):
        seen.append(parts)
        return in_parts(*args, parts=parts, **kwargs)

    monkeypatch.setattr(parallel, "available_cores", lambda: cores)
    monkeypatch.setattr(batch_threads, "bert_layer_in_parts", recorded)
    long_inputs = tokenizer([" ".join(TEXTS * 2)])
    parts = parallel.fixed_parts()  # the machine's CPUs, at most four: 1 runs bert_layer itself
    expected = [parts] * model.config.num_hidden_layers if parts > 1 else []
    outputs = []
    for threads in (1, 2, 5):
        seen.clear()
        outputs.append(model(**long_inputs, threads=threads).last_hidden_state)
        assert seen == expected, f"{threads} threads"
    seen.clear()
    outputs.append(model.trace(**long_inputs)[0].last_hidden_state)
    assert seen == expected, "traced"
    for other in outputs[1:]:
        np.testing.assert_array_equal(other, outputs[0])
    seen.clear()
    model(**tokenizer(TEXTS[:1]), threads=2)  # fewer tokens: bert_layer, its products on BLAS's threads where
    assert seen == ([] if parallel.blas_threads.split_keeps_bits() else expected)  # those keep a product's bits


def test_the_kernels_said_to_keep_a_products_bits_on_blas_threads_do_so_here():
    """parallel.SPLIT_KEEPS_BITS names OpenBLAS kernels by what was measured on them: the one this machine runs, if
    named there, computes float32 products of a call's shapes cut as minibert then cuts them (on 2 and 3 of BLAS's
    threads, by a batch's slices, in linear's blocks) to the bits of the whole product on one thread."""
    if not parallel.blas_threads.split_keeps_bits():
        pytest.skip("this machine's BLAS kernel is not one of SPLIT_KEEPS_BITS: its calls never use BLAS's threads")
    assert blas_split_keeps_bits(2) and blas_split_keeps_bits(3)


@pytest.mark.parametrize("keeps_bits", [True, False])
def test_a_short_call_shares_its_products_with_blas_only_where_that_keeps_their_bits(
    model, tokenizer, monkeypatch, keeps_bits
):
    """Below LAYER_IN_PARTS_TOKENS a single sequence's products run on BLAS's threads where BLAS computes them there
    to the bits of one thread (parallel.SPLIT_KEEPS_BITS); elsewhere the layers are in parts on our threads at any
    thread count, BLAS on one, as from LAYER_IN_PARTS_TOKENS on, and the smallest calls run whole layers on one."""
    seen, parts_seen = [], []
    linear, in_parts = minibert.model.linear, batch_threads.bert_layer_in_parts

    def recorded(*args, **kwargs):
        seen.extend(blas_thread_counts())
        return linear(*args, **kwargs)

    def recorded_parts(*args, parts, **kwargs):
        parts_seen.append(parts)
        return in_parts(*args, parts=parts, **kwargs)

    monkeypatch.setattr(minibert.model, "linear", recorded)
    monkeypatch.setattr(minibert.layer_parts, "linear", recorded)
    monkeypatch.setattr(batch_threads, "bert_layer_in_parts", recorded_parts)
    monkeypatch.setattr(parallel.blas_threads, "_keeps_bits", keeps_bits)
    parts = parallel.fixed_parts()
    config = model.config
    macs_per_token = config.num_hidden_layers * (
        4 * config.hidden_size**2 + 2 * config.hidden_size * config.intermediate_size
    )
    # A short call, then one so small (below tuning.MIN_LAYER_PARTS_MACS) that it runs whole layers on one thread
    # everywhere: on those kernels, their parts cost more than a second core gives.
    for texts, smallest in ((TEXTS[:1], False), (["Why is the pooled output different?"], True)):
        inputs = tokenizer(texts)
        assert inputs["input_ids"].size < tuning.LAYER_IN_PARTS_TOKENS
        assert (inputs["input_ids"].size * macs_per_token < tuning.MIN_LAYER_PARTS_MACS) == smallest
        for threads in (1, 2):
            seen.clear(), parts_seen.clear()
            model(**inputs, threads=threads)
            assert seen and set(seen) == {threads if keeps_bits else 1}, f"{threads} threads"
            cut = not keeps_bits and parts > 1 and not smallest
            assert parts_seen == ([parts] * config.num_hidden_layers if cut else []), f"{threads} threads"


def test_a_heads_products_run_on_the_calls_threads(monkeypatch):
    """The masked-LM head's products (its decoder over the vocabulary is larger than the encoder's products) run on the
    call's thread count, shared by functional.linear in blocks of output features, BLAS on one thread."""
    model = minibert.BertForMaskedLM.from_pretrained(WEIGHTS / "tiny-mlm")
    seen = []
    linear = minibert.heads.linear

    def recorded(*args, **kwargs):
        seen.append((parallel.threads_here(), *blas_thread_counts()))
        return linear(*args, **kwargs)

    monkeypatch.setattr(minibert.heads, "linear", recorded)
    for threads in (1, 2, 3):
        seen.clear()
        model(np.full((2, 8), 5), threads=threads)
        assert seen and set(seen) == {(threads, 1)}, f"threads={threads}"


def blocks_dealt(monkeypatch) -> list[list[int]]:
    """A list that records functional.linear's blocks of output features: for each product it shares out, how many
    blocks each thread got."""
    seen, dealt = [], minibert.functional.map_in_threads

    def recorded(fn, items):
        seen.append([len(mine) for mine in items])
        return dealt(fn, items)

    monkeypatch.setattr(minibert.functional, "map_in_threads", recorded)
    return seen


def a_heads_product() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """x [16, 384], a row-major weight [3000, 384] and its bias: 18 M multiply-adds, worth four blocks."""
    rng = np.random.default_rng(0)
    return tuple(rng.standard_normal(shape, np.float32) for shape in ((16, 384), (3000, 384), (3000,)))


@pytest.mark.parametrize("keeps_bits", [True, False])
def test_a_product_is_cut_into_blocks_by_the_thread_count_only_where_blas_keeps_its_bits(monkeypatch, keeps_bits):
    """functional.linear's blocks of output features: one per thread where BLAS computes a block to the whole product's
    bits, the whole product on one thread elsewhere; the same bits at any thread count where that is true."""
    true_here = parallel.blas_threads.split_keeps_bits()
    monkeypatch.setattr(parallel.blas_threads, "_keeps_bits", keeps_bits)
    monkeypatch.setattr(parallel.blas_threads, "_small_matrices", False)  # the blocks of any BLAS's (SMALL_ROWS: below)
    seen = blocks_dealt(monkeypatch)
    x, weight, bias = a_heads_product()
    outputs = []
    for threads in (1, 2, 3):
        seen.clear()
        with parallel.budget(threads), parallel.blas_threads(1):
            outputs.append(minibert.functional.linear(x, weight, bias))
        assert [sum(blocks) for blocks in seen] == [threads if keeps_bits else 1], f"{threads} threads"
    if true_here or not keeps_bits:  # (told the blocks keep the bits where they do not, they would not)
        for other in outputs[1:]:
            np.testing.assert_array_equal(other, outputs[0])


@pytest.mark.parametrize("cpus", [2, 4])
def test_a_heads_product_is_cut_into_the_machines_fixed_blocks_where_blas_would_change_its_bits(monkeypatch, cpus):
    """Where BLAS rounds a block of output features otherwise than the whole product (OpenBLAS's Haswell kernel), a
    head's products (parallel.products_on) are still shared among the call's threads: cut into parallel.fixed_parts()
    blocks, the machine's CPUs, whatever the thread count, so that their bits follow none. Outside products_on (the
    encoder, the pooler) such a kernel's products stay whole."""
    monkeypatch.setattr(parallel.blas_threads, "_keeps_bits", False)
    monkeypatch.setattr(parallel.blas_threads, "_small_matrices", False)  # as on Haswell's kernel: it has none
    monkeypatch.setattr(parallel.os, "cpu_count", lambda: cpus)
    seen = blocks_dealt(monkeypatch)
    x, weight, bias = a_heads_product()
    outputs = []
    for threads in (1, 2, 3):
        seen.clear()
        with parallel.products_on(threads):
            outputs.append(minibert.functional.linear(x, weight, bias))
        assert len(seen) == 1 and sum(seen[0]) == cpus, f"{threads} threads: {seen}"
        assert len(seen[0]) == min(threads, cpus), f"{threads} threads: {seen}"  # every thread of the call has blocks
        seen.clear()
        with parallel.budget(threads), parallel.blas_threads(1):
            minibert.functional.linear(x, weight, bias)
        assert seen == [[1]], f"{threads} threads outside products_on: {seen}"
    for other in outputs[1:]:
        np.testing.assert_array_equal(other, outputs[0])
    np.testing.assert_allclose(outputs[0], minibert.functional.linear_reference(x, weight, bias), rtol=0, atol=1e-4)


HASWELL_SCRIPT = """
import sys, numpy as np, minibert
sys.path.insert(0, sys.argv[3])
from support.helpers import blas_split_keeps_bits
from threadpoolctl import threadpool_info
kernels = {i.get("architecture") for i in threadpool_info() if i["user_api"] == "blas" and "numpy" in i["filepath"]}
if kernels != {"Haswell"}:
    print("kernel", kernels); sys.exit(3)
assert not blas_split_keeps_bits(2), "the premise: this kernel's threads change a product's bits"
model = minibert.BertModel.from_pretrained(sys.argv[1])
tokenizer = minibert.Tokenizer.from_pretrained(sys.argv[1])
minibert.batch_threads.MIN_SLICE_MACS = 1 << 26  # so that the last batch, 8 rows of 11 tokens, is worth two slices
for texts in ([sys.argv[2][:40]], [sys.argv[2]], [sys.argv[2][: 10 + 4 * i] for i in range(8)]):
    inputs = tokenizer(texts)
    one, two = model(**inputs, threads=1), model(**inputs, threads=2)
    for name in ("last_hidden_state", "pooler_output"):
        assert np.array_equal(getattr(one, name), getattr(two, name)), (inputs["input_ids"].shape, name)
rng = np.random.default_rng(0)  # a decoder over a vocabulary, as a head's, on 1, 2 and 3 of our threads
x, weight, bias = (rng.standard_normal(shape, np.float32) for shape in ((16, 384), (30522, 384), (30522,)))
products = []
for threads in (1, 2, 3):
    with minibert.parallel.products_on(threads):
        products.append(minibert.functional.linear(x, weight, bias))
assert all(np.array_equal(p, products[0]) for p in products[1:]), "a head's decoder"
"""


@pytest.mark.skipif(
    not Path("/proc/cpuinfo").is_file() or " avx2" not in Path("/proc/cpuinfo").read_text(), reason="needs an AVX2 CPU"
)
def test_a_short_sequence_gives_the_same_bits_on_any_thread_count_on_openblass_haswell_kernel():
    """On the kernel OpenBLAS picks for AVX2 CPUs (chosen here by OPENBLAS_CORETYPE), a short call's products on two
    BLAS threads, and a batch's slices, would round otherwise than one thread's whole products: there a call's layers
    are in parts and a batch is not cut, whatever the thread count."""
    environment = {**os.environ, "OPENBLAS_CORETYPE": "Haswell", "OPENBLAS_NUM_THREADS": "2"}
    result = subprocess.run(
        [sys.executable, "-c", HASWELL_SCRIPT, str(minilm_dir()), TEXTS[0], str(Path(__file__).parent)],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if result.returncode == 3:
        pytest.skip(f"NumPy's BLAS is not OpenBLAS with a Haswell kernel here: {result.stdout.strip()}")
    assert result.returncode == 0, result.stderr


def test_work_knows_whether_it_runs_beside_its_calls_other_threads():
    """map_in_threads's items run beside each other when there are several; one item runs as its thread does (a
    layer's parts in a slice of a batch are beside the other slices). Outside any call: alone."""
    here = parallel.beside_others_here
    assert not here()
    assert parallel.map_in_threads(lambda _: here(), [0, 1, 2]) == [True, True, True]
    assert parallel.map_in_threads(lambda _: here(), [0]) == [False]
    assert parallel.map_in_threads(lambda _: parallel.map_in_threads(lambda _: here(), [0]), [0, 1]) == [[True], [True]]
    assert not here()


def test_attention_in_cache_sized_blocks_is_bit_identical_to_one_block(model, tokenizer, monkeypatch):
    """The blocks of (sequences, heads) change where the scores live, not one operation on them."""
    inputs = tokenizer(TEXTS)
    monkeypatch.setattr(attention_module, "ATTENTION_BLOCK_SCORES", 4096)  # a block of one or a few heads
    blocked = named_outputs(model(**inputs, output_attentions=True, threads=1))
    monkeypatch.setattr(attention_module, "attention_blocks", lambda *args: [[(slice(None), slice(None))]])
    whole = named_outputs(model(**inputs, output_attentions=True, threads=1))
    assert blocked.keys() == whole.keys()
    for name in whole:
        np.testing.assert_array_equal(blocked[name], whole[name], err_msg=name)


def test_a_slice_of_the_batch_is_computed_as_if_alone(model, tokenizer):
    """Each row of a split batch against that row run on its own (position_ids given per row, as [B, S])."""
    inputs = tokenizer(TEXTS[:4])
    B, S = inputs["input_ids"].shape
    positions = np.tile(np.arange(S), (B, 1))
    together = model(**inputs, position_ids=positions, threads=2).last_hidden_state
    for row in range(B):
        alone = model(**{k: v[row : row + 1] for k, v in inputs.items()}, threads=1).last_hidden_state
        reference = {"last_hidden_state": alone}
        ours = {"last_hidden_state": together[row : row + 1]}
        assert_close_across_threads(ours, reference, model.dtype, inputs["attention_mask"][row : row + 1])


def test_blas_thread_count_is_what_it_was_after_a_call_even_one_that_fails(model, tokenizer):
    before = blas_thread_counts()
    assert before  # NumPy's BLAS was found
    model(**tokenizer(TEXTS), threads=2)
    assert blas_thread_counts() == before
    model(**tokenizer(TEXTS[:1]), threads=1)  # a single sequence: one slice, BLAS on one thread for the call
    assert blas_thread_counts() == before

    def fails(rows):
        assert blas_thread_counts() == [1] * len(before)  # inside the call BLAS runs one thread per product
        raise RuntimeError("a slice failed")

    with pytest.raises(RuntimeError, match="a slice failed"), parallel.blas_threads(1):
        parallel.map_in_threads(fails, [0, 1, 2])
    assert blas_thread_counts() == before


def test_a_call_on_another_thread_than_the_first_callers_still_holds_blas_to_its_count():
    """threadpoolctl (3.8) lets only the thread that first set OpenBLAS's thread count set it again and silently ignores
    the others: a server's compute thread, after its main thread's warm-up, ran BLAS on two threads beside ours."""
    before = blas_thread_counts()
    if before == [1] * len(before):
        pytest.skip("BLAS runs one thread here already")
    with parallel.blas_threads(1):  # this thread first
        assert blas_thread_counts() == [1] * len(before)
    seen = []

    def another_thread():
        with parallel.blas_threads(1):
            seen.append(blas_thread_counts())
        seen.append(blas_thread_counts())

    thread = threading.Thread(target=another_thread)
    thread.start()
    thread.join(timeout=60)
    assert seen == [[1] * len(before), before]


def test_calls_from_several_threads_at_once_give_each_caller_its_own_outputs(model, tokenizer):
    batches = [tokenizer(TEXTS[i:]) for i in range(4)]  # 5, 4, 3 and 2 rows
    expected = [named_outputs(model(**b, threads=1)) for b in batches]
    before = blas_thread_counts()
    results, errors = {}, []
    start = threading.Barrier(len(batches))

    def caller(i):
        try:
            start.wait()
            for _ in range(2):
                results[i] = named_outputs(model(**batches[i], threads=2))
        except Exception as error:  # reported below, in the test's thread
            errors.append(error)

    callers = [threading.Thread(target=caller, args=(i,)) for i in range(len(batches))]
    for t in callers:
        t.start()
    for t in callers:
        t.join()
    assert not errors
    for i, batch in enumerate(batches):
        assert_close_across_threads(results[i], expected[i], model.dtype, batch["attention_mask"])
    assert blas_thread_counts() == before


def test_trace_records_the_whole_batch_whatever_the_thread_count(tokenizer):
    model = minibert.BertModel.from_pretrained(minilm_dir())
    inputs = tokenizer(TEXTS)
    os.environ[parallel.THREADS_ENV] = "2"
    try:
        out, trace = model.trace(**inputs)
    finally:
        del os.environ[parallel.THREADS_ENV]
    assert trace["encoder.layer.0.attention.self.probs"].shape[0] == len(TEXTS)
    # A traced call is one slice, its layers in the same parts as an untraced one (layer_parts.py): the same bits.
    np.testing.assert_array_equal(out.last_hidden_state, model(**inputs, threads=1).last_hidden_state)
    np.testing.assert_array_equal(trace["encoder.layer.5.output.LayerNorm"], out.last_hidden_state)


def test_thread_count_comes_from_the_argument_then_the_environment_then_the_cores(monkeypatch):
    monkeypatch.delenv(parallel.THREADS_ENV, raising=False)
    assert parallel.resolve_threads() == len(os.sched_getaffinity(0))
    monkeypatch.setenv(parallel.THREADS_ENV, "3")
    assert parallel.resolve_threads() == 3
    assert parallel.resolve_threads(2) == 2  # the argument wins
    assert parallel.resolve_threads(np.int64(4)) == 4
    monkeypatch.setenv(parallel.THREADS_ENV, " ")
    assert parallel.resolve_threads() == len(os.sched_getaffinity(0))  # blank means unset


@pytest.mark.parametrize("threads", [0, -1, 1.5, "2", True])
def test_a_bad_thread_count_argument_is_refused_with_the_fix(threads):
    with pytest.raises(InputError, match=r"threads must be a whole number of threads, 1 or more; found .*threads=2"):
        parallel.resolve_threads(threads)


@pytest.mark.parametrize("value", ["two", "0", "1.5"])
def test_a_bad_thread_count_environment_variable_is_refused_naming_it(monkeypatch, value):
    monkeypatch.setenv(parallel.THREADS_ENV, value)
    with pytest.raises(InputError, match=f"MINIBERT_NUM_THREADS='{value}' must be a whole number"):
        minibert.BertModel.from_pretrained(minilm_dir())([[101, 102]])
