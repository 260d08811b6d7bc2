"""What a client may send, checked: each route's JSON body -> a request object, or a RequestError that names the field.

The shapes follow their sources field for field:
- OpenAI's `POST /v1/embeddings` (openai-python's `EmbeddingCreateParams`): `input` a string or a list of strings,
  `model`, `encoding_format` "float" or "base64", `dimensions`, `user`. Token-id inputs (lists of integers) are refused:
  this server reads text.
- TEI's `POST /embed`, `/rerank` and `/embed_sparse` (text-embeddings-inference, router/src/http/types.rs:
  `EmbedRequest`, `RerankRequest`, `EmbedSparseRequest`): `inputs`, `truncate` (null means the server's
  `--auto-truncate`), `truncation_direction` ("right" only here), `prompt_name`, `normalize` (default true),
  `dimensions`; `query`, `texts`, `raw_scores`, `return_text`, and `top_k` (not TEI's: Cohere's and infinity's
  rerank APIs have it, and sentence-transformers' `CrossEncoder.rank`).
Unknown fields are ignored, as both sources do. No web framework is imported here: these are pure functions of the
decoded JSON, so they are tested without a server.
"""

from dataclasses import dataclass

# TEI's error types (router/src/lib.rs, `ErrorType`) and the status each maps to (router/src/http/server.rs,
# `impl From<&ErrorType> for StatusCode`); "auth" and "too_large" are this server's own.
STATUS = {
    "empty": 400,
    "validation": 422,
    "tokenizer": 422,
    "too_large": 413,
    "auth": 401,
    "not_found": 404,
    "overloaded": 429,
    "backend": 424,
    "unhealthy": 503,
}


class RequestError(Exception):
    """A request the server refuses: `kind` (a TEI error type) sets the status; `param` names the field at fault."""

    def __init__(self, kind: str, message: str, *, param: str | None = None, status: int | None = None):
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.param = param
        self.status = status or STATUS[kind]


@dataclass(frozen=True)
class Limits:
    """The server's per-request limits (the `minibert serve` flags of the same names)."""

    max_texts: int  # texts in one request (TEI's --max-client-batch-size)
    auto_truncate: bool  # what TEI's `truncate: null` means (TEI's --auto-truncate)


@dataclass(frozen=True)
class EmbedRequest:
    """One embedding request, from either API."""

    texts: list[str]
    truncate: bool  # cut a text over the model's maximum length, or refuse it
    normalize: bool | None  # None: as the model does (OpenAI route); True/False: TEI's `normalize`
    prompt_name: str | None
    dimensions: int | None  # keep the first `dimensions` values (sentence-transformers' truncate_dim)
    encoding_format: str = "float"  # OpenAI only: "float" or "base64"
    model: str | None = None  # OpenAI only: echoed in the response


@dataclass(frozen=True)
class RerankRequest:
    query: str
    texts: list[str]
    truncate: bool
    raw_scores: bool  # the logits, without the model's activation (TEI: sigmoid unless raw_scores)
    return_text: bool
    top_k: int | None


@dataclass(frozen=True)
class SparseRequest:
    texts: list[str]
    truncate: bool
    prompt_name: str | None


