"""Which model a run trained: architecture, backbone and the options it was built with.

A run directory records its resolved options in ``provenance.model_options`` (bench.provenance
``resolved_model_options``: the architecture's defaults of that code version overlaid with the suite's explicit
options). Runs written before that record existed have only the explicit options; for them:

- an option whose default has changed in this project's history (``CHANGED_DEFAULTS``) and that the suite did
  not set is *not recorded*: its value is unknown;
- every other option took the default it still has, which a recorded run's ``defaults`` tell.

Two runs are the same model when their arch and backbone agree and no option differs; an unknown value differs
from every recorded value, and two unknown values count as equal (runs without a record are pooled with each
other when their explicit options agree, as before the record existed). So seeds whose models differ are
never pooled, and a run without a record is pooled with a recorded one only where its suite options fixed
every option whose default changed. The report reads this module without importing torch.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bench.report.runs import EvalRun, RunGroup

__all__ = [
    "CHANGED_DEFAULTS",
    "NOT_RECORDED",
    "ModelIdentity",
    "identity_of",
    "model_option_differences",
    "options_label",
    "same_model",
    "split_by_model",
    "split_notes",
]

# arch -> option -> its earlier defaults. Add an entry whenever a default changes (docs/reports.md, "Model identity").
CHANGED_DEFAULTS: dict[str, dict[str, tuple[Any, ...]]] = {
    "drnet": {"up2_init": ("default",)},  # PyTorch's init until issue 17 (docs/2026-12-01-why-drnet-started-badly.md)
}
NOT_RECORDED = "not recorded"
_SWITCHES = ("diagonal", "aux_losses", "second_branch")  # bench.report.runs.ABLATION_SWITCHES: shown by the row


@dataclass(frozen=True)
class ModelIdentity:
    """One run's model. ``resolved``/``defaults`` are None for a run written before the record existed."""

    arch: str
    backbone: str
    explicit: Mapping[str, Any]  # the suite's options (config.json / metrics.json)
    resolved: Mapping[str, Any] | None
    defaults: Mapping[str, Any] | None

    @property
    def recorded(self) -> bool:
        return self.resolved is not None

    @property
    def unknown(self) -> tuple[str, ...]:
        """Options whose value this run's directory cannot tell (empty for recorded runs)."""
        if self.recorded:
            return ()
        return tuple(k for k in CHANGED_DEFAULTS.get(self.arch, {}) if k not in self.explicit)

    def value(self, option: str, defaults: Mapping[str, Any] | None) -> Any:
        """The option's value; ``defaults`` (another run's record) fills options an unrecorded run left
        unset; NOT_RECORDED where nothing can tell."""
        if self.resolved is not None:
            return self.resolved.get(option, NOT_RECORDED)
        if option in self.explicit:
            return self.explicit[option]
        if option in self.unknown or defaults is None:
            return NOT_RECORDED
        return defaults.get(option, NOT_RECORDED)


def identity_of(run: EvalRun) -> ModelIdentity:
    """The model of one run, from metrics.json (arch, backbone, options) and provenance.model_options."""
    record = run.provenance.get("model_options") if isinstance(run.provenance, Mapping) else None
    resolved = record.get("resolved") if isinstance(record, Mapping) else None
    defaults = record.get("defaults") if isinstance(record, Mapping) else None
    return ModelIdentity(
        run.arch,
        run.backbone,
        run.options,
        dict(resolved) if isinstance(resolved, Mapping) else None,
        dict(defaults) if isinstance(defaults, Mapping) else None,
    )


def differing_options(a: ModelIdentity, b: ModelIdentity, skip: Iterable[str] = ()) -> dict[str, tuple[Any, Any]]:
    """option -> (value in a, value in b) where the two differ; NOT_RECORDED differs from any recorded value."""
    skip = set(skip)
    names = {*a.explicit, *b.explicit, *a.unknown, *b.unknown, *(a.resolved or {}), *(b.resolved or {})}
    out = {}
    for k in sorted(names - skip):
        va, vb = a.value(k, b.defaults), b.value(k, a.defaults)
        if va == NOT_RECORDED and vb == NOT_RECORDED and not (a.recorded or b.recorded):
            continue  # neither run recorded it: as before the record existed
        if va != vb:
            out[k] = (va, vb)
    return out


