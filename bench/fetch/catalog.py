"""What ``bench fetch`` can download: each item's published location(s), size, hash and how it is unpacked.

Every location is the one the project itself publishes (its README or its code); the comment beside each entry
names that file. A size is ``exact`` only where the byte count is known; otherwise ``approx_bytes`` (from the
README's rounded figure or an estimate, said so in ``size_note``) only sizes the free-space check and the dry
run. A hash is a full sha256 or, for torch hub files, the sha256 prefix in the file name (``resnet50-0676ba61.pth``:
the file's sha256 starts with 0676ba61; torch.hub's ``check_hash`` checks the same).

Where files go (``destinations``):
- ``nyu-labeled``: ``<data-dir>/nyu_depth_v2_labeled.mat`` (read as ``--data nyu-labeled:<that file>``);
- ``rside-data``: RSIDE's ``data/`` folder (``nyu2_train.csv``, ``nyu2_test.csv`` and their image folders) as
  ``<data-dir>`` itself when it is named ``data``, else as ``<data-dir>/data``; read as ``--data rside-csv:<data-dir>``
  either way (``architectures.data.rside_csv.find_csv`` looks in both places, and the CSV rows, which start
  with ``data/``, resolve against the folder above);
- ``weights``: the torch hub cache that ``weights = "imagenet"`` reads (``imagenet_cache_dir()``, respects
  ``$TORCH_HOME``), under the file names ``architectures.backbones`` accepts;
- ``rside-checkpoints``: unpacked into ``<data-dir>/rside_pretrained/``, for ``bench import rside-checkpoint``.
"""

from __future__ import annotations

from dataclasses import dataclass

from architectures.data.downloads import (
    DENSEDEPTH_NYU_DATA_APPROX_BYTES,
    DENSEDEPTH_NYU_DATA_README_URL,
    DENSEDEPTH_NYU_DATA_URL,
    NYU_LABELED_BYTES,
    NYU_LABELED_SHA256,
    NYU_LABELED_URL,
    RSIDE_DATA_DRIVE_ID,
    google_drive_download_url,
)

__all__ = [
    "CATALOG",
    "CHECKPOINT_BACKBONES",
    "GROUPS",
    "Item",
    "Source",
    "TARGETS",
    "WEIGHTS",
    "weights_item",
]


@dataclass(frozen=True)
class Source:
    """One published location of a file."""

    url: str
    origin: str  # which README or source file publishes this location


@dataclass(frozen=True)
class Item:
    """One downloadable file, and what to do with it once verified."""

    name: str  # target name on the command line ("weights" items: "weights:<backbone>")
    title: str  # one line for humans
    filename: str  # name of the downloaded file
    sources: tuple[Source, ...]  # tried in order (mirrors); a partial download resumes from its own source
    exact_bytes: int | None = None  # published exact size: verified
    approx_bytes: int | None = None  # rounded or estimated size: free-space check and dry run only
    size_note: str = ""  # where the size comes from
    sha256: str | None = None  # full hex digest, or the prefix a torch hub file name carries
    hash_note: str = ""  # where the hash comes from
    unpack: str | None = None  # None (use the file as is), "rside-data" or "rside-checkpoints"
    backbone: str | None = None  # weights items: the encoder

    @property
    def size_bytes(self) -> int | None:
        """Best known size (bytes) for planning: exact, else approximate, else None."""
        return self.exact_bytes if self.exact_bytes is not None else self.approx_bytes


# --- data ------------------------------------------------------------------------------------------------------

NYU_LABELED = Item(
    name="nyu-labeled",
    title="NYU Depth v2 labeled set (1449 frames, official 795/654 split; the paper-labeled suite)",
    filename="nyu_depth_v2_labeled.mat",
    # the NYU Depth v2 page (cs.nyu.edu/~silberman/datasets/nyu_depth_v2.html), "Labeled dataset (~2.8 GB)"
    sources=(Source(NYU_LABELED_URL, "NYU Depth v2 page, 'Labeled dataset (~2.8 GB)'"),),
    exact_bytes=NYU_LABELED_BYTES,
    size_note="recorded identically by independent downloads (NYU publishes '~2.8 GB')",
    sha256=NYU_LABELED_SHA256,
    hash_note="recorded identically by independent downloads; NYU publishes no hash",
)

