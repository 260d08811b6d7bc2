"""What the embedding job is asked to do to each row beyond the model, as SentenceEncoder.encode does it: a prompt in
front of each text, then truncate_dim, normalize, precision. Checked and resolved once, at the job's door (the prompt
name becomes the prompt's text), recorded in the manifest, and part of the run's identity: a resume with other
settings is refused, never mixed in.
"""

from pathlib import Path

import numpy as np

from ..errors import InputError
from ..inputs import check_truncate_dim
from ..pooling import normalize as l2_normalize
from ..quantize import PRECISIONS, quantize_embeddings
from ..sentence import SentenceEncoder, read_sentence_config
from ..st_config import resolve_prompt

# The defaults: no prompt (but the model's default prompt, if it names one), the model's rows as they are.
DEFAULTS = {"prompt": None, "normalize": False, "precision": "float32", "truncate_dim": None}
# Row-wise precisions only: int8 and uint8 take their buckets from the whole set of embeddings (quantize_embeddings'
# calibration ranges), which a job that writes each partition as it goes does not have.
JOB_PRECISIONS = ("float32", "binary", "ubinary")


def resolve_settings(
    model_dir: Path, prompt_name=None, prompt=None, normalize=False, precision="float32", truncate_dim=None
) -> dict:
    """The settings of a run on `model_dir`, checked, the prompt resolved to its text as encode resolves it."""
    if precision not in PRECISIONS:
        raise InputError(f"precision must be one of {list(JOB_PRECISIONS)}, found {precision!r}")
    if precision not in JOB_PRECISIONS:
        raise InputError(
            f"precision {precision!r} takes its buckets from all the embeddings at once, which the job, writing each "
            f"partition as it goes, does not have; the job writes {list(JOB_PRECISIONS)}.",
            fix="Embed in float32, then minibert.quantize_embeddings(read_embeddings(output), "
            f"{precision!r}) (with calibration_embeddings= for a corpus of representative rows)",
            cli_fix="Embed with --precision float32, then quantize in Python: "
            f"minibert.quantize_embeddings(minibert.read_embeddings(OUTPUT), {precision!r})",
        )
    if not isinstance(normalize, bool):
        raise InputError(f"normalize must be true or false, found {normalize!r}")
    if truncate_dim is not None:
        check_truncate_dim(truncate_dim, "embed")
    config = read_sentence_config(model_dir).settings
    prompts = {**SentenceEncoder.DEFAULT_PROMPTS, **config.prompts}
    text = resolve_prompt(prompts, config.default_prompt_name, prompt, prompt_name, "embed")
    return {"prompt": text or None, "normalize": normalize, "precision": precision, "truncate_dim": truncate_dim}


def prompted(texts: list[str], settings: dict) -> list[str]:
    """The texts as the model reads them: the prompt in front of each."""
    prompt = settings.get("prompt")
    return [prompt + text for text in texts] if prompt else texts


def finish_rows(embeddings: np.ndarray, settings: dict) -> np.ndarray:
    """truncate_dim, then normalize, then a binary precision, as encode orders them: float32 [N, D'] (a packed
    binary row's bytes are stored as float32 numbers, exactly, so that a bad line can still be a row of NaN;
    `read_embeddings(output).astype(np.int8)` (binary) or `np.uint8` (ubinary) gives quantize_embeddings' array)."""
    if settings.get("truncate_dim") is not None:
        embeddings = embeddings[:, : settings["truncate_dim"]]
    if settings.get("normalize"):
        embeddings = l2_normalize(embeddings)
    if settings.get("precision", "float32") != "float32" and len(embeddings):
        embeddings = quantize_embeddings(embeddings, settings["precision"])
    return embeddings.astype(np.float32, copy=False)


def output_dim(dim: int, settings: dict) -> int:
    """The width of a row the job writes, for a model of width `dim`."""
    if settings.get("truncate_dim") is not None:
        dim = min(dim, settings["truncate_dim"])
    return (dim + 7) // 8 if settings.get("precision", "float32").endswith("binary") else dim
