"""Pictures of a forward pass, for `minibert explain --plot`. Needs matplotlib: `pip install 'minibert-numpy[plot]'`.

matplotlib is imported inside the function, so `import minibert` never pulls it in, and only its Agg canvas is used
(no pyplot), so plotting touches no global backend state and needs no display.
"""

import math
import textwrap
from pathlib import Path

import numpy as np

from ..errors import MinibertError
from ..files import check_writable, write_atomically

FIGSIZE = (14.0, 9.0)  # inches; times DPI gives the PNG's size in pixels
DPI = 100
TITLE_FONTSIZE = 12
TITLE_CHARACTERS = 150  # of a title line: about what FIGSIZE's width holds at TITLE_FONTSIZE, with a margin
TITLE_LINES = 2  # at most, for each text of the title (a text and its pair)
MAX_TOKEN_LABELS = 32  # past this many tokens, the attention map labels every k-th token only (at most this many)
ATTENTION_PIXELS = 300  # the attention map's side at FIGSIZE and DPI, about (335 with a short title and short tokens)


def require_matplotlib():
    """matplotlib's Agg canvas and Figure classes, or an error that says how to install them."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise MinibertError("plotting needs matplotlib: pip install 'minibert-numpy[plot]'") from None
    return FigureCanvasAgg, Figure


def fit_title(texts: list[str]) -> str:
    """The figure's title: each text on lines of at most TITLE_CHARACTERS, at most TITLE_LINES of them, shortened
    with "[...]" past that, so that a long text or a pair never runs off the picture's edges."""
    lines = []
    for text in texts:
        wrapped = textwrap.wrap(" ".join(text.split()), TITLE_CHARACTERS) or [""]
        if len(wrapped) > TITLE_LINES:
            rest = " ".join(wrapped[TITLE_LINES - 1 :])
            wrapped = [*wrapped[: TITLE_LINES - 1], textwrap.shorten(rest, TITLE_CHARACTERS, placeholder=" [...]")]
        lines += wrapped
    return "\n".join(lines)


def plot_explanation(path, **panels) -> Path:
    """Write explanation_figure(**panels) as a PNG of FIGSIZE * DPI pixels and return its path."""
    path = check_writable(path, (".png",))
    fig = explanation_figure(**panels)
    return write_atomically(path, lambda f: fig.savefig(f, format="png", dpi=DPI))