def _describe(value) -> str:
    """A JSON value's type, as a client wrote it, for a message: 'a number', 'null', ..."""
    names = {bool: "a boolean", int: "a number", float: "a number", str: "a string", list: "a list", dict: "an object"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


def _texts(body: dict, field: str, limits: Limits, *, allow_empty_string: bool) -> list[str]:
    """A string or a non-empty list of strings, at most limits.max_texts of them."""
    if field not in body:
        raise RequestError("validation", f"missing field `{field}`: a string or a list of strings", param=field)
    value = body[field]
    texts = [value] if isinstance(value, str) else value
    if not isinstance(texts, list):
        raise RequestError(
            "validation", f"`{field}` must be a string or a list of strings, found {_describe(value)}", param=field
        )
    if not texts:
        raise RequestError("empty", f"`{field}` cannot be empty", param=field)
    if len(texts) > limits.max_texts:
        raise RequestError(
            "validation",
            f"batch size {len(texts)} > maximum allowed batch size {limits.max_texts}: send at most "
            f"{limits.max_texts} texts per request (--max-texts)",
            param=field,
        )
    for i, text in enumerate(texts):
        if isinstance(text, int | list) and not isinstance(text, bool):
            raise RequestError(
                "validation", f"`{field}[{i}]` is {_describe(text)}: token ids are not accepted, send text", param=field
            )
        if not isinstance(text, str):
            raise RequestError("validation", f"`{field}[{i}]` must be a string, found {_describe(text)}", param=field)
        if not text and not allow_empty_string:
            raise RequestError("validation", f"`{field}[{i}]` is an empty string; send some text", param=field)
    return texts


def _optional(body: dict, field: str, kind: type, default):
    """body[field] if present and not null, checked to be of `kind` (bool is not an int here)."""
    value = body.get(field)
    if value is None:
        return default
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        expected = {bool: "true or false", int: "a whole number", str: "a string"}[kind]
        raise RequestError("validation", f"`{field}` must be {expected}, found {_describe(value)}", param=field)
    return value


def _dimensions(body: dict) -> int | None:
    dimensions = _optional(body, "dimensions", int, None)
    if dimensions is not None and dimensions < 1:
        raise RequestError("validation", f"`dimensions` must be positive, found {dimensions}", param="dimensions")
    return dimensions


def _truncate(body: dict, limits: Limits) -> bool:
    direction = _optional(body, "truncation_direction", str, "right")
    if direction.lower() != "right":
        raise RequestError(
            "validation",
            f'`truncation_direction` {direction!r} is not supported: this server cuts the end of a text ("right")',
            param="truncation_direction",
        )
    return _optional(body, "truncate", bool, limits.auto_truncate)


def _object(body) -> dict:
    if not isinstance(body, dict):
        raise RequestError("validation", f"the request body must be a JSON object, found {_describe(body)}")
    return body


def parse_openai_embeddings(body, limits: Limits) -> EmbedRequest:
    """OpenAI's embeddings request. OpenAI refuses an empty string; a text over the model's maximum length is
    refused unless the server runs with --auto-truncate (OpenAI refuses it too)."""
    body = _object(body)
    texts = _texts(body, "input", limits, allow_empty_string=False)
    encoding_format = _optional(body, "encoding_format", str, "float")
    if encoding_format not in ("float", "base64"):
        raise RequestError(
            "validation",
            f"`encoding_format` must be 'float' or 'base64', found {encoding_format!r}",
            param="encoding_format",
        )
    return EmbedRequest(
        texts=texts,
        truncate=limits.auto_truncate,
        normalize=None,
        prompt_name=None,
        dimensions=_dimensions(body),
        encoding_format=encoding_format,
        model=_optional(body, "model", str, None),
    )


def parse_tei_embed(body, limits: Limits) -> EmbedRequest:
    """TEI's `/embed` request: `normalize` defaults to true, as in TEI."""
    body = _object(body)
    return EmbedRequest(
        texts=_texts(body, "inputs", limits, allow_empty_string=True),
        truncate=_truncate(body, limits),
        normalize=_optional(body, "normalize", bool, True),
        prompt_name=_optional(body, "prompt_name", str, None),
        dimensions=_dimensions(body),
    )


def parse_tei_rerank(body, limits: Limits) -> RerankRequest:
    body = _object(body)
    if not isinstance(body.get("query"), str):
        found = "missing" if "query" not in body else _describe(body["query"])
        raise RequestError("validation", f"`query` must be a string, found {found}", param="query")
    top_k = _optional(body, "top_k", int, None)
    if top_k is not None and top_k < 1:
        raise RequestError("validation", f"`top_k` must be positive, found {top_k}", param="top_k")
    return RerankRequest(
        query=body["query"],
        texts=_texts(body, "texts", limits, allow_empty_string=True),
        truncate=_truncate(body, limits),
        raw_scores=_optional(body, "raw_scores", bool, False),
        return_text=_optional(body, "return_text", bool, False),
        top_k=top_k,
    )


def parse_tei_embed_sparse(body, limits: Limits) -> SparseRequest:
    body = _object(body)
    return SparseRequest(
        texts=_texts(body, "inputs", limits, allow_empty_string=True),
        truncate=_truncate(body, limits),
        prompt_name=_optional(body, "prompt_name", str, None),
    )
