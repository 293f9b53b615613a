"""The extension points of the main screen: how a feature changes it without overriding the app.

A feature (the decoding lab today; interventions and model comparison next) registers, in
its ``install_*`` method called from ``ExplorerApp.__init__``:

* a **column provider** (``ColumnProvider``): when it is on, it may supply the rows of the
  next-token table (the lab shows its own ranking) and contributes columns. A column whose
  key is a core key ("rank", "token", "id", "prob", "logit", "z") replaces that column in
  place, ``cell=None`` removes it, a new key is added after the core columns;
* an **append guard**: ``guard(row) -> Veto | None``; a Veto stops ``l`` with its sentence,
  so every refusal of an append is listed here, not hidden in an override;
* a **step listener**: called after each new StepView is shown; a **job listener** when a job
  starts, reports progress or ends;
* **key conditions** (``KeySpec.when`` names one): whether a key applies now; the footer lists
  a shown key only then (``ExplorerApp.check_action``).

Panels are plain widgets the feature mounts into ``#extra-panels``; its background work goes
through ``app.jobs`` (explorer/ui/jobs.py). Never imports the engine.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from rich.text import Text

from explorer.ui.render import token_cell


@dataclass(frozen=True)
class Column:
    header: str
    key: str
    cell: Callable[[Any], Text] | None
    """Row -> cell; None removes the core column of the same key."""


@dataclass(frozen=True)
class Veto:
    """Why an append is refused, as the notification says it."""

    message: str
    title: str = ""
    severity: str = "warning"


@dataclass
class ColumnProvider:
    """A feature's contribution to the next-token table."""

    active: Callable[[], bool]
    columns: Callable[[], list[Column]]
    rows: Callable[[], list | None] = lambda: None
    """The rows to show instead of the step's candidates (None = the candidates)."""
    follow: Callable[[list], int | None] = lambda rows: None
    """The row the table cursor should move to (a token the user just banned), or None."""
    width: int | None = None
    """The table's width while this provider is on (None = app.tcss)."""


def _prob(p: float) -> str:
    return f"{p:.4f}"


def core_columns(zscores: bool) -> list[Column]:
    """The next-token table without features: rank, token, id, probability, logit (z when on)."""
    cols = [
        Column("#", "rank", lambda c: Text(str(c.rank), style="dim")),
        Column("token", "token", lambda c: token_cell(c.text.text, c.text.kind)),
        Column("id", "id", lambda c: Text(str(c.id), style="dim")),
        Column("prob", "prob", lambda c: Text(_prob(c.prob))),
        Column("logit", "logit", lambda c: Text("n/a", style="dim") if c.logit is None else Text(f"{c.logit:.3f}")),
    ]
    if zscores:
        cols.append(Column("z", "z", lambda c: Text("n/a", style="dim") if c.zscore is None else Text(f"{c.zscore:+.2f}")))
    return cols


def merge_columns(core: list[Column], contributed: list[Column]) -> list[Column]:
    """Core columns with contributed ones replacing (same key), removing (cell None) or appended."""
    by_key = {c.key: c for c in contributed}
    out = [by_key.get(c.key, c) for c in core]
    core_keys = {c.key for c in core}
    out += [c for c in contributed if c.key not in core_keys]
    return [c for c in out if c.cell is not None]


@dataclass
class Extensions:
    """What the features registered (one instance per app)."""

    column_providers: list[ColumnProvider] = field(default_factory=list)
    append_guards: list[Callable[[Any], Veto | None]] = field(default_factory=list)
    step_listeners: list[Callable[[], None]] = field(default_factory=list)
    job_listeners: list[Callable[[], None]] = field(default_factory=list)
    """Called when a job starts, ends or reports progress (a panel that shows a job's progress)."""
    key_conditions: dict[str, Callable[[], bool]] = field(default_factory=dict)

    def table(self, candidates: list, zscores: bool) -> tuple[list[Column], list, int | None, int | None]:
        """(columns, rows, row to follow or None, width or None) for the current step."""
        on = [p for p in self.column_providers if p.active()]
        rows = next((r for r in (p.rows() for p in on) if r is not None), None)
        rows = list(candidates) if rows is None else rows
        contributed = [c for p in on for c in p.columns()]
        follow = next((f for f in (p.follow(rows) for p in on) if f is not None), None)
        width = next((p.width for p in on if p.width is not None), None)
        return merge_columns(core_columns(zscores), contributed), rows, follow, width

    def veto(self, row) -> Veto | None:
        for guard in self.append_guards:
            found = guard(row)
            if found is not None:
                return found
        return None
