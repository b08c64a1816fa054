"""Where the NYU data sets are published, and what to tell a user whose data cannot be opened.

The messages name the file or layout a source expects, the published location (from the projects' own
READMEs) and the cheaper alternatives, so that a missing data set stops a plan with a way out.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = [
    "NYU_LABELED_BYTES",
    "NYU_LABELED_DEFAULT",
    "NYU_LABELED_URL",
    "RSIDE_DATA_URL",
    "RSIDE_TRAIN_PAIRS",
    "download_target",
    "missing_data_message",
]

NYU_LABELED_URL = "http://horatio.cs.nyu.edu/mit/silberman/nyu_depth_v2/nyu_depth_v2_labeled.mat"
NYU_LABELED_BYTES = 2_972_037_809
# RSIDE's pre-processed training/test pairs: the "Download the data" link of its README
# (JunjH/Revisiting_Single_Depth_Estimation); DenseDepth's nyu_data.zip holds the same pairs (its README: 4.1 GB)
RSIDE_DATA_URL = "https://drive.google.com/file/d/1WoOZOBpOWfmwe7bknWS5PMUCLBPFKTOw/view?usp=sharing"
RSIDE_TRAIN_PAIRS = 50_688  # rows of nyu2_train.csv as commonly quoted (not checked against the file here)
NYU_LABELED_DEFAULT = "data/nyu_depth_v2_labeled.mat"  # the paper-labeled suite's data_path


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
        msg += (
            f"\n       {mkdir}curl -L --fail -o {target} {NYU_LABELED_URL}"
            + (f"\n     then pass --data nyu-labeled:{target}" if str(target) != str(where) else "")
            + "\n     or pass --data nyu-labeled:/path/to/nyu_depth_v2_labeled.mat; "
            "or run on the embedded synthetic rooms with --data synthetic"
        )
    elif source == "rside-csv":
        where = path or "data"
        msg += (
            f"\n  -> the paper regime trains on RSIDE's training set. Fetch RSIDE's pre-processed data (the "
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
