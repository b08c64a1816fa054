"""The layout RSIDE (and DenseDepth's nyu_data.zip) trains and tests on: CSV rows of image path, depth path.

``data/nyu2_train.csv`` / ``data/nyu2_test.csv``, no header, paths relative to the repository root, e.g.
``data/nyu2_train/living_room_0038_out/37.jpg,data/nyu2_train/living_room_0038_out/37.png`` and
``data/nyu2_test/00000_colors.png,data/nyu2_test/00000_depth.png``. Depth PNG encodings (RSIDE
``nyu_transform.ToTensor``):

- train: 8-bit grey, metres = value / 255 * 10 (steps of 3.9 cm; 0 = no measurement),
- test: 16-bit grey, millimetres, metres = value / 1000 (0 = no measurement).

Frame numbers: test rows carry the 0-based labeled index in their names (``00008_colors.png`` is official
frame 9), train rows are numbered by their 1-based row.
"""

from __future__ import annotations

import csv
import re
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

try:
    from torchvision.io import decode_jpeg, decode_png
except ImportError:  # a torchvision without image decoders: PIL decodes everything
    decode_jpeg = decode_png = None

from .common import DataError, Sample, official_split

__all__ = [
    "DEPTH_ENCODINGS",
    "RSIDECSV",
    "decode_depth_png",
    "decoded_sample",
    "find_csv",
    "read_depth_png",
    "write_rside_fixture",
]

TRAIN_DEPTH_SCALE_M = 10.0 / 255.0  # 8-bit train PNG value -> metres
TEST_DEPTH_SCALE_M = 1e-3  # 16-bit test PNG value (mm) -> metres
DEPTH_ENCODINGS = {
    "train": ("8-bit PNG, metres = value / 255 * 10", ("L",), TRAIN_DEPTH_SCALE_M),
    "test": ("16-bit PNG, millimetres", ("I;16", "I;16B", "I;16L", "I"), TEST_DEPTH_SCALE_M),
}
FIXTURE_JPEG_QUALITY = 90  # RSIDE's JPEG quality is not documented; 90 is a typical export setting
_TEST_NAME = re.compile(r"(\d+)_colors\.\w+$")
_MISSING_SHOWN = 5
_JPEG_MAGIC = b"\xff\xd8\xff"  # SOI marker and the next marker's 0xFF
_PNG_MAGIC = b"\x89PNG\r\n\x1a\nIHDR"  # signature, then the IHDR chunk (its length, 13, sits between)
_PNG_GREY = {"train": 8, "test": 16}  # the bit depth of the split's grey PNGs (IHDR colour type 0)


