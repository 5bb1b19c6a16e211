"""Where every stage reads and writes, for one data root and one turn. dvc.yaml spells the same paths."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Paths:
    root: Path
    turn: str

    @classmethod
    def for_params(cls, params: dict, data_dir: str | Path = "data") -> Paths:
        return cls(root=Path(data_dir), turn=params["turn"]["id"])

    def raw(self, batch: str) -> Path:
        return self.root / "raw" / batch

    def truth(self, batch: str) -> Path:
        return self.root / "truth" / batch

    @property
    def curated_root(self) -> Path:
        return self.root / "curated"

    def curated(self, batch: str) -> Path:
        return self.curated_root / batch

    def quarantine(self, batch: str) -> Path:
        return self.curated_root / "quarantine" / batch

    def labels(self, name: str) -> Path:
        return self.root / "labels" / name

    def model(self, name: str) -> Path:
        return self.root / "models" / name

    def evaluation(self, name: str) -> Path:
        return self.root / "evaluations" / self.turn / name

    @property
    def bundle_dir(self) -> Path:
        return self.root / "bundles" / self.turn

    @property
    def bundle(self) -> Path:
        return self.bundle_dir / "bundle.tar"

    @property
    def devices(self) -> Path:
        return self.root / "devices"

    @property
    def deployment(self) -> Path:
        return self.root / "deployments" / self.turn

    @property
    def report_dir(self) -> Path:
        return self.root / "reports" / self.turn
