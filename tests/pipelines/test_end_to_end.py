"""A real run on the built-in digits: validate untrained, train a few epochs, validate the checkpoint."""

from __future__ import annotations

import csv

import pytest
import torch

from oml_fast.pipelines import load_config, predict, train, validate


def _on_cpu(digits_root, tmp_path, *more: str) -> list[str]:
    """Overrides of train_digits for a quick CPU run in ``tmp_path``."""
    base = [f"dataset_root={digits_root}", f"logs_root={tmp_path}", "accelerator=cpu", "progress_bar=false"]
    return [*base, "valid_period=1", *more]


@pytest.mark.slow
def test_training_beats_untrained_and_writes_outputs(digits_root, tmp_path):
    overrides = _on_cpu(digits_root, tmp_path, "max_epochs=3", "n_worst_queries=2", "n_retrieved_to_show=3")
    untrained = validate(
        load_config("train_digits", [*overrides, "logs_folder=untrained", "allow_untrained=true"])
    )
    trained_run = train(load_config("train_digits", [*overrides, "logs_folder=train"]))
    ckpt = trained_run.best_checkpoint
    trained = validate(load_config("train_digits", [*overrides, "logs_folder=trained", f"checkpoint={ckpt}"]))

    before, after = untrained.flat_metrics["OVERALL/cmc/1"], trained.flat_metrics["OVERALL/cmc/1"]
    assert after > before, (before, after)
    # The validation of the best checkpoint reproduces the metric it was chosen by.
    assert trained.flat_metrics["OVERALL/cmc/1"] == pytest.approx(trained_run.best_score, abs=1e-6)
    assert {"OVERALL/precision/5", "OVERALL/map/5"} <= set(trained.flat_metrics)

    assert ckpt is not None and ckpt.is_file() and trained_run.last_checkpoint.is_file()
    assert "model.head.weight" in torch.load(ckpt, map_location="cpu", weights_only=False)["state_dict"]
    rows = list(csv.DictReader(open(trained_run.run_dir / "csv" / "metrics.csv")))
    assert sum(1 for r in rows if r.get("OVERALL/cmc/1")) == 3  # one validation per epoch
    assert any(r.get("loss_epoch") for r in rows)
    assert list((trained_run.run_dir / "tensorboard").glob("events.out.tfevents.*"))
    pngs = sorted((trained_run.run_dir / "images").glob("*.png"))
    assert len(pngs) == 3 and all(p.stat().st_size > 1000 for p in pngs)
    assert (trained.run_dir / "images" / "validation_worst_queries.png").is_file()

    # predict with the trained weights: one embedding per image, equal to what validation saw.
    save_path = predict(
        load_config(
            "train_digits",
            [
                *overrides,
                f"checkpoint={ckpt}",
                f"data_dir={digits_root / 'images' / '9'}",
                f"save_path={tmp_path / 'e.pt'}",
                f"save_dir={tmp_path}",
            ],
        )
    )
    assert save_path == tmp_path / "predictions.json"
    saved = torch.load(tmp_path / "e.pt")
    n_nines = len(list((digits_root / "images" / "9").glob("*.png")))
    assert saved["embeddings"].shape == (n_nines, 64) and len(saved["paths"]) == n_nines


def _weights(path):
    return torch.load(path, map_location="cpu", weights_only=False)["state_dict"]


@pytest.mark.slow
@pytest.mark.parametrize("num_workers", [0, 2])
def test_resume_continues_as_the_uninterrupted_run(digits_root, tmp_path, num_workers):
    # Batches and augmentations of an epoch depend on `seed + epoch` only (in the loader's workers too):
    # 2 epochs in one go, or 1 epoch then `checkpoint=last` with max_epochs=2, end with the same weights.
    overrides = _on_cpu(
        digits_root, tmp_path, "log_images=false", "~scheduling", "logger=csv", f"num_workers={num_workers}"
    )
    whole = train("train_digits", [*overrides, "max_epochs=2", "logs_folder=whole"])
    train("train_digits", [*overrides, "max_epochs=1", "logs_folder=parts"])
    resumed = train("train_digits", [*overrides, "max_epochs=2", "logs_folder=parts", "checkpoint=last"])
    a, b = _weights(whole.last_checkpoint), _weights(resumed.last_checkpoint)
    assert a.keys() == b.keys()
    for key in a:
        assert torch.allclose(a[key], b[key], atol=1e-6), key
    assert torch.load(resumed.last_checkpoint, map_location="cpu", weights_only=False)["epoch"] == 1
    assert not list(tmp_path.rglob("*.partial"))  # checkpoints are written to a temporary file, then renamed


def test_resume_without_a_run_to_resume(digits_root, tmp_path):
    with pytest.raises(FileNotFoundError, match="checkpoint=last: no .*last.ckpt to resume from"):
        train(
            "train_digits",
            [f"dataset_root={digits_root}", f"logs_root={tmp_path}", "logs_folder=x", "checkpoint=last"],
        )


def test_arcface_config_of_oml_trains_with_the_runs_sizes(digits_root, tmp_path):
    # criterion/arcface.yaml holds OML's example sizes (in_features 384, num_classes 3985): the run replaces
    # them by the small CNN's feat_dim and the number of training digits, with warnings naming the keys.
    overrides = _on_cpu(digits_root, tmp_path, "max_epochs=1", "criterion=arcface", "logs_folder=arcface")
    with pytest.warns(UserWarning) as caught:
        run = train("train_digits", overrides)
    messages = [str(w.message) for w in caught]
    assert any("`criterion.args.in_features` = 384 is not the extractor's feat_dim" in m for m in messages)
    assert any("`criterion.args.num_classes` = 3985 is not the number of labels" in m for m in messages)
    assert not any("label2category" in m for m in messages)
    criterion = torch.load(run.last_checkpoint, map_location="cpu", weights_only=False)["state_dict"]
    weight = next(v for k, v in criterion.items() if k.endswith("weight") and "criterion" in k)
    assert weight.shape[0] == 6 and weight.shape[1] != 384  # six training digits
    assert 0 <= run.best_score <= 1
