"""The explainer page: where the pooled output of one text comes from, drawn as a self-contained HTML page from the
traced forward pass that report.py reads its numbers from.

    explain(text, model) -> Explanation: .report (the `explain --json` fields), .html(), .save("out.html"),
                            and _repr_html_, so that it draws itself in Jupyter

The page is `minibert/explainer/assets/page.html` with its CSS and JavaScript put inline: no server, no CDN, no
library. Its numbers are embedded as JSON in `<script type="application/json" id="minibert-report">`: the report
under "explain" (equal to `minibert explain --json`), then what the five views draw (head, model, neuron, pooler,
trace). Large arrays (attention, queries and keys) are stored as base64 of little-endian binary,
{"dtype", "shape", "base64"}; `read_page_data` turns them back into NumPy arrays. Long inputs keep fewer numbers
(`reduction`), and the page says which.

Shape legend: L layers, N heads, S sequence length, D head size, H hidden size, k keys kept per query.
"""

import base64
import html
import json
import os
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from ..errors import CheckpointError, InputError
from ..files import check_writable, write_atomically
from ..hub import resolve_model_dir
from ..model import extended_attention_mask
from ..pretrained import BertModel
from ..sentence import cosine_similarity, read_sentence_config
from ..tokenizer import Tokenizer
from .report import pooler_report, report_as_json

ASSETS = "explainer/assets"  # package data: page.html, page.css, page.js
REPORT_ID = "minibert-report"

# Up to this many tokens the page holds every attention weight, query and key in float32: exactly the trace's.
FULL_PRECISION_MAX_TOKENS = 64
# Above it, queries and keys are float16 and attention weights one byte each, as round(255 sqrt(p)): within 0.004
# of the trace's weight, finer near 0 (0.0008 at p = 0.01). All weights are kept while the layers and heads hold at
# most FULL_ATTENTION_BUDGET of them (MiniLM: up to 144 tokens); beyond, each query keeps its k largest, k the
# largest power of two within TOP_K_BUDGET weights in all (MiniLM at 512 tokens: 16 of 512). A 128-token MiniLM
# page is then about 3.5 MB, a 512-token one about 9 MB, most of it the queries and keys of the neuron view.
FULL_ATTENTION_BUDGET = 1_500_000
TOP_K_BUDGET = 600_000
# A dimension is "saturated" where |tanh(x)| > 0.9 (|x| > 1.47): there tanh'(x) = 1 - tanh(x)^2 < 0.19, the tanh
# squashes differences instead of passing them on.
SATURATION = 0.9
# The <title> holds this many characters of the text at most (a browser tab shows about 30): the page's <h1> clamps
# the text to two lines, and the whole text is one click away under it.
TITLE_CHARACTERS = 60


# ---- binary arrays inside JSON ----


def pack(array: np.ndarray, dtype) -> dict:
    """{"dtype", "shape", "base64"}: the array as little-endian `dtype` bytes, base64-encoded."""
    array = np.ascontiguousarray(array, dtype=np.dtype(dtype).newbyteorder("<"))
    return {"dtype": np.dtype(dtype).name, "shape": list(array.shape), "base64": base64.b64encode(array).decode()}


def unpack(packed: dict) -> np.ndarray:
    data = base64.b64decode(packed["base64"])
    return np.frombuffer(data, dtype=np.dtype(packed["dtype"]).newbyteorder("<")).reshape(packed["shape"])