class RSIDECSV(Dataset):
    """One RSIDE CSV (train or test) as a Dataset of samples (see ``common``); ``frame_indices`` as above.

    root: the directory the CSV paths are relative to; None -> the CSV's grandparent (RSIDE's repo root,
    CSVs in ``data/``) if the first row resolves there, else the CSV's own directory.
    split: "train" or "test" (which depth encoding to expect); None -> from the file name.
    """

    def __init__(
        self,
        csv_path: str | Path,
        root: str | Path | None = None,
        split: str | None = None,
        transform: Callable[[Sample], Any] | None = None,
    ):
        self.csv_path = Path(csv_path)
        self.split = split or _split_from_name(self.csv_path)
        if self.split not in DEPTH_ENCODINGS:
            raise ValueError(f"{self.csv_path}: split must be 'train' or 'test', got {self.split!r}")
        self.transform = transform
        rows = read_rows(self.csv_path)
        self.root = Path(root) if root is not None else _guess_root(self.csv_path, rows[0][0])
        self.rows = [(self.root / image, self.root / depth) for image, depth in rows]
        _check_files(self.csv_path, self.rows)
        self.frame_indices: list[int] = _frames(self.csv_path, self.split, rows)
        self.identity: dict[str, Any] = {
            "source": "rside-csv",
            "path": str(self.csv_path.resolve()),
            "root": str(self.root.resolve()),
            "split": self.split,
            "train_variant": _train_variant(self.csv_path, self.split, len(rows)),
            "frames": len(rows),
            "depth_encoding": DEPTH_ENCODINGS[self.split][0],
        }
        if self.split == "test":
            self.identity["official_test_frames"] = set(self.frame_indices) == set(official_split("test"))

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> Any:
        image_path, depth_path = self.rows[index]
        image = read_rgb(image_path)
        depth = read_depth_png(depth_path, self.split)
        if depth.shape != image.shape[1:]:
            raise DataError(
                f"{depth_path}: depth is {depth.shape[1]}x{depth.shape[0]} but its image "
                f"{image_path.name} is {image.shape[2]}x{image.shape[1]} "
                f"(row {index + 1} of {self.csv_path})"
            )
        scale, frame = DEPTH_ENCODINGS[self.split][2], self.frame_indices[index]
        if getattr(self.transform, "stored_depth", False):  # augment.FrameDraws: the PNG's integers will do
            stored = torch.from_numpy(depth).unsqueeze(0)
            return self.transform({"image": image, "depth_stored": stored, "depth_scale": scale, "frame": frame})
        sample = decoded_sample(image, depth, scale, frame)
        return self.transform(sample) if self.transform is not None else sample

    def __repr__(self) -> str:
        return f"RSIDECSV({str(self.csv_path)!r}, split={self.split!r}, frames={len(self)})"


def find_csv(path: str | Path, split: str) -> Path:
    """The CSV for ``split``, given a CSV file or a directory (RSIDE repo root, or its ``data/``)."""
    path = Path(path)
    if path.is_file():
        other = "test" if split == "train" else "train"
        if other in path.name.lower() and split not in path.name.lower():
            raise DataError(f"{path}: looks like the {other} CSV, but the {split} split was asked for")
        return path
    if not path.exists():
        raise DataError(f"{path}: no such file or directory (expected an RSIDE root with data/nyu2_{split}.csv)")
    for candidate in (path / "data" / f"nyu2_{split}.csv", path / f"nyu2_{split}.csv"):
        if candidate.is_file():
            return candidate
    raise DataError(f"{path}: has neither data/nyu2_{split}.csv nor nyu2_{split}.csv")


def read_rows(csv_path: Path) -> list[tuple[str, str]]:
    """(image, depth) relative paths of every row; errors name the row."""
    if not csv_path.is_file():
        raise DataError(f"{csv_path}: no such file")
    rows = []
    with open(csv_path, newline="") as f:
        for n, row in enumerate(csv.reader(f), start=1):
            if not row or all(not cell.strip() for cell in row):
                continue
            if len(row) != 2 or not row[0].strip() or not row[1].strip():
                raise DataError(
                    f"{csv_path}: row {n} has {len(row)} column(s) {row!r}; expected 2: "
                    f"image path, depth path (no header)"
                )
            rows.append((row[0].strip(), row[1].strip()))
    if not rows:
        raise DataError(f"{csv_path}: has no rows")
    return rows


