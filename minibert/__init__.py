"""minibert: BERT's forward pass in NumPy, on real checkpoints, matching transformers."""

from .config import BertConfig
from .embed import embed_file, read_embeddings
from .errors import CheckpointError, ConfigError, InputError, MinibertError
from .model import BertModel, BertModelOutput
from .sentence import SentenceEncoder, cosine_similarity
from .tokenizer import Tokenizer
from .trace import Trace

__all__ = [
    "BertConfig",
    "BertModel",
    "BertModelOutput",
    "CheckpointError",
    "ConfigError",
    "InputError",
    "MinibertError",
    "SentenceEncoder",
    "Tokenizer",
    "Trace",
    "cosine_similarity",
    "embed_file",
    "read_embeddings",
]
