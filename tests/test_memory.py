"""A forward pass reuses the memory the one before it freed (memory.py), unless the user set malloc's thresholds.

Counted in page faults, not time: each run is a fresh process, so that glibc starts from its defaults.
"""

import json
import os
import platform
import subprocess
import sys

import pytest
from support.helpers import ROOT

from minibert.memory import malloc_set_by_user

pytestmark = pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc's malloc settings"
)

FORWARDS = 5
COUNT_FAULTS = f"""
import json, resource, sys
import numpy as np, minibert
from minibert import memory
model = minibert.BertModel.from_pretrained(sys.argv[1])
ids = np.random.default_rng(0).integers(1000, 20000, size=(1, 128))
for _ in range(3):
    model(ids, threads=1)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range({FORWARDS}):
    model(ids, threads=1)
faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
print(json.dumps({{"ours": memory.keep_freed_memory(), "faults": faults}}))
"""


def faults_per_forward(model_dir, **environ) -> tuple[bool, float]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_") and k != "GLIBC_TUNABLES"}
    done = subprocess.run(
        [sys.executable, "-c", COUNT_FAULTS, str(model_dir)],
        env={**env, **environ},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    return result["ours"], result["faults"] / FORWARDS


def test_a_forward_pass_reuses_the_pages_the_last_one_freed(minilm_dir):
    """MiniLM at 1x128 faulted ~1,500 pages back in per forward pass with glibc's own thresholds (~2 us each)."""
    ours, faults = faults_per_forward(minilm_dir)
    assert ours
    user_ours, user_faults = faults_per_forward(minilm_dir, MALLOC_TRIM_THRESHOLD_="131072")
    assert not user_ours, "a threshold the user set is kept"
    assert user_faults > 200 and faults * 20 < user_faults, (faults, user_faults)


def test_malloc_settings_of_the_user_are_recognised():
    assert not malloc_set_by_user({"MALLOC_ARENA_MAX": "2", "GLIBC_TUNABLES": "glibc.rtld.nns=2"})
    assert malloc_set_by_user({"MALLOC_MMAP_THRESHOLD_": "65536"})
    assert malloc_set_by_user({"GLIBC_TUNABLES": "glibc.malloc.trim_threshold=65536"})
