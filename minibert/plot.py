"""Pictures of a forward pass, for `minibert explain --plot`. Needs matplotlib: `pip install 'minibert[plot]'`.

matplotlib is imported inside the function, so `import minibert` never pulls it in, and only its Agg canvas is used
(no pyplot), so plotting touches no global backend state and needs no display.
"""

from pathlib import Path

import numpy as np

from .errors import MinibertError
from .files import check_writable, write_atomically

FIGSIZE = (14.0, 9.0)  # inches; times DPI gives the PNG's size in pixels
DPI = 100


def require_matplotlib():
    """matplotlib's Agg canvas and Figure classes, or an error that says how to install them."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise MinibertError("plotting needs matplotlib: pip install 'minibert[plot]'") from None
    return FigureCanvasAgg, Figure


def plot_explanation(
    path,
    *,
    tokens: list[str],
    probs: np.ndarray,
    layer: int,
    head: int,
    h0: np.ndarray,
    pooler_dense: np.ndarray,
    pooled: np.ndarray,
    title: str = "",
) -> Path:
    """Write a PNG of FIGSIZE * DPI pixels with four panels and return its path:

    - the attention probabilities of one head, `probs` [S, S] (query rows, key columns), labelled with the tokens;
    - token 0's last hidden state `h0` [H] and the pooled output `pooled` [H], dimension by dimension;
    - the pooler's tanh: each dimension's `pooler_dense` [H] value (W h0 + b) against its tanh, on the tanh curve;
    - the distribution of the values of h0, W h0 + b and tanh(W h0 + b).
    """
    FigureCanvasAgg, Figure = require_matplotlib()
    path = check_writable(path, (".png",))
    h0, pooler_dense, pooled = (np.asarray(v, dtype=np.float64) for v in (h0, pooler_dense, pooled))
    fig = Figure(figsize=FIGSIZE, dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    (attention, dims), (curve, hist) = fig.subplots(2, 2, gridspec_kw={"width_ratios": [1, 1.25]})
    if title:
        fig.suptitle(title, fontsize=13)

    # Attention: row i is where token i looks; each row sums to 1.
    S = probs.shape[-1]
    image = attention.imshow(probs, cmap="viridis", vmin=0.0)  # up to the largest probability, for contrast
    fontsize = 10 if S <= 16 else 8 if S <= 32 else 6
    attention.set_xticks(range(S), tokens, rotation=90, fontsize=fontsize)
    attention.set_yticks(range(S), tokens, fontsize=fontsize)
    attention.set_xlabel("key (attended to)")
    attention.set_ylabel("query (attending)")
    attention.set_title(f"encoder.layer.{layer}.attention.self.probs, head {head}")
    fig.colorbar(image, ax=attention, shrink=0.8, label="attention probability")

    cosine = float(h0 @ pooled / (np.linalg.norm(h0) * np.linalg.norm(pooled)))
    index = np.arange(h0.size)
    dims.plot(
        index, h0, lw=0.8, color="tab:blue", label=f"h0 = last_hidden_state[0, 0]  (norm {np.linalg.norm(h0):.2f})"
    )
    dims.plot(index, pooled, lw=0.8, color="tab:red", label=f"pooler_output[0]  (norm {np.linalg.norm(pooled):.2f})")
    dims.axhline(0.0, color="0.6", lw=0.5)
    dims.set_xlabel("hidden dimension")
    dims.set_ylabel("value")
    dims.set_title(f"token 0 before and after the pooler: cosine {cosine:.3f}")
    dims.legend(loc="upper left", fontsize=9)

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

    bins = np.linspace(min(h0.min(), -1.0), max(h0.max(), 1.0), 80)
    hist.hist(h0, bins=bins, histtype="step", lw=1.2, color="tab:blue", label="h0")
    hist.hist(pooler_dense, bins=bins, histtype="step", lw=1.2, color="tab:orange", label="W h0 + b")
    hist.hist(pooled, bins=bins, histtype="stepfilled", alpha=0.35, color="tab:red", label="tanh(W h0 + b)")
    hist.set_yscale("log")
    hist.set_xlabel("value")
    hist.set_ylabel("number of dimensions")
    hist.set_title("distribution of the values of h0, W h0 + b and tanh(W h0 + b)")
    hist.legend(fontsize=9)

    return write_atomically(path, lambda f: fig.savefig(f, format="png", dpi=DPI))
