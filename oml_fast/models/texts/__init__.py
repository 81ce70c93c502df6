"""Text extractors (OML's ``oml.models.texts``): ``HFWrapper`` over Hugging Face models (extra ``texts``)."""

from oml_fast.models.texts.huggingface import HFWrapper, check_model_type, hf_wrapper

__all__ = ["HFWrapper", "check_model_type", "hf_wrapper"]
