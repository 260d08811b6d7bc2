"""`minibert rerank`: documents ordered by a cross-encoder's score for one query (CrossEncoder.rank)."""

import json
from types import SimpleNamespace

import numpy as np

from ..cross_encoder import CrossEncoder
from .common import add_command, check_text, positive_int
from .run import read_texts


def run(args) -> int:
    """Score every line of --input against QUERY with a cross-encoder, and print them best first."""
    query = check_text("QUERY", args.query)
    documents, _ = read_texts(SimpleNamespace(texts=[], input=args.input))
    model = CrossEncoder(args.model, dtype=np.dtype(args.dtype))
    ranked = model.rank(query, documents, top_k=args.top_k, return_documents=True, batch_size=args.batch_size)
    for result in ranked:
        result["line"] = result["corpus_id"] + 1
    if args.json:
        print(json.dumps(ranked, ensure_ascii=False, indent=1))
        return 0
    width = max([len(f"{r['score']:.4f}") for r in ranked] + [5])
    print(f"{'score':>{width}}  {'line':>5}  text")
    for r in ranked:
        print(f"{r['score']:>{width}.4f}  {r['line']:>5}  {r['text']}")
    return 0


def add_parser(commands) -> None:
    """`minibert rerank`: a query against one document a line, best first."""
    rerank = add_command(
        commands,
        "rerank",
        help="order the lines of a file by a cross-encoder's score for a query",
        description="Score each line of --input (one document a line) against QUERY with a cross-encoder (a\n"
        "BertForSequenceClassification with one label, such as cross-encoder/ms-marco-MiniLM-L6-v2), as\n"
        "sentence-transformers' CrossEncoder.rank does, and print them best first: the score (the model's\n"
        "activation, the logit for the ms-marco models), the line number and the text; --json prints\n"
        "CrossEncoder.rank's list of {corpus_id, score, text}, with the 1-based line.",
        examples=[
            "minibert rerank 'How many people live in Berlin?' --input passages.txt --model ms-marco-MiniLM-L6-v2",
            "minibert rerank 'cats' --input docs.txt --model DIR --top-k 3 --json",
        ],
        run=run,
    )
    rerank.add_argument("query", metavar="QUERY", help="the query the documents are scored against")
    rerank.add_argument("--input", required=True, metavar="FILE", help="the documents, one a line ('-': stdin)")
    rerank.add_argument(
        "--model",
        required=True,
        metavar="ID_OR_PATH",
        help="a cross-encoder: a directory or a hub id (a short name gets 'cross-encoder/' in front)",
    )
    rerank.add_argument("--top-k", type=positive_int, metavar="K", help="print only the K best (default: all)")
    rerank.add_argument("--json", action="store_true", help="print JSON: a list of {corpus_id, score, text, line}")
    rerank.add_argument("--batch-size", type=positive_int, default=32, metavar="N", help="pairs per forward pass")
    rerank.add_argument(
        "--dtype", choices=["float32", "float64"], default="float32", help="the precision of the forward pass"
    )
