"""Tokenizer: text -> the [B, S] int64 arrays BertModel takes, through Hugging Face's `tokenizers` library.

A model directory's tokenizer.json is used as it is. Without one, BERT's WordPiece pipeline is assembled from
vocab.txt, tokenizer_config.json and special_tokens_map.json out of the library's own parts, the same parts
transformers' converter uses, with the special tokens ([CLS], [MASK], ...) registered whole, as transformers does:
https://github.com/huggingface/transformers/blob/v5.24.0/src/transformers/convert_slow_tokenizer.py
"""

from pathlib import Path

import numpy as np

from .errors import CheckpointError, InputError
from .hub import Need, resolve_model_dir
from .model_files import is_saved_model, read_json
from .tf_module import module_tokenizer
from .untrusted import json_kind, quote

# transformers writes int(1e30) as model_max_length when a tokenizer sets none. Any length from 2**31 on means the
# same here (no BERT has that many positions), and would overflow the tokenizers library's integers.
_NO_MAX_LENGTH = 2**31

# The parts of a tokenizer.json a BERT-architecture checkpoint has. transformers' BertConverter writes BertNormalizer,
# BertPreTokenizer, a WordPiece model, TemplateProcessing (or BertProcessing) and a WordPiece decoder; some hub files
# spell the normalizer or pre-tokenizer as a Sequence of simpler parts. Multilingual BERTs that took XLM-R's
# SentencePiece tokenizer (paraphrase-multilingual-MiniLM-L12-v2, LaBSE-like models) add a Precompiled normalizer (the
# SentencePiece model's own normalisation table), Replace, Metaspace, a Unigram model, and the XLM-R post-processor and
# decoder. Anything else is refused before the library reads the file: a Split or Replace carries its own regular
# expression, which the library runs as it is, and one of those can backtrack for a minute on a sentence or make the
# library panic; so a Replace is read only with a plain string or one of ALLOWED_PATTERNS, and Split never.
BERT_TOKENIZER_PARTS = {
    "normalizer": {
        *("BertNormalizer", "NFC", "NFD", "NFKC", "NFKD", "Lowercase", "StripAccents", "Strip", "Sequence"),
        *("Precompiled", "Replace", "Prepend"),
    },
    "pre_tokenizer": {
        *("BertPreTokenizer", "Whitespace", "WhitespaceSplit", "Punctuation", "Digits", "Sequence"),
        "Metaspace",
    },
    "model": {"WordPiece", "Unigram"},
    "post_processor": {"BertProcessing", "TemplateProcessing", "RobertaProcessing"},
    "decoder": {"WordPiece", "Metaspace", "Sequence", "Replace", "Fuse", "Strip", "ByteFallback"},
}
_SEQUENCE_ITEMS = {"normalizer": "normalizers", "pre_tokenizer": "pretokenizers", "decoder": "decoders"}
# The only regular expressions a tokenizer.json may carry (in a Replace), exactly as written in the file. Each is
# linear-time (no nested or overlapping repetition) and comes from a converter that wrote real checkpoints:
ALLOWED_PATTERNS = {
    # transformers 4's SpmConverter / XLMRobertaConverter: collapse runs of spaces, as SentencePiece's
    # remove_extra_whitespaces does (xlm-roberta-base, paraphrase-multilingual-MiniLM-L12-v2, multilingual-e5).
    " {2,}",
    # transformers 5's SpmConverter (convert_slow_tokenizer.py, build_tokenizer_from_spm_proto): spaces at the ends
    # removed, and the dummy prefix doubled when the text already starts with "▁".
    "\\A +| +\\z",
    "\\A▁",
}
_TOKEN_SETTINGS = ("unk_token", "cls_token", "sep_token", "pad_token", "mask_token")
_DEFAULT_MAX_LENGTH = 512


