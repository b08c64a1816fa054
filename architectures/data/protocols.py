"""Evaluation protocols: named, registered presets with every knob as a field, written into results.

Each protocol names its ground truth (``ground_truth``: the labeled .mat dataset it scores against) and its
input geometry. The data side (``eval_transform``) applies ``resize_rows`` and ``crop_hw`` to the image, and
to the ground truth when ``gt_resolution`` is "input" (RSIDE); with "frame" the ground truth stays at the
source frame's size (Eigen: 480x640). The network always sees the run's training geometry
(``architectures.data.geometry``); ``bench/evaluate.py`` applies the upsampling of the prediction to the
ground truth's size, ``eval_crop``, depth bounds, clamping, flip averaging and reduction from the same
record, so a result says exactly how it was obtained. Bounds follow the BTS/AdaBins convention: a
ground-truth pixel is scored when ``valid`` (finite, > 0) and ``min_depth_m < gt < max_depth_m``
(strict; None = no bound).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

from .._registry import Registry

__all__ = ["EIGEN_CROP", "GROUND_TRUTHS", "PROTOCOLS", "Protocol", "get_protocol", "register_protocol"]

EIGEN_CROP = (45, 471, 41, 601)  # rows 45:471, cols 41:601 (python slices) of the 480x640 frame; BTS/AdaBins
GROUND_TRUTHS = {  # ground_truth -> what it is (the labeled .mat dataset of that name)
    "depths": "in-painted depth (Levin colorization), metres, no holes; RSIDE's nyu2_test PNGs hold it in mm",
    "rawDepths": "raw Kinect depth projected to the RGB frame, metres, 0 = missing (BTS's extractor writes it)",
}


@dataclass(frozen=True)
class Protocol:
    """Every setting that changes an evaluation number."""

    name: str
    origin: str  # where the settings come from (citation)
    ground_truth: str  # the labeled .mat dataset scored against: "depths" (in-painted) or "rawDepths" (0 = hole)
    resize_rows: int | None  # Scale(n): shorter side to n px (the training scale); None = frame as stored
    crop_hw: tuple[int, int] | None  # centre crop (h, w) of the scaled image; None = the whole scaled frame
    gt_resolution: str  # "input": ground truth scaled and cropped with the image; "frame": kept at frame size
    upsample_align_corners: bool  # bilinear upsampling of the prediction to the ground-truth size
    eval_crop: tuple[int, int, int, int] | None  # (row0, row1, col0, col1) slice of the ground truth scored
    min_depth_m: float | None  # score gt > min (None: only valid > 0)
    max_depth_m: float | None  # score gt < max (None: no cap)
    clamp_prediction: bool  # clip predictions to [min_depth_m, max_depth_m] (nan -> min, inf -> max)
    reduction: str  # "rside" | "per_image" (bench.metrics.reduce_metrics)
    flip_tta: bool = False  # average with the prediction of the mirrored image (the *-flip variants; AdaBins)
    expected_frame_hw: tuple[int, int] | None = None  # source frame size the protocol assumes (h, w)

    def __post_init__(self) -> None:
        if self.ground_truth not in GROUND_TRUTHS:
            raise ValueError(
                f"protocol {self.name!r}: ground_truth {self.ground_truth!r}; expected one of "
                f"{', '.join(GROUND_TRUTHS)}"
            )
        if self.gt_resolution not in ("input", "frame"):
            raise ValueError(
                f"protocol {self.name!r}: gt_resolution {self.gt_resolution!r}; expected 'input' or 'frame'"
            )

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: tuples become lists."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


PROTOCOLS: Registry[Protocol] = Registry("evaluation protocol")


def register_protocol(protocol: Protocol) -> Protocol:
    """Add ``protocol`` under its name (a name already taken is an error)."""
    return PROTOCOLS.register(protocol.name, protocol)


def get_protocol(name: str | Protocol) -> Protocol:
    """The registered protocol ``name`` (a Protocol passes through)."""
    return name if isinstance(name, Protocol) else PROTOCOLS[name]


RSIDE = register_protocol(
    Protocol(
        name="rside",
        origin=(
            "RSIDE test.py / loaddata.py / util.py (JunjH/Revisiting_Single_Depth_Estimation @ f88c672): "
            "Scale(240) then CenterCrop 304x228 of image and ground truth, the 114x152 output upsampled "
            "bilinearly to 228x304 (PyTorch 0.3.1 F.upsample = align_corners=True), no depth cap, no Eigen "
            "crop, only NaN ground truth masked; per-image errors averaged, RMSE = sqrt(mean per-image MSE), "
            "deltas with <="
        ),
        ground_truth="depths",
        resize_rows=240,
        crop_hw=(228, 304),
        gt_resolution="input",
        upsample_align_corners=True,
        eval_crop=None,
        min_depth_m=None,
        max_depth_m=None,
        clamp_prediction=False,
        reduction="rside",
        expected_frame_hw=(480, 640),
    )
)

EIGEN = register_protocol(
    Protocol(
        name="eigen",
        origin=(
            "Eigen et al. NYU protocol as in BTS (cleinc/bts eval_with_pngs.py, bts_eval.py) and AdaBins "
            "(evaluate.py): ground truth rawDepths (BTS's extractor, 0 = missing) at the full 480x640, eval "
            "mask [45:471, 41:601], valid 1e-3 < gt < 10 m, predictions clipped to [1e-3, 10], per-image "
            "metrics averaged. The network sees the whole frame at the training scale (Scale(240): 240x320, "
            "RSIDE's training crop is 228x304 of it); the prediction is upsampled bilinearly to 480x640 with "
            "align_corners=True as in the AdaBins/ZoeDepth compute_metrics"
        ),
        ground_truth="rawDepths",
        resize_rows=240,
        crop_hw=None,
        gt_resolution="frame",
        upsample_align_corners=True,
        eval_crop=EIGEN_CROP,
        min_depth_m=1e-3,
        max_depth_m=10.0,
        clamp_prediction=True,
        reduction="per_image",
        expected_frame_hw=(480, 640),
    )
)

for _base in (RSIDE, EIGEN):  # flip-averaged test-time prediction (AdaBins evaluate.py), opt-in by name
    register_protocol(
        replace(
            _base,
            name=f"{_base.name}-flip",
            flip_tta=True,
            origin=f"{_base.name} with the prediction averaged with that of the mirrored input, flipped back "
            f"(AdaBins evaluate.py: each clipped, then averaged); not part of {_base.name}'s published protocol",
        )
    )
