"""A run's data: its training and test sets per RunConfig, frame subsets, and the data's provenance.

Built through ``architectures.data.build_dataset`` (sources, splits, transforms, protocols live there, with the
messages that say where missing data comes from: ``architectures.data.downloads``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from torch.utils.data import Dataset

from architectures.data.transforms import RSIDE_CROP_HW
from bench.config import RunConfig
from bench.evaluate import prediction_frames
from bench.provenance import file_fingerprint

__all__ = ["DEFAULT_INPUT_SIZE", "FrameSubset", "data_provenance", "load_datasets"]

DEFAULT_INPUT_SIZE = RSIDE_CROP_HW  # the data layer's training crop (RSIDE's 304x228), rows x cols


class FrameSubset(Dataset):
    """``positions`` of a dataset, keeping the data contract (``frame_indices``, ``identity``)."""

    def __init__(self, dataset: Dataset, positions: Sequence[int], how: str):
        self.dataset, self.positions = dataset, list(positions)
        self.frame_indices = [dataset.frame_indices[p] for p in self.positions]
        self.identity = {
            **getattr(dataset, "identity", {}),
            "frames": len(self.positions),
            "subset": {"frames": len(self.positions), "of": len(dataset), "how": how},
        }

    def __len__(self) -> int:
        return len(self.positions)

    def __getitem__(self, index: int) -> Any:
        return self.dataset[self.positions[index]]


def load_datasets(config: RunConfig, depth_size: tuple[int, int], train: bool = True) -> tuple[Dataset | None, Dataset]:
    """(training set or None, test set) per config, through ``architectures.data.build_dataset``."""
    from architectures.data import build_dataset

    train_set = None
    if train:
        train_set = build_dataset(
            config.data,
            config.data_path,
            config.train_split,
            train=True,
            protocol=config.protocol,
            depth_size=tuple(depth_size),
        )
        if config.train_frames is not None and config.train_frames < len(train_set):
            train_set = FrameSubset(train_set, range(config.train_frames), "first")
            variant = train_set.identity.get("train_variant")
            if variant:  # say that only part of the variant was used: "synthetic-96-first-48"
                train_set.identity["train_variant"] = f"{variant}-first-{config.train_frames}"
    test_set = build_dataset(config.data, config.data_path, config.test_split, train=False, protocol=config.protocol)
    if config.eval_frames is not None and config.eval_frames < len(test_set):
        positions = prediction_frames(range(len(test_set)), config.eval_frames)
        test_set = FrameSubset(test_set, positions, "evenly spaced")
    return train_set, test_set


def data_provenance(config: RunConfig, train_set: Dataset | None, test_set: Dataset) -> dict[str, Any]:
    """Source, paths, the datasets' identity and a fingerprint of the data file(s)' header."""
    test_identity = dict(getattr(test_set, "identity", {}))
    out: dict[str, Any] = {
        "source": config.data,
        "path": config.data_path,
        "test": test_identity,
        "train": dict(getattr(train_set, "identity", {})) if train_set is not None else None,
    }
    path = Path(test_identity.get("path") or config.data_path or "")
    if path.is_file():
        out["fingerprint"] = file_fingerprint(path)
    elif path.is_dir():
        out["fingerprint"] = {p.name: file_fingerprint(p) for p in sorted(path.glob("*.csv"))}
    return out
