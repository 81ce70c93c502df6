"""CLIP image-tower extractor (OML's ``oml.models.vit_clip``): OpenAI and SberAI (ruCLIP) checkpoints."""
