"""Vision-transformer extractor and the DINO / DINOv2 architectures (OML's ``oml.models.vit_dino``)."""
