"""Audio in pure torch: resampling, (mel) spectrograms, pre-emphasis, log-mel filter banks.

No torchaudio (it is built for one torch version at a time): the modules here keep torchaudio's
buffer names (``spectrogram.window``, ``mel_scale.fb``) so that checkpoints saved with torchaudio
front-ends load into them unchanged.
"""

from oml_fast.transforms.audio.features import (
    MelScale,
    MelSpectrogram,
    PreEmphasis,
    Spectrogram,
    default_spec_repr_func,
    hz_to_mel,
    log_mel_fbank,
    mel_filterbank,
    mel_to_hz,
)
from oml_fast.transforms.audio.resample import resample

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
    "resample",
]