def same_model(a: ModelIdentity, b: ModelIdentity) -> bool:
    """Same arch, backbone and options (the module docstring gives the rule for runs without a record)."""
    return (a.arch, a.backbone) == (b.arch, b.backbone) and not differing_options(a, b)


def split_by_model(runs: Sequence[EvalRun]) -> list[list[EvalRun]]:
    """The runs of one suite entry split into sets of the same model; complete records and most seeds first."""
    parts: list[list[tuple[EvalRun, ModelIdentity]]] = []
    for run in runs:
        ident = identity_of(run)
        for part in parts:
            if all(same_model(ident, other) for _, other in part):
                part.append((run, ident))
                break
        else:
            parts.append([(run, ident)])
    parts.sort(key=lambda p: (any(i.unknown for _, i in p), -len(p), min(r.seed for r, _ in p)))
    return [[r for r, _ in part] for part in parts]


def options_label(group: RunGroup) -> str:
    """The group's model options in plain words where they are not the defaults ("up2_init=default"), or
    what was not recorded ("options not recorded: up2_init unknown"); "" for today's defaults. The Table 3
    switches are left out (the row names them). A recorded seed speaks for the group when there is one."""
    idents = [identity_of(r) for r in group.runs]
    ident = next((i for i in idents if i.recorded), idents[0])
    if not ident.recorded:
        parts = [f"{k}={_plain(v)}" for k, v in sorted(ident.explicit.items()) if k not in _SWITCHES]
        if ident.unknown:
            parts.insert(0, f"options not recorded: {', '.join(ident.unknown)} unknown")
        return ", ".join(parts)
    defaults, earlier = ident.defaults or {}, CHANGED_DEFAULTS.get(ident.arch, {})
    shown = [
        f"{k}={_plain(v)}"
        for k, v in sorted(ident.resolved.items())
        if k not in _SWITCHES and (k not in defaults or v != defaults[k] or v in earlier.get(k, ()))
    ]
    return ", ".join(shown)


def model_option_differences(*groups: RunGroup) -> list[str]:
    """Options (other than the Table 3 switches) on which runs of one architecture in ``groups`` differ, as
    'model option up2_init zero vs not recorded'; empty when the groups hold more than one architecture
    (DRNet vs RSIDE: their options are not comparable quantities)."""
    idents = [identity_of(r) for g in groups for r in g.runs]
    if len({i.arch for i in idents}) != 1:
        return []
    seen: dict[str, list[Any]] = {}
    for other in idents[1:]:
        for k, (va, vb) in differing_options(idents[0], other, skip=_SWITCHES).items():
            values = seen.setdefault(k, [va])
            if vb not in values:
                values.append(vb)
    return [f"model option {k} {' vs '.join(_plain(v) for v in vals)}" for k, vals in seen.items()]


def split_notes(groups: Sequence[RunGroup]) -> list[str]:
    """One note per suite entry whose seeds were split because their models differ."""
    by_entry: dict[tuple[str, str], list[RunGroup]] = {}
    for g in groups:
        by_entry.setdefault((g.first.suite, g.first.name), []).append(g)
    notes = []
    for (suite, name), parts in by_entry.items():
        if len(parts) > 1:
            diffs = model_option_differences(*parts) or ["model options"]
            seeds = " and ".join(f"seed(s) {','.join(str(r.seed) for r in p.runs)}" for p in parts)
            notes.append(
                f"{suite}-{name}: {seeds} were built with different models ({'; '.join(diffs)}); they are not pooled"
            )
    return notes


def _plain(v: Any) -> str:
    if isinstance(v, list | tuple):
        return "(" + ",".join(map(str, v)) + ")"
    return str(v)
