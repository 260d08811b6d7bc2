"""The benchmarks' helpers that every results file depends on: the host record (CPU model, vector extensions) parsed
from fixed lscpu and /proc/cpuinfo samples, and the real-text corpus builder. No timing, no torch."""

import importlib.util

import pytest
from support.helpers import ROOT

from minibert.parallel import THREADS_ENV


def load(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


harness = load("harness")
corpus = load("corpus")
kernels = load("kernels")

LSCPU_ZEN1 = """\
Architecture:                            x86_64
Vendor ID:                               AuthenticAMD
Model name:                              AMD EPYC
CPU family:                              23
Model:                                   1
Stepping:                                2
Hypervisor vendor:                       KVM
L2 cache:                                1 MiB (2 instances)
L3 cache:                                8 MiB (1 instance)
NUMA node0 CPU(s):                       0,1
"""
CPUINFO_SAPPHIRE = """\
processor\t: 0
vendor_id\t: GenuineIntel
cpu family\t: 6
model\t\t: 143
model name\t: Intel(R) Xeon(R) Platinum 8481C CPU @ 2.70GHz
flags\t\t: fpu sse4_2 avx fma avx2 avx512f avx512bw avx512vl avx512_bf16 amx_bf16 amx_tile avx_vnni

processor\t: 1
model name\t: another block, not read
"""


def test_lscpu_fields_are_read_by_label_and_the_model_line_is_not_taken_for_model_name():
    assert harness.parse_lscpu(LSCPU_ZEN1) == {
        "vendor": "AuthenticAMD",
        "model_name": "AMD EPYC",
        "family": "23",
        "model": "1",
        "stepping": "2",
        "hypervisor": "KVM",
        "l2": "1 MiB (2 instances)",
        "l3": "8 MiB (1 instance)",
    }


def test_cpuinfo_reads_the_first_processor_block_only():
    info = harness.parse_cpuinfo(CPUINFO_SAPPHIRE)
    assert info["model_name"] == "Intel(R) Xeon(R) Platinum 8481C CPU @ 2.70GHz"
    assert (info["family"], info["model"]) == ("6", "143")
    assert "amx_tile" in info["flags"].split()


def test_vector_extensions_are_listed_in_a_fixed_order_and_unrelated_flags_dropped():
    flags = harness.parse_cpuinfo(CPUINFO_SAPPHIRE)["flags"]
    assert harness.vector_extensions(flags) == [
        "sse4_2",
        "avx",
        "fma",
        "avx2",
        "avx_vnni",
        "avx512f",
        "avx512bw",
        "avx512vl",
        "avx512_bf16",
        "amx_tile",
        "amx_bf16",
    ]
    assert harness.vector_extensions("fpu sse4_2 avx fma avx2 sse4a") == ["sse4_2", "avx", "fma", "avx2"]
    # a flag is matched whole: avx512f does not make avx512 or avx5 appear
    assert harness.vector_extensions("avx512fx avx2x") == []


def test_this_hosts_record_has_the_cpu_model_its_extensions_and_says_whether_openblas_coretype_is_set():
    host = harness.describe_host()
    assert host["cpu"]["model_name"]
    assert isinstance(host["cpu"]["vector_extensions"], list)
    assert "OPENBLAS_CORETYPE" in host["environment"]  # recorded even when unset (as None)
    assert "ATEN_CPU_CAPABILITY" in host["environment"]  # torch's kernels, held to AVX2 for the Haswell kernel's table
    assert all({"internal_api", "version", "architecture", "num_threads"} <= set(b) for b in host["blas"])
    summary = harness.host_summary(host)
    assert host["cpu"]["model_name"] in summary and "OPENBLAS_CORETYPE=" in summary


def test_thread_environment_sizes_every_pool_alike():
    env = harness.thread_environment(3)
    pools = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "RAYON_NUM_THREADS", THREADS_ENV)
    assert {env[k] for k in pools} == {"3"}
    assert THREADS_ENV in harness.STEERING_VARIABLES  # the variable minibert reads, recorded with every result


