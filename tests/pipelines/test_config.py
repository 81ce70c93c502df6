"""Config API and registries: defaults, files, overrides, and the errors that list the valid choices."""

from __future__ import annotations

import pytest
import torch

from oml_fast.pipelines.config import CONFIGS_DIR, ConfigError, load_config
from oml_fast.pipelines.registry import REGISTRIES, RegistryError, build


def test_shipped_configs_load():
    names = sorted(p.name for p in CONFIGS_DIR.glob("*.yaml"))
    assert {"train_digits.yaml", "validate_digits.yaml", "predict_digits.yaml"} <= set(names)
    for name in names:
        cfg = load_config(name)
        build("extractors", dict(cfg.extractor), where="extractor")


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
    cfg = load_config(path)
    assert dict(cfg.optimizer.args) == {"lr": 0.1}


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


def test_malformed_override():
    with pytest.raises(ConfigError, match="not of the form key=value"):
        load_config(overrides=["max_epochs"])


def test_missing_config_lists_shipped_ones():
    with pytest.raises(ConfigError, match=r"not found; shipped configs: \[.*train_digits.yaml"):
        load_config("no_such_config.yaml")


def test_oml_hydra_keys_and_now_resolver_are_accepted():
    cfg = load_config({"logs_folder": "${now:%Y}_run", "hydra": {"run": {"dir": "x"}}, "postfix": "p"})
    assert cfg.logs_folder.endswith("_run") and "hydra" not in cfg


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
