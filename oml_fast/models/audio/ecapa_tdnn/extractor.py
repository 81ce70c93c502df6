"""OML's ``ECAPATDNNExtractor``: the ECAPA-TDNN network (``architecture``) on mono 16 kHz audio.

Checkpoints of the public implementation load as they are (the ``speaker_encoder.`` prefix is removed
and the training loss's ``speaker_loss.weight`` dropped, as OML does). ``weights`` is a local file or
the name of the zoo checkpoint ``ecapa_tdnn_taoruijie``, looked up in the checkpoint folders (see
:func:`oml_fast.models.weights.zoo_checkpoint`); when it is not on the machine and cannot be fetched,
the error says which file to place where.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from oml_fast.models.audio.ecapa_tdnn.architecture import ECAPATDNN
from oml_fast.models.base import Extractor, checkpoint_state_dict
from oml_fast.models.weights import load_checked


def ecapa_tdnn_taoruijie() -> ECAPATDNN:
    return ECAPATDNN(channels=1024)


class ECAPATDNNExtractor(Extractor):
    """ECAPA-TDNN on mono 16 kHz audio: FloatTensor[B, T] or [B, 1, T] -> FloatTensor[B, 192].

    Args:
        weights: ``None`` (random initialisation), a checkpoint path, or a name of ``pretrained_models``.
        arch: a key of ``constructors``: ``ecapa_tdnn_taoruijie``.
        normalise_features: divide the embeddings by their (detached) L2 norm.
    """

    sample_rate = 16_000  # the rate the filter bank (and the public weights) assume
    constructors = {"ecapa_tdnn_taoruijie": ecapa_tdnn_taoruijie}
    pretrained_models: dict[str, dict[str, Any]] = {
        "ecapa_tdnn_taoruijie": {
            "url": "https://github.com/TaoRuijie/ECAPA-TDNN/raw/refs/heads/main/exps/pretrain.model",
            "hash": "2bbc0ea09a41217eaff16b676ecb63d7",
            "fname": "ecapa_tdnn_taoruijie.pth",
            "init_args": {"arch": "ecapa_tdnn_taoruijie", "normalise_features": False},
        }
    }

    def __init__(self, weights: str | Path | None, arch: str, normalise_features: bool = False):
        super().__init__()
        if arch not in self.constructors:
            raise ValueError(f"ECAPATDNNExtractor: unknown `arch` '{arch}'; known: {list(self.constructors)}")
        self.normalise_features = bool(normalise_features)
        self.model = self.constructors[arch]()
        if weights is not None:
            self.load_encoder_weights(weights)

    def load_encoder_weights(self, weights: str | Path) -> None:
        """Loads a checkpoint of the network: a file, or a name of ``pretrained_models``."""
        state_dict = checkpoint_state_dict(self, weights, trial_key="layer1.conv1.bias")
        load_checked(self.model, state_dict, weights)

    @property
    def feat_dim(self) -> int:
        return int(self.model.fc6.weight.shape[0])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim == 3 and x.shape[1] == 1:
            x = x.squeeze(1)
        if x.ndim != 2:
            raise ValueError(
                f"ECAPATDNNExtractor expects mono audio [B, T] or [B, 1, T], got shape {list(x.shape)}"
                + (" (stereo? set convert_to_mono=True in the dataset)" if x.ndim == 3 else "")
            )
        if x.shape[-1] < 400:
            raise ValueError(
                f"ECAPATDNNExtractor needs at least 400 samples (25 ms at 16 kHz) per item, got {x.shape[-1]}"
            )
        return self._maybe_normalise(self.model(x))


__all__ = ["ECAPATDNNExtractor", "ecapa_tdnn_taoruijie"]