RSIDE_DATA = Item(
    name="rside-data",
    title="RSIDE's training and test data (~50k NYU raw frames + the 654 official test frames; nyu_data.zip layout)",
    filename="nyu_data.zip",
    sources=(
        # JunjH/Revisiting_Single_Depth_Estimation README.md: "Download the data: https://drive.google.com/file/d/
        # 1WoOZOBpOWfmwe7bknWS5PMUCLBPFKTOw/view" (a Google Drive file: large files need the confirmation step)
        Source(google_drive_download_url(RSIDE_DATA_DRIVE_ID), "RSIDE README, 'Download the data' (Google Drive)"),
        # ialhashim/DenseDepth README.md (to 2019-07): "[NYU Depth V2 (50K)](.../densedepth/nyu_data.zip) (4.1 GB)";
        # its issue #56: "The exact data in that zip file are from [RSIDE]"
        Source(DENSEDEPTH_NYU_DATA_URL, "DenseDepth README, 'NYU Depth V2 (50K) (4.1 GB)', direct link"),
        # ialhashim/DenseDepth README.md (current): the same entry behind a short link
        Source(DENSEDEPTH_NYU_DATA_README_URL, "DenseDepth README (current), short link to nyu_data.zip"),
    ),
    approx_bytes=DENSEDEPTH_NYU_DATA_APPROX_BYTES,
    size_note="not published exactly: DenseDepth README says '4.1 GB'; RSIDE's README gives no size",
    hash_note="not published; checked instead by unpacking (zip CRCs) and opening both CSVs with rside_csv",
    unpack="rside-data",
)

# --- official RSIDE checkpoints ----------------------------------------------------------------------------------

RSIDE_CHECKPOINTS_DRIVE_ID = "1QaUkdOiGpMuzMeWCGbey0sT0wXY0xtsj"
# file names inside the archive (test.py loads ./pretrained_model/model_senet) -> the --backbone of
# `bench import rside-checkpoint`
CHECKPOINT_BACKBONES = {"model_resnet": "resnet50", "model_densenet": "densenet161", "model_senet": "senet154"}

RSIDE_CHECKPOINTS = Item(
    name="rside-checkpoints",
    title="RSIDE's released networks (ResNet-50, DenseNet-161, SENet-154), for `bench import rside-checkpoint`",
    filename="rside_pretrained_model.zip",
    sources=(
        # JunjH/Revisiting_Single_Depth_Estimation README.md: "Download the pretrained model: https://drive.google.com/
        # file/d/1QaUkdOiGpMuzMeWCGbey0sT0wXY0xtsj/view" (later README versions: "Download the trained models")
        Source(
            google_drive_download_url(RSIDE_CHECKPOINTS_DRIVE_ID),
            "RSIDE README, 'Download the pretrained model' (Google Drive)",
        ),
    ),
    size_note="not published",
    hash_note="not published; checked instead by unpacking (zip CRCs) and `bench import`'s strict key check",
    unpack="rside-checkpoints",
)

# --- ImageNet encoder weights ------------------------------------------------------------------------------------

_TORCHVISION = "https://download.pytorch.org/models/"
_TIMM_RELEASES = "https://github.com/rwightman/pytorch-image-models/releases/download/v0.1-weights/"
MIB = 1 << 20

