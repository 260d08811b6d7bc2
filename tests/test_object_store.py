"""The embedding job writing to an object store: `--output s3://bucket/emb/` (and memory://) with the same atomic
shards and manifest as on disk, resume and read_embeddings from the URL, and a Dask worker killed mid-run.

The S3 server is moto's, started here on 127.0.0.1 at a free port (no other address is contacted: the endpoint,
dummy credentials and no instance metadata are set in the environment, which the Dask workers inherit).
"""

import json
import os
import socket

import numpy as np
import pytest
from support.embed_corpus import write_lines
from support.helpers import kill_a_busy_worker
from test_embed import TINY_LINES, Interrupted, interrupt_after
from test_sentence import tiny_sentence_repo

from minibert import InputError, embed_file, read_embeddings
from minibert.cli import main
from minibert.embed import cluster as embed_cluster
from minibert.embed import job as embed_job
from minibert.embed import read_manifest
from minibert.embed.store import write_atomically

fsspec = pytest.importorskip("fsspec")
pytest.importorskip("s3fs")
moto_server = pytest.importorskip("moto.server")

BUCKET = "minibert-test"
# Batches and BLAS threads differ between runs (batch_size, one thread per Dask worker); float32 sums may move by an
# ulp or so. The bound the job promises, as in test_embed.py.
EMBED_TOL = 1e-6
TIMEOUTS = {"connect_timeout": 5, "read_timeout": 60, "retries": {"max_attempts": 2}}  # bounded, even if moto hangs
LINES = [f"{TINY_LINES[i % len(TINY_LINES)]} {i}" for i in range(400)]  # ~9 KB
PARTITION_SIZE = 1024  # bytes: ~9 partitions, so that runs cross many shard boundaries


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def s3():
    """A moto S3 server on loopback, with one bucket; fsspec's s3:// pointed at it, in this process and in the
    environment that the Dask workers started below inherit."""
    port = free_port()
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    options = {"endpoint_url": endpoint, "config_kwargs": TIMEOUTS}
    env = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",  # never ask 169.254.169.254 for credentials
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "FSSPEC_S3": json.dumps(options),  # read by fsspec when it is imported: in the Dask workers
    }
    with pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        patch.setitem(fsspec.config.conf, "s3", options)  # this process imported fsspec already
        fs = fsspec.filesystem("s3", skip_instance_cache=True, **options)
        fs.mkdir(BUCKET)
        yield fs
    server.stop()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return tiny_sentence_repo(tmp_path_factory.mktemp("tiny") / "st")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return write_lines(tmp_path_factory.mktemp("corpus") / "corpus.txt", LINES)


@pytest.fixture(scope="module")
def local(corpus, tiny, tmp_path_factory):
    """The same job written to a local directory: what every object-store run is compared with."""
    out = tmp_path_factory.mktemp("local") / "out"
    embed_file(corpus, out, tiny, partition_size=PARTITION_SIZE, progress=False)
    return read_embeddings(out)


def shard_line_numbers(url) -> np.ndarray:
    fs, path = fsspec.core.url_to_fs(url)
    parts = []
    for partition in read_manifest(url)["partitions"]:
        with fs.open(f"{path}/{partition['shard']}", "rb") as f, np.load(f) as shard:
            parts.append(shard["lines"])
    return np.concatenate(parts)


@pytest.mark.parametrize("where", ["s3", "memory"])
def test_an_interrupted_run_to_a_url_resumes_and_reads_back_equal_to_a_local_run(s3, corpus, tiny, local, where):
    url = f"s3://{BUCKET}/resume/" if where == "s3" else "memory://minibert-resume/emb/"
    with pytest.raises(Interrupted):
        embed_file(
            corpus, url, tiny, partition_size=PARTITION_SIZE, progress=False, on_partition_done=interrupt_after(5)
        )
    with pytest.raises(InputError, match="has not finished"):
        read_embeddings(url)
    report = embed_file(corpus, url, tiny, partition_size=PARTITION_SIZE, progress=False)
    partitions = read_manifest(url)["partitions"]
    assert report.skipped == [0, 1, 2, 3, 4] and report.computed == list(range(5, len(partitions)))
    assert report.output == url.rstrip("/")
    np.testing.assert_array_equal(shard_line_numbers(url), np.arange(1, len(LINES) + 1))
    assert float(np.abs(read_embeddings(url) - local).max()) <= EMBED_TOL
    fs, path = fsspec.core.url_to_fs(url)
    assert sorted(name.rsplit("/", 1)[1] for name in fs.ls(path, detail=False)) == ["manifest.json"] + [
        p["shard"] for p in partitions
    ], "no temporary objects: every object is put whole, once"


