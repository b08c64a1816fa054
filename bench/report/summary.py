"""The summary: one headline row per claim of the paper, the rows it rests on folded under it.

``claims.evaluate_claims`` judges each claim per backbone, per sweep and mode, per memory definition; each row
says under which claim it belongs (``Claim.headline``) and how deep (``Claim.level``). ``summarise`` puts one
headline row (level 0) before each claim's rows, its verdict derived from the level-1 rows under it by a
stated rule (``HEADLINE_RULES``, also in TOLERANCES):

- ``every``: the paper claims it of every backbone it ran (accuracy parity, the paper's own gap): not
  reproduced if any judged backbone is not reproduced, else DRNet better by more than the margin if any
  is, else inconclusive if any is, else reproduced (every judged backbone reproduces it);
- ``agree``: a number measured on a device in a mode (speed, memory, real time): the outcome all judged
  setups agree on, else "depends on the device or mode";
- a Table 3 finding is a single verdict: it is its own headline.

Rows that are not judged (not comparable, not judged, not measured) do not decide a headline but are named in
it; with none judged the headline is the one outcome they share (a single row: its verdict word for word),
else "not judged".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from bench.report.claims import (
    BETTER_THAN_MARGIN,
    DEPENDS_ON_DEFINITION,
    DEPENDS_ON_SETUP,
    GAP_CLAIM,
    INCONCLUSIVE,
    NOT_JUDGED,
    NOT_MEASURED,
    NOT_REPRODUCED,
    PARITY_CLAIM,
    REPRODUCED,
    with_notes,
)
from bench.report.records import Claim

__all__ = ["AGREE", "EVERY", "HEADLINE_RULES", "headline_rule", "summarise"]

EVERY, AGREE = "every", "agree"
JUDGED = (REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE, BETTER_THAN_MARGIN, DEPENDS_ON_DEFINITION)
HEADLINE_RULES = {  # headline -> its rule; any other claim (Table 2's, whose titles name their ratios): AGREE
    PARITY_CLAIM: EVERY,
    GAP_CLAIM: EVERY,
}
HEADLINE_PAPER = {  # the paper's evidence of a headline over several backbones (each row quotes its own)
    PARITY_CLAIM: "'our network gives around the same result' as RSIDE (Table 1's caption), on every backbone",
    GAP_CLAIM: "Table 1's DRNet and RSIDE RMSE per backbone (each row below quotes its own)",
}
_EVERY_ORDER = (NOT_REPRODUCED, BETTER_THAN_MARGIN, INCONCLUSIVE, REPRODUCED)  # the first present decides


def headline_rule(headline: str) -> str:
    """The rule that derives ``headline``'s verdict from its rows: EVERY or AGREE."""
    return HEADLINE_RULES.get(headline, AGREE)


def summarise(claims: Sequence[Claim]) -> list[Claim]:
    """The summary's rows: per claim of the paper (in the order of ``claims``), its headline and then its rows.
    A claim judged in one row at level 0 (a Table 3 finding) is its own headline."""
    sections: dict[str, list[Claim]] = {}
    for c in claims:
        sections.setdefault(c.headline or c.claim, []).append(c)
    out: list[Claim] = []
    for title, rows in sections.items():
        if len(rows) == 1 and rows[0].level == 0:
            out += rows
        else:
            out += [_headline(title, rows), *rows]
    return out


def _headline(title: str, rows: Sequence[Claim]) -> Claim:
    """The headline row of one claim from the rows under it (see the module docstring)."""
    top = _named_setups(rows) or list(rows)  # the level-1 rows; a section without any: all its rows
    notes = "; ".join(dict.fromkeys(n for r in rows for n in r.notes.split("; ") if n))
    rule = headline_rule(title)
    if len(top) == 1:
        verdict, outcome = top[0].verdict, top[0].outcome
        to_decide = top[0].to_decide
    else:
        verdict, outcome = (_every if rule == EVERY else _agree)(top)
        verdict, to_decide = with_notes(verdict, notes), ""
    what = ("backbone", "backbones") if rule == EVERY else ("setup (sweep, mode)", "setups (sweep, mode)")
    judged = sum(r.outcome in JUDGED for r in top)
    scope = f"{len(top)} {what[len(top) != 1]}, {judged} judged; rule: {rule}"
    return Claim(
        claim=title,
        scope=top[0].scope if len(top) == 1 else scope,
        paper=top[0].paper if len(top) == 1 else HEADLINE_PAPER.get(title, top[0].paper),
        measured="; ".join(f"{_label(r, rule)}: {r.outcome}" for r in top),
        verdict=verdict,
        outcome=outcome,
        notes=notes,
        headline=title,
        level=0,
        to_decide=to_decide,
    )


