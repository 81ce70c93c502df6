"""Config API and registries: defaults, files, overrides, and the errors that list the valid choices."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from oml_fast.pipelines.config import CONFIGS_DIR, ConfigError, config_groups, load_config, shipped_configs
from oml_fast.pipelines.config_doc import render_config_doc
from oml_fast.pipelines.registry import REGISTRIES, RegistryError, build, check_block_args

ROOT = Path(__file__).resolve().parents[2]


def test_shipped_configs_load():
    names = shipped_configs()
    assert {"train_digits.yaml", "validate_digits.yaml", "predict_digits.yaml"} <= set(names)
    for name in names:
        cfg = load_config(name)
        build("extractors", dict(cfg.extractor), where="extractor")


def test_every_group_option_is_a_valid_block():
    # Each option shipped in oml_fast/configs/<group>/ names a registered class and only its arguments.
    registry_of = {
        "criterion": "losses",
        "miner": "miners",
        "sampler": "samplers",
        "extractor": "extractors",
        "optimizer": "optimizers",
        "scheduler": "schedulers",
        "transforms": "transforms",
        "postprocessor": "postprocessors",
        "pairwise_model": "pairwise_models",
        "logger": "loggers",
    }
    groups = config_groups()
    assert set(groups) == set(registry_of)
    for group, options in groups.items():
        for option in options:
            block = OmegaConf.to_container(OmegaConf.load(CONFIGS_DIR / group / f"{option}.yaml"))
            assert block["name"] == option
            if group != "logger":  # logger classes are imported only when used (optional packages)
                check_block_args(registry_of[group], block, f"{group}/{option}")


def test_file_then_overrides(tmp_path):
    path = tmp_path / "my.yaml"
    path.write_text(
        "max_epochs: 2\nsampler:\n  name: balance\n  args:\n    n_labels: 3\n    n_instances: 2\n"
    )
    cfg = load_config(
        path, ["max_epochs=5", "sampler.args.n_labels=4", "metric_args.cmc_top_k=[1,10]", "checkpoint=null"]
    )
    assert cfg.max_epochs == 5
    assert (cfg.sampler.args.n_labels, cfg.sampler.args.n_instances) == (4, 2)
    assert list(cfg.metric_args.cmc_top_k) == [1, 10]
    assert cfg.checkpoint is None
    assert cfg.bs_val == 256  # a default the file does not set


def test_changing_a_block_name_drops_the_default_args(tmp_path):
    path = tmp_path / "my.yaml"
    path.write_text("optimizer:\n  name: sgd\n  args:\n    lr: 0.1\n")
    assert dict(load_config(path).optimizer.args) == {"lr": 0.1}


def test_defaults_list_pulls_group_options(tmp_path):
    # OML's way: a defaults list with groups (found on OML's search path, here ours), the file on top.
    path = tmp_path / "train.yaml"
    path.write_text(
        "defaults:\n  - criterion: arcface\n  - optimizer: sgd\n  - transforms@transforms_val: norm_torch\n"
        "  - _self_\ncriterion:\n  args:\n    m: 0.3\n"
        "hydra:\n  searchpath:\n    - pkg://oml.configs\n  job:\n    chdir: true\n"
    )
    cfg = load_config(path)
    assert (
        cfg.criterion.name == "arcface" and cfg.criterion.args.m == 0.3 and "margin" not in cfg.criterion.args
    )
    assert cfg.optimizer.name == "sgd" and cfg.transforms_val.name == "norm_torch"
    # a group the defaults list names: Hydra's own override; one it does not name: the block is replaced
    cfg = load_config(path, ["criterion=triplet", "sampler=category_balance", "sampler.args.n_categories=3"])
    assert cfg.criterion.name == "triplet" and "m" not in cfg.criterion.args
    assert cfg.sampler.name == "category_balance" and cfg.sampler.args.n_categories == 3


def test_group_switch_replaces_the_files_block():
    cfg = load_config("train_digits", ["criterion=arcface", "miner=all_triplets"])
    assert cfg.criterion.name == "arcface" and "margin" not in cfg.criterion.args
    cfg = load_config("train_digits", ["miner=n_hard_triplets", "criterion.args.miner.args.n_positive=3"])
    assert cfg.criterion.name == "triplet_with_miner"
    assert dict(cfg.criterion.args.miner.args) == {"n_positive": 3, "n_negative": 2}
    cfg = load_config("train_digits", ["scheduler=step", "optimizer=adamw", "logger=csv"])
    assert (
        cfg.scheduling.scheduler.name == "step" and cfg.optimizer.name == "adamw" and cfg.logger.name == "csv"
    )


def test_group_null_means_no_block():
    cfg = load_config("train_digits", ["sampler=null", "bs_train=32", "logger=null", "scheduler=null"])
    assert cfg.sampler is None and cfg.logger is None and cfg.scheduling.scheduler is None


def test_plus_tilde_and_now(tmp_path):
    cfg = load_config("train_digits", ["~scheduling", "+lightning_trainer_extra_args.max_time=00:00:10:00"])
    assert cfg.scheduling is None and cfg.lightning_trainer_extra_args.max_time == "00:00:10:00"
    cfg = load_config({"logs_folder": "${now:%Y}_run", "hydra": {"run": {"dir": "x"}}, "postfix": "p"})
    assert cfg.logs_folder.endswith("_run") and "hydra" not in cfg


def test_interpolated_variables_are_not_unknown_keys(tmp_path):
    # OML's post-processor configs keep paths in helper keys used through ${...}.
    path = tmp_path / "p.yaml"
    path.write_text(
        "extractor_weights: w.ckpt\nextractor:\n  name: small_cnn\n  args:\n    weights: ${extractor_weights}\n"
    )
    cfg = load_config(path, ["extractor_weights=other.ckpt"])
    assert cfg.extractor.args.weights == "other.ckpt"


def test_unknown_key_in_file_lists_valid_keys(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("max_epochs: 2\nbatch_size: 3\n")
    with pytest.raises(
        ConfigError, match=r"unknown config key 'batch_size' in .*bad.yaml.*valid keys: \['accelerator'"
    ):
        load_config(path)


def test_unknown_override_key_suggests_the_close_one():
    with pytest.raises(ConfigError, match=r"'valid_perod'.*did you mean 'valid_period'"):
        load_config(overrides=["valid_perod=2"])
    with pytest.raises(ConfigError, match=r"'valid_perod' in the overrides.*did you mean 'valid_period'"):
        load_config(overrides=["+valid_perod=2"])


def test_unknown_group_option():
    with pytest.raises(
        ConfigError, match=r"unknown option 'arcfase' of config group 'criterion' \(did you mean 'arcface'"
    ):
        load_config("train_digits", ["criterion=arcfase"])


def test_wrong_types_name_the_key_and_the_type(tmp_path):
    with pytest.raises(ConfigError, match=r"config key `max_epochs` must be int, got 'abc' \(str\)"):
        load_config(overrides=["max_epochs=abc"])
    path = tmp_path / "t.yaml"
    path.write_text("log_images: maybe\n")
    with pytest.raises(ConfigError, match=r"`log_images` must be bool, got 'maybe'"):
        load_config(path)
    with pytest.raises(RegistryError, match=r"`optimizer.args`: `lr` must be a number, got 'abc' \(str\)"):
        check_block_args(
            "optimizers", dict(load_config(overrides=["optimizer.args.lr=abc"]).optimizer), "optimizer"
        )


def test_malformed_override():
    with pytest.raises(ConfigError, match="not of the form key=value"):
        load_config(overrides=["max_epochs"])


def test_missing_config_lists_shipped_ones():
    with pytest.raises(ConfigError, match=r"not found; shipped configs: \[.*train_digits.yaml"):
        load_config("no_such_config.yaml")


def test_config_reference_is_generated_from_the_schema():
    assert (ROOT / "docs" / "config.md").read_text() == render_config_doc(), (
        "docs/config.md is stale: python scripts/gen_config_doc.py"
    )


def test_unknown_name_lists_registered_names():
    with pytest.raises(RegistryError) as info:
        build("extractors", {"name": "resnett", "args": {}})
    message = str(info.value)
    assert "did you mean 'resnet'" in message
    assert str(sorted(REGISTRIES["extractors"])) in message


def test_wrong_argument_lists_valid_arguments():
    with pytest.raises(
        RegistryError,
        match=r"\['feat_dimm'\].*did you mean 'feat_dim'.*valid arguments: \['feat_dim', 'width'",
    ):
        build("extractors", {"name": "small_cnn", "args": {"feat_dimm": 3}}, where="extractor")


def test_wrong_block_shape():
    with pytest.raises(RegistryError, match=r"`optimizer` has unknown key\(s\) \['arg'\]"):
        build("optimizers", {"name": "adam", "arg": {"lr": 1}}, where="optimizer")
    with pytest.raises(RegistryError, match="must be a mapping with keys `name` and `args`"):
        build("optimizers", "adam", where="optimizer")


def test_nested_blocks_and_runtime_args():
    model = build(
        "extractors",
        {
            "name": "extractor_with_mlp",
            "args": {
                "extractor": {"name": "small_cnn", "args": {"feat_dim": 8, "width": 4}},
                "mlp_features": [6],
            },
        },
    )
    assert model.feat_dim == 6 and model.extractor.feat_dim == 8
    opt = build(
        "optimizers", {"name": "adam", "args": {"lr": 0.5}}, params=model.parameters(), labels=[1]
    )  # labels skipped
    assert isinstance(opt, torch.optim.Adam) and opt.param_groups[0]["lr"] == 0.5
