"""Readers of weight files, one module per format, each turning one file (or one set of shards) into tensors.

    safetensors.py     model.safetensors and its sharded index (Hugging Face)
    torch_pickle.py    pytorch_model.bin, read without torch and without unpickling code
    tf_checkpoint.py   a TensorFlow checkpoint's index and data shards (Google's bert_model.ckpt), read without TF
    saved_model.py     a TensorFlow SavedModel's saved_model.pb (graph, signatures, object graph), read without TF
    dtypes.py          the dtype conversions they share (bfloat16)

Every file here is untrusted input: sizes and counts are checked before anything is allocated. A reader returns
{name as the file spells it: array} and knows nothing of BERT; checkpoint.py maps the names and checks them against
the config. A new format is one module here, one name in model_files.WEIGHT_FILES and one reader in
checkpoint.READERS.
"""