class Tokenizer:
    """`Tokenizer.from_pretrained(dir)(texts, text_pairs=None)` -> {"input_ids", "token_type_ids", "attention_mask"}."""

    def __init__(self, backend, model_max_length: int = _DEFAULT_MAX_LENGTH):
        self.backend = backend  # a tokenizers.Tokenizer
        self.model_max_length = model_max_length
        self.pad_token = "[PAD]"

    @classmethod
    def from_pretrained(
        cls, path, *, revision: str | None = None, cache_dir=None, local_files_only: bool = False
    ) -> "Tokenizer":
        """The tokenizer of a model directory or hub id (fetched as BertModel.from_pretrained fetches one)."""
        directory = resolve_model_dir(
            path, Need.TOKENIZER, revision=revision, cache_dir=cache_dir, local_files_only=local_files_only
        )
        return cls.from_directory(directory)

    @classmethod
    def from_directory(cls, directory: Path) -> "Tokenizer":
        """The tokenizer of a local model directory: its tokenizer.json, else vocab.txt and tokenizer_config.json."""
        from tokenizers import Tokenizer as Backend

        directory = Path(directory)
        settings = (
            read_json(directory / "tokenizer_config.json") if (directory / "tokenizer_config.json").is_file() else {}
        )
        check_tokenizer_settings(settings, directory / "tokenizer_config.json")
        if (directory / "tokenizer.json").is_file():
            check_bert_tokenizer_json(read_json(directory / "tokenizer.json"), directory / "tokenizer.json")
            try:
                backend = Backend.from_file(str(directory / "tokenizer.json"))
            except BaseException as error:  # a bare Exception for malformed files; a PanicException on a library bug
                if not isinstance(error, Exception) and not is_panic(error):
                    raise
                raise CheckpointError(
                    f"{directory / 'tokenizer.json'}: cannot be read ({quote(str(error), 300)})"
                ) from None
        elif (directory / "vocab.txt").is_file():
            settings = _with_special_tokens_map(directory / "special_tokens_map.json", settings)
            backend = _wordpiece_from_vocab(directory / "vocab.txt", settings)
        elif is_saved_model(directory):  # a TF Hub module: its asset vocab.txt, and do_lower_case as it says
            vocab, do_lower_case, positions = module_tokenizer(directory)
            settings = {"do_lower_case": do_lower_case, "model_max_length": positions, **settings}
            backend = _wordpiece_from_vocab(vocab, settings)
        else:
            raise CheckpointError(f"{directory}: no tokenizer.json or vocab.txt; a BERT tokenizer needs one of them")
        max_length = settings.get("model_max_length", _DEFAULT_MAX_LENGTH)
        if isinstance(max_length, bool) or not isinstance(max_length, int) or not 0 < max_length < _NO_MAX_LENGTH:
            max_length = _DEFAULT_MAX_LENGTH
        tokenizer = cls(backend, model_max_length=max_length)
        tokenizer.pad_token = settings.get("pad_token", "[PAD]")
        if isinstance(tokenizer.pad_token, dict):  # AddedToken serialised as a dict
            tokenizer.pad_token = tokenizer.pad_token.get("content", "[PAD]")
        return tokenizer

    def __call__(
        self,
        texts,
        text_pair=None,
        padding: bool | str = True,
        truncation: bool = True,
        max_length: int | None = None,
        return_tensors: str | None = None,
        *,
        text_pairs=None,
    ) -> dict[str, np.ndarray]:
        """Encode one text or a list of texts (and, for sentence pairs, their second texts) as [B, S] int64 arrays.

        padding=True pads to the longest row, "max_length" to max_length, False not at all (rows must then have one
        length). truncation=True cuts each row (longest text of a pair first) to max_length, by default the model's
        maximum length, as transformers does. `text_pair` is transformers' name for the second texts (`text_pairs`,
        minibert's earlier name, is kept); return_tensors may be None or "np": the arrays are always NumPy's.
        """
        if text_pair is not None and text_pairs is not None:
            raise InputError("pass the second texts once, as text_pair (or text_pairs), not both")
        text_pairs = text_pair if text_pairs is None else text_pairs
        if return_tensors not in (None, "np"):
            raise InputError(
                f"return_tensors={return_tensors!r}: minibert's tokenizer returns NumPy arrays (return_tensors='np' "
                "or None); torch and TensorFlow tensors are not made"
            )
        texts = _as_text_list("texts", texts)
        if text_pairs is not None:
            text_pairs = _as_text_list("text_pairs", text_pairs)
            if len(text_pairs) != len(texts):
                raise InputError(
                    f"text_pairs has {len(text_pairs)} texts but texts has {len(texts)}; pair them one to one"
                )
        if padding not in (True, False, "longest", "max_length", "do_not_pad"):
            raise InputError(f"padding must be True, False, 'longest' or 'max_length', found {padding!r}")
        if truncation not in (True, False, "longest_first", "do_not_truncate"):
            raise InputError(f"truncation must be True, False or 'longest_first', found {truncation!r}")
        if max_length is not None and (
            isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 2
        ):
            raise InputError(f"max_length must be an integer of at least 2 ([CLS] and [SEP]), found {max_length!r}")
        limit = self.model_max_length if max_length is None else max_length
        # The library cannot truncate below the special tokens and then silently returns longer rows.
        processor = self.backend.post_processor
        specials = processor.num_special_tokens_to_add(text_pairs is not None) if processor is not None else 0
        if truncation not in (False, "do_not_truncate") and limit < specials:
            template = "[CLS] A [SEP] B [SEP]" if text_pairs is not None else "[CLS] A [SEP]"
            raise InputError(
                f"max_length {limit} leaves no room for the {specials} special tokens of each row ({template}); "
                f"pass max_length >= {specials}"
            )

        backend = self.backend
        # The backend keeps truncation and padding as state, so each call sets both afresh. That makes one Tokenizer
        # unsafe to call from two threads at once; use one per thread (or per process, as the embed job does).
        backend.no_truncation()
        backend.no_padding()
        if truncation not in (False, "do_not_truncate"):
            backend.enable_truncation(max_length=limit, strategy="longest_first")
        if padding in (True, "longest", "max_length"):
            pad_id = backend.token_to_id(self.pad_token)
            if pad_id is None:
                raise CheckpointError(f"the tokenizer's vocabulary has no pad token {self.pad_token!r}")
            length = limit if padding == "max_length" else None
            backend.enable_padding(pad_id=pad_id, pad_token=self.pad_token, length=length)
        inputs = texts if text_pairs is None else list(zip(texts, text_pairs, strict=True))
        try:
            encodings = backend.encode_batch(inputs)
        except BaseException as error:  # PanicException derives from BaseException, and escapes `except Exception`
            if not is_panic(error):
                raise
            raise CheckpointError(f"the tokenizers library failed on these texts ({quote(str(error), 300)})") from None
        lengths = {len(e.ids) for e in encodings}
        if len(lengths) > 1:
            raise InputError("the texts encode to different lengths and padding is off; pass padding=True")

        def stack(field):
            return np.array([getattr(e, field) for e in encodings], dtype=np.int64)  # [B, S]

        return {
            "input_ids": stack("ids"),
            "token_type_ids": stack("type_ids"),
            "attention_mask": stack("attention_mask"),
        }

    def token_counts(self, texts, text_pair=None, max_length: int | None = None) -> np.ndarray:
        """[B] int64: the number of tokens of each text (or pair), special tokens included, cut to max_length when
        given (as __call__ with truncation would): what a batch of these texts costs, without padding them."""
        texts = _as_text_list("texts", texts)
        pairs = None if text_pair is None else _as_text_list("text_pair", text_pair)
        if pairs is not None and len(pairs) != len(texts):
            raise InputError(f"text_pair has {len(pairs)} texts but texts has {len(texts)}; pair them one to one")
        backend = self.backend
        backend.no_padding()
        backend.no_truncation()
        if max_length is not None:
            backend.enable_truncation(max_length=max_length, strategy="longest_first")
        inputs = texts if pairs is None else list(zip(texts, pairs, strict=True))
        return np.array([len(e.ids) for e in backend.encode_batch(inputs)], dtype=np.int64)

    def is_special_id(self, token_id) -> bool:
        """Whether `token_id` is one of the tokenizer's special tokens ([CLS], [SEP], <s>, </s>, ...)."""
        added = self.backend.get_added_tokens_decoder().get(int(token_id))
        return added is not None and added.special

    def convert_ids_to_tokens(self, ids) -> list[str]:
        return [self.backend.id_to_token(int(i)) for i in np.asarray(ids).ravel()]

    def decode(self, ids, skip_special_tokens: bool = True) -> str:
        return self.backend.decode([int(i) for i in np.asarray(ids).ravel()], skip_special_tokens=skip_special_tokens)


