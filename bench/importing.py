"""``bench import rside-checkpoint``: an official RSIDE release as a run directory the runner can evaluate.

The released file is read with ``architectures.rside.load_official_checkpoint`` (strict key and shape
check), and written as checkpoints/last.pt in our format (``kind = "imported"``) next to a config.json whose
config has ``source = "imported"`` and ``epochs = 0``. ``bench run --suite paper --only 'rside-*'`` finds the
directory at its run id and evaluates the weights instead of training.
"""

from __future__ import annotations

from pathlib import Path

from bench.config import RunConfig
from bench.io import torch_save_atomic
from bench.paths import DEFAULT_RUNS_DIR
from bench.provenance import collect_provenance, file_fingerprint, resolved_model_options
from bench.rundir import RunDir, RunDirError, RunState
from bench.suite import load_suite
from bench.train import CHECKPOINT_FORMAT

__all__ = ["OFFICIAL_TRAIN_VARIANT", "import_rside_checkpoint", "imported_config"]

OFFICIAL_TRAIN_VARIANT = "rside-official"  # Hu et al.'s own training set (~50k NYU raw frames) and schedule


def imported_config(backbone: str, checkpoint: Path) -> RunConfig:
    """The paper suite's run for rside-<backbone> (or its defaults), marked as imported from ``checkpoint``."""
    loaded = load_suite("paper")
    match = next((r for r in loaded.runs if r.arch == "rside" and r.backbone == backbone), None)
    base = match or loaded.defaults.replace(
        name=f"rside-{backbone}", arch="rside", backbone=backbone, options={}, tables=()
    )
    return base.replace(
        source="imported",
        weights=str(checkpoint.resolve()),
        epochs=0,
        max_steps=None,
        seed=0,
        train_variant=OFFICIAL_TRAIN_VARIANT,
    )


def import_rside_checkpoint(
    checkpoint: str | Path, backbone: str, out: str | Path | None = None, runs_dir: str | Path = DEFAULT_RUNS_DIR
) -> RunDir:
    """Write ``out`` (default runs/paper-rside-<backbone>-s0) from a released RSIDE checkpoint."""
    from architectures.rside import load_official_checkpoint

    checkpoint = Path(checkpoint)
    config = imported_config(backbone, checkpoint)
    rd = RunDir(out) if out is not None else RunDir.for_config(config, runs_dir)
    if rd.state() != RunState.ABSENT or rd.last_checkpoint.exists():
        raise RunDirError(f"{rd.root} already holds a run ({rd.state()}); move it away or pass another --out")
    model = load_official_checkpoint(checkpoint, backbone)  # strict: raises CheckpointError on any mismatch
    payload = {"format": CHECKPOINT_FORMAT, "kind": "imported", "config": config.to_dict(), "model": model.state_dict()}
    torch_save_atomic(payload, rd.last_checkpoint)  # a full disk: DiskFullError, one line
    provenance = collect_provenance("cpu", None, None, resolved_model_options(config.arch, config.options))
    provenance["imported"] = {
        "checkpoint": file_fingerprint(checkpoint),
        "loader": "architectures.rside.load_official_checkpoint",
        "backbone": backbone,
        "origin": "JunjH/Revisiting_Single_Depth_Estimation released weights (Hu et al., WACV 2019)",
    }
    rd.write_config(config, provenance)  # last: its presence marks the import as complete
    rd.log(f"imported {checkpoint} as rside-{backbone} ({sum(p.numel() for p in model.parameters()):,} parameters)")
    return rd
