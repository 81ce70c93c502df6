"""Names shared by every layer (OML 4.x's ``oml.const`` names and values): batch keys, dataframe
columns, the key of the all-queries metrics, and the colours of the pictures.

This module imports nothing from the package, so that every other module may import it.

>>> OVERALL_CATEGORIES_KEY, GREEN
('OVERALL', (0, 255, 0))
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

if TYPE_CHECKING:
    from omegaconf import DictConfig

# ----- keys of the dicts that datasets return (``__getitem__``) and that batches carry -----
INPUT_TENSORS_KEY = "input_tensors"
LABELS_KEY = "labels"
INDEX_KEY = "idx"
IS_QUERY_KEY = "is_query"
IS_GALLERY_KEY = "is_gallery"
EMBEDDINGS_KEY = "embeddings"
PATHS_KEY = "paths"
CATEGORIES_KEY = "categories"
INPUT_TENSORS_KEY_1 = "input_tensors_1"  # the two sides of a pair (pair datasets, pairwise models)
INPUT_TENSORS_KEY_2 = "input_tensors_2"
X1_KEY, Y1_KEY, X2_KEY, Y2_KEY = "x1", "y1", "x2", "y2"

# ----- columns of OML's dataframe (CSV) format -----
LABELS_COLUMN = "label"
PATHS_COLUMN = "path"
SPLIT_COLUMN = "split"
IS_QUERY_COLUMN = "is_query"
IS_GALLERY_COLUMN = "is_gallery"
CATEGORIES_COLUMN = "category"
SEQUENCE_COLUMN = "sequence"
X1_COLUMN, Y1_COLUMN, X2_COLUMN, Y2_COLUMN = "x_1", "y_1", "x_2", "y_2"
BBOX_COLUMNS = (X1_COLUMN, Y1_COLUMN, X2_COLUMN, Y2_COLUMN)
OBLIGATORY_COLUMNS = [LABELS_COLUMN, SPLIT_COLUMN, IS_QUERY_COLUMN, IS_GALLERY_COLUMN]  # OML's (any modality)
BBOXES_COLUMNS = [X1_COLUMN, X2_COLUMN, Y1_COLUMN, Y2_COLUMN]  # OML's name and order
REQUIRED_COLUMNS = (LABELS_COLUMN, PATHS_COLUMN, SPLIT_COLUMN, IS_QUERY_COLUMN, IS_GALLERY_COLUMN)
OPTIONAL_COLUMNS = (CATEGORIES_COLUMN, SEQUENCE_COLUMN, *BBOX_COLUMNS)
TRAIN_SPLIT, VALIDATION_SPLIT = "train", "validation"
TBBox = tuple[int, int, int, int]  # x1, y1, x2, y2 in pixels
TBBoxes = Sequence[TBBox | None]
CROP_KEY = "crop"  # the batch key of a crop box, [x1, y1, x2, y2]
IMAGE_EXTENSIONS = ["jpg", "jpeg", "JPG", "JPEG", "png"]
TEXTS_COLUMN = "text"  # texts: the item itself, in place of ``path``
START_TIME_COLUMN = "start_time"  # audio: where an item starts in its file, in seconds (optional)

# ----- images: ImageNet normalisation, padding colour -----
TNormParam = tuple[float, float, float]
MEAN: TNormParam = (0.485, 0.456, 0.406)
STD: TNormParam = (0.229, 0.224, 0.225)
MEAN_CLIP: TNormParam = (0.48145466, 0.4578275, 0.40821073)  # CLIP's normalisation
STD_CLIP: TNormParam = (0.26862954, 0.26130258, 0.27577711)
PAD_COLOR = (255, 255, 255)

# ----- audio (OML's values) -----
AUDIO_EXTENSIONS = [".mp3", ".wav", ".ogg", ".flac"]
MAX_AUDIO_LEN = 3.0  # seconds an item lasts (cut or zero-padded to it)
DEFAULT_SAMPLE_RATE = 16_000
DEFAULT_CONVERT_TO_MONO = True

# ----- metrics -----
# Key of the metrics computed over all queries (per-category metrics sit beside it).
OVERALL_CATEGORIES_KEY = "OVERALL"

# ----- pictures: RGB colours, ints in [0, 255] (OML's values) -----
TColor = tuple[int, int, int]
BLACK: TColor = (0, 0, 0)
BLUE: TColor = (0, 0, 255)  # a query
GREEN: TColor = (0, 255, 0)  # a retrieved item of the query's label
RED: TColor = (255, 0, 0)  # a retrieved item of another label
GRAY: TColor = (120, 120, 120)  # a ground-truth item shown after the retrieved ones
# Worst queries pictured per metric, retrieved items per query, and ground-truth items after them
# (OML's defaults).
LOG_TOPK_ROWS_PER_METRIC = 5
LOG_TOPK_IMAGES_PER_ROW = 5
N_GT_SHOW_EMBEDDING_METRICS = 2
LOG_IMAGE_FOLDER = "image_logs"  # where loggers put pictures
BS_KNN = 5_000  # OML's query block size in its kNN; kept for code that reads it (our kNN streams)
REQUESTS_TIMEOUT = 120.0  # seconds: the download helpers' default (oml_fast.utils.io, remote_storage)

# ----- search -----
# Queries per block in OML's batched kNN (``oml_fast.functional.knn`` accepts it; our op streams anyway).
BS_KNN = 5_000

# ----- files: the cache folder and the mock dataset (``oml_fast.utils.get_mock_images_dataset``) -----


def get_cache_folder() -> Path:
    """``$XDG_CACHE_HOME/oml_fast`` (default ``~/.cache/oml_fast``) on Linux, ``~/Library/Caches/oml_fast`` on
    macOS, ``~/.cache/oml_fast`` elsewhere. Ours, not OML's ``.../oml``: the mock dataset laid out here is
    not OML's, and OML's own cache must stay untouched."""
    if sys.platform.startswith("linux"):
        return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "oml_fast"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "oml_fast"
    return Path.home() / ".cache" / "oml_fast"


CACHE_PATH = get_cache_folder()
TMP_PATH = Path(tempfile.gettempdir())
CKPT_SAVE_ROOT = CACHE_PATH / "torch" / "checkpoints"
MOCK_DATASET_PATH = CACHE_PATH / "mock_dataset"
MOCK_DATASET_DEFAULT_CSV = "df.csv"
MOCK_AUDIO_DATASET_PATH = CACHE_PATH / "mock_audio_dataset"  # oml_fast.utils.get_mock_audios_dataset

# ----- where things are: the package, OML's storage and OML's published mock datasets -----
OML_PATH = Path(__file__).resolve().parent  # the installed package folder (OML's: its ``oml`` folder)
PROJECT_ROOT = OML_PATH.parent  # the folder that holds the package (the source tree in a checkout)
# Where OML's source tree keeps its ``.env`` (cloud credentials for its experiments); oml_fast reads none.
DOTENV_PATH = PROJECT_ROOT / ".env"
# OML's file server (its checkpoints, ``oml_fast.utils.remote_storage``); ``OML_FAST_STORAGE_URL`` points
# oml_fast's download helpers at a mirror.
STORAGE_URL = "https://oml.daloroserver.com"
STORAGE_CKPTS = STORAGE_URL + "/download/checkpoints"
# OML's published mock datasets: their address and the MD5 of the folder (``calc_folder_hash``). oml_fast
# lays out its own mock datasets locally (digits; synthesised sounds), which these do not describe:
# a folder equal to OML's download has this hash, ours does not.
MOCK_DATASET_URL_GDRIVE = (
    "https://drive.google.com/drive/folders/1plPnwyIkzg51-mLUXWTjREHgc1kgGrF4?usp=sharing"
)
MOCK_DATASET_MD5 = "a23478efd4746d18f937fa6c5758c0ed"
MOCK_AUDIO_DATASET_URL_GDRIVE = "https://drive.google.com/drive/folders/1NcKnyXqDyyYARrDETmhJcTTXegO3W0Ju"
MOCK_AUDIO_DATASET_MD5 = "45629afad9ff28f9148f3ea60f659d18"

# ----- OML's pipeline constants -----
# The pipelines' bundled configs (OML's CONFIGS_PATH is its source tree's oml/configs).
CONFIGS_PATH = Path(__file__).resolve().parent / "configs"
# The Hydra version_base of OML's pipeline scripts: ``@hydra.main(..., version_base=HYDRA_BEHAVIOUR)``.
HYDRA_BEHAVIOUR = "1.1"
# A pipeline config: a dict, or an OmegaConf ``DictConfig`` (omegaconf comes with the ``pipeline`` extra).
TCfg = Union[dict[str, Any], "DictConfig"]
