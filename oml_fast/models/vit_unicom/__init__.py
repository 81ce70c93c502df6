"""Unicom extractor (OML's ``oml.models.vit_unicom``): ViTs trained by DeepGlint's Unicom for retrieval."""
