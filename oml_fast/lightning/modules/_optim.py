"""What the extractor and pairwise modules share: optimizer / scheduler configuration and freezing."""

from __future__ import annotations

from typing import Any

from torch.optim.lr_scheduler import ReduceLROnPlateau


def configure_optimizers(module: Any) -> Any:
    """Lightning's ``configure_optimizers`` answer for ``module.optimizer`` / ``module.scheduler``."""
    if module.optimizer is None:
        raise RuntimeError(f"{type(module).__name__} was built without an optimizer; it cannot train")
    if module.scheduler is None:
        return module.optimizer
    scheduler = {
        "scheduler": module.scheduler,
        "interval": module.scheduler_interval,
        "frequency": module.scheduler_frequency,
    }
    if isinstance(module.scheduler, ReduceLROnPlateau):
        scheduler["monitor"] = module.monitor_metric
    return [module.optimizer], [scheduler]


def apply_freezing(module: Any) -> None:
    """Freezes ``module.model`` before epoch ``freeze_n_epochs`` and unfreezes it from then on."""
    if module.freeze_n_epochs <= 0:
        return
    model = module.model
    if not (hasattr(model, "freeze") and hasattr(model, "unfreeze")):
        raise ValueError(
            f"`freeze_n_epochs={module.freeze_n_epochs}` needs a model with `freeze()` / `unfreeze()` "
            f"(IFreezable), got {type(model).__name__}"
        )
    if module.current_epoch >= module.freeze_n_epochs:
        model.unfreeze()
    else:
        model.freeze()


def progress_bar_dict(module: Any) -> dict[str, Any]:
    """What the progress bar shows for ``module`` (its trainer's progress bar metrics, Lightning 2's
    ``ProgressBar.get_metrics``) without the run's version number ``v_num``; ``{}`` without a trainer."""
    trainer = module._trainer
    if trainer is None:
        return {}
    bar = trainer.progress_bar_callback
    metrics = dict(bar.get_metrics(trainer, module) if bar is not None else trainer.progress_bar_metrics)
    metrics.pop("v_num", None)
    return metrics
