"""Models built around other models: an MLP head on an extractor, and pairwise (siamese) models."""
