"""Resampling and spectrograms in torch, checked against their definitions and against scipy."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from oml_fast.transforms.audio import (
    MelSpectrogram,
    PreEmphasis,
    Spectrogram,
    hz_to_mel,
    log_mel_fbank,
    mel_filterbank,
    mel_to_hz,
    resample,
)


def tone(freq: float, rate: int, seconds: float = 1.0) -> torch.Tensor:
    return torch.sin(2 * math.pi * freq * torch.arange(int(rate * seconds), dtype=torch.float64) / rate)


@pytest.mark.parametrize(("orig", "new"), [(44100, 16000), (16000, 22050), (8000, 16000), (48000, 16000)])
def test_resampled_tone_is_the_same_tone(orig: int, new: int):
    y = resample(tone(440.0, orig), orig, new)
    assert y.shape[-1] == math.ceil(orig * new / orig)
    expected = tone(440.0, new)
    margin = new // 20  # the filter's edges see the zero padding
    assert float((y - expected)[margin:-margin].abs().max()) < 2e-3


def test_resampling_agrees_with_scipy():
    signal = pytest.importorskip("scipy.signal")
    rng = np.random.default_rng(0)
    x = rng.standard_normal(8000)
    x = np.convolve(x, np.ones(8) / 8, mode="same")  # mostly below the new Nyquist frequency
    ours = resample(torch.from_numpy(x), 16000, 8000).numpy()
    theirs = signal.resample_poly(x, 1, 2, window=("kaiser", 8.0))
    middle = slice(200, -200)
    assert np.corrcoef(ours[middle], theirs[middle])[0, 1] > 0.999


def test_downsampling_removes_what_would_alias():
    y = resample(tone(6000.0, 16000), 16000, 8000)  # 6 kHz is above the new Nyquist frequency (4 kHz)
    assert float(y[200:-200].abs().max()) < 0.02


def test_resample_keeps_batch_shape_dtype_and_rejects_bad_rates():
    x = torch.randn(2, 3, 1600)
    assert resample(x, 16000, 8000).shape == (2, 3, 800)
    assert resample(x, 16000, 16000) is x
    for bad in (0, -16000, 16000.5, "16k", True):
        with pytest.raises(ValueError, match="`new_freq` must be a positive whole number"):
            resample(x, 16000, bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="`waveform` must be a floating-point tensor"):
        resample(torch.ones(10, dtype=torch.long), 16000, 8000)


def test_mel_scale_and_filters():
    assert torch.allclose(
        mel_to_hz(hz_to_mel(torch.tensor([0.0, 440.0, 7600.0]))).float(), torch.tensor([0.0, 440.0, 7600.0])
    )
    fb = mel_filterbank(n_freqs=257, f_min=20.0, f_max=7600.0, n_mels=80, sample_rate=16000)
    assert fb.shape == (257, 80)
    peaks = fb.argmax(dim=0)
    assert bool((peaks[1:] >= peaks[:-1]).all())  # the bands go up in frequency
    assert bool((fb.sum(dim=0) > 0).all())  # no empty band at this resolution
    with pytest.raises(ValueError, match="f_min < f_max <= sample_rate / 2"):
        mel_filterbank(257, 0.0, 9000.0, 80, 16000)


def test_a_tone_lights_its_bin_and_its_band():
    rate, freq = 16000, 1000.0
    spec = Spectrogram(n_fft=512, hop_length=160)(tone(freq, rate).float())
    assert spec.shape == (257, 16000 // 160 + 1)
    assert int(spec.mean(dim=1).argmax()) == round(freq * 512 / rate)
    mel = MelSpectrogram(rate, n_fft=512, hop_length=160, n_mels=40)
    band = int(mel(tone(freq, rate).float()).mean(dim=1).argmax())
    centres = mel_to_hz(torch.linspace(0, float(hz_to_mel(8000.0)), 42))[1:-1]
    assert band == int((centres - freq).abs().argmin())


def test_pre_emphasis_and_fbank():
    x = torch.randn(2, 1000)
    y = PreEmphasis(0.97)(x)
    assert torch.allclose(y[:, 1:], x[:, 1:] - 0.97 * x[:, :-1], atol=1e-6)
    features = log_mel_fbank(x.repeat(1, 16))
    assert features.shape == (2, 80, 16000 // 160 + 1)
    assert torch.allclose(features.mean(dim=-1), torch.zeros(2, 80), atol=1e-4)