def is_panic(error: BaseException) -> bool:
    """True for the tokenizers library's PanicException (a Rust panic), which is not importable by name."""
    return type(error).__name__ == "PanicException"


def check_bert_tokenizer_json(document, path: Path) -> None:
    """Refuse a tokenizer.json with parts a BERT tokenizer never has (BERT_TOKENIZER_PARTS), before the library runs
    them: see the README's threat model."""
    if not isinstance(document, dict):
        raise CheckpointError(f"{path}: expected a JSON object, found {json_kind(document)}")
    for part, allowed in BERT_TOKENIZER_PARTS.items():
        pending = [document.get(part)]
        while pending:
            node = pending.pop()
            if node is None and part != "model":
                continue
            kind = node.get("type") if isinstance(node, dict) else None
            if kind not in allowed:
                raise CheckpointError(
                    f"{path}: its {part} is {quote(kind)}, which a BERT tokenizer never has (BERT's: "
                    f"{', '.join(sorted(allowed))}). minibert refuses it rather than let the tokenizers library run "
                    "it: other parts carry their own regular expressions, which can hang or crash on ordinary text"
                )
            if kind == "Replace":
                _check_replace_pattern(node.get("pattern"), path, part)
            if kind == "Sequence":
                items = node.get(_SEQUENCE_ITEMS[part])
                if not isinstance(items, list) or len(items) > 16:
                    raise CheckpointError(f"{path}: its {part} Sequence must list at most 16 parts")
                pending.extend(items)


