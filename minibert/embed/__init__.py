"""The corpus-scale embedding job: a text file (one text a line) or JSONL in, one float32 row per input line out.

    embed_file("corpus.txt", "out/", "path/to/all-MiniLM-L6-v2")        # in this process
    embed_file("corpus.txt", "out/", model_dir, client=dask_client)      # on a Dask cluster
    read_embeddings("out/")                                              # float32 [rows, dim], in input order

Where each concern lives:

    partitions.py   the input: its identity, line-aligned byte ranges (partitions), the texts of one partition
    store.py        the output: where its files go, shards, the manifest, the final .npy, reading them back
    identity.py     a run's identity (model, dtype, pooling, input) and the checks that keep runs apart on resume
    job.py          embed_file, a short pipeline of named steps, and embed_partitions, the task of a group of
                    partitions
    cluster.py      the Dask path: tasks on a cluster and a client to run them (Dask imported there only)

Dask (`pip install 'minibert-numpy[cluster]'`) and tqdm (`minibert-numpy[progress]`) are imported only where they
are used.
"""

from .job import EmbedInterrupted, EmbedReport, embed_file
from .partitions import plan_partitions
from .store import OutputPaths, output_paths, read_embeddings, read_manifest

__all__ = [
    "EmbedInterrupted",
    "EmbedReport",
    "OutputPaths",
    "embed_file",
    "output_paths",
    "plan_partitions",
    "read_embeddings",
    "read_manifest",
]