def test_rotation_starts_each_repetition_with_the_next_engine():
    names = ["a", "b", "c"]
    assert [harness.rotation(names, r) for r in range(4)] == [
        ["a", "b", "c"],
        ["b", "c", "a"],
        ["c", "a", "b"],
        ["a", "b", "c"],
    ]


DOC = """\
# Installing the package

The package reads real checkpoints and matches the reference to the last digits.
It runs on any CPU with NumPy.

```python
import minibert  # code, not prose
```

    indented = "code block"

| a | b |
|---|---|

.. note:: a directive

- First item of a list, which is a text of its own.
- Second item, also prose enough to keep.

x = 1; y = 2 {} [] ()
"""


def test_paragraphs_keep_prose_and_list_items_and_drop_code_tables_and_directives():
    assert corpus.paragraphs(DOC) == [
        "Installing the package",
        "The package reads real checkpoints and matches the reference to the last digits. It runs on any CPU with "
        "NumPy.",
        "First item of a list, which is a text of its own.",
        "Second item, also prose enough to keep.",
    ]


def test_metadata_description_is_the_body_after_the_headers():
    text = "Metadata-Version: 2.1\nName: x\nSummary: one line\n\nA README paragraph of the package.\n"
    assert corpus.metadata_description(text) == "A README paragraph of the package.\n"
    assert corpus.metadata_description("Name: x\n") == ""


def test_corpus_is_deterministic_distinct_and_independent_of_file_order(tmp_path):
    root = tmp_path / "site-packages"
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "README.md").write_text(DOC)
    (root / "pkg" / "LICENSE.txt").write_text("Permission is hereby granted, free of charge, to any person.\n")
    (root / "x-1.0.dist-info").mkdir()
    (root / "x-1.0.dist-info" / "METADATA").write_text(
        "Name: x\n\nThe second package has a README with two paragraphs.\n\nAnd here is the other one, longer.\n"
        "\nThe package reads real checkpoints and matches the reference to the last digits. It runs on any CPU "
        "with NumPy.\n"
    )
    texts = corpus.build_corpus(5, roots=[root])
    assert texts == corpus.build_corpus(5, roots=[root])
    assert len(set(texts)) == 5  # the paragraph both files hold is taken once
    assert not any("Permission" in t for t in texts)  # license files are not read
    assert corpus.corpus_digest(texts) == corpus.describe_corpus(texts)["sha256"]
    with pytest.raises(SystemExit, match="fewer than the 7 asked"):
        corpus.build_corpus(7, roots=[root])


# `perf report --stdio --sort dso,sym --field-separator ';'`, as perf 6 prints it (cut from a MiniLM run on Zen 4).
PERF_REPORT = """\
# Samples: 33K of event 'cpu-clock'
#
# Overhead;Shared Object                                    ;Symbol
 62.00% ;libscipy_openblas64_-32a4b2a6.so                 ;[.] sgemm_kernel_SKYLAKEX
 5.00%  ;_multiarray_umath.cpython-311-x86_64-linux-gnu.so;[.] simd_exp_FLOAT
 4.00%  ;_multiarray_umath.cpython-311-x86_64-linux-gnu.so;[.] FLOAT_multiply_X86_V3
 3.00%  ;libscipy_openblas64_-32a4b2a6.so                 ;[.] sgemm_small_kernel_b0_nn_SKYLAKEX
 2.00%  ;libscipy_openblas64_-32a4b2a6.so                 ;[.] sgemm_oncopy_SKYLAKEX
 2.00%  ;libc.so.6                                        ;[.] __memset_avx512_unaligned_erms
 1.50%  ;_multiarray_umath.cpython-311-x86_64-linux-gnu.so;[.] FLOAT_pairwise_sum
 1.00%  ;_multiarray_umath.cpython-311-x86_64-linux-gnu.so;[.] _aligned_strided_to_contig_size4_srcstride0
 1.00%  ;libpython3.11.so.1.0                             ;[.] _PyEval_EvalFrameDefault
 0.50%  ;[kernel.kallsyms]                                ;[k] clear_page_erms
 0.03%  ;libscipy_openblas64_-32a4b2a6.so                 ;[.] sgemm_kernel_HASWELL
 0.01%  ;libtorch_cpu.so                                  ;[.] mkl_blas_def_sgemm_scopy_right16_bdz
 0.01%  ;libtorch_cpu.so                                  ;[.] mkl_blas_def_sgemm_mscale
 17.95% ;libsomething.so                                  ;[.] 0x00000000001234

"""


