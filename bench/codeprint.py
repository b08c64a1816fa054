"""A fingerprint of the code that decides a run's numbers, so that runs trained by different code are not paired.

Recorded in every run's provenance (``provenance["code"]``, by ``bench.provenance.collect_provenance``) as::

    {"torch": "2.14.1+cu130",
     "files": {"architectures/drnet.py": "<sha256 of the file>", ..., "bench/train.py": "<sha256>"},
     "digest": "<sha256 over the lines '<path> <sha256>' in path order, then 'torch <version>'>"}

The files are read where Python imports them from (the installed packages, editable or not), so the
fingerprint needs no git checkout; line endings are normalised to ``\\n`` before hashing, so a Windows
checkout of the same commit has the same fingerprint.

Which files decide the numbers (``numerics_files``):

- ``architectures/``: everything (models, blocks, backbones, losses, the registry and model factories, and
  ``data/``: readers, transforms, input geometry, evaluation protocols, the synthetic generator and the
  official split lists ``data/splits/*.txt``), except what cannot touch a tensor: ``files.py`` (atomic
  writes), ``data/downloads.py`` (where data lives and what to say when it is missing), ``data/info.py``
  (``bench data info``) and ``data/preview.py`` (pictures). A new module there is included automatically.
- ``bench/``: only the modules that run the numerics: ``train.py`` (loop, optimiser, schedule, seeding,
  clipping), ``evaluate.py`` (prediction, resizing, masks), ``metrics.py`` (per-frame statistics and their
  reductions), ``runtime.py`` (AMP autocast, device), ``distributed.py`` (loss averaging over processes),
  ``importing.py`` (official checkpoints converted to runs), ``datasets.py`` (a run's training and test
  subsets) and ``runmodel.py`` (the model built from the run's seed, the evaluation's protocol and input
  geometry). The orchestration around them (``lifecycle.py``, ``checks.py``, the launchers) is left out: an
  edit to a message there cannot change a number.
- the torch version (``torch.__version__``, with its CUDA build suffix): kernels and defaults change between
  releases. Other libraries and CUDA/cuDNN versions are recorded in ``provenance["versions"]``.

Runs whose digests differ are "not comparable" (``bench.report.regime``) unless the user accepts the drift.
"""

from __future__ import annotations

import hashlib
import importlib.util
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = [
    "ARCHITECTURES_EXCLUDED",
    "BENCH_NUMERICS",
    "code_fingerprint",
    "fingerprint_changes",
    "numerics_files",
]

# Files of architectures/ that cannot change a number (paths relative to the directory holding the packages).
ARCHITECTURES_EXCLUDED = frozenset(
    {
        "architectures/files.py",
        "architectures/data/downloads.py",
        "architectures/data/info.py",
        "architectures/data/preview.py",
    }
)
# The modules of bench/ that run or set up the numerics (everything else there reports, plans or schedules).
BENCH_NUMERICS = (
    "bench/distributed.py",
    "bench/evaluate.py",
    "bench/importing.py",
    "bench/metrics.py",
    "bench/datasets.py",
    "bench/runmodel.py",
    "bench/runtime.py",
    "bench/train.py",
)


def numerics_files(root: Path | None = None) -> dict[str, Path]:
    """The files that decide the numbers, as {path relative to ``root``: file}, sorted by path.

    ``root`` is the directory that holds the ``architectures`` and ``bench`` packages (default: where Python
    imports them from)."""
    arch_dir = _package_dir("architectures", root)
    bench_dir = _package_dir("bench", root)
    found = {
        f"architectures/{p.relative_to(arch_dir).as_posix()}": p
        for p in [*arch_dir.rglob("*.py"), *(arch_dir / "data" / "splits").glob("*.txt")]
        if "__pycache__" not in p.parts
    }
    files = {k: v for k, v in found.items() if k not in ARCHITECTURES_EXCLUDED}
    for rel in BENCH_NUMERICS:
        path = bench_dir / rel.removeprefix("bench/")
        if not path.is_file():
            raise FileNotFoundError(f"{rel} is listed in bench.codeprint.BENCH_NUMERICS but {path} does not exist")
        files[rel] = path
    return dict(sorted(files.items()))


def code_fingerprint(root: Path | None = None, torch_version: str | None = None) -> dict[str, Any]:
    """{"torch": version, "files": {path: sha256}, "digest": sha256} of ``numerics_files(root)``.

    ``torch_version`` defaults to the imported torch's ``__version__``."""
    if torch_version is None:
        import torch

        torch_version = str(torch.__version__)
    files = {rel: _sha256(path) for rel, path in numerics_files(root).items()}
    lines = [f"{rel} {sha}\n" for rel, sha in files.items()] + [f"torch {torch_version}\n"]
    return {"torch": torch_version, "files": files, "digest": hashlib.sha256("".join(lines).encode()).hexdigest()}


def fingerprint_changes(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[str]:
    """What differs between two recorded fingerprints: 'torch 2.4.0 vs 2.5.1', then each file whose content
    differs, is only in ``a`` ('<path> (only in the first)') or only in ``b``; empty when they agree."""
    out = []
    if a.get("torch") != b.get("torch"):
        out.append(f"torch {a.get('torch')} vs {b.get('torch')}")
    fa, fb = a.get("files") or {}, b.get("files") or {}
    for rel in sorted({*fa, *fb}):
        if rel not in fb:
            out.append(f"{rel} (only in the first)")
        elif rel not in fa:
            out.append(f"{rel} (only in the second)")
        elif fa[rel] != fb[rel]:
            out.append(rel)
    return out


def _package_dir(name: str, root: Path | None) -> Path:
    if root is not None:
        return Path(root) / name
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError(f"cannot find the {name} package to fingerprint")
    return Path(spec.origin).parent


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes().replace(b"\r\n", b"\n")).hexdigest()
