"""Finding a model's files: a local directory today; hub ids through huggingface_hub's own cache."""

from pathlib import Path

from .errors import CheckpointError


def resolve_model_dir(path_or_id) -> Path:
    """The local directory holding a model's config.json and weights."""
    path = Path(path_or_id).expanduser()
    if path.is_dir():
        return path
    if path.exists():
        raise CheckpointError(f"{path}: is a file; pass the directory that holds config.json and the weights")
    raise CheckpointError(
        f"{path}: no such directory; pass a model directory holding config.json and model.safetensors"
    )
