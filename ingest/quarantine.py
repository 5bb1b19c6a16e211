"""The quarantine log: every bad file, line or row of a raw batch, with a reason, never dropped silently.

Written as CURATED_ROOT/quarantine/<batch_id>/quarantine.jsonl (one JSON object per problem:
batch, file, line, field, reason, detail, capture_id, raw) plus copies of the offending files under
files/ (their path inside the batch kept). The folder is swapped in atomically.
"""

from __future__ import annotations

import shutil
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from common.io import atomic_dir, atomic_write_jsonl
from ingest.contract import Reject

MAX_RAW_CHARS = 2000  # how much of an offending line is kept in the log


@dataclass
class QuarantineLog:
    """Collects problems during one ingest run; `write` puts them on disk."""

    batch_id: str
    raw_dir: Path
    max_copy_bytes: int
    entries: list[dict] = field(default_factory=list)
    _copies: dict[str, Path] = field(default_factory=dict)

    def add(
        self,
        file: str,
        line: int | None,
        reject: Reject,
        *,
        raw: str | None = None,
        capture_id: str | None = None,
        offending_file: Path | None = None,
        also: list[Reject] | None = None,
    ) -> None:
        entry = {
            "batch": self.batch_id,
            "file": file,
            "line": line,
            "field": reject.field,
            "reason": reject.reason,
            "detail": reject.detail,
            "capture_id": capture_id,
            "raw": None if raw is None else raw.rstrip("\n")[:MAX_RAW_CHARS],
            "also": [f"{r.reason}: {r.detail}" for r in (also or [])],
        }
        if offending_file is not None:
            entry["copied_as"] = self._plan_copy(offending_file)
        self.entries.append(entry)

    def _plan_copy(self, path: Path) -> str | None:
        """Only files inside the batch and under the size limit are copied (never follow a path out)."""
        root = self.raw_dir.resolve()
        try:
            resolved = path.resolve()
            relative = resolved.relative_to(root)
            if not resolved.is_file() or resolved.stat().st_size > self.max_copy_bytes:
                return None
        except (ValueError, OSError):
            return None
        name = str(Path("files") / relative)
        self._copies[name] = resolved
        return name

    def reasons(self, file: str | None = None) -> dict[str, int]:
        """reason → count, for one raw file (e.g. captures.jsonl) or all."""
        counts = Counter(e["reason"] for e in self.entries if file is None or e["file"] == file)
        return dict(sorted(counts.items()))

    def write(self, quarantine_root: Path) -> Path:
        """Replace quarantine_root/<batch_id>/ with this run's log and file copies."""
        target = quarantine_root / self.batch_id
        with atomic_dir(target) as tmp:
            atomic_write_jsonl(tmp / "quarantine.jsonl", self.entries)
            for name, source in self._copies.items():
                dest = tmp / name
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source, dest)  # inside the temp folder that atomic_dir swaps in
        return target
