"""The counts a fault run produces: per fault class, cases tried and what went wrong.

A fault suite that only says "passed" proves little about how much it tried. Each scenario adds
its cases here, so the test run (``EDGECHAT_RELIABILITY_FIGURES=path.json``), the soak
(``bench/soak.py``) and docs/reliability.md all show the same table: cases tried, turns lost,
turns duplicated, errors that were untyped or unclear, and the command that reproduces the class.
"""

from __future__ import annotations

import json
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path


@dataclass
class Tally:
    """One fault class. ``lost``, ``duplicated`` and ``unclear`` should all stay 0."""

    fault_class: str
    command: str
    tried: int = 0
    lost: int = 0
    duplicated: int = 0
    unclear: int = 0
    #: Cases that found a known defect (an xfail test); they are counted, not hidden.
    known_defects: int = 0
    notes: list[str] = field(default_factory=list)


class Figures:
    """A thread-safe collection of tallies, in the order classes were first seen."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tallies: dict[str, Tally] = {}

    def add(self, fault_class: str, *, command: str, tried: int = 0, lost: int = 0, duplicated: int = 0,
            unclear: int = 0, known_defects: int = 0, note: str | None = None) -> Tally:
        with self._lock:
            tally = self._tallies.setdefault(fault_class, Tally(fault_class, command))
            tally.tried += tried
            tally.lost += lost
            tally.duplicated += duplicated
            tally.unclear += unclear
            tally.known_defects += known_defects
            if note and note not in tally.notes and len(tally.notes) < 20:
                tally.notes.append(note)
            return tally

    def tallies(self) -> list[Tally]:
        with self._lock:
            return [Tally(**asdict(t)) for t in self._tallies.values()]

    def __bool__(self) -> bool:
        with self._lock:
            return bool(self._tallies)

    def to_json(self) -> dict[str, object]:
        return {"classes": [asdict(t) for t in self.tallies()]}

    def write_json(self, path: Path) -> None:
        """Write the tallies, merged into what ``path`` already holds (several pytest runs, one file)."""
        merged = Figures()
        if path.exists():
            try:
                for item in json.loads(path.read_text("utf-8")).get("classes", []):
                    merged.add(item["fault_class"], command=item["command"], tried=item["tried"],
                               lost=item["lost"], duplicated=item["duplicated"], unclear=item["unclear"],
                               known_defects=item.get("known_defects", 0))
            except (ValueError, KeyError, TypeError):
                merged = Figures()  # an unreadable old file is replaced, not merged
        for t in self.tallies():
            merged.add(t.fault_class, command=t.command, tried=t.tried, lost=t.lost, duplicated=t.duplicated,
                       unclear=t.unclear, known_defects=t.known_defects)
            for note in t.notes:
                merged.add(t.fault_class, command=t.command, note=note)
        path.write_text(json.dumps(merged.to_json(), indent=2) + "\n", "utf-8")

    def table(self) -> str:
        """The Markdown table of docs/reliability.md."""
        rows = ["| fault class | cases tried | lost | duplicated | unclear errors | known defects "
                "| reproduce |",
                "|---|---:|---:|---:|---:|---:|---|"]
        for t in self.tallies():
            rows.append(f"| {t.fault_class} | {t.tried:,} | {t.lost} | {t.duplicated} | {t.unclear} | "
                        f"{t.known_defects} | `{t.command}` |")
        return "\n".join(rows)

    def failures(self) -> list[str]:
        """One line per class that lost, duplicated or left an error unclear."""
        return [f"{t.fault_class}: {t.lost} lost, {t.duplicated} duplicated, {t.unclear} unclear"
                + (f" ({'; '.join(t.notes[:3])})" if t.notes else "")
                for t in self.tallies() if t.lost or t.duplicated or t.unclear]


#: The figures of this process (the pytest session, or the soak).
FIGURES = Figures()
