"""The core install (``torch``, ``numpy``, ``tqdm``; no extras) validates embeddings.

A fresh interpreter hides the packages of the ``pipeline`` extra (pandas, lightning, omegaconf,
matplotlib, pillow, scikit-learn, tensorboard) behind a meta-path finder, as if they were not installed,
and runs what a user of the core install runs: ``EmbeddingMetrics`` and ``RetrievalResults`` on the
digits embeddings computed here. The metrics must equal those of this process (extras installed), no
extra may have been imported, and what needs an extra must say which one.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from sklearn.datasets import load_digits

from oml_fast.datasets import InMemoryQueryGalleryDataset
from oml_fast.metrics import EmbeddingMetrics

ROOT = Path(__file__).resolve().parents[1]
EXTRAS = [
    "pandas",
    "lightning",
    "pytorch_lightning",
    "omegaconf",
    "matplotlib",
    "PIL",
    "sklearn",
    "tensorboard",
]

SCRIPT = textwrap.dedent(
    """
    import importlib.abc, json, sys

    BLOCKED = set(sys.argv[2].split(","))

    class HideExtras(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None

    sys.meta_path.insert(0, HideExtras())

    import torch
    from oml_fast.datasets import InMemoryQueryGalleryDataset
    from oml_fast.errors import MissingExtraError
    from oml_fast.metrics import EmbeddingMetrics
    from oml_fast.retrieval import RetrievalResults

    import numpy as np

    class Drawable(InMemoryQueryGalleryDataset):
        def visualize(self, item, color):
            return np.zeros((8, 8, 3), np.uint8)

    data = torch.load(sys.argv[1])
    dataset = Drawable(labels=data["labels"], sequences=data["sequences"])
    calc = EmbeddingMetrics(dataset, cmc_top_k=(1, 5), map_top_k=(5,), verbose=False)
    calc.setup()
    calc.update(data["embeddings"], list(range(len(data["labels"]))))
    metrics = calc.compute_metrics()["OVERALL"]
    rr = RetrievalResults.from_embeddings(data["embeddings"], dataset, n_items=3)

    errors = {}
    attempts = {
        "image_dataset": lambda: __import__("oml_fast.datasets", fromlist=["x"]).ImageLabeledDataset,
        "visualize": lambda: rr.visualize(query_ids=[0], dataset=dataset, n_galleries_to_show=2),
        "transforms": lambda: __import__("oml_fast.transforms"),
        "loggers": lambda: __import__("oml_fast.interfaces.loggers"),
    }
    for name, attempt in attempts.items():
        try:
            attempt()
            errors[name] = "no error"
        except MissingExtraError as error:
            errors[name] = str(error)

    print(json.dumps({
        "metrics": {f"{m}/{k}": float(v) for m, values in metrics.items() for k, v in values.items()},
        "n_lists": len(rr.retrieved_ids),
        "imported_extras": sorted({m.split(".")[0] for m in sys.modules} & BLOCKED),
        "errors": errors,
    }))
    """
)


@pytest.mark.slow  # a fresh interpreter importing torch: seconds
def test_core_install_validates_and_names_the_missing_extra(tmp_path: Path) -> None:
    digits = load_digits()
    embeddings = torch.tensor(digits.data[:400], dtype=torch.float32)
    labels = digits.target[:400].tolist()
    sequences = [i // 3 for i in range(400)]  # exclusions by sequence, factorised without pandas
    torch.save({"embeddings": embeddings, "labels": labels, "sequences": sequences}, tmp_path / "digits.pt")

    completed = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path / "digits.pt"), ",".join(EXTRAS)],
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    report = json.loads(completed.stdout.strip().splitlines()[-1])

    assert report["imported_extras"] == []
    assert report["n_lists"] == 400
    for name, message in report["errors"].items():
        assert "pip install 'oml_fast[pipeline]'" in message, (name, message)

    here = EmbeddingMetrics(
        InMemoryQueryGalleryDataset(labels=labels, sequences=sequences),
        cmc_top_k=(1, 5),
        map_top_k=(5,),
        verbose=False,
    )
    here.setup()
    here.update(embeddings, list(range(400)))
    expected = {
        f"{m}/{k}": float(v)
        for m, values in here.compute_metrics()["OVERALL"].items()
        for k, v in values.items()
    }
    assert report["metrics"] == expected
