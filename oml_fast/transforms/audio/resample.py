"""Band-limited resampling of waveforms (windowed-sinc interpolation, polyphase, one ``conv1d``)."""

from __future__ import annotations

import functools
import math

import torch


def _check_rate(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value) or value <= 0:
        raise ValueError(f"`{name}` must be a positive whole number of samples per second, got {value!r}")
    return int(value)


@functools.lru_cache(maxsize=32)  # datasets resample every item between the same few rates
def _sinc_kernels(orig: int, new: int, lowpass_filter_width: int, rolloff: float) -> tuple[torch.Tensor, int]:
    """Interpolation kernels float64 ``[new, K]`` (one per output phase) and the half width ``K`` is built from.

    Each kernel samples ``sinc`` low-passed at ``rolloff * min(orig, new) / 2`` Hz (relative to the
    lower Nyquist frequency), tapered by a Hann window spanning ``lowpass_filter_width`` zero crossings.
    """
    cutoff = min(orig, new) * rolloff  # in units of the reduced rates
    width = math.ceil(lowpass_filter_width * orig / cutoff)
    taps = torch.arange(-width, width + orig, dtype=torch.float64) / orig
    phases = -torch.arange(new, dtype=torch.float64)[:, None] / new
    t = ((phases + taps[None, :]) * cutoff).clamp(-lowpass_filter_width, lowpass_filter_width)
    window = torch.cos(t * math.pi / lowpass_filter_width / 2) ** 2
    t = t * math.pi
    sinc = torch.where(t == 0, torch.ones_like(t), torch.sin(t) / t)
    kernels = sinc * window * (cutoff / orig)
    return kernels, width


def resample(
    waveform: torch.Tensor,
    orig_freq: int,
    new_freq: int,
    lowpass_filter_width: int = 6,
    rolloff: float = 0.99,
) -> torch.Tensor:
    """``waveform`` (FloatTensor[..., T]) sampled at ``orig_freq`` Hz, resampled to ``new_freq`` Hz.

    Returns FloatTensor[..., ceil(T * new_freq / orig_freq)]. Frequencies above ``rolloff`` times the
    lower of the two Nyquist frequencies are removed first (no aliasing); ``lowpass_filter_width``
    sets the filter's length (longer: sharper cut-off, slower). Deterministic, differentiable.

    >>> t = torch.arange(16000) / 16000
    >>> y = resample(torch.sin(2 * torch.pi * 440 * t), 16000, 8000)
    >>> y.shape, bool((y - torch.sin(2 * torch.pi * 440 * t[::2])).abs()[100:-100].max() < 1e-2)
    (torch.Size([8000]), True)
    """
    orig_freq, new_freq = _check_rate(orig_freq, "orig_freq"), _check_rate(new_freq, "new_freq")
    if not isinstance(waveform, torch.Tensor) or not waveform.is_floating_point() or waveform.ndim == 0:
        raise ValueError(f"`waveform` must be a floating-point tensor [..., T], got {waveform!r:.80}")
    if orig_freq == new_freq:
        return waveform
    gcd = math.gcd(orig_freq, new_freq)
    orig, new = orig_freq // gcd, new_freq // gcd
    kernels, width = _sinc_kernels(orig, new, int(lowpass_filter_width), float(rolloff))
    kernels = kernels.to(dtype=waveform.dtype, device=waveform.device)
    shape, length = waveform.shape, waveform.shape[-1]
    x = waveform.reshape(-1, 1, length)
    x = torch.nn.functional.pad(x, (width, width + orig))
    # Output sample j * new + p is kernel p applied at input position j * orig (polyphase).
    y = torch.nn.functional.conv1d(x, kernels[:, None, :], stride=orig)
    y = y.transpose(1, 2).reshape(x.shape[0], -1)
    target = math.ceil(new * length / orig)
    return y[:, :target].reshape(*shape[:-1], target)


__all__ = ["resample"]
