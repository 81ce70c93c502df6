"""ResNet extractor, its architecture and GeM pooling (OML's ``oml.models.resnet``)."""
