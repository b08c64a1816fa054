"""One entry point for every data source: ``build_dataset(source, path, split, train, protocol, depth_size)``.

A data spec is ``"<source>:<path>"`` (``"synthetic"`` alone means the embedded default file). Every dataset
gets ``frame_indices`` and an ``identity`` dict (source, path, split, training-set variant, frames, generator
settings for synthetic data, transform) that runs record next to their results.
"""

from __future__ import annotations

from pathlib import Path

from torch.utils.data import Dataset

from .common import SPLITS, DataError
from .nyu import NYUv2Labeled
from .protocols import Protocol, get_protocol
from .rside_csv import RSIDECSV, find_csv
from .synthetic import ensure_synthetic
from .transforms import RSIDE_DEPTH_HW, eval_transform, rside_train_transform

__all__ = ["DATA_SOURCES", "build_dataset", "parse_data_spec"]

DATA_SOURCES = ("nyu-labeled", "rside-csv", "synthetic")


def parse_data_spec(spec: str) -> tuple[str, str | None]:
    """``"nyu-labeled:/x.mat"`` -> ("nyu-labeled", "/x.mat"); ``"synthetic"`` -> ("synthetic", None)."""
    source, sep, path = spec.partition(":")
    source = source.strip()
    if source not in DATA_SOURCES:
        raise ValueError(f"unknown data source {source!r} in {spec!r}; available: {', '.join(DATA_SOURCES)} "
                         f"(written <source>:<path>, or 'synthetic' for the embedded default)")
    path = path.strip() or None
    if path is None and source != "synthetic":
        raise ValueError(f"data spec {spec!r} needs a path: {source}:<path>")
    return source, path


def build_dataset(source: str, path: str | Path | None, split: str, train: bool = False,
                  protocol: str = "rside", depth_size: tuple[int, int] = RSIDE_DEPTH_HW) -> Dataset:
    """The ``split`` of a data source with RSIDE's random training transform (``train=True``; depth target at
    ``depth_size`` (h, w), the model's output size) or the ``protocol``'s evaluation preprocessing.

    Items: image float32 (3,H,W) ImageNet-normalised, depth float32 (1,h,w) metres, valid bool (1,h,w),
    frame int.
    """
    if source not in DATA_SOURCES:
        raise ValueError(f"unknown data source {source!r}; available: {', '.join(DATA_SOURCES)}")
    if split not in SPLITS or (source == "rside-csv" and split == "all"):
        allowed = ("train", "test") if source == "rside-csv" else SPLITS
        raise ValueError(f"{source} has no split {split!r}; use one of {', '.join(allowed)}")
    prot = get_protocol(protocol)
    transform = rside_train_transform(tuple(depth_size)) if train else eval_transform(prot)

    ground_truth = "depths" if train else prot.ground_truth  # training targets: the in-painted depths
    if source == "rside-csv":
        if path is None:
            raise DataError("rside-csv needs a path (an RSIDE root with data/nyu2_*.csv, or a CSV file)")
        if ground_truth != "depths":
            raise DataError(f"protocol {prot.name!r} scores against {ground_truth} (0 = missing), but RSIDE's "
                            f"nyu2_test PNGs under {path} hold the in-painted depths; evaluate it on the "
                            f"labeled file (nyu-labeled:nyu_depth_v2_labeled.mat) or use protocol 'rside'")
        dataset = RSIDECSV(find_csv(path, split), split=split, transform=transform)
    else:
        file = ensure_synthetic() if (source == "synthetic" and path is None) else Path(path)
        dataset = NYUv2Labeled(file, split, transform, depth_key=ground_truth)
        kind = dataset.layout.kind
        if source == "synthetic" and kind != "synthetic":
            raise DataError(f"{file}: is not a synthetic-rooms file (kind {kind!r}); use nyu-labeled:{file}")
        if source == "nyu-labeled" and kind == "synthetic":
            raise DataError(f"{file}: is a synthetic-rooms file; use synthetic:{file} so results say so")
        if not train:
            _check_frame_size(file, (dataset.layout.height, dataset.layout.width), prot)
    dataset.identity.update(train=train, protocol=None if train else prot.name, ground_truth=ground_truth,
                            transform=transform.describe())
    return dataset


def _check_frame_size(file: Path, frame_hw: tuple[int, int], protocol: Protocol) -> None:
    """A protocol with a fixed eval crop only makes sense on frames of the size it was defined for."""
    if protocol.expected_frame_hw is None or protocol.eval_crop is None:
        return
    if tuple(frame_hw) != tuple(protocol.expected_frame_hw):
        raise DataError(f"{file}: frames are {frame_hw[0]}x{frame_hw[1]}, but protocol {protocol.name!r} "
                        f"crops "
                        f"{protocol.eval_crop} of a {protocol.expected_frame_hw[0]}x"
                        f"{protocol.expected_frame_hw[1]} frame")