def _check_replace_pattern(pattern, path: Path, part: str) -> None:
    """A Replace's pattern must be a plain string or exactly one of ALLOWED_PATTERNS."""
    if isinstance(pattern, dict) and len(pattern) == 1:
        if isinstance(pattern.get("String"), str):
            return
        if pattern.get("Regex") in ALLOWED_PATTERNS:
            return
    raise CheckpointError(
        f"{path}: its {part} has a Replace with the pattern {quote(pattern)}, which is not one of the regular "
        f"expressions real BERT tokenizers carry ({', '.join(repr(p) for p in sorted(ALLOWED_PATTERNS))}). minibert "
        "refuses it rather than let the tokenizers library run it: an arbitrary regular expression can backtrack "
        "for minutes on ordinary text"
    )


def check_tokenizer_settings(settings: dict, path: Path) -> None:
    """tokenizer_config.json's fields minibert reads must have the types transformers gives them."""
    for key in _TOKEN_SETTINGS:
        value = settings.get(key)
        if isinstance(value, dict):
            value = value.get("content")  # an AddedToken, serialised as a dict
        if key in settings and not isinstance(value, str):
            raise CheckpointError(f"{path}: {key} must be a string (a token), found {quote(settings[key])}")
    for key in ("do_lower_case", "tokenize_chinese_chars"):
        if key in settings and not isinstance(settings[key], bool):
            raise CheckpointError(f"{path}: {key} must be true or false, found {quote(settings[key])}")
    if settings.get("strip_accents") is not None and not isinstance(settings["strip_accents"], bool):
        raise CheckpointError(
            f"{path}: strip_accents must be true, false or null, found {quote(settings['strip_accents'])}"
        )


