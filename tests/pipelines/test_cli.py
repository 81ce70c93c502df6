"""The ``oml-fast`` command line: parsing, make-digits, check-csv, predict, and user errors (exit code 2)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from oml_fast.pipelines.cli import _parser, main


def test_parsing():
    args = _parser().parse_args(["train", "train_digits", "max_epochs=3", "extractor.args.width=8"])
    assert (args.command, args.config, args.overrides) == (
        "train",
        "train_digits",
        ["max_epochs=3", "extractor.args.width=8"],
    )
    assert _parser().parse_args(["demo"]).root == "oml_fast_demo"
    with pytest.raises(SystemExit):
        _parser().parse_args(["fly"])


def test_make_digits_and_check_csv(tmp_path, capsys):
    assert main(["make-digits", str(tmp_path / "digits"), "--train-digits", "0,1,2,3,4"]) == 0
    df = pd.read_csv(tmp_path / "digits" / "df.csv")
    assert sorted(df[df.split == "train"].label.unique().tolist()) == [0, 1, 2, 3, 4]
    assert main(["check-csv", str(tmp_path / "digits" / "df.csv")]) == 0
    assert "OK (1797 rows)" in capsys.readouterr().out
    df.loc[3, "split"] = "oops"
    df.to_csv(tmp_path / "bad.csv", index=False)
    assert main(["check-csv", str(tmp_path / "bad.csv"), "--dataset-root", str(tmp_path / "digits")]) == 2
    assert "row 3 (line 5)" in capsys.readouterr().err


def test_user_errors_exit_2(capsys):
    assert main(["train", "train_digits", "max_epoch=1"]) == 2
    assert "did you mean 'max_epochs'" in capsys.readouterr().err
    assert main(["validate", "train_digits", "extractor.name=nope"]) == 2
    assert "valid names" in capsys.readouterr().err


def test_predict_writes_one_embedding_per_image(tmp_path, capsys):
    images = tmp_path / "images"
    (images / "sub").mkdir(parents=True)
    rng = np.random.default_rng(0)
    from PIL import Image

    for i in range(5):
        Image.fromarray(rng.integers(0, 255, (8, 8), dtype=np.uint8)).save(
            images / ("sub" if i % 2 else "") / f"{i}.png"
        )
    (images / "notes.txt").write_text("not an image")
    torch.manual_seed(0)
    overrides = [
        f"data_dir={images}",
        f"save_path={tmp_path / 'emb.pt'}",
        f"save_dir={tmp_path / 'out'}",
        "allow_untrained=true",
        "extractor.args.width=4",
        "extractor.args.feat_dim=8",
        "progress_bar=false",
        "accelerator=cpu",
    ]
    assert main(["predict", "predict_digits", *overrides]) == 0
    saved = torch.load(tmp_path / "emb.pt")
    oml_format = json.loads((tmp_path / "out" / "predictions.json").read_text())  # OML's {path: embedding}
    assert sorted(oml_format) == sorted(saved["paths"])
    assert torch.allclose(torch.tensor(oml_format[saved["paths"][0]]), saved["embeddings"][0])
    assert saved["embeddings"].shape == (5, 8) and len(saved["paths"]) == 5
    assert torch.allclose(saved["embeddings"].norm(dim=1), torch.ones(5), atol=1e-5)  # normalise_features
    overrides[1] = f"save_path={tmp_path / 'emb.npz'}"
    assert main(["predict", "predict_digits", *overrides]) == 0
    npz = np.load(tmp_path / "emb.npz")
    assert npz["embeddings"].shape == (5, 8)
    assert np.allclose(npz["embeddings"], saved["embeddings"].numpy(), atol=1e-6)  # deterministic


def test_predict_errors(tmp_path, capsys):
    untrained = ["allow_untrained=true", f"save_dir={tmp_path}"]
    assert main(["predict", "predict_digits", f"data_dir={tmp_path}", *untrained]) == 2
    assert "no image files" in capsys.readouterr().err
    assert (
        main(
            [
                "predict",
                "predict_digits",
                f"data_dir={tmp_path}",
                f"save_path={tmp_path / 'e.csv'}",
                *untrained,
            ]
        )
        == 2
    )
    assert "must end with .pt or .npz" in capsys.readouterr().err


def test_validate_and_predict_refuse_a_model_without_weights(tmp_path, capsys):
    assert main(["predict", "predict_digits", f"data_dir={tmp_path}", f"save_dir={tmp_path}"]) == 2
    assert "the extractor has no weights" in capsys.readouterr().err
    assert (
        main(["validate", "validate_digits", f"dataset_root={tmp_path}", f"logs_root={tmp_path / 'logs'}"])
        == 2
    )
    assert "dataset not found" in capsys.readouterr().err
    assert not (tmp_path / "logs").exists()


def test_wrong_types_fail_before_any_folder_exists(tmp_path, capsys):
    from oml_fast.datasets import make_digits_dataset

    make_digits_dataset(tmp_path / "digits")
    common = [
        "train",
        "train_digits",
        f"dataset_root={tmp_path / 'digits'}",
        f"logs_root={tmp_path / 'logs'}",
    ]
    assert main([*common, "optimizer.args.lr=abc"]) == 2
    assert "`optimizer.args`: `lr` must be a number, got 'abc' (str)" in capsys.readouterr().err
    assert main([*common, "max_epochs=ten"]) == 2
    assert "config key `max_epochs` must be int, got 'ten' (str)" in capsys.readouterr().err
    assert main([*common, "criterion=arcfase"]) == 2
    assert "did you mean 'arcface'" in capsys.readouterr().err
    assert not (tmp_path / "logs").exists()


def test_version_and_help(capsys):
    with pytest.raises(SystemExit):
        main(["--version"])
    assert capsys.readouterr().out.startswith("oml-fast ")
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for pipeline in ("train", "validate", "predict", "train-postprocessor", "docs/config.md"):
        assert pipeline in out
