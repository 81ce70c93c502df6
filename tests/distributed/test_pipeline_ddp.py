"""A real Lightning DDP run (2 CPU processes, gloo) of the training pipeline on the digits, through the CLI.

Lightning starts the second rank by re-running the command, as it does for users; the validation of
the DDP run (each rank embeds half of the set, the metrics are gathered) must equal a single-process
validation of the saved weights.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from oml_fast.datasets import make_digits_dataset
from oml_fast.pipelines import load_config, validate

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_ddp_training_on_two_cpu_processes(tmp_path):
    digits_root = tmp_path / "digits"
    make_digits_dataset(digits_root)
    logs_root = tmp_path / "runs"
    common = [
        f"dataset_root={digits_root}",
        f"logs_root={logs_root}",
        "accelerator=cpu",
        "progress_bar=false",
        "logger=null",
        # 6 train labels / 2 per batch: 3 batches per epoch, so 2 per rank (one padded) under DDP
        "sampler.args.n_labels=2",
        "sampler.args.n_instances=8",
        "max_epochs=1",
        "valid_period=1",
        "scheduling=null",
        "n_worst_queries=2",
        "n_retrieved_to_show=3",
    ]
    env = {
        **os.environ,
        "PYTHONPATH": f"{REPO_ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
        "OMP_NUM_THREADS": "1",
    }
    command = [sys.executable, "-m", "oml_fast.pipelines.cli", "train", "train_digits", *common]
    completed = subprocess.run(
        [*command, "devices=2", "strategy=ddp"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-5000:]
    assert completed.stdout.count("best checkpoint:") == 1  # the console summary is printed by rank 0 only

    # Both ranks wrote into one run folder (the time-stamped name is shared with the started rank).
    run_dirs = [p for p in logs_root.iterdir() if p.is_dir()]
    assert len(run_dirs) == 1, run_dirs
    run_dir = run_dirs[0]
    ddp_metrics = json.loads((run_dir / "metrics.json").read_text())
    last = run_dir / "checkpoints" / "last.ckpt"
    checkpoint = torch.load(last, map_location="cpu", weights_only=False)
    # Each rank ran ceil(3 / 2) = 2 optimizer steps: whole batches, equal counts per rank.
    assert checkpoint["global_step"] == math.ceil(3 / 2)
    assert len(list((run_dir / "images").glob("*.png"))) == 1  # rank 0 only

    single = validate(
        load_config(
            "train_digits",
            [*common, "devices=1", "logs_folder=single", f"checkpoint={last}", "log_images=false"],
        )
    )
    assert set(single.flat_metrics) == set(ddp_metrics)
    for key, value in single.flat_metrics.items():
        assert ddp_metrics[key] == pytest.approx(value, abs=1e-6), key