def test_perf_samples_are_grouped_by_what_each_function_is_and_named_kernels_listed():
    rows = kernels.parse_report(PERF_REPORT)
    assert [r["percent"] for r in rows][:2] == [62.0, 17.95]  # largest first
    assert rows[0]["dso"] == "libscipy_openblas64_-32a4b2a6.so" and rows[0]["symbol"] == "sgemm_kernel_SKYLAKEX"
    assert [r["symbol"] for r in rows if r["kernel_space"]] == ["clear_page_erms"]
    groups = {r["symbol"]: kernels.group_of(r) for r in rows}
    assert groups == {
        "sgemm_kernel_SKYLAKEX": "BLAS: multiply-adds",
        "sgemm_small_kernel_b0_nn_SKYLAKEX": "BLAS: multiply-adds",
        "sgemm_kernel_HASWELL": "BLAS: multiply-adds",
        "sgemm_oncopy_SKYLAKEX": "BLAS: packing",
        "mkl_blas_def_sgemm_scopy_right16_bdz": "BLAS: packing",
        "mkl_blas_def_sgemm_mscale": "BLAS: zeroing C",
        "__memset_avx512_unaligned_erms": "libc: memset, memcpy",
        "simd_exp_FLOAT": "NumPy: exp",
        "FLOAT_multiply_X86_V3": "NumPy: elementwise",
        "FLOAT_pairwise_sum": "NumPy: reductions",
        "_aligned_strided_to_contig_size4_srcstride0": "NumPy: copies",
        "_PyEval_EvalFrameDefault": "Python",
        "clear_page_erms": "Linux kernel",
        "0x00000000001234": "other",
    }
    summary = kernels.summarise(rows, seconds_per_call=0.2)  # the rows add up to 100%: 1% of a call is 2 ms
    assert summary["groups"]["BLAS: multiply-adds"] == {"percent": 65.03, "ms_per_call": 130.06}
    assert summary["groups"]["other"] == {"percent": 17.95, "ms_per_call": 35.9}
    assert list(summary["groups"])[0] == "BLAS: multiply-adds"  # largest first
    # kernels under 0.1% of the samples are not listed as the ones that ran
    assert summary["blas_kernels"] == ["sgemm_kernel_SKYLAKEX", "sgemm_small_kernel_b0_nn_SKYLAKEX"]


def test_floor_puts_minibert_blas_time_against_torchs_whole_pass_and_what_the_goal_leaves():
    def result(engine, seconds, groups):
        return {"engine": engine, "model": "minilm", "batch": 1, "seq": 128, "seconds_per_call": seconds,
                "groups": {name: {"percent": 0.0, "ms_per_call": ms} for name, ms in groups.items()}}  # fmt: skip

    ours = result("minibert", 0.050, {"BLAS: multiply-adds": 20.0, "BLAS: packing": 12.0, "NumPy: exp": 3.0})
    theirs = result("torch", 0.032, {"BLAS: multiply-adds": 16.0, "BLAS: packing": 6.0, "BLAS: zeroing C": 0.5})
    row = kernels.floor_row(ours, theirs, goal=1.10)
    assert row["shape"] == "1x128" and row["minibert_ms"] == 50.0 and row["torch_ms"] == 32.0
    assert row["minibert/torch"] == 1.562  # 50 / 32
    assert row["minibert_blas_ms"] == 32.0 and row["minibert_blas/torch"] == 1.0
    assert row["rest_allowed_ms"] == 3.2  # 1.10 x 32 - 32: what is left for all but the products
    assert row["minibert_rest_ms"] == 18.0 and row["torch_rest_ms"] == 9.5  # 32 - (16 + 6 + 0.5)