def _as_text_list(name: str, texts) -> list[str]:
    if isinstance(texts, str):
        texts = [texts]
    if not isinstance(texts, list | tuple) or not texts:
        raise InputError(f"{name} must be a string or a non-empty list of strings, found {type(texts).__name__}")
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            hint = "; decode bytes first, e.g. data.decode('utf-8')" if isinstance(text, bytes) else ""
            raise InputError(f"{name}[{i}] is a {type(text).__name__}, not a string{hint}")
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as error:  # a lone surrogate: the tokenizers library fails with a bare TypeError
            raise InputError(
                f"{name}[{i}] holds {text[error.start]!r} at index {error.start}, a lone surrogate that is not valid "
                "Unicode; decode the source bytes with errors='replace'"
            ) from None
    return list(texts)


# The named special tokens of transformers' tokenizers (SPECIAL_TOKENS_ATTRIBUTES), and BertTokenizer's defaults:
# https://github.com/huggingface/transformers/blob/v5.24.0/src/transformers/tokenization_utils_base.py#L995-L1003
_SPECIAL_TOKEN_DEFAULTS = {
    "bos_token": None,
    "eos_token": None,
    "unk_token": "[UNK]",
    "sep_token": "[SEP]",
    "pad_token": "[PAD]",
    "cls_token": "[CLS]",
    "mask_token": "[MASK]",
}
_ADDED_TOKEN_FIELDS = ("content", "single_word", "lstrip", "rstrip", "normalized", "special")


def _with_special_tokens_map(path: Path, settings: dict) -> dict:
    """tokenizer_config.json's settings, with special_tokens_map.json's tokens over them, as transformers merges them.

    transformers reads special_tokens_map.json only when tokenizer_config.json has no added_tokens_decoder (that list
    is then the whole record of the added tokens); additional_special_tokens is the older name of extra_special_tokens:
    https://github.com/huggingface/transformers/blob/v5.24.0/src/transformers/tokenization_utils_base.py#L1886-L1926
    """
    if "added_tokens_decoder" in settings or not path.is_file():
        return settings
    special_map = read_json(path)
    if not isinstance(special_map, dict):
        raise CheckpointError(f"{path}: expected a JSON object of special tokens, found {json_kind(special_map)}")
    merged = dict(settings)
    for key, value in special_map.items():
        if key in ("additional_special_tokens", "extra_special_tokens"):
            if not isinstance(value, list):
                raise CheckpointError(f"{path}: {key} must be a list of tokens, found {json_kind(value)}")
            extras = merged.get("extra_special_tokens", merged.get("additional_special_tokens")) or []
            merged["extra_special_tokens"] = [*extras, *(t for t in value if t not in extras)]
        else:
            merged[key] = value
    return merged


def _added_token(where: str, value, *, special: bool | None):
    """An AddedToken from its form in tokenizer_config.json or special_tokens_map.json: a string, or a dict of
    AddedToken's fields (`special` overrides the dict's flag unless it is None)."""
    from tokenizers import AddedToken

    if isinstance(value, str):
        return AddedToken(value, special=bool(special))  # a special token is matched before normalisation
    if isinstance(value, dict) and isinstance(value.get("content"), str):
        fields = {k: value[k] for k in _ADDED_TOKEN_FIELDS if k in value}
        if special is not None:
            fields["special"] = special
        return AddedToken(**fields)
    raise CheckpointError(f"{where}: expected a token string or an object with a 'content' string, found {value!r}")


