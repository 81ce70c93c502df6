"""Every name of every registry has its YAML config under ``oml_fast/configs/<folder>/<name>.yaml``, and each
config loads on its own and builds through the registry's factory with OML's run-time arguments, as OML's
``tests/test_oml/test_registry`` does (loggers, which need an extra and an account, only load)."""

from __future__ import annotations

from typing import Any

import pytest
from omegaconf import OmegaConf
from torch import nn

from oml_fast.const import CONFIGS_PATH
from oml_fast.registry.loggers import LOGGERS_REGISTRY
from oml_fast.registry.losses import LOSSES_REGISTRY, get_criterion
from oml_fast.registry.miners import MINERS_REGISTRY, get_miner
from oml_fast.registry.models import (
    EXTRACTORS_REGISTRY,
    PAIRWISE_MODELS_REGISTRY,
    get_extractor,
    get_pairwise_model,
)
from oml_fast.registry.optimizers import OPTIMIZERS_REGISTRY, get_optimizer, get_optimizer_by_cfg
from oml_fast.registry.postprocessors import POSTPROCESSORS_REGISTRY, get_postprocessor
from oml_fast.registry.samplers import SAMPLERS_REGISTRY, get_sampler
from oml_fast.registry.schedulers import SCHEDULERS_REGISTRY, get_scheduler, get_scheduler_by_cfg
from oml_fast.registry.transforms import TRANSFORMS_REGISTRY, get_transforms
from oml_fast.utils.misc import dictconfig_to_dict

REGISTRIES = {
    "extractor": EXTRACTORS_REGISTRY,
    "criterion": LOSSES_REGISTRY,
    "miner": MINERS_REGISTRY,
    "optimizer": OPTIMIZERS_REGISTRY,
    "sampler": SAMPLERS_REGISTRY,
    "scheduler": SCHEDULERS_REGISTRY,
    "transforms": TRANSFORMS_REGISTRY,
    "pairwise_model": PAIRWISE_MODELS_REGISTRY,
    "postprocessor": POSTPROCESSORS_REGISTRY,
    "logger": LOGGERS_REGISTRY,
}


def _params() -> list[nn.Parameter]:
    return list(nn.Linear(3, 6).parameters())


def _config(folder: str, name: str) -> dict[str, Any]:
    return dictconfig_to_dict(OmegaConf.load(CONFIGS_PATH / folder / f"{name}.yaml"))


@pytest.mark.parametrize("folder", sorted(REGISTRIES))
def test_every_registered_name_has_its_config(folder):
    for name in REGISTRIES[folder].keys():
        path = CONFIGS_PATH / folder / f"{name}.yaml"
        assert path.is_file(), f"{folder} {name!r} has no config at {path}"
        assert _config(folder, name)["name"] == name, path


def _runtime_args(folder: str, name: str) -> dict[str, Any]:
    if folder == "optimizer":
        return {"params": _params()}
    if folder == "scheduler":
        optimizer = get_optimizer_by_cfg({"name": "sgd", "args": {"lr": 0.001, "params": _params()}})
        # As in OML's test: only these two take `lr_lambda`, which has no default.
        return {
            "optimizer": optimizer,
            **({"lr_lambda": lambda epoch: 0.9} if name in ("lambda", "multiplicative") else {}),
        }
    if folder == "sampler":
        labels = [0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3]
        return {"label2category": {0: 0, 1: 0, 2: 1, 3: 1}, "labels": labels}
    return {}


FACTORIES = {
    "extractor": get_extractor,
    "pairwise_model": get_pairwise_model,
    "postprocessor": get_postprocessor,
    "criterion": get_criterion,
    "miner": get_miner,
    "optimizer": get_optimizer,
    "sampler": get_sampler,
    "scheduler": get_scheduler,
    "transforms": get_transforms,
}


@pytest.mark.parametrize("folder", sorted(FACTORIES))
def test_configs_build_through_the_registry(folder):
    for name in REGISTRIES[folder].keys():
        if name == "hf_wrapper":
            continue  # its `model: ???` is mandatory (a model folder): tests/datasets/test_texts.py builds it
        args = {**_config(folder, name)["args"], **_runtime_args(folder, name)}
        assert FACTORIES[folder](name, **args) is not None, name


def test_lambda_schedulers_take_lr_lambda_at_run_time():
    optimizer = get_optimizer("sgd", params=_params(), lr=1.0)
    scheduler = get_scheduler_by_cfg(
        _config("scheduler", "multiplicative"), optimizer=optimizer, lr_lambda=lambda e: 0.5
    )
    optimizer.step()
    scheduler.step()
    assert optimizer.param_groups[0]["lr"] == 0.5
    with pytest.raises(TypeError, match="lr_lambda"):
        get_scheduler_by_cfg(_config("scheduler", "lambda"), optimizer=optimizer)
