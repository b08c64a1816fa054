"""Data: NYU Depth v2 (official labeled .mat, RSIDE's CSV/PNG layout) and synthetic rooms, one interface.

``build_dataset(source, path, split, train, protocol, depth_size)`` gives a Dataset of dicts ``image``
(3,H,W) float32 ImageNet-normalised, ``depth`` (1,h,w) float32 metres, ``valid`` (1,h,w) bool, ``frame`` int,
with ``frame_indices`` and ``identity`` attributes. Sources: ``DATA_SOURCES``; evaluation protocols:
``PROTOCOLS`` / ``get_protocol``.
"""

from .common import (
    MAX_DEPTH_M,
    NYU_FRAMES,
    NYU_TEST_FRAMES,
    NYU_TRAIN_FRAMES,
    DataError,
    check_split_coverage,
    make_sample,
    official_split,
    valid_depth,
)
from .nyu import NYUv2Labeled, read_layout
from .protocols import EIGEN_CROP, PROTOCOLS, Protocol, get_protocol, register_protocol
from .rside_csv import RSIDECSV
from .sources import DATA_SOURCES, build_dataset, parse_data_spec
from .synthetic import (
    DEFAULT_FRAMES,
    DEFAULT_SEED,
    default_synthetic_path,
    ensure_synthetic,
    render_frame,
    settings_from_name,
    synthetic_file,
    write_synthetic,
)
from .transforms import eval_transform, rside_train_transform

__all__ = [
    "DATA_SOURCES",
    "DEFAULT_FRAMES",
    "DEFAULT_SEED",
    "EIGEN_CROP",
    "MAX_DEPTH_M",
    "NYU_FRAMES",
    "NYU_TEST_FRAMES",
    "NYU_TRAIN_FRAMES",
    "PROTOCOLS",
    "RSIDECSV",
    "DataError",
    "NYUv2Labeled",
    "Protocol",
    "build_dataset",
    "check_split_coverage",
    "default_synthetic_path",
    "ensure_synthetic",
    "eval_transform",
    "get_protocol",
    "make_sample",
    "official_split",
    "parse_data_spec",
    "read_layout",
    "register_protocol",
    "render_frame",
    "rside_train_transform",
    "settings_from_name",
    "synthetic_file",
    "valid_depth",
    "write_synthetic",
]
