"""A real-text corpus for the embedding benchmarks: paragraphs of the English documentation installed on this machine.

Sources, in sorted path order: the long descriptions in the `*.dist-info/METADATA` files of the environment's
packages (their READMEs) and the Markdown, reStructuredText and plain-text documents shipped inside them (license
texts and machine-written lists such as SOURCES.txt left out). Each file is cut into paragraphs at blank lines;
code blocks, tables, directives, link lists and other non-prose lines are dropped, whitespace is collapsed, and a
paragraph is kept when it reads as prose (mostly letters, at least three words, at most MAX_CHARS characters).
Duplicates go. The N paragraphs taken are the first N by the SHA-1 of their text: a fixed, well-mixed choice that
does not depend on the file order and changes little when a package is added. `corpus_digest` names the result,
and every results file records it, so two runs can tell whether they embedded the same texts.
"""

import hashlib
import re
import site
import statistics
import sys
from collections.abc import Iterable
from pathlib import Path

MAX_CHARS = 1500
MIN_WORDS = 3
DOC_SUFFIXES = (".md", ".rst", ".txt")
# Not prose, or not English prose written for people: legal texts and the lists that packaging tools write.
SKIPPED_NAMES = re.compile(
    r"licen[cs]e|copying|notice|authors|contributors|patents|third.?party|entry_points|top_level|requirements|"
    r"dependency_links|sources|installed-files|record|vocab|merges|namespace_packages|not-zip-safe|changelog|"
    r"changes|history|news",
    re.I,
)
_FENCE = re.compile(r"^\s*(```|~~~)")
_LIST_ITEM = re.compile(r"^\s*([-*+•]|\d+[.)]|#\.)\s+")
_NOT_PROSE_LINE = re.compile(
    r"^\s*(\||\+[-=+]|[-=~^*#`]{3,}\s*$|\.\. |:[\w-]+:|>>>|\$ |<[a-zA-Z/!]|\[[^\]]*\]:|[-*+] \[[^\]]*\]\(|"
    r"[A-Za-z][\w-]*: \S)"
)


def source_files(roots: Iterable[Path]) -> list[Path]:
    """METADATA files and shipped documents under the roots (site-packages folders), sorted, without the skipped."""
    found = set()
    for root in roots:
        root = Path(root)
        if not root.is_dir():
            continue
        found.update(root.glob("*.dist-info/METADATA"))
        for suffix in DOC_SUFFIXES:
            for path in root.rglob(f"*{suffix}"):
                if path.is_file() and not SKIPPED_NAMES.search(path.name) and ".dist-info" not in str(path.parent):
                    found.add(path)
    return sorted(found)


def metadata_description(text: str) -> str:
    """A METADATA file's body: what follows its header block (the package's README), or '' if it has none."""
    head, sep, body = text.partition("\n\n")
    return body if sep else ""


def paragraphs(text: str) -> list[str]:
    """Prose paragraphs of a Markdown/RST/plain document: blank-line separated blocks (and list items) outside
    code fences and indented code, non-prose lines dropped, whitespace collapsed, kept if `is_prose`."""
    kept, block, in_fence = [], [], False

    def flush():
        if block:
            paragraph = " ".join(" ".join(line.split()) for line in block).strip()
            paragraph = re.sub(r"^#+\s*", "", paragraph)  # a Markdown heading's marker
            if is_prose(paragraph):
                kept.append(paragraph)
            block.clear()

    for line in text.splitlines():
        if _FENCE.match(line):
            flush()
            in_fence = not in_fence
            continue
        if in_fence:
            continue
        if not line.strip():
            flush()
            continue
        if line.startswith(("    ", "\t")) and not block:  # an indented code block (or an RST literal)
            continue
        if _NOT_PROSE_LINE.match(line):
            flush()
            continue
        if _LIST_ITEM.match(line):  # each item of a list is a text of its own, without its marker
            flush()
            line = _LIST_ITEM.sub("", line)
        block.append(line)
    flush()
    return kept


def is_prose(paragraph: str) -> bool:
    """At least MIN_WORDS words, at most MAX_CHARS characters, four fifths letters or spaces, not a bare URL, not a
    template."""
    if not paragraph or len(paragraph) > MAX_CHARS or len(paragraph.split()) < MIN_WORDS:
        return False
    letters = sum(c.isalpha() or c == " " for c in paragraph)
    if letters < 0.8 * len(paragraph):
        return False
    if "{{" in paragraph or "{%" in paragraph:  # template source (model cards), not text
        return False
    return not paragraph.startswith(("http://", "https://"))


def file_paragraphs(path: Path) -> list[str]:
    text = path.read_text(encoding="utf-8", errors="replace")
    if path.name == "METADATA":
        text = metadata_description(text)
    return paragraphs(text)


def build_corpus(n: int, roots: Iterable[Path] | None = None) -> list[str]:
    """n distinct prose paragraphs from the roots (default: this interpreter's site-packages), the first n by SHA-1."""
    roots = site.getsitepackages() if roots is None else roots
    unique = {}
    for path in source_files(roots):
        for paragraph in file_paragraphs(path):
            unique.setdefault(paragraph, None)
    ranked = sorted(unique, key=lambda p: hashlib.sha1(p.encode("utf-8")).hexdigest())
    if len(ranked) < n:
        raise SystemExit(f"only {len(ranked)} prose paragraphs found under {list(roots)}, fewer than the {n} asked")
    return ranked[:n]


def corpus_digest(texts: list[str]) -> str:
    """SHA-256 of the texts, one per line: the corpus's name in a results file."""
    return hashlib.sha256("".join(t + "\n" for t in texts).encode("utf-8")).hexdigest()


def describe_corpus(texts: list[str]) -> dict:
    lengths = sorted(len(t) for t in texts)
    return {
        "texts": len(texts),
        "characters_median": statistics.median(lengths),
        "characters_mean": statistics.fmean(lengths),
        "characters_p90": lengths[int(0.9 * (len(lengths) - 1))],
        "characters_max": lengths[-1],
        "sha256": corpus_digest(texts),
    }


if __name__ == "__main__":  # python benchmarks/corpus.py [N]: the statistics and a sample
    texts = build_corpus(int(sys.argv[1]) if len(sys.argv) > 1 else 1000)
    print(describe_corpus(texts))
    for text in texts[:: max(1, len(texts) // 12)]:
        print("-", text[:200])
