"""One entry point for every data source: ``build_dataset(source, path, split, train, protocol, depth_size)``.

A data spec is ``"<source>:<path>"`` (``"synthetic"`` alone means the embedded default file). Every dataset
gets ``frame_indices`` and an ``identity`` dict (source, path, split, training-set variant, frames, generator
settings for synthetic data, transform) that runs record next to their results.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch.utils.data import Dataset

from .._registry import Registry
from .common import SPLITS, DataError
from .nyu import NYUv2Labeled
from .protocols import Protocol, get_protocol
from .rside_csv import RSIDECSV, find_csv
from .synthetic import synthetic_file
from .transforms import RSIDE_DEPTH_HW, eval_transform, rside_train_transform

__all__ = ["DATA_SOURCES", "SOURCES", "DataSource", "build_dataset", "parse_data_spec", "register_source"]

OpenFn = Callable[[str | Path | None, str, Any, Protocol | None], Dataset]  # (path, split, transform, protocol)


@dataclass(frozen=True)
class DataSource:
    """A registered data source: the splits it has and ``open(path, split, transform, protocol)``, which gives
    the Dataset (``protocol`` is None for a training set, else the evaluation protocol it is read for)."""

    name: str
    splits: tuple[str, ...]
    open: OpenFn


SOURCES: Registry[DataSource] = Registry("data source", error=ValueError)


def register_source(name: str, splits: tuple[str, ...] = SPLITS) -> Callable[[OpenFn], OpenFn]:
    """Decorator: register ``open(path, split, transform, protocol)`` as the data source ``name``."""

    def decorator(open_fn: OpenFn) -> OpenFn:
        SOURCES.register(name, DataSource(name, tuple(splits), open_fn))
        return open_fn

    return decorator


@register_source("nyu-labeled")
def _open_nyu_labeled(path: str | Path | None, split: str, transform, protocol: Protocol | None) -> Dataset:
    """The official labeled .mat (HDF5)."""
    return _open_labeled_layout(Path(path), split, transform, protocol, synthetic=False)


@register_source("rside-csv", splits=("train", "test"))
def _open_rside_csv(path: str | Path | None, split: str, transform, protocol: Protocol | None) -> Dataset:
    """RSIDE's nyu2_{train,test}.csv with PNG images and depths."""
    if path is None:
        raise DataError("rside-csv needs a path (an RSIDE root with data/nyu2_*.csv, or a CSV file)")
    ground_truth = _ground_truth(protocol)
    if ground_truth != "depths":
        raise DataError(
            f"protocol {protocol.name!r} scores against {ground_truth} (0 = missing), but RSIDE's "
            f"nyu2_test PNGs under {path} hold the in-painted depths; evaluate it on the "
            f"labeled file (nyu-labeled:nyu_depth_v2_labeled.mat) or use protocol 'rside'"
        )
    return RSIDECSV(find_csv(path, split), split=split, transform=transform)


@register_source("synthetic")
def _open_synthetic(path: str | Path | None, split: str, transform, protocol: Protocol | None) -> Dataset:
    """Synthetic rooms in the labeled .mat layout; no path means the embedded default file, a missing file named
    ``synthetic-s{seed}-n{frames}.h5`` is generated from its name."""
    file = synthetic_file(path)
    return _open_labeled_layout(file, split, transform, protocol, synthetic=True)


DATA_SOURCES = tuple(SOURCES)  # ("nyu-labeled", "rside-csv", "synthetic")


def parse_data_spec(spec: str) -> tuple[str, str | None]:
    """``"nyu-labeled:/x.mat"`` -> ("nyu-labeled", "/x.mat"); ``"synthetic"`` -> ("synthetic", None)."""
    source, sep, path = spec.partition(":")
    source = source.strip()
    if source not in SOURCES:
        raise ValueError(
            f"unknown data source {source!r} in {spec!r}; available: {', '.join(SOURCES)} "
            f"(written <source>:<path>, or 'synthetic' for the embedded default)"
        )
    path = path.strip() or None
    if path is None and source != "synthetic":
        raise ValueError(f"data spec {spec!r} needs a path: {source}:<path>")
    return source, path


def build_dataset(
    source: str,
    path: str | Path | None,
    split: str,
    train: bool = False,
    protocol: str = "rside",
    depth_size: tuple[int, int] = RSIDE_DEPTH_HW,
) -> Dataset:
    """The ``split`` of a data source with RSIDE's random training transform (``train=True``; depth target at
    ``depth_size`` (h, w), the model's output size) or the ``protocol``'s evaluation preprocessing.

    Items: image float32 (3,H,W) ImageNet-normalised, depth float32 (1,h,w) metres, valid bool (1,h,w),
    frame int.
    """
    data_source = SOURCES[source]
    if split not in data_source.splits:
        raise ValueError(f"{source} has no split {split!r}; use one of {', '.join(data_source.splits)}")
    prot = get_protocol(protocol)
    transform = rside_train_transform(tuple(depth_size)) if train else eval_transform(prot)
    eval_protocol = None if train else prot
    dataset = data_source.open(path, split, transform, eval_protocol)
    dataset.identity.update(
        train=train,
        protocol=None if train else prot.name,
        ground_truth=_ground_truth(eval_protocol),
        transform=transform.describe(),
    )
    return dataset


def _ground_truth(protocol: Protocol | None) -> str:
    """The depth dataset read: the in-painted ``depths`` for training targets, else the protocol's own."""
    return "depths" if protocol is None else protocol.ground_truth


def _open_labeled_layout(file: Path, split: str, transform, protocol: Protocol | None, synthetic: bool) -> NYUv2Labeled:
    """A file in the labeled .mat layout, checked to be (or not be) synthetic rooms as its source says, and
    (for evaluation) to have the frame size ``protocol`` crops."""
    dataset = NYUv2Labeled(file, split, transform, depth_key=_ground_truth(protocol))
    kind = dataset.layout.kind
    if synthetic and kind != "synthetic":
        raise DataError(f"{file}: is not a synthetic-rooms file (kind {kind!r}); use nyu-labeled:{file}")
    if not synthetic and kind == "synthetic":
        raise DataError(f"{file}: is a synthetic-rooms file; use synthetic:{file} so results say so")
    if protocol is not None:
        _check_frame_size(file, (dataset.layout.height, dataset.layout.width), protocol)
    return dataset


def _check_frame_size(file: Path, frame_hw: tuple[int, int], protocol: Protocol) -> None:
    """A protocol with a fixed eval crop only makes sense on frames of the size it was defined for."""
    if protocol.expected_frame_hw is None or protocol.eval_crop is None:
        return
    if tuple(frame_hw) != tuple(protocol.expected_frame_hw):
        raise DataError(
            f"{file}: frames are {frame_hw[0]}x{frame_hw[1]}, but protocol {protocol.name!r} "
            f"crops "
            f"{protocol.eval_crop} of a {protocol.expected_frame_hw[0]}x"
            f"{protocol.expected_frame_hw[1]} frame"
        )
