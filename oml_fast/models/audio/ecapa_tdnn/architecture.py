"""The ECAPA-TDNN network (Desplanques et al., 2020): 16 kHz waveforms -> 192-d speaker embeddings.

Waveform -> pre-emphasis -> 80-band log-mel filter bank (25 ms / 10 ms frames, mean removed per
band) -> 1-D convolution -> three SE-Res2Net blocks with dilations 2, 3, 4 -> multi-layer feature
aggregation (1536 channels) -> attentive statistics pooling (weighted mean and standard deviation,
the attention seeing global context) -> 192-d embedding.

The layer names follow the widely used public implementation (the ``ecapa_tdnn_taoruijie`` weights
OML points to), so that its checkpoints load unchanged.
"""

from __future__ import annotations

import torch
from torch import nn

from oml_fast.transforms.audio import MelSpectrogram, PreEmphasis


class _SqueezeExcitation(nn.Module):
    """Channel gates from the time-averaged input: [B, C, T] -> [B, C, T]."""

    def __init__(self, channels: int, bottleneck: int = 128):
        super().__init__()
        # Indices 1 and 3 hold the weights (the public checkpoints' ``se.se.1`` / ``se.se.3``).
        self.se = nn.Sequential(
            nn.AdaptiveAvgPool1d(1),
            nn.Conv1d(channels, bottleneck, kernel_size=1),
            nn.ReLU(),
            nn.Conv1d(bottleneck, channels, kernel_size=1),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.se(x)


class _SERes2Block(nn.Module):
    """1x1 conv, a Res2Net hierarchy of ``scale - 1`` dilated convs, 1x1 conv, SE, residual: [B, C, T] -> same."""

    def __init__(self, channels: int, kernel_size: int, dilation: int, scale: int = 8):
        super().__init__()
        width = channels // scale
        self.width, self.nums = width, scale - 1
        padding = (kernel_size // 2) * dilation
        self.conv1 = nn.Conv1d(channels, width * scale, kernel_size=1)
        self.bn1 = nn.BatchNorm1d(width * scale)
        self.convs = nn.ModuleList(
            nn.Conv1d(width, width, kernel_size, dilation=dilation, padding=padding) for _ in range(self.nums)
        )
        self.bns = nn.ModuleList(nn.BatchNorm1d(width) for _ in range(self.nums))
        self.conv3 = nn.Conv1d(width * scale, channels, kernel_size=1)
        self.bn3 = nn.BatchNorm1d(channels)
        self.relu = nn.ReLU()
        self.se = _SqueezeExcitation(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # ReLU before batch norm throughout: the order the public weights were trained with.
        parts = torch.split(self.bn1(self.relu(self.conv1(x))), self.width, dim=1)
        outputs, carried = [], None
        for i in range(self.nums):
            carried = parts[i] if carried is None else carried + parts[i]
            carried = self.bns[i](self.relu(self.convs[i](carried)))
            outputs.append(carried)
        outputs.append(parts[self.nums])  # the last group passes through unchanged
        out = self.bn3(self.relu(self.conv3(torch.cat(outputs, dim=1))))
        return self.se(out) + x


class ECAPATDNN(nn.Module):
    """The network: FloatTensor[B, T] (16 kHz) -> FloatTensor[B, 192]. ``channels`` is the width (1024 in
    the public weights; smaller widths train faster)."""

    def __init__(self, channels: int = 1024, n_mels: int = 80, embedding_size: int = 192):
        super().__init__()
        # Index 0 / 1: the checkpoints' ``torchfbank.0.flipped_filter`` / ``torchfbank.1.*`` buffers.
        self.torchfbank = nn.Sequential(
            PreEmphasis(0.97),
            MelSpectrogram(
                sample_rate=16000,
                n_fft=512,
                win_length=400,
                hop_length=160,
                f_min=20.0,
                f_max=7600.0,
                n_mels=n_mels,
                window_fn=torch.hamming_window,
            ),
        )
        self.conv1 = nn.Conv1d(n_mels, channels, kernel_size=5, padding=2)
        self.relu = nn.ReLU()
        self.bn1 = nn.BatchNorm1d(channels)
        self.layer1 = _SERes2Block(channels, kernel_size=3, dilation=2)
        self.layer2 = _SERes2Block(channels, kernel_size=3, dilation=3)
        self.layer3 = _SERes2Block(channels, kernel_size=3, dilation=4)
        self.layer4 = nn.Conv1d(3 * channels, 1536, kernel_size=1)
        self.attention = nn.Sequential(
            nn.Conv1d(3 * 1536, 256, kernel_size=1),
            nn.ReLU(),
            nn.BatchNorm1d(256),
            nn.Tanh(),
            nn.Conv1d(256, 1536, kernel_size=1),
            nn.Softmax(dim=2),
        )
        self.bn5 = nn.BatchNorm1d(2 * 1536)
        self.fc6 = nn.Linear(2 * 1536, embedding_size)
        self.bn6 = nn.BatchNorm1d(embedding_size)

    def features(self, waveform: torch.Tensor) -> torch.Tensor:
        """Log-mel filter bank with the mean over time removed: [B, T] -> [B, n_mels, T // 160 + 1]."""
        with torch.no_grad():
            features = (self.torchfbank(waveform.float()) + 1e-6).log()
            return features - features.mean(dim=-1, keepdim=True)

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        x = self.bn1(self.relu(self.conv1(self.features(waveform))))
        x1 = self.layer1(x)
        x2 = self.layer2(x + x1)
        x3 = self.layer3(x + x1 + x2)
        x = self.relu(self.layer4(torch.cat((x1, x2, x3), dim=1)))  # [B, 1536, frames]
        frames = x.shape[-1]
        mean = x.mean(dim=2, keepdim=True)
        std = x.var(dim=2, keepdim=True).clamp(min=1e-4).sqrt()
        weights = self.attention(
            torch.cat((x, mean.expand(-1, -1, frames), std.expand(-1, -1, frames)), dim=1)
        )
        pooled_mean = (x * weights).sum(dim=2)
        pooled_std = ((x**2 * weights).sum(dim=2) - pooled_mean**2).clamp(min=1e-4).sqrt()
        return self.bn6(self.fc6(self.bn5(torch.cat((pooled_mean, pooled_std), dim=1))))


__all__ = ["ECAPATDNN"]
