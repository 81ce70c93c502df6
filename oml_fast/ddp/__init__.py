"""OML's DDP helpers (``oml.ddp``) on top of :mod:`oml_fast.distributed`."""

from oml_fast.ddp.patching import (
    DDPSamplerWrapper,
    check_loaders_is_patched,
    extract_loader_parameters,
    patch_dataloader_to_ddp,
)
from oml_fast.ddp.utils import (
    WarningDDP,
    get_rank_safe,
    get_world_size_safe,
    is_ddp,
    is_main_process,
    merge_list_of_dicts,
    sync_dicts_ddp,
)

__all__ = [
    "DDPSamplerWrapper",
    "WarningDDP",
    "check_loaders_is_patched",
    "extract_loader_parameters",
    "get_rank_safe",
    "get_world_size_safe",
    "is_ddp",
    "is_main_process",
    "merge_list_of_dicts",
    "patch_dataloader_to_ddp",
    "sync_dicts_ddp",
]