# backbone -> (URL, origin, approximate size in bytes, size note). The file name is the URL's last part and the
# first name architectures.backbones accepts for that backbone (tests check both against torchvision and timm).
WEIGHTS: dict[str, tuple[str, str, int, str]] = {
    # torchvision/models/resnet.py, ResNet*_Weights.IMAGENET1K_V1 (url=..., meta "_file_size" in MiB)
    "resnet18": (f"{_TORCHVISION}resnet18-f37072fd.pth", "torchvision resnet.py ResNet18_Weights.IMAGENET1K_V1",
                 round(44.661 * MIB), "torchvision _file_size 44.661 MiB"),
    "resnet34": (f"{_TORCHVISION}resnet34-b627a593.pth", "torchvision resnet.py ResNet34_Weights.IMAGENET1K_V1",
                 round(83.275 * MIB), "torchvision _file_size 83.275 MiB"),
    "resnet50": (f"{_TORCHVISION}resnet50-0676ba61.pth", "torchvision resnet.py ResNet50_Weights.IMAGENET1K_V1",
                 round(97.781 * MIB), "torchvision _file_size 97.781 MiB"),
    "resnet101": (f"{_TORCHVISION}resnet101-63fe2227.pth", "torchvision resnet.py ResNet101_Weights.IMAGENET1K_V1",
                  round(170.511 * MIB), "torchvision _file_size 170.511 MiB"),
    "resnet152": (f"{_TORCHVISION}resnet152-394f9c45.pth", "torchvision resnet.py ResNet152_Weights.IMAGENET1K_V1",
                  round(230.434 * MIB), "torchvision _file_size 230.434 MiB"),
    # torchvision/models/densenet.py, DenseNet161_Weights.IMAGENET1K_V1
    "densenet161": (f"{_TORCHVISION}densenet161-8d451a50.pth",
                    "torchvision densenet.py DenseNet161_Weights.IMAGENET1K_V1",
                    round(110.369 * MIB), "torchvision _file_size 110.369 MiB"),
    # timm/models/senet.py default_cfgs['legacy_senet154.in1k'] url=... (timm publishes no size: estimated from the
    # state_dict's 461,347,400 tensor bytes)
    "senet154": (f"{_TIMM_RELEASES}legacy_senet154-e9eb9fe6.pth", "timm senet.py default_cfgs 'legacy_senet154.in1k'",
                 461_347_400, "not published; estimate from its state_dict's tensor bytes"),
}  # fmt: skip


def weights_item(backbone: str) -> Item:
    """The ImageNet weights of ``backbone``; unknown names list the available ones."""
    try:
        url, origin, approx, note = WEIGHTS[backbone]
    except KeyError:
        raise ValueError(f"no ImageNet weights known for {backbone!r}; available: {', '.join(WEIGHTS)}") from None
    filename = url.rsplit("/", 1)[1]
    prefix = filename.rsplit("-", 1)[1].split(".")[0]
    return Item(
        name=f"weights:{backbone}",
        title=f"ImageNet weights of {backbone}",
        filename=filename,
        sources=(Source(url, origin),),
        approx_bytes=approx,
        size_note=note,
        sha256=prefix,
        hash_note="in the file name: torch hub convention, the same check as torch.hub check_hash",
        backbone=backbone,
    )


CATALOG: dict[str, Item] = {item.name: item for item in (NYU_LABELED, RSIDE_DATA, RSIDE_CHECKPOINTS)}

# Command-line targets. "paper" is everything the paper regime needs (the paper suite's training data and
# encoders, and RSIDE's released networks for comparison); "all" adds the labeled .mat (paper-labeled suite).
GROUPS: dict[str, str] = {
    "paper": "the paper regime: rside-data, the paper suite's encoder weights, rside-checkpoints",
    "all": "paper + nyu-labeled",
}
TARGETS: dict[str, str] = {
    **GROUPS,
    "nyu-labeled": NYU_LABELED.title,
    "rside-data": RSIDE_DATA.title,
    "weights": "ImageNet weights of the encoders (--backbone; default: the paper suite's)",
    "rside-checkpoints": RSIDE_CHECKPOINTS.title,
}
