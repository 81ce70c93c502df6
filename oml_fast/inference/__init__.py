"""OML's ``oml.inference``: a model's outputs over a whole dataset, batched, device-aware, DDP-aware."""

from oml_fast.inference.abstract import inference, inference_cached, pairwise_inference

__all__ = ["inference", "inference_cached", "pairwise_inference"]
