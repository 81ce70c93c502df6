"""Config loading: Hydra's compose API over OML-style YAML files, completed by the schema's defaults.

A config is composed as Hydra composes OML's configs: the file's ``defaults:`` list pulls options of
the config groups shipped in ``oml_fast/configs/<group>/`` (``criterion/``, ``optimizer/``, ...;
OML's ``pkg://oml.configs`` search path means these), then command-line overrides apply:
``key=value``, ``a.b=value``, ``group=option``, ``+key=value``, ``~key``. Keys the config leaves out
take their defaults from :mod:`oml_fast.pipelines.schema`. Then the checks: every top-level key
must be a schema key (or a variable the config interpolates, like OML's ``extractor_weights``),
and every value must have the key's type; both errors name the key, before any run folder exists.

``group=option`` replaces the block, whether or not the file's ``defaults:`` list names the group:
the option's ``args`` replace those the file set for another option (Hydra alone would merge them),
and ``group.args.x=...`` overrides then edit it.

>>> cfg = load_config("train_digits", ["max_epochs=3", "criterion=arcface", "criterion.args.m=0.3"])
>>> cfg.max_epochs, cfg.criterion.name, cfg.criterion.args.m, "margin" in cfg.criterion.args
(3, 'arcface', 0.3, False)
>>> load_config(overrides=["max_epoch=3"])  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
oml_fast.pipelines.schema.ConfigError: unknown config key 'max_epoch' in the overrides (did you mean 'max_epochs'?); valid keys: [...]
"""

from __future__ import annotations

import re
import uuid
import warnings
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from oml_fast.pipelines.schema import DEFAULTS, KEYS, ConfigError, check_types
from oml_fast.registry.base import suggest

CONFIGS_DIR = Path(__file__).resolve().parent.parent / "configs"
# Keys of OML's Hydra set-up that configs may have and that the pipelines do not read.
HYDRA_KEYS = ("hydra", "defaults")
# OML's configs put OML's groups on Hydra's search path; ours have the same names.
OML_SEARCH_PATH = "pkg://oml.configs"
_INTERPOLATED = re.compile(r"\$\{\s*([A-Za-z_]\w*)")
_OVERRIDE = re.compile(r"^(\+\+|\+|~)?([A-Za-z_][\w@/.-]*)(=.*)?$", re.S)


def config_groups() -> dict[str, list[str]]:
    """The config groups shipped in ``oml_fast/configs``: ``{group: [option, ...]}``."""
    return {
        folder.name: sorted(p.stem for p in folder.glob("*.yaml"))
        for folder in sorted(CONFIGS_DIR.iterdir())
        if folder.is_dir() and not folder.name.startswith(("_", "."))
    }


def shipped_configs() -> list[str]:
    """Names of the pipeline configs shipped in ``oml_fast/configs`` (``train_digits.yaml``, ...)."""
    return sorted(p.name for p in CONFIGS_DIR.glob("*.yaml"))


def resolve_config_path(config: str | Path) -> Path:
    """A config file path; a bare name (``train_digits`` or ``train_digits.yaml``) also finds shipped configs."""
    path = Path(config)
    if path.is_file():
        return path.resolve()
    shipped = CONFIGS_DIR / (path.name if path.suffix else f"{path.name}.yaml")
    if shipped.is_file():
        return shipped
    raise ConfigError(f"config file '{config}' not found; shipped configs: {shipped_configs()}")


def _register_resolvers() -> None:
    # OML's configs use ${now:%Y-%m-%d_%H-%M-%S} (a resolver Hydra registers when it runs an app).
    if not OmegaConf.has_resolver("now"):
        OmegaConf.register_new_resolver("now", lambda fmt="%Y-%m-%d_%H-%M-%S": datetime.now().strftime(fmt))


def _read_primary(config: Any) -> tuple[DictConfig, str]:
    """The user's config as written (unresolved) and how to name it in messages."""
    if config is None:
        return OmegaConf.create({}), "the defaults"
    if isinstance(config, (Mapping, DictConfig)):
        return OmegaConf.create(config if isinstance(config, DictConfig) else dict(config)), "the config"
    path = resolve_config_path(config)
    try:
        raw = OmegaConf.load(path)
    except Exception as error:
        raise ConfigError(f"cannot parse config file {path}: {error}") from error
    if not isinstance(raw, DictConfig):
        raise ConfigError(f"{path} must be a mapping of keys to values")
    return raw, str(path)


