"""Network input geometry: how a source frame becomes the tensor the network sees, for training and testing.

Training (RSIDE ``loaddata.py``) scales the frame so its shorter side is 240 px (640x480 -> 320x240), takes
the 228x304 centre crop and, when a run sets ``input_size``, resizes that crop bilinearly to it. A network
evaluated on other pixel scales sees objects at another apparent size than it learnt them, so evaluation
feeds it exactly this geometry: the same crop (``rside``), or the whole frame at the same scale (``eigen``,
whose ground truth and crop cover more than the training crop). ``GeometryError`` is raised on any mismatch.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from .common import DataError
from .transforms import RSIDE_CROP_HW, RSIDE_SCALE_ROWS

__all__ = ["GeometryError", "InputGeometry", "check_protocol_geometry", "train_geometry"]


class GeometryError(DataError):
    """The evaluation input would not have the geometry (scale, crop) the network was trained on."""


@dataclass(frozen=True)
class InputGeometry:
    """Training geometry: Scale(``resize_rows``) (shorter side, px), centre crop ``crop_hw`` (h, w), then a
    bilinear resize of that crop to ``net_hw`` (h, w), the network input (equal to ``crop_hw``: no resize)."""

    resize_rows: int = RSIDE_SCALE_ROWS
    crop_hw: tuple[int, int] = RSIDE_CROP_HW
    net_hw: tuple[int, int] = RSIDE_CROP_HW

    def network_input_hw(self, image_hw: tuple[int, int]) -> tuple[int, int]:
        """Network input (h, w) for a preprocessed image of ``image_hw`` at the training scale: the training
        crop maps to ``net_hw``; a larger view (the full scaled frame) by the same factors, rounded to pixels."""
        image_hw = (int(image_hw[0]), int(image_hw[1]))
        if image_hw == tuple(self.crop_hw):
            return tuple(self.net_hw)
        return (
            round(image_hw[0] * self.net_hw[0] / self.crop_hw[0]),
            round(image_hw[1] * self.net_hw[1] / self.crop_hw[1]),
        )

    def check_image(self, image_hw: tuple[int, int], protocol: Any) -> None:
        """Raise GeometryError unless a preprocessed evaluation image of ``image_hw`` is at training scale:
        the training crop itself (a protocol with ``crop_hw``) or a full frame whose shorter side is
        ``resize_rows``."""
        image_hw = (int(image_hw[0]), int(image_hw[1]))
        crop = getattr(protocol, "crop_hw", None)
        if crop is not None and image_hw != tuple(self.crop_hw):
            raise GeometryError(
                f"protocol {protocol.name!r}: evaluation images are {_hw(image_hw)}, but the "
                f"network was trained on {_hw(self.crop_hw)} crops"
            )
        if crop is None and min(image_hw) != self.resize_rows:
            raise GeometryError(
                f"protocol {protocol.name!r}: evaluation images are {_hw(image_hw)} (shorter "
                f"side {min(image_hw)} px), but training scaled frames to a shorter side of "
                f"{self.resize_rows} px: objects would appear at another size than trained on"
            )

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready (tuples become lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


def train_geometry(input_size: tuple[int, int] | None = None) -> InputGeometry:
    """The geometry of RSIDE's training transform, with the crop resized to ``input_size`` (h, w) if set."""
    return InputGeometry(net_hw=tuple(input_size) if input_size is not None else RSIDE_CROP_HW)


def check_protocol_geometry(protocol: Any, geometry: InputGeometry) -> None:
    """Raise GeometryError if ``protocol``'s preprocessing cannot give ``geometry``'s input: another Scale()
    or a crop other than the training crop."""
    rows, crop = getattr(protocol, "resize_rows", None), getattr(protocol, "crop_hw", None)
    if rows != geometry.resize_rows:
        raise GeometryError(
            f"protocol {protocol.name!r} scales frames to a shorter side of {rows} px, but the "
            f"network was trained at {geometry.resize_rows} px (Scale({geometry.resize_rows}))"
        )
    if crop is not None and tuple(crop) != tuple(geometry.crop_hw):
        raise GeometryError(
            f"protocol {protocol.name!r} crops {_hw(crop)}, but the network was trained on "
            f"{_hw(geometry.crop_hw)} crops"
        )


def _hw(hw: tuple[int, int]) -> str:
    return f"{hw[0]}x{hw[1]}"
