"""Where every stage reads and writes, for one data root and one turn. dvc.yaml spells the same paths.

A turn keeps everything under `root`. Several runs over the same simulated world (the experiment: one per
strategy and seed) share the world's batches (raw, truth, curated) under `root` and keep what each run
makes (labels, models, evaluations, bundles, devices, deployments, reports) under its own `run_root`;
`field_batches` names the field batches such a run's retrained models learn from (one per turn so far).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Paths:
    root: Path
    turn: str
    run_root: Path | None = None  # None: the run's own folders live under root too
    field_batches: tuple[str, ...] = ("field",)

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

    @property
    def run(self) -> Path:
        """Folder of what this run makes (root unless the run has its own)."""
        return self.root if self.run_root is None else self.run_root

    def labels(self, name: str) -> Path:
        return self.run / "labels" / name

    def model(self, name: str) -> Path:
        return self.run / "models" / name

    def evaluation(self, name: str) -> Path:
        return self.run / "evaluations" / self.turn / name

    @property
    def bundle_dir(self) -> Path:
        return self.run / "bundles" / self.turn

    @property
    def bundle(self) -> Path:
        return self.bundle_dir / "bundle.tar"

    @property
    def devices(self) -> Path:
        return self.run / "devices"

    @property
    def deployment(self) -> Path:
        return self.run / "deployments" / self.turn

    @property
    def report_dir(self) -> Path:
        return self.run / "reports" / self.turn
