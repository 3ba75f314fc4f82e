"""What stayed: the models a command asked for, against what is resident when it returns.

Pure. A load that succeeded can be undone before the command ends: with
``OLLAMA_MAX_LOADED_MODELS`` reached, each later load makes Ollama evict the idle
runner with the shortest keep-alive (``server/sched.go`` ``findRunnerToUnload``), pins
included, so ``pin a b c d`` on a server that holds 3 "loads" four models and keeps
three. A result must say that, name who pushed out whom, and fail.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from ollama_resident.models import PsSnapshot, names_match
from ollama_resident.residency import LoadOutcome

__all__ = ["EndState", "Lost", "end_state"]


class Lost(NamedTuple):
    """A model this command loaded (or found loaded) that is not resident at the end."""

    requested: str
    name: str
    pushed_out_by: str | None  # a later load of the same command, when one evicted it
    pin_lost: bool = False  # still loaded, but the pin it was given is gone

    def describe(self) -> str:
        if self.pin_lost:
            return f"{self.name} is loaded but no longer pinned"
        if self.pushed_out_by:
            return f"{self.name} was pushed out by {self.pushed_out_by}"
        return f"{self.name} is no longer loaded (see `ollama-resident why {self.requested}`)"

    def to_json(self) -> dict[str, Any]:
        return {
            "model": self.requested,
            "name": self.name,
            "pushed_out_by": self.pushed_out_by,
            "pin_lost": self.pin_lost,
        }


class EndState(NamedTuple):
    asked: int  # models the command loaded successfully (failures are reported apart)
    resident: tuple[str, ...]  # of those, the ones loaded at the end
    lost: tuple[Lost, ...]

    @property
    def ok(self) -> bool:
        return not self.lost

    def summary(self) -> str:
        """``6 models asked, 3 resident at the end: tiny:latest was pushed out by ...``."""
        head = (
            f"{self.asked} model{'s' if self.asked != 1 else ''} asked, "
            f"{len(self.resident)} resident at the end"
        )
        if not self.lost:
            return head
        return head + ": " + "; ".join(x.describe() for x in self.lost)

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "asked": self.asked,
            "resident": list(self.resident),
            "lost": [x.to_json() for x in self.lost],
        }


def end_state(outcomes: Sequence[LoadOutcome], final: PsSnapshot) -> EndState:
    """Compare successful loads with ``final`` (an ``/api/ps`` read after the last load)."""
    resident: list[str] = []
    lost: list[Lost] = []
    ok = [o for o in outcomes if o.ok]
    for i, outcome in enumerate(ok):
        model = final.find(outcome.name) or final.find(outcome.requested)
        if model is not None:
            resident.append(model.name)
            if outcome.pinned and not model.is_pinned(final.taken_at):
                lost.append(Lost(outcome.requested, outcome.name, None, pin_lost=True))
            continue
        by = next(
            (
                later.name
                for later in ok[i + 1 :]
                if any(names_match(v, outcome.name) for v in later.evicted)
            ),
            None,
        )
        lost.append(Lost(outcome.requested, outcome.name, by))
    return EndState(len(ok), tuple(resident), tuple(lost))