def _defaults_groups(raw: DictConfig) -> dict[str, str]:
    """Entries of the ``defaults:`` list: ``- criterion: arcface`` -> ``{"criterion": "arcface"}``
    (``- a@b: c`` -> ``{"a@b": "c"}``)."""
    groups: dict[str, str] = {}
    items = raw.get("defaults") or []
    if not isinstance(items, (list, ListConfig)):
        raise ConfigError(f"`defaults` must be a list (Hydra's defaults list), got {items!r}")
    for item in items:
        if isinstance(item, (Mapping, DictConfig)):
            for key, value in item.items():
                groups[str(key).replace("override ", "").strip()] = str(value)
    return groups


def _search_path(raw: DictConfig) -> list[str]:
    entries = [f"file://{CONFIGS_DIR}"]
    hydra = raw.get("hydra")
    for entry in (hydra.get("searchpath") if isinstance(hydra, DictConfig) else None) or []:
        entry = str(entry)
        if entry != OML_SEARCH_PATH and entry not in entries:
            entries.append(entry)
    return entries


# Where a group's block goes when ``group=option`` names no package (``group@package=option`` does).
GROUP_PACKAGES = {"miner": "criterion.args.miner", "scheduler": "scheduling.scheduler"}


def _prepare_overrides(
    overrides: list[str], raw: DictConfig, groups: dict[str, list[str]]
) -> tuple[list[str], dict[str, tuple[str, str | None]]]:
    """Hydra overrides for the user's ``overrides``, and the blocks switched by ``group=option``.

    Schema keys become ``++key=value`` (set whether or not the file has the key: the defaults are
    added after composition); ``group=option`` for a group the file's defaults list does not name
    becomes ``+group@package=option`` (the block is then replaced, see :func:`_replace_switched_blocks`).
    """
    listed = _defaults_groups(raw)
    hydra_overrides: list[str] = []
    switched: dict[str, tuple[str, str | None]] = {}
    for item in overrides:
        match = _OVERRIDE.match(item)
        if match is None or (match.group(1) != "~" and match.group(3) is None):
            raise ConfigError(
                f"override '{item}' is not of the form key=value, group=option, +key=value or ~key "
                "(e.g. max_epochs=5)"
            )
        prefix, key, value = match.group(1) or "", match.group(2), (match.group(3) or "")[1:]
        group, _, package = key.partition("@")
        if prefix == "" and group in groups and "." not in group and value == "null":
            # `sampler=null`: no block (OML's meaning of a null block), not the group's default option.
            entries = [k for k in listed if k == key or (not package and k.split("@")[0] == group)]
            hydra_overrides += [f"~{entry}" for entry in entries]
            package = (
                package
                or (entries[0].partition("@")[2] if entries else "")
                or GROUP_PACKAGES.get(group, group)
            )
            switched[package] = (group, None)
            continue
        if prefix == "" and group in groups and "." not in group:
            if value not in groups[group]:
                raise ConfigError(
                    f"unknown option '{value}' of config group '{group}'{suggest(value, groups[group])}; "
                    f"options: {groups[group]}"
                )
            entries = [k for k in listed if k == key or (not package and k.split("@")[0] == group)]
            if len(entries) == 1:  # Hydra swaps the entry; the file's tweaks of another option are dropped
                entry = entries[0]
                if listed[entry] != value:
                    switched[entry.partition("@")[2] or group] = (group, value)
                hydra_overrides.append(f"{entry}={value}")
                continue
            package = package or GROUP_PACKAGES.get(group, group)
            switched[package] = (group, value)
            hydra_overrides.append(f"+{group}@{package}={value}")
            continue
        top = key.split(".")[0]
        if prefix == "" and top in KEYS and top not in raw:
            hydra_overrides.append(f"++{item}")
            continue
        if prefix in ("", "++") and top not in KEYS and top not in raw and top not in HYDRA_KEYS:
            valid = sorted(KEYS)
            raise ConfigError(
                f"unknown config key '{top}' in the overrides{suggest(top, valid)}; valid keys: {valid}"
            )
        hydra_overrides.append(item)
    return hydra_overrides, switched


def _replace_switched_blocks(
    cfg: DictConfig, switched: dict[str, tuple[str, str | None]], overrides: list[str]
) -> None:
    # Hydra merged the option over the file's block (keeping the file's args the option lacks);
    # `group=option` means "use that option": its block, plus the explicit `<package>.x=` overrides.
    for package, (group, option) in switched.items():
        if option is None:  # `group=null`
            OmegaConf.update(cfg, package, None, merge=False, force_add=True)
            continue
        block = OmegaConf.load(CONFIGS_DIR / group / f"{option}.yaml")
        for item in overrides:
            key = item.lstrip("+").split("=", 1)[0]
            if key.startswith(f"{package}."):
                OmegaConf.update(block, key[len(package) + 1 :], OmegaConf.select(cfg, key), force_add=True)
        OmegaConf.update(cfg, package, block, merge=False, force_add=True)


