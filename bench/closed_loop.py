"""The experiment's closed loop: what each strategy's fleet runs decides what it uploads next turn.

Per experiment seed, every strategy starts with the seed model's bundle deployed. After turn t the
strategy's retrained model becomes a candidate bundle (its int8 model, detector and, when its labels
allow one, a rare-event trigger fitted on them: mining.rare_event); the release gate
(deploy.release_gate) compares it with the bundle deployed now, both int8, on a release batch that
is neither the eval batch the report uses nor any training data; the one it ships is what the
strategy's field units run during turn t + 1 (the simulate stage with the batch's `bundle`), so its
detections and trigger choose that turn's uploads and the strategy mines with the deployed model.
Turn 1's field batch is shared by a seed's strategies: all of them start from the same seed bundle.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from common.io import atomic_write_json, read_json
from common.paths import Paths


@dataclass(frozen=True)
class Deployed:
    """A bundle a strategy's fleet can run, with what the release gate needs to judge it."""

    name: str  # model name (seed, turn-1, ...): the release decision names it
    folder: Path  # bundle folder (payload/), fleet.bundle_runner's format
    int8: Path  # payload model, the one evaluated on the release batch
    detector: dict  # detector.json as shipped (with the trigger's threshold when it has one)
    int8_passed: bool  # the export's int8 gate on the eval batch (evaluate stage)


def field_batch(seed_index: int, strategy: str, turn: int) -> str:
    """The field batch a strategy mines at `turn` (turn 1: the seed bundle's uploads, shared)."""
    return f"s{seed_index}-field-1" if turn == 1 else f"s{seed_index}-{strategy}-field-{turn}"


def make_bundle(
    params: dict,
    paths: Paths,
    model: str,
    detector: dict,
    label_sets: list | None = None,
    seed_float: Path | None = None,
    lab_windows: int = 0,
) -> Deployed:
    """The bundle of `model` under paths: its int8 model and detector, with a rare-event trigger fitted
    on label_sets' paid labels, the lab seed set sampled down to lab_windows (none when label_sets is
    None or the labels cannot fit one)."""
    from bench.enrichment import write_bundle_folder
    from mining.config import MiningConfig
    from mining.rare_event import detector_with_trigger, fit_trigger_on_labels

    int8 = paths.model(model) / "onnx" / "model_int8.onnx"
    trigger, shipped_detector = None, dict(detector)
    if label_sets is not None and seed_float is not None:
        cfg = MiningConfig.from_params(params)
        try:
            trigger, summary = fit_trigger_on_labels(
                cfg, int(params["ingest"]["context_frames"]), label_sets, seed_float, int8, lab_windows
            )
            shipped_detector = detector_with_trigger(detector, summary["threshold"])
        except ValueError:  # no paid label of a kind the trigger needs: the bundle ships without one
            trigger = None
    folder = write_bundle_folder(
        paths.model(model) / "bundle", int8, params["frontend"], shipped_detector, trigger
    )
    # the units calibrate at first boot with the run's config, as the simulate stage's units do
    atomic_write_json(folder / "payload" / "calibration.json", params["calibration"]["config"])
    gate = read_json(paths.evaluation(model) / "int8_gate.json")
    return Deployed(model, folder, int8, shipped_detector, bool(gate["passed"]))


def release_figures(params: dict, world: Paths, bundle: Deployed) -> dict:
    """The bundle's int8 figures on the release batch (training.metrics), cached beside the bundle."""
    from runtime.detector import DetectorConfig
    from training.evaluate import evaluate_detector

    cached = bundle.folder / "release_evaluation.json"
    if cached.exists():
        return read_json(cached)
    figures = evaluate_detector(
        bundle.int8, params["frontend"], DetectorConfig.from_json(bundle.detector),
        world.raw("release"), world.truth("release"),
    )  # fmt: skip
    figures.pop("skipped", None)
    atomic_write_json(cached, figures)
    return figures


def release(params: dict, world: Paths, candidate: Deployed, deployed: Deployed) -> tuple[Deployed, dict]:
    """The release gate between the candidate and the bundle deployed now, on the release batch:
    (the bundle the fleet runs next turn, the decision)."""
    from deploy.release_gate import ModelEvidence, ReleaseRules, decide_release

    rules = ReleaseRules.from_dict(params["package"]["release"])
    evidence = {
        b.name: ModelEvidence(b.name, release_figures(params, world, b), b.int8_passed)
        for b in (candidate, deployed)
    }
    decision = decide_release(evidence[candidate.name], evidence[deployed.name], rules)
    return (candidate if decision["shipped"] == candidate.name else deployed), decision