def _named_setups(rows: Sequence[Claim]) -> list[Claim]:
    """The level-1 rows of ``rows`` (in order), each whose scope names no device (a memory row over the three
    definitions: 'all three definitions · inference') given the device of the first row under it that does."""
    out = []
    for i, r in enumerate(rows):
        if r.level != 1:
            continue
        parts = r.scope.split(" · ")
        if len(parts) < 3:
            under = next((x for x in rows[i + 1 :] if x.level > 1 and len(x.scope.split(" · ")) >= 3), None)
            if under is not None and not any(x.level == 1 for x in rows[i + 1 : rows.index(under)]):
                r = replace(r, scope=" · ".join([parts[0], under.scope.split(" · ")[1], *parts[1:]]))
        out.append(r)
    return out


def _every(rows: Sequence[Claim]) -> tuple[str, str]:
    """(verdict, outcome) of a claim made of every backbone."""
    judged = [r for r in rows if r.outcome in JUDGED]
    if not judged:
        return _none_judged(rows, EVERY)
    outcome = next(o for o in _EVERY_ORDER if any(r.outcome == o for r in judged))
    if outcome == REPRODUCED:
        verdict = f"{REPRODUCED} on every judged backbone ({_labels(judged, EVERY)})"
    else:
        verdict = f"{outcome} on {_labels([r for r in judged if r.outcome == outcome], EVERY)}"
        others = [r for r in judged if r.outcome != outcome]
        verdict += "".join(f"; {o} on {_labels(rs, EVERY)}" for o, rs in _by_outcome(others).items())
    return verdict + _unjudged(rows, EVERY), outcome


def _agree(rows: Sequence[Claim]) -> tuple[str, str]:
    """(verdict, outcome) of a claim measured per device and mode: what every judged setup agrees on."""
    judged = [r for r in rows if r.outcome in JUDGED]
    if not judged:
        return _none_judged(rows, AGREE)
    groups = _by_outcome(judged)
    if len(groups) == 1:
        outcome = judged[0].outcome
        return f"{outcome} on every judged setup ({len(judged)}; see measured)" + _unjudged(rows, AGREE), outcome
    verdict = "; ".join(f"{o} on {_labels(rs, AGREE)}" for o, rs in groups.items())
    return f"{DEPENDS_ON_SETUP}: {verdict}" + _unjudged(rows, AGREE), DEPENDS_ON_SETUP


def _none_judged(rows: Sequence[Claim], rule: str) -> tuple[str, str]:
    """(verdict, outcome) when no row is judged: the verdict they share, else the outcome, else not judged."""
    groups = _by_outcome(rows)
    if len(groups) == 1:
        shared = rows[0].verdict if len({r.verdict for r in rows}) == 1 else rows[0].outcome
        return f"{shared} ({_labels(rows, rule)})", rows[0].outcome
    return f"{NOT_JUDGED}: " + "; ".join(f"{_labels(rs, rule)} {o}" for o, rs in groups.items()), NOT_JUDGED


def _unjudged(rows: Sequence[Claim], rule: str) -> str:
    rest = [r for r in rows if r.outcome not in JUDGED and r.outcome != NOT_MEASURED]
    return "".join(f" ({o}: {_labels(rs, rule)})" for o, rs in _by_outcome(rest).items())


def _by_outcome(rows: Sequence[Claim]) -> dict[str, list[Claim]]:
    out: dict[str, list[Claim]] = {}
    for r in rows:
        out.setdefault(r.outcome, []).append(r)
    return out


def _labels(rows: Sequence[Claim], rule: str) -> str:
    return ", ".join(_label(r, rule) for r in rows)


def _label(row: Claim, rule: str) -> str:
    """A row's name in its headline: its backbone (EVERY), else its scope (backbone, device, mode)."""
    return row.scope.split(" · ")[0] if rule == EVERY else row.scope
