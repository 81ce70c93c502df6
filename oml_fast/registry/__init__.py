"""Registries (OML's ``oml.registry``): ``name -> class`` dicts and ``get_*`` builders with OML's keys.

``REGISTRY[name] = MyClass`` registers a custom class (the registries are dicts), and
``get_*``/``get_*_by_cfg`` then build it. Unknown names, and OML's names that oml_fast does not
implement, raise :class:`RegistryError` (a ``KeyError``) listing the valid names.

>>> type(get_miner("hard_triplets")).__name__
'HardTripletsMiner'
>>> get_miner("hard_triplet")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
oml_fast.registry.base.RegistryError: unknown miners name 'hard_triplet' (did you mean 'hard_triplets'?); valid names: [...]
"""

import inspect

from oml_fast.registry.base import Registry, RegistryError
from oml_fast.registry.losses import LOSSES_REGISTRY, get_criterion, get_criterion_by_cfg
from oml_fast.registry.miners import MINERS_REGISTRY, get_miner, get_miner_by_cfg
from oml_fast.registry.models import (
    EXTRACTORS_REGISTRY,
    PAIRWISE_MODELS_REGISTRY,
    get_extractor,
    get_extractor_by_cfg,
    get_pairwise_model,
    get_pairwise_model_by_cfg,
)
from oml_fast.registry.optimizers import OPTIMIZERS_REGISTRY, get_optimizer, get_optimizer_by_cfg
from oml_fast.registry.postprocessors import (
    POSTPROCESSORS_REGISTRY,
    get_postprocessor,
    get_postprocessor_by_cfg,
)
from oml_fast.registry.samplers import (
    SAMPLERS_CATEGORIES_BASED,
    SAMPLERS_REGISTRY,
    get_sampler,
    get_sampler_by_cfg,
)
from oml_fast.registry.schedulers import SCHEDULERS_REGISTRY, get_scheduler, get_scheduler_by_cfg
from oml_fast.registry.transforms import (
    TRANSFORMS_FOR_PRETRAINED,
    TRANSFORMS_REGISTRY,
    TRANSFORMS_TORCH,
    get_transforms,
    get_transforms_by_cfg,
    get_transforms_for_pretrained,
)


def show_registry() -> None:
    """Prints every registry: each name with its class (or factory) and signature."""
    for title, registry in [
        ("Losses", LOSSES_REGISTRY),
        ("Miners", MINERS_REGISTRY),
        ("Models", EXTRACTORS_REGISTRY),
        ("Pairwise models", PAIRWISE_MODELS_REGISTRY),
        ("Optimizers", OPTIMIZERS_REGISTRY),
        ("Samplers", SAMPLERS_REGISTRY),
        ("Schedulers", SCHEDULERS_REGISTRY),
        ("Augmentations", TRANSFORMS_REGISTRY),
    ]:
        print(f"{title}: ")
        for key, constructor in registry.items():
            print(f"{key}:", constructor.__name__ + str(inspect.signature(constructor)))
        print()


__all__ = [
    "Registry",
    "RegistryError",
    "show_registry",
    "LOSSES_REGISTRY",
    "get_criterion",
    "get_criterion_by_cfg",
    "MINERS_REGISTRY",
    "get_miner",
    "get_miner_by_cfg",
    "EXTRACTORS_REGISTRY",
    "PAIRWISE_MODELS_REGISTRY",
    "get_extractor",
    "get_extractor_by_cfg",
    "get_pairwise_model",
    "get_pairwise_model_by_cfg",
    "OPTIMIZERS_REGISTRY",
    "get_optimizer",
    "get_optimizer_by_cfg",
    "POSTPROCESSORS_REGISTRY",
    "get_postprocessor",
    "get_postprocessor_by_cfg",
    "SAMPLERS_REGISTRY",
    "SAMPLERS_CATEGORIES_BASED",
    "get_sampler",
    "get_sampler_by_cfg",
    "SCHEDULERS_REGISTRY",
    "get_scheduler",
    "get_scheduler_by_cfg",
    "TRANSFORMS_REGISTRY",
    "TRANSFORMS_TORCH",
    "TRANSFORMS_FOR_PRETRAINED",
    "get_transforms",
    "get_transforms_by_cfg",
    "get_transforms_for_pretrained",
]
