"""Spectrograms and mel filter banks in torch (the HTK mel scale, triangular filters, no normalisation).

Shapes: a waveform is FloatTensor[..., T]; a spectrogram FloatTensor[..., n_fft // 2 + 1, frames];
a mel spectrogram FloatTensor[..., n_mels, frames], ``frames = T // hop_length + 1`` (centred frames).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from oml_fast.const import DEFAULT_SAMPLE_RATE


def hz_to_mel(freq: torch.Tensor | float) -> torch.Tensor:
    """HTK mel scale: ``2595 * log10(1 + f / 700)``.

    >>> round(float(hz_to_mel(1000.0)), 1)  # 1000 Hz is about 1000 mel by construction
    1000.0
    """
    return 2595.0 * torch.log10(1.0 + torch.as_tensor(freq, dtype=torch.float64) / 700.0)


def mel_to_hz(mel: torch.Tensor | float) -> torch.Tensor:
    """Inverse of :func:`hz_to_mel`."""
    return 700.0 * (10.0 ** (torch.as_tensor(mel, dtype=torch.float64) / 2595.0) - 1.0)


def mel_filterbank(n_freqs: int, f_min: float, f_max: float, n_mels: int, sample_rate: int) -> torch.Tensor:
    """Triangular filters ``FloatTensor[n_freqs, n_mels]`` over the bins of a one-sided spectrum.

    Filter ``m`` rises from mel point ``m`` to ``m + 1`` and falls to ``m + 2``, the ``n_mels + 2``
    points evenly spaced on the mel scale between ``f_min`` and ``f_max``; bins are the
    ``n_freqs`` frequencies evenly spaced in ``[0, sample_rate / 2]``.

    >>> fb = mel_filterbank(257, 0.0, 8000.0, 40, 16000)
    >>> fb.shape, bool(fb.min() >= 0), bool(fb.max() <= 1)
    (torch.Size([257, 40]), True, True)
    """
    if not 0 <= f_min < f_max <= sample_rate / 2:
        raise ValueError(
            f"need 0 <= f_min < f_max <= sample_rate / 2, got f_min={f_min}, f_max={f_max}, "
            f"sample_rate={sample_rate}"
        )
    bins = torch.linspace(0, sample_rate // 2, n_freqs, dtype=torch.float64)
    points = mel_to_hz(torch.linspace(float(hz_to_mel(f_min)), float(hz_to_mel(f_max)), n_mels + 2))
    spacing = points[1:] - points[:-1]  # [n_mels + 1]
    offsets = points[None, :] - bins[:, None]  # [n_freqs, n_mels + 2]
    rising = -offsets[:, :-2] / spacing[:-1]
    falling = offsets[:, 2:] / spacing[1:]
    return torch.clamp(torch.minimum(rising, falling), min=0.0).float()


class Spectrogram(nn.Module):
    """Power spectrogram ``|STFT|^power`` of centred (reflect-padded) frames; buffer ``window``."""

    window: torch.Tensor

    def __init__(
        self,
        n_fft: int = 400,
        win_length: int | None = None,
        hop_length: int | None = None,
        window_fn: Callable[..., torch.Tensor] = torch.hann_window,
        power: float = 2.0,
    ):
        super().__init__()
        self.n_fft = int(n_fft)
        self.win_length = int(win_length or n_fft)
        self.hop_length = int(hop_length or self.win_length // 2)
        self.power = float(power)
        self.register_buffer("window", window_fn(self.win_length))

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        """FloatTensor[..., T] -> FloatTensor[..., n_fft // 2 + 1, T // hop_length + 1]."""
        shape = waveform.shape
        spec = torch.stft(
            waveform.reshape(-1, shape[-1]),
            n_fft=self.n_fft,
            hop_length=self.hop_length,
            win_length=self.win_length,
            window=self.window,
            center=True,
            pad_mode="reflect",
            normalized=False,
            onesided=True,
            return_complex=True,
        )
        spec = spec.abs().pow(self.power)
        return spec.reshape(*shape[:-1], *spec.shape[-2:])


class MelScale(nn.Module):
    """Spectrogram bins -> mel bands through :func:`mel_filterbank`; buffer ``fb`` [n_stft, n_mels]."""

    fb: torch.Tensor

    def __init__(
        self,
        n_mels: int = 128,
        sample_rate: int = DEFAULT_SAMPLE_RATE,
        f_min: float = 0.0,
        f_max: float | None = None,
        n_stft: int = 201,
    ):
        super().__init__()
        f_max = float(f_max if f_max is not None else sample_rate // 2)
        self.register_buffer("fb", mel_filterbank(n_stft, f_min, f_max, n_mels, sample_rate))

    def forward(self, spec: torch.Tensor) -> torch.Tensor:
        """FloatTensor[..., n_stft, frames] -> FloatTensor[..., n_mels, frames]."""
        return torch.matmul(spec.transpose(-1, -2), self.fb).transpose(-1, -2)


class MelSpectrogram(nn.Module):
    """:class:`Spectrogram` then :class:`MelScale` (submodules ``spectrogram`` and ``mel_scale``)."""

    def __init__(
        self,
        sample_rate: int = DEFAULT_SAMPLE_RATE,
        n_fft: int = 400,
        win_length: int | None = None,
        hop_length: int | None = None,
        f_min: float = 0.0,
        f_max: float | None = None,
        n_mels: int = 128,
        window_fn: Callable[..., torch.Tensor] = torch.hann_window,
        power: float = 2.0,
    ):
        super().__init__()
        self.spectrogram = Spectrogram(n_fft, win_length, hop_length, window_fn, power)
        self.mel_scale = MelScale(n_mels, sample_rate, f_min, f_max, n_fft // 2 + 1)

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        """FloatTensor[..., T] -> FloatTensor[..., n_mels, T // hop_length + 1]."""
        return self.mel_scale(self.spectrogram(waveform))


class PreEmphasis(nn.Module):
    """``y[t] = x[t] - coef * x[t - 1]`` (``x[-1]`` reflected); buffer ``flipped_filter`` [1, 1, 2].

    Input FloatTensor[B, T] -> FloatTensor[B, T].
    """

    flipped_filter: torch.Tensor

    def __init__(self, coef: float = 0.97):
        super().__init__()
        self.coef = coef
        self.register_buffer("flipped_filter", torch.tensor([[[-coef, 1.0]]]))

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        x = nn.functional.pad(waveform.unsqueeze(1), (1, 0), mode="reflect")
        return nn.functional.conv1d(x, self.flipped_filter).squeeze(1)


def log_mel_fbank(
    waveform: torch.Tensor,
    sample_rate: int = DEFAULT_SAMPLE_RATE,
    n_mels: int = 80,
    frame_ms: float = 25.0,
    hop_ms: float = 10.0,
    eps: float = 1e-6,
) -> torch.Tensor:
    """Log mel filter-bank energies with per-band mean removed (the usual speaker-model input).

    FloatTensor[..., T] -> FloatTensor[..., n_mels, frames]; 25 ms Hamming frames every 10 ms.

    >>> log_mel_fbank(torch.randn(2, 16000)).shape
    torch.Size([2, 80, 101])
    """
    win_length = round(sample_rate * frame_ms / 1000)
    n_fft = 1 << math.ceil(math.log2(win_length))
    transform = MelSpectrogram(
        sample_rate,
        n_fft=n_fft,
        win_length=win_length,
        hop_length=round(sample_rate * hop_ms / 1000),
        n_mels=n_mels,
        window_fn=torch.hamming_window,
    ).to(waveform.device)
    features = (transform(waveform) + eps).log()
    return features - features.mean(dim=-1, keepdim=True)


_SPEC_REPR: dict[str, MelSpectrogram] = {}  # built once, on first use


def default_spec_repr_func(audio: torch.Tensor) -> torch.Tensor:
    """The picture of an audio item: ``log(1 + mel power)``, 128 bands, 2048-sample frames every 512.

    FloatTensor[1, T] (or [T]) at 16 kHz -> FloatTensor[128, T // 512 + 1] (OML's default).
    """
    if "melspec" not in _SPEC_REPR:
        _SPEC_REPR["melspec"] = MelSpectrogram(DEFAULT_SAMPLE_RATE, n_fft=2048, hop_length=512, n_mels=128)
    return torch.log1p(_SPEC_REPR["melspec"](audio.float().cpu())).squeeze(0)


__all__ = [
    "MelScale",
    "MelSpectrogram",
    "PreEmphasis",
    "Spectrogram",
    "default_spec_repr_func",
    "hz_to_mel",
    "log_mel_fbank",
    "mel_filterbank",
    "mel_to_hz",
]
