"""Config API: YAML files (OmegaConf) with OML's keys, defaults, ``key=value`` overrides and key checks.

A config is the defaults below, updated by the user's YAML file, updated by the overrides. Every
top-level key must be one of :data:`DEFAULTS` (an unknown key is an error that lists the valid
ones); the ``args`` of ``{name, args}`` blocks are checked against the class when it is built
(see :mod:`oml_fast.pipelines.registry`). Example configs ship in ``oml_fast/configs``.

>>> cfg = load_config(overrides=["max_epochs=3", "extractor.args.feat_dim=32"])
>>> cfg.max_epochs, cfg.extractor.args.feat_dim
(3, 32)
>>> load_config(overrides=["max_epoch=3"])
Traceback (most recent call last):
...
oml_fast.pipelines.config.ConfigError: unknown config key 'max_epoch' in the overrides (did you mean 'max_epochs'?); valid keys: [...]
"""

from __future__ import annotations

import difflib
from datetime import datetime
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

CONFIGS_DIR = Path(__file__).resolve().parent.parent / "configs"

# Every top-level key a config may have, with its default. Keys follow OML's pipelines.
DEFAULTS: dict[str, Any] = {
    "seed": 42,
    "precision": 32,  # 32, "16-mixed", "bf16-mixed" (Lightning's values); mixed needs a supporting device
    "accelerator": "auto",
    "devices": 1,
    # Lightning's strategy: "auto", "ddp" (one process per device; gloo on CPU), "ddp_spawn", ...
    # With devices > 1 each rank gets whole batches of the sampler and validation is gathered.
    "strategy": "auto",
    # data
    "dataset_root": "data/digits",
    "dataframe_name": "df.csv",
    "check_dataframe_files": True,  # check that every image file exists before training
    "num_workers": 0,
    "cache_size": 0,
    "transforms_train": {"name": "image_augs", "args": {"im_size": 224}},
    "transforms_val": {"name": "image_norm", "args": {"im_size": 224}},
    "sampler": {"name": "balance", "args": {"n_labels": 8, "n_instances": 4}},
    "bs_val": 256,
    # model and training
    "extractor": {"name": "small_cnn", "args": {"feat_dim": 64, "normalise_features": True, "weights": None}},
    "criterion": {
        "name": "triplet_with_miner",
        "args": {"margin": 0.2, "need_logs": True, "miner": {"name": "hard_triplets", "args": {}}},
    },
    "optimizer": {"name": "adam", "args": {"lr": 1e-3}},
    # null, or {scheduler: {name, args}, scheduler_interval: epoch|step, scheduler_frequency: int}
    "scheduling": None,
    "max_epochs": 10,
    "limit_train_batches": None,  # an int (batches) or a float (fraction of the epoch) to shorten epochs
    "valid_period": 1,
    "gradient_clip_val": None,
    # validation
    "metric_args": {
        "cmc_top_k": [1, 5],
        "precision_top_k": [5],
        "map_top_k": [5],
        "fmr_vals": [],
        "pcf_variance": [],
        "return_only_overall_category": False,
    },
    "metric_for_checkpointing": "OVERALL/cmc/1",
    "metric_mode": "max",
    "log_images": True,  # the worst queries, as PNG files and in TensorBoard
    "n_worst_queries": 4,
    "n_retrieved_to_show": 5,
    # outputs
    "logs_root": "runs",
    "logs_folder": None,  # default: the date and time of the run
    "logger": {"name": "tensorboard", "args": {}},
    "progress_bar": True,
    # validate / predict
    "checkpoint": None,  # validate / predict: weights to load into the extractor (a state dict or checkpoint)
    "data_dir": None,  # predict: folder of images (searched recursively)
    "save_path": None,  # predict: where the embeddings are written (.pt or .npz)
    # accepted for compatibility with OML configs, not used
    "postfix": None,
    "tags": [],
}
# Keys of OML's Hydra set-up that our configs tolerate (and ignore).
IGNORED_KEYS = ("hydra", "hydra_dir", "defaults")


class ConfigError(ValueError):
    """A config key, value or override is wrong; the message lists the valid choices."""


