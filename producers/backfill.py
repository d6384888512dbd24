"""``gradesync backfill FILE.csv``: historical completions, with the canonical event's columns."""

from __future__ import annotations

import csv
from pathlib import Path

from pydantic import BaseModel
from rich.progress import Progress

from gradesync.event import CompletionEvent
from producers.intake import Intake

COLUMNS = tuple(CompletionEvent.model_fields)  # the canonical event's fields


class Summary(BaseModel):
    rows: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0


def run_backfill(source: Path, rejects: Path, intake: Intake, progress: bool = True) -> Summary:
    summary = Summary()
    with source.open(newline="", encoding="utf-8-sig") as f:
        rows = list(csv.DictReader(f))
    missing = [
        c for c in ("source", "person_id", "course_id", "completed_at") if rows and c not in rows[0]
    ]
    if missing:
        raise ValueError(f"{source}: missing column(s) {', '.join(missing)}")
    failed: list[dict[str, str]] = []
    with Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task("backfill", total=len(rows))
        for n, row in enumerate(rows, start=2):  # line 1 is the header
            data = {k: v for k, v in row.items() if k in COLUMNS and v not in (None, "")}
            unknown = [k for k in row if k not in COLUMNS and k is not None]
            if unknown:
                data.update({k: row[k] for k in unknown})  # rejected below, naming them
            for line in intake.take(n, data):
                summary.rows += 1
                if line["outcome"] == "rejected":
                    summary.rejected += 1
                    failed.append({**row, "line": str(n), "error": line["error"]})
                else:
                    summary.accepted += 1
                    summary.duplicates += line["outcome"] == "duplicate"
            bar.advance(task)
    if failed:
        with rejects.open("w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=list(failed[0]))
            writer.writeheader()
            writer.writerows(failed)
    return summary
