"""What the embedding job tells its user: the progress bar while it runs, and after it the blank lines skipped, the
bad lines refused and the texts cut."""

import sys

from .partitions import BLANK


def report_lines(bad: list[tuple[int, str]], cut: list[tuple[int, int]], rows: int, limit_tokens, where, log) -> None:
    """On `log`: the blank lines skipped, the bad lines (each, up to a limit; "most" when they are), the cut texts."""
    blank = [line for line, reason in bad if reason == BLANK]
    refused = [(line, reason) for line, reason in bad if reason != BLANK]
    if blank:
        shown = ", ".join(map(str, blank[:10])) + (", ..." if len(blank) > 10 else "")
        print(f"{len(blank)} blank line(s) skipped, each kept as a row of NaN (line {shown})", file=log)
    if refused:
        most = " (most of the input: is it the file, --format and --field you meant?)" * (2 * len(refused) > rows)
        print(
            f"{len(refused)} bad input line(s) of {rows}{most}, embedded as rows of NaN and listed in {where}:",
            file=log,
        )
        for line, reason in refused[:20]:
            print(f"  line {line}: {reason}", file=log)
        if len(refused) > 20:
            print(f"  ... and {len(refused) - 20} more", file=log)
    if cut:
        shown = ", ".join(f"line {line}: {tokens} tokens" for line, tokens in cut[:5]) + (
            ", ..." if len(cut) > 5 else ""
        )
        print(
            f"{len(cut)} text(s) cut to the model's {limit_tokens} tokens (max_seq_length), their ends not embedded "
            f"({shown}); listed in {where} as cut_lines",
            file=log,
        )


def progress_bar(total: int, initial: int, enabled: bool):
    """A tqdm bar counted in lines, or a stand-in that does nothing when tqdm is missing or progress is off."""
    if enabled:
        try:
            from tqdm.auto import tqdm

            return tqdm(total=total, initial=initial, unit="line", smoothing=0.05, file=sys.stderr)
        except ImportError:
            pass

    class NoBar:
        def update(self, n):
            pass

        def close(self):
            pass

    return NoBar()
