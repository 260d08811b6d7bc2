"""The input's partitions: line-aligned byte ranges that hold every line exactly once."""

from hypothesis import given, settings
from hypothesis import strategies as st

from minibert.embed.partitions import auto_partition_size, plan_partitions, read_lines


@settings(max_examples=60, deadline=None)
@given(
    lines=st.lists(st.text(alphabet="ab \r", max_size=12), max_size=30),
    trailing_newline=st.booleans(),
    partition_size=st.integers(1, 40),
)
def test_partitions_hold_every_line_exactly_once(tmp_path_factory, lines, trailing_newline, partition_size):
    data = "\n".join(lines).encode() + (b"\n" if trailing_newline and lines else b"")
    path = tmp_path_factory.mktemp("p") / "f.txt"
    path.write_bytes(data)
    ranges = plan_partitions(str(path), len(data), partition_size)
    read = [line for start, end in ranges for line in read_lines(str(path), start, end)]
    expected = data.split(b"\n")
    if data.endswith(b"\n") or not data:
        expected.pop()
    assert read == expected
    assert all(start < end for start, end in ranges), "no empty partition"
    assert [start for start, _ in ranges[1:]] == [end for _, end in ranges[:-1]], "contiguous"
    assert all(data[start - 1 : start] == b"\n" for start, _ in ranges[1:]), "every partition starts a line"


def test_automatic_partition_size_is_a_sixteenth_within_4k_and_1m():
    assert auto_partition_size(229_000) == 14_313  # a 3,000-line corpus: 16 partitions, not 1
    assert auto_partition_size(64 << 10) == 4 << 10
    assert auto_partition_size(20_000) == 4 << 10  # ~5 partitions of ~1.5 s each
    assert auto_partition_size(1 << 30) == 1 << 20  # 1,024 partitions of 1 MiB


def test_a_3000_line_corpus_makes_16_partitions(tmp_path):
    from support.embed_corpus import mixed_lines, write_lines
    from support.helpers import minilm_dir

    path = write_lines(tmp_path / "corpus.txt", mixed_lines(minilm_dir(), 3000, seed=5))
    size = path.stat().st_size
    ranges = plan_partitions(str(path), size, auto_partition_size(size))
    assert len(ranges) == 16
