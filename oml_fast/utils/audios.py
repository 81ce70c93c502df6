"""OML's ``oml.utils.audios``: the picture of an audio item and its HTML block with a player.

The implementations live lower in the package (:mod:`oml_fast.transforms.audio`, :mod:`oml_fast.visualization`),
where the audio datasets use them; no torchaudio and no soundfile are needed.
"""

from oml_fast.transforms.audio import default_spec_repr_func
from oml_fast.visualization import visualize_audio, visualize_audio_with_player

__all__ = ["default_spec_repr_func", "visualize_audio", "visualize_audio_with_player"]