@pytest.mark.parametrize("where", ["s3", "memory"])
def test_a_write_that_fails_midway_leaves_no_object(s3, where):
    url = f"s3://{BUCKET}/atomic/part-00000.npz" if where == "s3" else "memory://minibert-atomic/part-00000.npz"

    def dies_midway(f):
        f.write(b"PK\x03\x04 half a shard")
        raise ConnectionError("the worker's network went away")

    with pytest.raises(ConnectionError):
        write_atomically(url, dies_midway)
    fs, path = fsspec.core.url_to_fs(url)
    fs.invalidate_cache()
    assert not fs.exists(path)
    write_atomically(url, lambda f: f.write(b"a whole object"))
    assert fs.cat_file(path) == b"a whole object"


def test_cli_embeds_to_s3_and_refuses_a_npy_url_and_a_missing_bucket(s3, corpus, tiny, local, capsys):
    url = f"s3://{BUCKET}/cli/"
    assert main(["embed", str(corpus), "--output", url, "--model", str(tiny), "--quiet", "--partition-size", "1K"]) == 0
    assert capsys.readouterr().out.startswith(f"s3://{BUCKET}/cli: 400 rows x 32 (float32, input order)")
    assert float(np.abs(read_embeddings(url) - local).max()) <= EMBED_TOL
    assert main(["embed", str(corpus), "--output", url, "--model", str(tiny), "--quiet"]) == 0
    assert "already complete, nothing embedded" in capsys.readouterr().out

    assert main(["embed", str(corpus), "--output", f"s3://{BUCKET}/emb.npy", "--model", str(tiny)]) == 2
    assert f"s3://{BUCKET}/emb.npy: a .npy output is a local file; at a URL pass a directory" in capsys.readouterr().err
    assert main(["embed", str(corpus), "--output", "s3://no-such-bucket/emb/", "--model", str(tiny), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "s3://no-such-bucket/emb/manifest.json: cannot write there" in err


@pytest.fixture
def environment_kept():
    """Dask's nanny sets its workers' variables (OMP_NUM_THREADS=1, ...) in this process: put back as they were after
    the test, so that the processes later tests start do not inherit them."""
    with embed_cluster.environment_kept():
        yield


def test_a_killed_worker_writing_to_s3_loses_and_duplicates_no_line(
    s3, corpus, tiny, local, monkeypatch, environment_kept
):
    distributed = pytest.importorskip("distributed")
    monkeypatch.setattr(embed_job, "GROUP_LINES", 100)  # tasks of ~2 partitions: several in flight, one killed
    url = f"s3://{BUCKET}/cluster/"
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0")
    client = distributed.Client(cluster)
    try:

        def slow_batches():
            """In each worker: a pause per batch, so that a partition is in flight when its worker is killed (the
            tiny model alone finishes one in milliseconds). The worker started to replace the killed one is fast."""
            import time

            from minibert.sentence import SentenceEncoder

            real = SentenceEncoder._embed_encoded  # every batch, from encode or embed_batch, goes through it

            def embed_encoded(self, encoded, threads=None):
                time.sleep(0.05)
                return real(self, encoded, threads)

            SentenceEncoder._embed_encoded = embed_encoded

        client.run(slow_batches)
        kill_a_busy_worker_hook, summaries, killed = kill_a_busy_worker(client)

        report = embed_file(
            corpus,
            url,
            tiny,
            client=client,
            batch_size=2,
            partition_size=PARTITION_SIZE,
            progress=False,
            on_partition_done=kill_a_busy_worker_hook,
        )
        assert killed, "a worker was killed while it held a partition"
        partitions = len(read_manifest(url)["partitions"])
        assert sorted(s["index"] for s in summaries) == list(range(partitions)) == report.computed
        lost = killed["partitions"]
        assert all(s["pid"] != killed["pid"] for s in summaries if s["index"] in lost), "its partitions ran elsewhere"
        np.testing.assert_array_equal(shard_line_numbers(url), np.arange(1, len(LINES) + 1))
        assert float(np.abs(read_embeddings(url) - local).max()) <= EMBED_TOL
    finally:
        client.close()
        cluster.close()