def _register_added_tokens(backend, settings: dict, directory: Path) -> None:
    """Make the special and added tokens whole tokens, matched in the raw text before it is split, as transformers
    does when it builds a fast tokenizer from vocab.txt: first added_tokens_decoder in id order, then the named special
    tokens ([UNK], [SEP], [PAD], [CLS], [MASK], ...), then the extra special tokens. Without this, "[MASK]" written
    in a text would be split into "[", "mask", "]" and fill_mask would find no mask.
    https://github.com/huggingface/transformers/blob/v5.24.0/src/transformers/tokenization_utils_tokenizers.py#L478-L513
    """
    where = directory / "tokenizer_config.json"
    decoder = settings.get("added_tokens_decoder") or {}
    if not isinstance(decoder, dict):
        raise CheckpointError(f"{where}: added_tokens_decoder must map ids to tokens, found {json_kind(decoder)}")
    try:
        by_id = sorted(
            (
                (int(i), _added_token(f"{where}: added_tokens_decoder[{i}]", t, special=None))
                for i, t in decoder.items()
            ),
            key=lambda pair: pair[0],
        )
    except ValueError:
        raise CheckpointError(
            f"{where}: added_tokens_decoder's keys must be token ids, found {list(decoder)}"
        ) from None
    for expected, token in by_id:
        backend.add_tokens([token])
        if backend.token_to_id(token.content) != expected:
            raise CheckpointError(
                f"{where}: added_tokens_decoder gives {token.content!r} the id {expected}, but vocab.txt (and the "
                f"tokens before it) give it {backend.token_to_id(token.content)}; the files do not belong together"
            )
    # Named tokens: transformers' defaults, then any other "*_token" key (a model-specific special token).
    named = {key: settings.get(key, default) for key, default in _SPECIAL_TOKEN_DEFAULTS.items()}
    named.update(
        {k: v for k, v in settings.items() if k.endswith("_token") and k not in named and isinstance(v, str | dict)}
    )
    extras = settings.get("extra_special_tokens", settings.get("additional_special_tokens")) or []
    if isinstance(extras, dict):  # {name: token}, transformers' model-specific special tokens
        extras = list(extras.values())
    if not isinstance(extras, list):
        raise CheckpointError(f"{where}: extra_special_tokens must be a list of tokens, found {json_kind(extras)}")
    known = {token.content for _, token in by_id}
    for key, value in [*named.items(), *((f"extra_special_tokens[{i}]", t) for i, t in enumerate(extras))]:
        if value is None:
            continue
        token = _added_token(f"{directory}: the special token {key}", value, special=True)
        if token.content not in known:
            backend.add_special_tokens([token])
            known.add(token.content)


def _wordpiece_from_vocab(vocab_file: Path, settings: dict):
    """BERT's tokenizer from vocab.txt: clean, lower-case (strip accents), split, WordPiece, [CLS] A [SEP] B [SEP]."""
    from tokenizers import Tokenizer as Backend
    from tokenizers import decoders, models, normalizers, pre_tokenizers, processors

    def token(key, default):
        value = settings.get(key, default)
        return value.get("content", default) if isinstance(value, dict) else value

    unk, cls, sep = token("unk_token", "[UNK]"), token("cls_token", "[CLS]"), token("sep_token", "[SEP]")
    try:
        vocab = models.WordPiece.read_file(str(vocab_file))
    except Exception as error:
        raise CheckpointError(f"{vocab_file}: cannot be read as a WordPiece vocabulary ({error})") from None
    for special in (unk, cls, sep):
        if special not in vocab:
            raise CheckpointError(f"{vocab_file}: the vocabulary has no {special!r} token")
    backend = Backend(models.WordPiece(vocab, unk_token=unk, max_input_chars_per_word=100))
    lowercase = settings.get("do_lower_case", True)
    backend.normalizer = normalizers.BertNormalizer(
        clean_text=True,
        handle_chinese_chars=settings.get("tokenize_chinese_chars", True),
        strip_accents=settings.get("strip_accents"),  # None: strip when lower-casing, as BERT's basic tokenizer does
        lowercase=lowercase,
    )
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    backend.post_processor = processors.TemplateProcessing(
        single=f"{cls}:0 $A:0 {sep}:0",
        pair=f"{cls}:0 $A:0 {sep}:0 $B:1 {sep}:1",
        special_tokens=[(cls, vocab[cls]), (sep, vocab[sep])],
    )
    backend.decoder = decoders.WordPiece(prefix="##")
    _register_added_tokens(backend, settings, vocab_file.parent)
    return backend