def _unpack_all(value):
    if isinstance(value, dict):
        if set(value) == {"dtype", "shape", "base64"}:
            return unpack(value)
        return {k: _unpack_all(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unpack_all(v) for v in value]
    return value


# ---- what the views draw ----


def keys_kept(layers: int, heads: int, seq: int) -> int:
    """How many attention weights each query keeps on the page: all of them while they fit FULL_ATTENTION_BUDGET."""
    if layers * heads * seq * seq <= FULL_ATTENTION_BUDGET:
        return seq
    k = 1
    while k * 2 < seq and layers * heads * seq * k * 2 <= TOP_K_BUDGET:
        k *= 2
    return k


def attention_data(probs: np.ndarray) -> dict:
    """probs [L, N, S, S] -> the weights the head and model views draw: all, or each query's k largest."""
    L, N, S, _ = probs.shape
    if S <= FULL_PRECISION_MAX_TOKENS:
        return {"keys_kept": S, "encoding": "float32", "values": pack(probs, np.float32), "indices": None}
    k = keys_kept(L, N, S)
    indices = None
    if k < S:  # the k largest weights of each query, in key order: [L, N, S, S] -> [L, N, S, k]
        indices = np.sort(np.argpartition(probs, S - k, axis=-1)[..., S - k :], axis=-1)
        probs = np.take_along_axis(probs, indices, axis=-1)
    mass = probs.sum(axis=-1, dtype=np.float64)  # [L, N, S]: the share of each query's attention the page keeps
    return {
        "keys_kept": k,
        "encoding": "sqrt-uint8",  # p = (v / 255)^2
        "values": pack(np.round(np.sqrt(probs) * 255), np.uint8),
        "indices": None if indices is None else pack(indices, np.uint16),
        "mass_kept_mean": float(mass.mean()),
        "mass_kept_min": float(mass.min()),
    }


def split_heads(x: np.ndarray, heads: int) -> np.ndarray:
    """[S, H] -> [N, S, D], as bert_self_attention splits them."""
    S, H = x.shape
    return x.reshape(S, heads, H // heads).transpose(1, 0, 2)


def trace_statistics(trace: dict) -> list[dict]:
    """Shape, mean, std, min, max and norm of every traced array, computed in float64."""
    rows = []
    for name, array in trace.items():
        x = array.astype(np.float64)
        rows.append(
            {
                "name": name,
                "shape": list(array.shape),
                "mean": float(x.mean()),
                "std": float(x.std()),
                "min": float(x.min()),
                "max": float(x.max()),
                "norm": float(np.linalg.norm(x.ravel())),
            }
        )
    return rows


def sentence_files(directory: Path | None) -> dict:
    """What a sentence-transformers model directory says its sentence embedding is (modules.json, the Pooling
    module's config.json), or why it was not read."""
    if directory is None:
        return {"read": False, "why": "the model was given as an object, not a directory, so no files were read"}
    if not (directory / "modules.json").is_file():
        return {
            "read": False,
            "why": f"{directory.name} has no modules.json: not a sentence-transformers model directory, so it does "
            "not say which vector to use",
        }
    try:
        config = read_sentence_config(directory)
    except CheckpointError as error:
        return {"read": False, "why": str(error)}
    return {
        "read": True,
        "modules": list(config.modules),
        "pooling_modes": list(config.pooling_modes),
        "normalize": config.normalize,
        "pooling_config_file": config.pooling_config_path.relative_to(directory).as_posix(),
        "pooling_config": config.pooling_config,
        "uses_pooler": False,  # no sentence-transformers module that minibert reads takes BERT's pooler_output
    }


def pooler_data(report: dict) -> dict:
    """What the pooler view draws beside the report's vectors: saturation, the largest dimensions, cosines."""
    dense, pooled, h0, mean = report["pooler_dense"], report["pooler_output"], report["h0"], report["mean_pooling"]
    saturated = np.flatnonzero(np.abs(pooled) > SATURATION)
    top_h0 = np.argsort(-np.abs(h0))[:3]
    return {
        "saturation": SATURATION,
        "saturated": saturated.tolist(),
        "dense_min": float(dense.min()),
        "dense_max": float(dense.max()),
        "max_abs_tanh_minus_dense": float(np.abs(np.tanh(dense.astype(np.float64)) - dense).max()),
        "top_h0_dims": top_h0.tolist(),
        "top_h0_share": [float(h0[i] ** 2 / (h0.astype(np.float64) ** 2).sum()) for i in top_h0],
        "cosine_pooler_output_mean_pooling": float(cosine_similarity(pooled, mean)[0, 0]),
        "norms": {name: float(np.linalg.norm(report[name])) for name in ("h0", "pooler_dense", "pooler_output")}
        | {"mean_pooling": float(np.linalg.norm(mean))},
    }


def page_data(model: BertModel, report: dict, trace: dict, *, name: str, directory: Path | None) -> dict:
    """Everything the page shows: the report (`explain --json`) and what each view draws."""
    config = model.config
    L, N, H = config.num_hidden_layers, config.num_attention_heads, config.hidden_size
    S = len(report["tokens"])
    probs = np.stack([trace[f"encoder.layer.{i}.attention.self.probs"][0] for i in range(L)])  # [L, N, S, S]
    attention = attention_data(probs)
    qk_dtype = np.float32 if S <= FULL_PRECISION_MAX_TOKENS else np.float16
    queries = np.stack([split_heads(trace[f"encoder.layer.{i}.attention.self.query"][0], N) for i in range(L)])
    keys = np.stack([split_heads(trace[f"encoder.layer.{i}.attention.self.key"][0], N) for i in range(L)])
    mask = extended_attention_mask(np.ones((1, S), dtype=np.int64), model.dtype)[0, 0, 0]  # [S]: one unpadded row
    notes = []
    cut = report["num_truncated_tokens"]
    if cut:  # first: it says which tokens every view (and the note below) is about
        notes.append(
            f"{S} of the {S + cut:,} tokens of the text and its pair ran: the longer text was cut first until {S} "
            f"were left, so {cut:,} tokens are in no view."
            if report["pair"] is not None
            else f"{S} of the text's {S + cut:,} tokens ran: the text was cut to its first {S}, so the last {cut:,} "
            "tokens are in no view."
        )
    if S > FULL_PRECISION_MAX_TOKENS:
        if attention["indices"] is None:
            kept = "it holds every attention weight to within 0.004 (one byte each), and queries and keys in float16"
        else:
            kept = (
                f"the head and model views draw each query's {attention['keys_kept']} largest attention weights of "
                f"{S} (they hold {attention['mass_kept_mean']:.0%} of its attention on average, "
                f"{attention['mass_kept_min']:.0%} at least), each to within 0.004; the neuron view recomputes all "
                f"{S} from queries and keys kept in float16"
            )
        notes.append(
            f"{S} tokens, so to keep the page small {kept}. Up to {FULL_PRECISION_MAX_TOKENS} tokens the page holds "
            "every number in float32, as the trace does; the pooler and trace views are exact at any length."
        )
    return {
        "format": 1,
        "name": name,
        "config": {
            "layers": L,
            "heads": N,
            "hidden_size": H,
            "head_size": H // N,
            "intermediate_size": config.intermediate_size,
            "hidden_act": config.hidden_act,
            "hidden_act_source": config.hidden_act_source,
            "vocab_size": config.vocab_size,
        },
        "explain": report_as_json(report),
        "attention_mask": [1] * S,
        "mask": mask.tolist(),
        "attention": attention,
        "qk": {"dtype": np.dtype(qk_dtype).name, "query": pack(queries, qk_dtype), "key": pack(keys, qk_dtype)},
        "pooler": pooler_data(report) | {"sentence": sentence_files(directory)},
        "trace": trace_statistics(trace),
        "notes": notes,
    }


# ---- the page ----


def _asset(name: str) -> str:
    return (resources.files("minibert") / ASSETS / name).read_text(encoding="utf-8")


def short_title(text: str, limit: int = TITLE_CHARACTERS) -> str:
    """The text as a tab's title: whole up to `limit` characters, else cut at a space before it, with "…"."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    return (cut.rsplit(" ", 1)[0] if " " in cut[limit // 2 :] else cut) + "…"


def render_page(data: dict) -> str:
    """The page as one HTML string: the template with its CSS, JavaScript and the data put inline."""
    # "<" escaped inside the JSON so that no token or text can close the <script> element early.
    embedded = json.dumps(data, separators=(",", ":"), allow_nan=False).replace("<", "\\u003c")
    title = f"minibert explain: {short_title(data['explain']['text'])}"
    values = {"/*STYLE*/": _asset("page.css"), "/*SCRIPT*/": _asset("page.js"), "{{TITLE}}": html.escape(title)}
    values["{{DATA}}"] = embedded
    template = _asset("page.html")
    markers = re.findall(r"/\*STYLE\*/|/\*SCRIPT\*/|\{\{TITLE\}\}|\{\{DATA\}\}", template)
    if sorted(markers) != sorted(values):
        raise RuntimeError(f"{ASSETS}/page.html: expected the markers {sorted(values)} once each, found {markers}")
    # One pass over the template, so that a marker inside the script or the data is left alone.
    page = re.sub(r"/\*STYLE\*/|/\*SCRIPT\*/|\{\{TITLE\}\}|\{\{DATA\}\}", lambda m: values[m.group(0)], template)
    return page


def read_page_data(page: str) -> dict:
    """The data embedded in an explainer page (its text), with the binary arrays as NumPy arrays."""
    found = re.search(rf'<script type="application/json" id="{REPORT_ID}">(.*?)</script>', page, re.S)
    if found is None:
        raise InputError(f'not an explainer page: no <script type="application/json" id="{REPORT_ID}">')
    return _unpack_all(json.loads(found.group(1)))


@dataclass
class Explanation:
    """One text explained: `report` (what `minibert explain --json` prints) and `data` (what the page draws)."""

    report: dict
    data: dict

    def html(self) -> str:
        """The whole page, self-contained."""
        return render_page(self.data)

    def save(self, path) -> Path:
        """Write the page to `path` (.html), atomically."""
        path = check_writable(path, (".html",))
        page = self.html().encode("utf-8")
        return write_atomically(path, lambda f: f.write(page))

    def _repr_html_(self) -> str:
        # In an iframe, so that the page's script, styles and ids stay apart from the notebook's (and from other
        # explanations shown in it); srcdoc needs no file and no server.
        return (
            f'<iframe srcdoc="{html.escape(self.html(), quote=True)}" title="minibert explainer" '
            'style="width: 100%; height: 900px; border: 1px solid #ddd; border-radius: 6px"></iframe>'
        )

    @classmethod
    def of(cls, model: BertModel, report: dict, trace: dict, *, source=None) -> "Explanation":
        """The page of a report and its trace (pooler_report's); `source`, the model's directory or hub id, names the
        model and is read for its sentence-transformers files."""
        directory = None if source is None else model_directory(source)
        name = "a BertModel" if source is None else str(source)
        return cls(report, page_data(model, report, trace, name=name, directory=directory))

    def __repr__(self) -> str:
        return f"Explanation({self.report['text']!r}, {len(self.report['tokens'])} tokens, {self.data['name']})"


def model_directory(path_or_id) -> Path | None:
    """The local directory of a model given by path or hub id (after from_pretrained has fetched it), else None."""
    try:
        return resolve_model_dir(path_or_id, local_files_only=True)
    except (CheckpointError, InputError, OSError):
        return None


def explain(text: str, model, tokenizer=None, *, pair: str | None = None, dtype=np.float32) -> Explanation:
    """Explain the pooled output of `text` (and `pair`) with one traced forward pass: `model` is a model directory,
    a hub id, or a loaded BertModel (then pass its `tokenizer`). The result renders itself in Jupyter; `.save(path)`
    writes the page."""
    if not isinstance(text, str) or not text.strip():
        raise InputError(f"explain: text must be a non-empty string, found {text!r}")
    source = None
    if not isinstance(model, BertModel):
        if not isinstance(model, str | os.PathLike):
            raise InputError(
                f"explain: model must be a model directory, a hub id or a BertModel, found {type(model).__name__}"
            )
        source = model
        model = BertModel.from_pretrained(source, dtype=dtype)
        tokenizer = tokenizer if tokenizer is not None else Tokenizer.from_pretrained(source)
    elif tokenizer is None:
        raise InputError("explain: with a loaded BertModel, pass its tokenizer too (or pass a model directory)")
    report, trace = pooler_report(model, tokenizer, text, pair)
    return Explanation.of(model, report, trace, source=source)