def read_rgb(path: Path) -> torch.Tensor:
    """RGB image as uint8 (3,H,W), channels last in memory (a view of the decoded (H,W,3) array, which the
    training transform's resize reads fastest); a missing, truncated or undecodable file raises DataError
    naming it. Three-channel JPEGs (NYU's) are decoded by torchvision's libjpeg-turbo, which gives PIL's pixels
    about 30% sooner (straight into an RGB array; PIL decodes to RGBX and packs a copy); anything else, or
    every file once torchvision drops its decoder (deprecated since 0.29 in favour of TorchCodec), by PIL."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    if data[:3] == _JPEG_MAGIC and decode_jpeg is not None:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)  # see the docstring
                image = decode_jpeg(torch.frombuffer(bytearray(data), dtype=torch.uint8))
            if image.shape[0] == 3:
                return image
        except RuntimeError:
            pass  # truncated, corrupt or unsupported here: PIL decides, and its error names the fault
    with _open_image(path) as im:
        return torch.from_numpy(np.array(im if im.mode == "RGB" else im.convert("RGB"))).permute(2, 0, 1)


def decoded_sample(image: torch.Tensor, value: np.ndarray, scale: float, frame: int) -> Sample:
    """``make_sample(image, value * scale, frame)``, bit for bit, from ``read_rgb`` and ``read_depth_png``
    output, without its copies: PNG integers are finite and >= 0, so valid = value > 0 and nothing needs
    zeroing, and the image stays a view of the decoded array (``make_sample`` copies it to channels-first and
    masks a float depth: about 1 ms per 640x480 frame, a tenth of what a training frame cost before)."""
    depth = torch.from_numpy(_metres(value, scale)).unsqueeze(0)
    valid = torch.from_numpy(value > 0).unsqueeze(0)
    return {"image": image, "depth": depth, "valid": valid, "frame": int(frame)}


def decode_depth_png(path: Path, split: str) -> np.ndarray:
    """Depth in metres (H,W) float32 from a PNG in the ``split``'s RSIDE encoding (0 stays 0 = invalid)."""
    return _metres(read_depth_png(path, split), DEPTH_ENCODINGS[split][2])