def _register_resolvers() -> None:
    # OML's configs use ${now:%Y-%m-%d_%H-%M-%S} (a Hydra resolver) in `logs_folder`.
    if not OmegaConf.has_resolver("now"):
        register = getattr(OmegaConf, "register_resolver", None) or OmegaConf.register_new_resolver
        register("now", lambda fmt="%Y-%m-%d_%H-%M-%S": datetime.now().strftime(fmt))


def _check_keys(cfg: DictConfig, source: str) -> None:
    valid = sorted(DEFAULTS)
    for key in cfg.keys():
        if key not in DEFAULTS and key not in IGNORED_KEYS:
            close = difflib.get_close_matches(str(key), valid, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise ConfigError(f"unknown config key '{key!s}' in {source}{hint}; valid keys: {valid}")


def parse_overrides(overrides: list[str]) -> DictConfig:
    """``["a.b=1", "c=[1,2]"]`` -> a config; values are parsed as YAML (``null``, numbers, lists)."""
    for item in overrides:
        if "=" not in item or item.startswith("="):
            raise ConfigError(f"override '{item}' is not of the form key=value (e.g. max_epochs=5)")
    try:
        return OmegaConf.from_dotlist(list(overrides))
    except Exception as error:
        raise ConfigError(f"cannot parse overrides {overrides}: {error}") from error


def resolve_config_path(config: str | Path) -> Path:
    """A config file path; a bare name (``train_digits`` or ``train_digits.yaml``) also finds shipped configs."""
    path = Path(config)
    if path.is_file():
        return path
    shipped = CONFIGS_DIR / (path.name if path.suffix else f"{path.name}.yaml")
    if shipped.is_file():
        return shipped
    available = sorted(p.name for p in CONFIGS_DIR.glob("*.yaml"))
    raise ConfigError(f"config file '{config}' not found; shipped configs: {available}")


def load_config(
    config: str | Path | dict | DictConfig | None = None, overrides: list[str] | None = None
) -> DictConfig:
    """Defaults <- ``config`` (a YAML path, a shipped config name, or a mapping) <- ``overrides``.

    Raises :class:`ConfigError` for unknown keys (listing the valid ones) or malformed overrides.
    """
    _register_resolvers()
    cfg = OmegaConf.create(DEFAULTS)
    if config is not None:
        user: DictConfig | ListConfig
        if isinstance(config, (dict, DictConfig)):
            user, source = OmegaConf.create(config), "the config"
        else:
            path = resolve_config_path(config)
            try:
                user = OmegaConf.load(path)
            except Exception as error:
                raise ConfigError(f"cannot parse config file {path}: {error}") from error
            source = str(path)
        if not isinstance(user, DictConfig):
            raise ConfigError(f"{source} must be a mapping of keys to values")
        _check_keys(user, source)
        cfg = _merge_replacing_blocks(cfg, user)
    if overrides:
        parsed = parse_overrides(overrides)
        _check_keys(parsed, "the overrides")
        cfg = _merge_replacing_blocks(cfg, parsed, from_overrides=True)
    for key in IGNORED_KEYS:
        cfg.pop(key, None)
    return cfg


def _merge_replacing_blocks(base: DictConfig, update: DictConfig, from_overrides: bool = False) -> DictConfig:
    # A config that names another class than the default must not inherit the default's args
    # (e.g. `margin` of the default loss is no argument of `arcface`): when a block's `name`
    # changes in a config file, its `args` are replaced, not merged. Overrides edit in place.
    base = base.copy()
    for key in update.keys():
        new, old = update[key], base.get(key)
        if (
            not from_overrides
            and isinstance(new, DictConfig)
            and isinstance(old, DictConfig)
            and "name" in new
            and new.get("name") != old.get("name")
        ):
            base[key] = new
        else:
            merged = OmegaConf.merge(
                base, OmegaConf.create({key: new}) if not isinstance(new, DictConfig) else {key: new}
            )
            assert isinstance(merged, DictConfig)  # merging into a DictConfig gives a DictConfig
            base = merged
    return base


def to_container(cfg: DictConfig) -> dict[str, Any]:
    """The config as plain (resolved) Python containers."""
    return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]
