"""minibert: BERT's forward pass in NumPy, on real checkpoints, matching transformers."""

from .config import BertConfig
from .cross_encoder import CrossEncoder
from .embed import embed_file, read_embeddings
from .errors import CheckpointError, ConfigError, InputError, MinibertError
from .explainer import Explanation, explain
from .heads import BertForMaskedLM, BertForSequenceClassification, fill_mask
from .model import BertModelOutput
from .pretrained import BertModel
from .quantize import quantize_embeddings
from .sentence import SentenceEncoder, SentenceTransformer
from .similarity import cosine_similarity
from .sparse_encoder import SparseEncoder
from .tokenizer import Tokenizer
from .trace import Trace

# The one place the version is written: pyproject.toml reads it from here (dynamic), so the installed metadata of the
# minibert-numpy distribution, `minibert --version` and a checkout that was never installed all agree.
__version__ = "0.1.0"

__all__ = [
    "BertConfig",
    "BertForMaskedLM",
    "BertForSequenceClassification",
    "BertModel",
    "BertModelOutput",
    "CheckpointError",
    "CrossEncoder",
    "ConfigError",
    "Explanation",
    "InputError",
    "MinibertError",
    "SentenceEncoder",
    "SentenceTransformer",
    "SparseEncoder",
    "Tokenizer",
    "Trace",
    "cosine_similarity",
    "explain",
    "fill_mask",
    "embed_file",
    "quantize_embeddings",
    "read_embeddings",
]
