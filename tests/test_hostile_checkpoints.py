"""minibert's promise about untrusted model files (README, "Threat model"), over the catalogue of
tests/support/hostile_files.py:
every file is refused with a clean minibert error, or loaded with exactly the numbers torch (`weights_only=True`)
or safetensors read from it; no case takes more than CASE_SECONDS of CPU time, or more address space than its
limit (what the child already uses, plus MEMORY_FACTOR times the case's bytes, plus MEMORY_SLACK).

Each case is loaded in a child process (batches of cases per child, one timer and one memory limit per case), so
that a regression fails its case instead of hanging or exhausting the test run.
"""

import re

import pytest
from support.hostile_files import (
    CASE_SECONDS,
    MEMORY_FACTOR,
    MEMORY_SLACK,
    TEXT,
    TINY_CLASSIFIER,
    Case,
    cases,
    digest,
    run_cases,
    split_pre_tokenizer,
    tokenizer_with,
)

import minibert
from minibert.errors import CheckpointError

# A message may quote untrusted names, but escaped: a raw newline, carriage return or escape character could forge
# log lines or drive a terminal. And it stays short, whatever the file holds.
CONTROL_CHARACTER = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
MAX_MESSAGE = 1200


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory) -> tuple[list[Case], dict[str, dict]]:
    built = cases(tmp_path_factory.mktemp("hostile"))
    return built, run_cases(built)


def reference_digest(case: Case) -> str | None:
    """What the file holds by its own format's reader: torch's weights_only load, safetensors', or the values the
    case was built with; None if that reader refuses the file."""
    if case.expect == "torch":
        torch = pytest.importorskip("torch")
        try:
            state_dict = torch.load(case.path, weights_only=True)
        except Exception:
            return None
        return digest(
            {
                name: (t.float() if t.dtype == torch.bfloat16 else t).contiguous().numpy()
                for name, t in state_dict.items()
            }
        )
    if case.expect == "safetensors":
        from safetensors.numpy import load_file

        try:
            return digest(load_file(case.path))
        except Exception:
            return None
    if case.expect == "values":
        return digest(case.values)
    return None


def problem(case: Case, result: dict) -> str | None:
    """Why `result` breaks the promise for `case`, or None."""
    outcome = result["outcome"]
    if outcome == "refused":
        message = result["message"]
        if case.must_load:
            return f"an honest file is refused: {message}"
        if CONTROL_CHARACTER.search(message):
            return f"the message holds a raw control character: {message!r}"
        if len(message) > MAX_MESSAGE:
            return f"the message is {len(message)} characters long"
        if not re.search(case.reason, message):
            return f"refused, but not for the reason /{case.reason}/: {message}"
        return None
    if outcome != "loaded":
        return f"{outcome}: {result.get('error', '')} {result.get('message', '')}"
    if case.expect == "load":
        return None
    if case.expect == "refuse":
        return "loaded a file that should have been refused"
    expected = reference_digest(case)
    if expected is None:
        return f"loaded, but the {case.expect} reader refuses the file"
    if result["digest"] != expected:
        return f"loaded numbers that differ from {case.expect}'s"
    return None


def test_every_hostile_file_is_refused_cleanly_or_read_as_its_own_format_reads_it(catalogue):
    built, results = catalogue
    problems = [
        f"{case.name}: {problem(case, results[case.name])}" for case in built if problem(case, results[case.name])
    ]
    assert not problems, f"{len(problems)} of {len(built)} cases break the promise:\n" + "\n".join(problems)


def test_the_catalogue_covers_every_reader_with_honest_controls(catalogue):
    built, results = catalogue
    kinds = {case.kind for case in built}
    assert kinds == {"torch_bin", "safetensors", "tf", "model", "classifier", "tokenizer", "sentence"}
    for kind in kinds:  # each reader has a control that must load, so that refusing everything cannot pass
        assert any(case.must_load for case in built if case.kind == kind), kind
    assert sum(results[case.name]["outcome"] == "refused" for case in built) >= 60


def test_the_harness_reports_a_hang_and_a_memory_blow_up_as_failures(tmp_path):
    spin = Case("spin", "_spin", tmp_path)
    allocate = Case("allocate", "_allocate", tmp_path)  # tries to allocate 4 GiB, past any limit here
    results = run_cases([spin, allocate])
    assert results["spin"]["outcome"] == "timeout"
    assert results["spin"]["seconds"] < 3 * CASE_SECONDS  # stopped by the timer, not by the batch's wall clock
    assert results["allocate"]["outcome"] == "crashed" and "MemoryError" in results["allocate"]["error"]
    assert results["allocate"]["limit_mib"] * 2**20 < 4 * 2**30 - MEMORY_SLACK - MEMORY_FACTOR * 2**20


def test_a_panic_of_the_tokenizers_library_is_a_checkpoint_error_not_a_base_exception():
    # A split regex that makes the library's regex engine give up (retry-limit-in-match) panics in Rust; pyo3's
    # PanicException derives from BaseException. tokenizer.json cannot carry this regex (BERT_TOKENIZER_PARTS), so it
    # is set on the backend directly: the catch is the second line of defence.
    from tokenizers import Regex, pre_tokenizers

    tokenizer = minibert.Tokenizer.from_pretrained(TINY_CLASSIFIER)
    tokenizer.backend.pre_tokenizer = pre_tokenizers.Split(Regex(r"(\w+\s?)*$"), "isolated")
    with pytest.raises(CheckpointError, match="the tokenizers library failed on these texts .*retry-limit"):
        tokenizer([TEXT[:300]])


def test_a_tokenizer_json_with_a_split_regex_is_refused_before_the_library_reads_it(tmp_path):
    directory = tokenizer_with(tmp_path / "model", split_pre_tokenizer(r"(\w+\s?)*$"))
    with pytest.raises(CheckpointError, match=r"tokenizer.json: its pre_tokenizer is 'Split', which a BERT tokenizer"):
        minibert.Tokenizer.from_pretrained(directory)