def _compose(raw: DictConfig, source: Any, overrides: list[str]) -> DictConfig:
    from hydra import compose, initialize_config_dir
    from hydra.core.config_store import ConfigStore
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    groups = config_groups()
    hydra_overrides, switched = _prepare_overrides(overrides, raw, groups)
    searchpath = ",".join(f"'{entry}'" for entry in _search_path(raw))
    hydra_overrides.append(f"hydra.searchpath=[{searchpath}]")
    if isinstance(source, (str, Path)):
        path = resolve_config_path(source)
        config_dir, config_name = path.parent, path.stem
    else:  # a mapping: Hydra composes it from its config store
        config_dir, config_name = CONFIGS_DIR, f"_oml_fast_{uuid.uuid4().hex}"
        ConfigStore.instance().store(name=config_name, node=raw)
    if GlobalHydra.instance().is_initialized():  # inside a @hydra.main app: compose beside it
        GlobalHydra.instance().clear()
    try:
        with warnings.catch_warnings():
            # "Defaults list is missing `_self_`": Hydra's default order is the one OML's configs expect.
            warnings.filterwarnings("ignore", message=".*_self_.*", category=UserWarning)
            with initialize_config_dir(config_dir=str(config_dir), version_base=None):
                cfg = compose(config_name=config_name, overrides=hydra_overrides)
    except (HydraException, OmegaConfBaseException) as error:
        raise ConfigError(f"cannot compose the config: {error}") from error
    OmegaConf.set_struct(cfg, False)
    _replace_switched_blocks(cfg, switched, overrides)
    return cfg


def _check_keys(cfg: DictConfig, source: str, overrides: list[str]) -> None:
    # A key the config interpolates (`weights: ${extractor_weights}`) is a variable, not a typo.
    variables = set(_INTERPOLATED.findall(OmegaConf.to_yaml(cfg)))
    added = {m.group(2).split(".")[0] for m in map(_OVERRIDE.match, overrides) if m is not None}
    valid = sorted(KEYS)
    for key in cfg.keys():
        key = str(key)
        if key not in KEYS and key not in variables and key not in HYDRA_KEYS:
            where = "the overrides" if key in added else source
            raise ConfigError(
                f"unknown config key '{key}' in {where}{suggest(key, valid)}; valid keys: {valid}"
            )


def _merge_defaults(cfg: DictConfig) -> DictConfig:
    # A block that names another class than the default's does not inherit the default's args
    # (`margin` of the default loss is no argument of `arcface`); same name (or none, as after
    # `optimizer.args.lr=0.1` alone): the args are merged.
    merged = OmegaConf.create(DEFAULTS)
    for key in cfg.keys():
        new, old = cfg[key], merged.get(key)
        if (
            isinstance(new, DictConfig)
            and isinstance(old, DictConfig)
            and ("name" not in new or new.get("name") == old.get("name"))
        ):
            merged[key] = OmegaConf.merge(old, new)
        else:
            merged[key] = new
    return merged


def load_config(config: Any = None, overrides: list[str] | None = None) -> DictConfig:
    """The complete, checked, resolved config.

    Args:
        config: a YAML path, the name of a shipped config (``train_digits``), a mapping, or ``None``
            (the defaults alone). A ``DictConfig`` composed elsewhere (an OML ``@hydra.main`` app)
            is taken as it is, then completed and checked.
        overrides: Hydra overrides (``key=value``, ``group=option``, ``+key=value``, ``~key``).

    Raises:
        ConfigError: unknown key (with the closest valid one), a value of the wrong type (naming the
            key and the types it takes), an unknown group option, a malformed override or file.
    """
    _register_resolvers()
    overrides = list(overrides or [])
    raw, source = _read_primary(config)
    if isinstance(config, DictConfig) and not overrides:
        cfg = raw
    else:
        cfg = _compose(raw, config, overrides)
    _check_keys(cfg, source, overrides)
    for key in HYDRA_KEYS:
        cfg.pop(key, None)
    cfg = _merge_defaults(cfg)
    try:
        resolved = OmegaConf.to_container(cfg, resolve=True)
    except Exception as error:
        raise ConfigError(f"cannot resolve the config's interpolations: {error}") from error
    assert isinstance(resolved, dict)
    check_types({str(k): v for k, v in resolved.items()})
    return OmegaConf.create(resolved)


def to_container(cfg: DictConfig) -> dict[str, Any]:
    """The config as plain (resolved) Python containers."""
    return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]


__all__ = [
    "CONFIGS_DIR",
    "ConfigError",
    "config_groups",
    "load_config",
    "resolve_config_path",
    "shipped_configs",
    "to_container",
]
