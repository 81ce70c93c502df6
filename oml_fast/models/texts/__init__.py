"""Text extractors (OML's ``oml.models.texts``): ``HFWrapper`` over Hugging Face models (extra ``texts``)."""

from oml_fast.models.texts.huggingface import HFWrapper

__all__ = ["HFWrapper"]
