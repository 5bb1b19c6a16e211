"""Class names and indices shared by every package (index 0, 1, 2)."""

from __future__ import annotations

CLASSES: tuple[str, str, str] = ("none", "minor", "major")
CLASS_INDEX: dict[str, int] = {name: i for i, name in enumerate(CLASSES)}
NONE, MINOR, MAJOR = 0, 1, 2
N_CLASSES = len(CLASSES)