def read_depth_png(path: Path, split: str) -> np.ndarray:
    """The integers (H,W) stored in a depth PNG, checked to be in the ``split``'s RSIDE encoding.

    A grey PNG of the split's bit depth (its IHDR says so) is decoded by torchvision's libpng, which gives
    PIL's integers (tested, 8 and 16 bit) about 8% sooner and as a writable array; anything else goes through
    PIL, whose mode decides (and names the fault)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    if decode_png is not None and _is_grey_png(data, _PNG_GREY[split]):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)  # as for decode_jpeg (read_rgb)
                value = decode_png(torch.frombuffer(bytearray(data), dtype=torch.uint8))
            if value.shape[0] == 1:
                return value[0].numpy()
        except RuntimeError:
            pass  # truncated or corrupt: PIL decides, and its error names the fault
    what, modes, _ = DEPTH_ENCODINGS[split]
    with _open_image(path) as im:
        if im.mode not in modes:
            raise DataError(
                f"{path}: depth PNG has mode {im.mode!r}; the RSIDE {split} encoding is {what} "
                f"(PIL mode {' or '.join(modes)})"
            )
        return np.array(im)  # writable, as torchvision's


def _is_grey_png(data: bytes, bit_depth: int) -> bool:
    """Whether ``data`` starts as a PNG whose IHDR says grey (colour type 0) at ``bit_depth`` bits."""
    return len(data) > 25 and data[:8] + data[12:16] == _PNG_MAGIC and data[24] == bit_depth and data[25] == 0


def _metres(value: np.ndarray, scale: float) -> np.ndarray:
    """value * scale computed in float64 and stored as float32 (RSIDE's ToTensor in double precision), in
    buffered chunks: no float64 copy of the whole frame."""
    out = np.empty(value.shape, np.float32)
    np.multiply(value, scale, out=out, dtype=np.float64, casting="unsafe")
    return out


def _open_image(path: Path) -> Image.Image:
    try:
        im = Image.open(path)
        im.load()
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except (OSError, SyntaxError, ValueError) as e:
        raise DataError(f"{path}: cannot decode image ({e}); truncated or not an image?") from None
    return im


def _split_from_name(csv_path: Path) -> str:
    name = csv_path.name.lower()
    for split in ("test", "train"):
        if split in name:
            return split
    raise DataError(f"{csv_path}: cannot tell train from test by the name; pass split='train' or 'test'")


def _guess_root(csv_path: Path, first_image: str) -> Path:
    for root in (csv_path.parent.parent, csv_path.parent):
        if (root / first_image).exists():
            return root
    return csv_path.parent.parent if first_image.startswith("data/") else csv_path.parent


def _check_files(csv_path: Path, rows: list[tuple[Path, Path]]) -> None:
    missing = [(n, p) for n, row in enumerate(rows, start=1) for p in row if not p.is_file()]
    if missing:
        shown = "; ".join(f"row {n}: {p}" for n, p in missing[:_MISSING_SHOWN])
        more = f" (and {len(missing) - _MISSING_SHOWN} more)" if len(missing) > _MISSING_SHOWN else ""
        raise DataError(f"{csv_path}: {len(missing)} file(s) it lists are missing: {shown}{more}")


def _train_variant(csv_path: Path, split: str, rows: int) -> str | None:
    """ "rside-<train CSV rows>": this CSV's rows, or for a test CSV those of the train CSV beside it."""
    if split == "train":
        return f"rside-{rows}"
    train_csv = csv_path.with_name(csv_path.name.replace("test", "train"))
    if train_csv == csv_path or not train_csv.is_file():
        return None
    with open(train_csv, newline="") as f:
        return f"rside-{sum(1 for row in csv.reader(f) if row)}"


def _frames(csv_path: Path, split: str, rows: list[tuple[str, str]]) -> list[int]:
    if split == "train":
        return list(range(1, len(rows) + 1))
    frames = []
    for n, (image, _) in enumerate(rows, start=1):
        m = _TEST_NAME.search(image)
        if m is None:
            raise DataError(
                f"{csv_path}: row {n} image {image!r} is not named NNNNN_colors.png, so its NYU frame number is unknown"
            )
        frames.append(int(m.group(1)) + 1)
    if len(set(frames)) != len(frames):
        raise DataError(f"{csv_path}: lists some test frames more than once")
    return frames


def write_rside_fixture(
    root: str | Path,
    train_rows: int = 64,
    test_names: tuple[int, ...] = (0, 1, 8),
    height: int = 480,
    width: int = 640,
    seed: int = 0,
    noise: float = 3.0,
) -> Path:
    """RSIDE's data layout under ``root`` (``data/nyu2_*.csv`` and their files) at realistic image sizes, for
    throughput checks: synthetic rooms with sensor-like noise (``noise``, std in 8-bit levels) as 640x480 JPEG
    (quality FIXTURE_JPEG_QUALITY) + 8-bit depth PNG (metres * 25.5) for train, PNG + 16-bit mm PNG for test.
    Returns the RSIDE root (pass it as ``rside-csv:<root>``)."""
    from .synthetic import render_frame

    root = Path(root)
    rng = np.random.default_rng(seed)
    lines: dict[str, list[str]] = {"train": [], "test": []}
    for k in range(train_rows + len(test_names)):
        image, depth = render_frame(seed, k, height, width)
        rgb = np.clip(image.transpose(1, 2, 0) + rng.normal(0.0, noise, (height, width, 3)), 0, 255).astype(np.uint8)
        if k < train_rows:
            rel = f"data/nyu2_train/room_{k // 16:04d}_out/{k % 16}"
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(rgb).save(root / f"{rel}.jpg", quality=FIXTURE_JPEG_QUALITY)
            encoded = np.round(depth / TRAIN_DEPTH_SCALE_M).clip(0, 255).astype(np.uint8)
            Image.fromarray(encoded).save(root / f"{rel}.png")
            lines["train"].append(f"{rel}.jpg,{rel}.png")
        else:
            rel = f"data/nyu2_test/{test_names[k - train_rows]:05d}"
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(rgb).save(root / f"{rel}_colors.png")
            Image.fromarray(np.round(depth * 1000).astype(np.uint16)).save(root / f"{rel}_depth.png")
            lines["test"].append(f"{rel}_colors.png,{rel}_depth.png")
    for split, rows in lines.items():
        (root / "data" / f"nyu2_{split}.csv").write_text("\n".join(rows) + "\n")
    return root
