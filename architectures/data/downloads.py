"""Where the NYU data sets are published, and what to tell a user whose data cannot be opened.

The messages name the file or layout a source expects, the published location (from the projects' own
READMEs) and the cheaper alternatives, so that a missing data set stops a plan with a way out.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = [
    "DENSEDEPTH_NYU_DATA_APPROX_BYTES",
    "DENSEDEPTH_NYU_DATA_README_URL",
    "DENSEDEPTH_NYU_DATA_URL",
    "NYU_LABELED_BYTES",
    "NYU_LABELED_DEFAULT",
    "NYU_LABELED_SHA256",
    "NYU_LABELED_URL",
    "RSIDE_DATA_DRIVE_ID",
    "RSIDE_DATA_URL",
    "RSIDE_TRAIN_PAIRS",
    "download_target",
    "google_drive_download_url",
    "missing_data_message",
]

# The official labeled set: the "Labeled dataset (~2.8 GB)" link of the NYU Depth v2 page
# (cs.nyu.edu/~silberman/datasets/nyu_depth_v2.html). NYU publishes neither the exact size nor a hash; the byte
# count and sha256 are the values several independent downloads recorded identically (third-party repositories,
# see shared/reference/nyu_data.md section 1), so a mismatch means a damaged download or a changed file.
NYU_LABELED_URL = "http://horatio.cs.nyu.edu/mit/silberman/nyu_depth_v2/nyu_depth_v2_labeled.mat"
NYU_LABELED_BYTES = 2_972_037_809
NYU_LABELED_SHA256 = "2d724b0c0ab358aa1ce5df855e5bd14a2279ab7202efe22f32a30d612dcb86aa"
# RSIDE's pre-processed training/test pairs: the "Download the data" link of its README
# (JunjH/Revisiting_Single_Depth_Estimation); DenseDepth's nyu_data.zip holds the same pairs (its README: 4.1 GB)
RSIDE_DATA_URL = "https://drive.google.com/file/d/1WoOZOBpOWfmwe7bknWS5PMUCLBPFKTOw/view?usp=sharing"
RSIDE_DATA_DRIVE_ID = "1WoOZOBpOWfmwe7bknWS5PMUCLBPFKTOw"
# ialhashim/DenseDepth README, "Data": "NYU Depth V2 (50K) (4.1 GB)". Its README linked this file directly until
# 2019-07 (commit cce1c10 and earlier) and links https://tinyurl.com/nyu-data-zip since (target not shown). The
# zip holds data/nyu2_train.csv, data/nyu2_test.csv and their folders (DenseDepth data.py reads those names).
DENSEDEPTH_NYU_DATA_URL = "https://s3-eu-west-1.amazonaws.com/densedepth/nyu_data.zip"
DENSEDEPTH_NYU_DATA_README_URL = "https://tinyurl.com/nyu-data-zip"
DENSEDEPTH_NYU_DATA_APPROX_BYTES = 4_100_000_000  # "4.1 GB" in the README; no exact size or hash is published
RSIDE_TRAIN_PAIRS = 50_688  # rows of nyu2_train.csv as commonly quoted (not checked against the file here)
NYU_LABELED_DEFAULT = "data/nyu_depth_v2_labeled.mat"  # the paper-labeled suite's data_path


def google_drive_download_url(file_id: str) -> str:
    """The direct-download form of a Google Drive file link (large files answer it with a confirmation page,
    which ``bench fetch`` follows)."""
    return f"https://drive.google.com/uc?export=download&id={file_id}"


def download_target(where: str | Path) -> Path:
    """Where to suggest downloading the labeled .mat: ``where`` if nothing is there yet and its directory can
    be written (or created); else data/nyu_depth_v2_labeled.mat or a numbered name next to it. Never a path
    that exists."""
    where = Path(where)
    if not where.exists() and not where.is_symlink() and _writable(where.parent):
        return where
    default = Path(NYU_LABELED_DEFAULT)
    candidate, n = default, 1
    while candidate.exists() or candidate.is_symlink():
        n += 1
        candidate = default.with_name(f"{default.stem}-{n}{default.suffix}")
    return candidate


def _writable(directory: Path) -> bool:
    """Whether a file can be written in ``directory`` (after ``mkdir -p`` if it does not exist yet)."""
    for d in (directory, *directory.parents):
        if d.exists():
            return d.is_dir() and os.access(d, os.W_OK)
    return False


def missing_data_message(source: str, path: str | None, exc: BaseException) -> str:
    """What to provide, and how, when a data source cannot be opened."""
    msg = f"data {source}:{path or '(default)'} cannot be used: {exc}"
    if source == "nyu-labeled":
        where = path or NYU_LABELED_DEFAULT
        target = download_target(where)
        mkdir = "" if target.parent.is_dir() else f"mkdir -p {target.parent} && "
        if Path(where).exists():  # the user's file is damaged or not the labeled set: never write over it
            msg += (
                f"\n  -> {where} is left as it is; download the official labeled NYU Depth v2 file "
                f"({NYU_LABELED_BYTES:,} bytes, MATLAB v7.3) to a new path and use that:"
            )
        else:
            msg += f"\n  -> provide the official labeled NYU Depth v2 file ({NYU_LABELED_BYTES:,} bytes, MATLAB v7.3):"
        if target.name == Path(NYU_LABELED_DEFAULT).name:  # where `bench fetch nyu-labeled --data-dir` puts it
            msg += f"\n       bench fetch nyu-labeled --data-dir {target.parent}   (verified, resumable)\n     or:"
        msg += (
            f"\n       {mkdir}curl -L --fail -o {target} {NYU_LABELED_URL}"
            + (f"\n     then pass --data nyu-labeled:{target}" if str(target) != str(where) else "")
            + "\n     or pass --data nyu-labeled:/path/to/nyu_depth_v2_labeled.mat; "
            "or run on the embedded synthetic rooms with --data synthetic"
        )
    elif source == "rside-csv":
        where = path or "data"
        msg += "\n  -> the paper regime trains on RSIDE's training set."
        if not where.endswith(".csv"):
            msg += (
                f" Fetch it (verified, resumable, unpacked where rside-csv:{where} reads it):\n"
                f"       bench fetch rside-data --data-dir {where}\n     or by hand:"
            )
        msg += (
            f" {'Fetch' if where.endswith('.csv') else 'fetch'} RSIDE's pre-processed data (the "
            f"'Download the data' link in the README of JunjH/Revisiting_Single_Depth_Estimation, "
            f"{RSIDE_DATA_URL}; DenseDepth's nyu_data.zip holds the same pairs, 4.1 GB zipped) and unpack it "
            f"so that {where}/ is RSIDE's ./data:\n"
            f"       {where}/nyu2_train.csv  ~{RSIDE_TRAIN_PAIRS:,} rows 'data/nyu2_train/<scene>_out/<n>.jpg,"
            f"...<n>.png' (640x480 JPEG; 8-bit PNG depth, metres = value/255*10)\n"
            f"       {where}/nyu2_test.csv   654 rows 'data/nyu2_test/NNNNN_colors.png,...NNNNN_depth.png' "
            f"(the official test frames; 16-bit PNG depth in mm)\n"
            f"       (the CSV paths start with data/, so {where}/ must sit in the directory they are relative "
            f"to, as in RSIDE's repository)\n"
            f"     or pass --data rside-csv:/path/to/that/data; or run the cheaper 795-frame variant, which is "
            f"not the paper's regime: bench run --suite paper-labeled (needs nyu_depth_v2_labeled.mat); "
            f"or check the pipeline on the embedded synthetic rooms with --data synthetic"
        )
    return msg