def explanation_figure(
    *,
    tokens: list[str],
    probs: np.ndarray,
    layer: int,
    head: int,
    h0: np.ndarray,
    pooler_dense: np.ndarray,
    pooled: np.ndarray,
    title: str | list[str] = "",
):
    """A matplotlib Figure of FIGSIZE with four panels:

    - the attention probabilities of one head, `probs` [S, S] (query rows, key columns), labelled with the tokens
      (past MAX_TOKEN_LABELS tokens, every k-th one, with its position);
    - token 0's last hidden state `h0` [H] and the pooled output `pooled` [H], dimension by dimension, with the
      dimension of h0 that holds the most of its norm marked;
    - the pooler's tanh: each dimension's `pooler_dense` [H] value (W h0 + b) against its tanh, on the tanh curve;
    - the distribution of the values of h0, W h0 + b and tanh(W h0 + b).

    `title` is a text, or a list of texts (a text and its pair), each fitted to the width by fit_title.
    """
    FigureCanvasAgg, Figure = require_matplotlib()
    h0, pooler_dense, pooled = (np.asarray(v, dtype=np.float64) for v in (h0, pooler_dense, pooled))
    fig = Figure(figsize=FIGSIZE, dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    (attention, dims), (curve, hist) = fig.subplots(2, 2, gridspec_kw={"width_ratios": [1, 1.25]})
    if title:
        fig.suptitle(fit_title([title] if isinstance(title, str) else title), fontsize=TITLE_FONTSIZE)

    draw_attention(fig, attention, tokens, probs, layer, head)
    top = draw_token_0(dims, h0, pooled)
    draw_tanh(curve, pooler_dense, pooled)
    draw_distributions(hist, h0, pooler_dense, pooled, top)
    return fig


def draw_attention(fig, attention, tokens: list[str], probs: np.ndarray, layer: int, head: int) -> None:
    """One head's attention probabilities [S, S] as an image, tokens labelled (thinned past MAX_TOKEN_LABELS)."""
    # Attention: row i is where token i looks; each row sums to 1.
    S = probs.shape[-1]
    image = attention.imshow(probs, cmap="viridis", vmin=0.0)  # up to the largest probability, for contrast
    step = math.ceil(S / MAX_TOKEN_LABELS)  # 1 up to MAX_TOKEN_LABELS tokens, then every 2nd, 3rd, ...
    shown = range(0, S, step)
    labels = [tokens[i] if step == 1 else f"{tokens[i]} {i}" for i in shown]  # thinned: with the position
    # A label's box is ~1.5 pixels per point tall; 0.6 points per pixel of spacing leaves a gap between neighbours.
    fontsize = min(10.0, 0.6 * ATTENTION_PIXELS / len(shown))
    attention.set_xticks(shown, labels, rotation=90, fontsize=fontsize)
    attention.set_yticks(shown, labels, fontsize=fontsize)
    every = "" if step == 1 else f"; every {step}{'nd' if step == 2 else 'rd' if step == 3 else 'th'} token labelled"
    attention.set_xlabel(f"key (attended to){every}")
    attention.set_ylabel("query (attending)")
    attention.set_title(f"encoder.layer.{layer}.attention.self.probs, head {head}")
    fig.colorbar(image, ax=attention, shrink=0.8, label="attention probability")


def draw_token_0(dims, h0: np.ndarray, pooled: np.ndarray) -> int:
    """h0 and pooler_output [H] dimension by dimension; returns the dimension that holds the most of h0's norm."""
    cosine = float(h0 @ pooled / (np.linalg.norm(h0) * np.linalg.norm(pooled)))
    index = np.arange(h0.size)
    dims.plot(
        index, h0, lw=0.8, color="tab:blue", label=f"h0 = last_hidden_state[0, 0]  (norm {np.linalg.norm(h0):.2f})"
    )
    dims.plot(index, pooled, lw=0.8, color="tab:red", label=f"pooler_output[0]  (norm {np.linalg.norm(pooled):.2f})")
    dims.axhline(0.0, color="0.6", lw=0.5)
    top = int(np.argmax(np.abs(h0)))  # the dimension that holds the most of h0's norm (99 for MiniLM's [CLS])
    share = h0[top] ** 2 / (h0**2).sum()
    dims.scatter(
        [top],
        [h0[top]],
        s=60,
        facecolors="none",
        edgecolors="black",
        zorder=3,
        label=f"h0's largest: dimension {top}, {h0[top]:.2f}, {share:.0%} of |h0|²",
    )
    dims.annotate(f"{top}", xy=(top, h0[top]), xytext=(7, 0), textcoords="offset points", va="center", fontsize=9)
    dims.set_xlabel("hidden dimension")
    dims.set_ylabel("value")
    dims.set_title(f"token 0 before and after the pooler: cosine {cosine:.3f}")
    dims.legend(loc="upper right", fontsize=9)
    return top


def draw_tanh(curve, pooler_dense: np.ndarray, pooled: np.ndarray) -> None:
    """Each dimension's W h0 + b against its tanh, on the tanh curve."""
    reach = max(3.0, float(np.abs(pooler_dense).max()) * 1.1)
    x = np.linspace(-reach, reach, 400)
    curve.plot(x, np.tanh(x), color="0.5", lw=1, label="tanh")
    curve.plot(x, x, color="0.8", lw=1, ls="--", label="identity")
    curve.scatter(pooler_dense, pooled, s=8, color="tab:red", zorder=3, label="the pooler's H values")
    curve.set_ylim(-1.1, 1.1)
    curve.set_xlabel("W h0 + b  (pooler.dense)")
    curve.set_ylabel("tanh(W h0 + b)  (pooler.activation)")
    curve.set_title("the tanh: where the pooler's values fall on it")
    curve.legend(loc="upper left", fontsize=9)


def draw_distributions(hist, h0: np.ndarray, pooler_dense: np.ndarray, pooled: np.ndarray, top: int) -> None:
    """Histograms of the values of h0, W h0 + b and tanh(W h0 + b), with h0's largest dimension marked."""
    bins = np.linspace(min(h0.min(), -1.0), max(h0.max(), 1.0), 80)
    hist.hist(h0, bins=bins, histtype="step", lw=1.2, color="tab:blue", label="h0")
    hist.hist(pooler_dense, bins=bins, histtype="step", lw=1.2, color="tab:orange", label="W h0 + b")
    hist.hist(pooled, bins=bins, histtype="stepfilled", alpha=0.35, color="tab:red", label="tanh(W h0 + b)")
    hist.annotate(  # beside its bar, on the side away from the panel's edge
        f"dimension {top}",
        xy=(h0[top], 1),
        xytext=(-6 if h0[top] > 0 else 6, 10),
        textcoords="offset points",
        ha="right" if h0[top] > 0 else "left",
        fontsize=9,
    )
    hist.set_yscale("log")
    hist.set_xlabel("value")
    hist.set_ylabel("number of dimensions")
    hist.set_title("distribution of the values of h0, W h0 + b and tanh(W h0 + b)")
    hist.legend(fontsize=9)
