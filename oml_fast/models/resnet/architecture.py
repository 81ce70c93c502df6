"""ResNet-18/34/50/101/152 (v1.5: the stride of a bottleneck sits on its 3x3 convolution), written here.

Module names and the order of the parameters are torchvision's, so torchvision's state dicts (and OML's
checkpoints, which are built on them) load as they are: ``conv1``, ``bn1``, ``layer1`` .. ``layer4`` (each
a ``Sequential`` of blocks with ``conv1``/``bn1``/``conv2``/``bn2``[/``conv3``/``bn3``] and an optional
``downsample`` = ``Sequential(conv 1x1, bn)``), ``avgpool``, ``fc``.

>>> model = ResNet(BasicBlock, [1, 1, 1, 1], num_classes=10)  # resnet18 has [2, 2, 2, 2]
>>> tuple(model(torch.randn(2, 3, 32, 32)).shape)
(2, 10)
"""

from __future__ import annotations

import torch
from torch import nn


def _conv_bn(
    in_channels: int, out_channels: int, kernel: int, stride: int = 1
) -> tuple[nn.Conv2d, nn.BatchNorm2d]:
    conv = nn.Conv2d(in_channels, out_channels, kernel, stride=stride, padding=kernel // 2, bias=False)
    return conv, nn.BatchNorm2d(out_channels)


class BasicBlock(nn.Module):
    """Two 3x3 convolutions and a shortcut (ResNet-18/34)."""

    expansion = 1

    def __init__(self, in_channels: int, width: int, stride: int = 1):
        super().__init__()
        self.conv1, self.bn1 = _conv_bn(in_channels, width, 3, stride)
        self.conv2, self.bn2 = _conv_bn(width, width, 3)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _shortcut(in_channels, width * self.expansion, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + (x if self.downsample is None else self.downsample(x)))


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (with the stride), 1x1 expand to ``4 * width``, and a shortcut (ResNet-50/101/152)."""

    expansion = 4

    def __init__(self, in_channels: int, width: int, stride: int = 1):
        super().__init__()
        self.conv1, self.bn1 = _conv_bn(in_channels, width, 1)
        self.conv2, self.bn2 = _conv_bn(width, width, 3, stride)
        self.conv3, self.bn3 = _conv_bn(width, width * self.expansion, 1)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _shortcut(in_channels, width * self.expansion, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + (x if self.downsample is None else self.downsample(x)))


def _shortcut(in_channels: int, out_channels: int, stride: int) -> nn.Sequential | None:
    if stride == 1 and in_channels == out_channels:
        return None
    return nn.Sequential(*_conv_bn(in_channels, out_channels, 1, stride))


class ResNet(nn.Module):
    """Stem (7x7/2 conv, max-pool), four stages of ``blocks``, global pooling, ``fc``.

    ``forward``: ``FloatTensor[B, 3, H, W] -> FloatTensor[B, num_classes]`` (or ``[B, C]`` of the pooled
    features when ``fc`` is replaced by ``nn.Identity``). Initialisation: He (fan-out) for convolutions,
    BatchNorm weights 1 and biases 0.
    """

    def __init__(self, block: type[BasicBlock | Bottleneck], blocks: list[int], num_classes: int = 1000):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        channels = 64
        stages = []
        for stage, (width, n_blocks) in enumerate(zip((64, 128, 256, 512), blocks)):
            layers = []
            for i in range(n_blocks):
                layers.append(block(channels, width, stride=2 if stage > 0 and i == 0 else 1))
                channels = width * block.expansion
            stages.append(nn.Sequential(*layers))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.avgpool: nn.Module = nn.AdaptiveAvgPool2d((1, 1))
        self.fc: nn.Module = nn.Linear(channels, num_classes)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4:
            raise ValueError(f"ResNet expects FloatTensor[B, 3, H, W], got shape {list(x.shape)}")
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def resnet18(num_classes: int = 1000) -> ResNet:
    return ResNet(BasicBlock, [2, 2, 2, 2], num_classes)


def resnet34(num_classes: int = 1000) -> ResNet:
    return ResNet(BasicBlock, [3, 4, 6, 3], num_classes)


def resnet50(num_classes: int = 1000) -> ResNet:
    return ResNet(Bottleneck, [3, 4, 6, 3], num_classes)


def resnet101(num_classes: int = 1000) -> ResNet:
    return ResNet(Bottleneck, [3, 4, 23, 3], num_classes)


def resnet152(num_classes: int = 1000) -> ResNet:
    return ResNet(Bottleneck, [3, 8, 36, 3], num_classes)


def resnet50_projector() -> ResNet:
    """ResNet-50 whose ``fc`` is MoCo v2's projection head: ``Linear(2048, 2048), ReLU, Linear(2048, 128)``."""
    model = resnet50(num_classes=128)
    model.fc = nn.Sequential(nn.Linear(2048, 2048), nn.ReLU(), model.fc)
    return model


__all__ = [
    "BasicBlock",
    "Bottleneck",
    "ResNet",
    "resnet18",
    "resnet34",
    "resnet50",
    "resnet101",
    "resnet152",
    "resnet50_projector",
]
