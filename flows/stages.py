"""The pipeline's stages: plain functions over (params, paths), registered with their inputs and outputs.

This is the one place where packages are wired together. The CLI (`flywheel stage NAME`, which dvc.yaml
calls) and the Prefect flow both run these same functions; dvc.yaml is rendered from this registry
(`flows/dvcfile.py`), so the two can never disagree about what a stage reads and writes.
No Prefect import here.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from common.io import atomic_write_json, read_json
from common.paths import Paths
from flows.lab_seed import lab_seed, lab_seed_outputs, training_batches, windows_to_label

BATCHES = ("seed", "field", "eval")  # simulated and ingested
HELD_OUT = ("eval", "household")  # the two eval sets: the stress mix and household days (docs/evaluation.md)
SIMULATED = (*BATCHES, "household")  # household days are only evaluated, never ingested or trained on
MODELS = ("seed", "retrained")
STAGE_RECORD = "_stage.json"


@dataclass(frozen=True)
class Stage:
    name: str  # DVC stage name, e.g. "simulate@seed"
    run: Callable[[dict, Paths], dict]
    deps: Callable[[Paths], list[Path]]
    outs: Callable[[Paths], list[Path]]
    params: tuple[str, ...]
    metrics: Callable[[Paths], list[Path]] = field(default=lambda p: [])
    persist: bool = False  # outputs that carry state across turns (device folders)


def _record(out_dir: Path, name: str, started: float, summary: dict) -> dict:
    """Every stage leaves its timing and summary next to its outputs; the report collects them."""
    record = {"stage": name, "seconds": round(time.perf_counter() - started, 3), "summary": summary}
    atomic_write_json(out_dir / STAGE_RECORD, record)
    return record


# --- simulate -------------------------------------------------------------------------------------


def simulate(params: dict, paths: Paths, batch: str) -> dict:
    from fleet.simulate import simulate_batch

    started = time.perf_counter()
    spec = params["simulate"]["batches"][batch]
    summary = simulate_batch(
        spec["preset"],
        int(spec["devices"]),
        float(spec["hours"]),
        int(spec["seed"]),
        paths.raw(batch),
        paths.truth(batch),
        batch_id=batch,
        sim_params=params["simulate"],
        calibration=params["calibration"]["config"],
    )
    return _record(paths.raw(batch), f"simulate@{batch}", started, summary)


# --- ingest ---------------------------------------------------------------------------------------


def ingest(params: dict, paths: Paths, batch: str) -> dict:
    from ingest.pipeline import ingest_batch

    started = time.perf_counter()
    summary = ingest_batch(paths.raw(batch), paths.curated_root, params)
    return _record(paths.curated(batch), f"ingest@{batch}", started, summary)


# --- labels ---------------------------------------------------------------------------------------


def label_seed(params: dict, paths: Paths) -> dict:
    """Lab collection comes with its protocol's labels: every seed window, labeled without error."""

    from common.io import atomic_write_parquet
    from mining.labels import label_windows

    started = time.perf_counter()
    windows = windows_to_label(paths.curated("seed"), params)  # + stream-start windows when deciding there
    table = label_windows(
        windows,
        paths.truth("seed"),
        source="lab",
        error_rate=0.0,
        seed=params["labeling"]["seed"],
        batch_id="seed",
    )
    atomic_write_parquet(paths.labels("seed") / "labels.parquet", table)
    counts = dict(table.group_by("label").len().sort("label").iter_rows())
    return _record(paths.labels("seed"), "label_seed", started, {"labels": table.height, "by_class": counts})


def mine(params: dict, paths: Paths) -> dict:
    """Score the field pool with the seed model and pick windows to label within the budget."""
    from common.io import atomic_write_parquet
    from mining.scoring import score_pool
    from mining.select import mine_batch

    started = time.perf_counter()
    model = paths.model("seed") / "onnx" / "model_float.onnx"
    context = int(params["ingest"]["context_frames"])
    _, labeled_embeddings = score_pool(model, paths.curated("seed"), context)
    picks = mine_batch(model, paths.curated("field"), labeled_embeddings, params, policy="flywheel")
    out = paths.labels("field-picks")
    atomic_write_parquet(out / "picks.parquet", picks)
    by_strategy = dict(picks.group_by("strategy").len().sort("strategy").iter_rows())
    summary = {
        "picks": picks.height,
        "by_strategy": by_strategy,
        "pool_windows": _pool_size(paths.curated("field")),
    }
    return _record(out, "mine", started, summary)


def _pool_size(curated_dir: Path) -> int:
    import polars as pl

    return pl.scan_parquet(curated_dir / "windows.parquet").select(pl.len()).collect().item()


def label_field(params: dict, paths: Paths) -> dict:
    """Paid labels for the picks (simulated annotator) plus weak labels from the dialogue logs."""
    import polars as pl

    from common.io import atomic_write_parquet
    from mining.labels import label_windows, weak_label_table

    started = time.perf_counter()
    picks = pl.read_parquet(paths.labels("field-picks") / "picks.parquet")
    lp = params["labeling"]
    paid = label_windows(
        picks,
        paths.truth("field"),
        source="oracle",
        error_rate=float(lp["error_rate"]),
        seed=int(lp["seed"]),
        batch_id="field",
    )
    weak = weak_label_table(
        paths.curated("field"), "field", float(params["mining"]["weak_label_confidence_min"])
    )
    weak = weak.filter(~pl.col("window_id").is_in(paid["window_id"].implode()))
    table = pl.concat([paid, weak])
    atomic_write_parquet(paths.labels("field") / "labels.parquet", table)
    summary = {
        "paid_labels": paid.height,
        "weak_labels": weak.height,
        "paid_by_class": dict(paid.group_by("label").len().sort("label").iter_rows()),
        "weak_by_source": dict(weak.group_by("source").len().sort("source").iter_rows()),
    }
    return _record(paths.labels("field"), "label_field", started, summary)


def rare_event(params: dict, paths: Paths) -> dict:
    """The rare-event capture trigger, fit on the paid labels; shipped in the bundle when it trained."""
    from common.io import atomic_write_bytes
    from mining.rare_event import fit_trigger_on_labels

    started = time.perf_counter()
    out = paths.model("rare_event")
    label_sets = [(paths.curated(b), paths.labels(b) / "labels.parquet") for b in TRAINING_DATA["retrained"]]
    try:
        model, summary = fit_trigger_on_labels(
            params,
            label_sets,
            seed_model=paths.model("seed") / "onnx" / "model_float.onnx",
            ship_model=paths.model("retrained") / "onnx" / "model_int8.onnx",
            lab_sample=int(params["mining"]["rare_event"]["lab_windows"]),
        )
        atomic_write_bytes(out / "rare_event.onnx", model)
    except ValueError as exc:  # e.g. mining bought no hard negative: nothing to learn, ship without it
        summary = {"error": str(exc)}
    atomic_write_json(out / "summary.json", summary)
    return _record(out, "rare_event", started, summary)


# --- train, export, quantize ----------------------------------------------------------------------

TRAINING_DATA = {"seed": ("seed",), "retrained": ("seed", "field")}  # with turn.seed_data simulated


def train(params: dict, paths: Paths, model: str) -> dict:
    from training.datamodule import TrainingBatch
    from training.train import train_classifier

    started = time.perf_counter()
    batches = [
        TrainingBatch(paths.curated(b), paths.labels(b) / "labels.parquet")
        for b in training_batches(params, model)
    ]
    out = paths.model(model) / "checkpoint"
    metrics = train_classifier(batches, params, out)
    return _record(out, f"train@{model}", started, metrics)


def export(params: dict, paths: Paths, model: str) -> dict:
    """Float ONNX, int8 QDQ ONNX (calibrated on training windows) and the DSP budget check."""
    from training.budget import check_budget
    from training.export import export_onnx
    from training.quantize import quantize_int8

    started = time.perf_counter()
    out = paths.model(model) / "onnx"
    export_onnx(paths.model(model) / "checkpoint" / "model.ckpt", out / "model_float.onnx", params)
    calibration = _calibration_windows(params, paths, training_batches(params, model))
    gate = _sample_windows(params, paths, ("eval",), int(params["quantize"]["gate_windows"]))
    quant = quantize_int8(
        out / "model_float.onnx", calibration, out / "model_int8.onnx", params, gate_windows=gate
    )
    budget = check_budget(out / "model_int8.onnx", params["package"]["profile"])
    atomic_write_json(out / "quantization.json", quant)
    atomic_write_json(out / "budget.json", budget)
    return _record(out, f"export@{model}", started, {"quantization": quant, "budget": budget})


def _calibration_windows(params: dict, paths: Paths, batches: tuple[str, ...]):
    """A seeded sample of training windows, spread over every batch the model learned from."""
    return _sample_windows(params, paths, batches, int(params["quantize"]["calibration_windows"]))


def _sample_windows(params: dict, paths: Paths, batches: tuple[str, ...], n: int):
    """A seeded sample of n windows spread over the curated batches."""
    import numpy as np
    import polars as pl

    from mining.pool import gather_windows, open_frames

    context = int(params["ingest"]["context_frames"])
    rng = np.random.default_rng(int(params["training"]["seed"]))
    parts = []
    for b in batches:
        rows = pl.read_parquet(paths.curated(b) / "windows.parquet", columns=["end_row"])[
            "end_row"
        ].to_numpy()
        take = np.sort(rng.choice(len(rows), size=min(len(rows), n // len(batches)), replace=False))
        parts.append(gather_windows(open_frames(paths.curated(b)), rows[take], context))
    return np.concatenate(parts)


# --- evaluate -------------------------------------------------------------------------------------


def evaluate(params: dict, paths: Paths, model: str) -> dict:
    """Float and int8 detectors of one model on the held-out eval batch (the stress mix), same counting
    rules, side by side: figures with the detection-error trade-off, per-episode rows, the int8 gate."""
    from common.io import atomic_write_jsonl
    from runtime.frontend import FrontendConfig
    from training.evaluate import compare_models, evaluate_detector_rows

    started = time.perf_counter()
    out = paths.evaluation(model)
    onnx = paths.model(model) / "onnx"
    detector = read_json(paths.model(model) / "checkpoint" / "detector.json")
    frontend = FrontendConfig.from_dict(params["frontend"])
    both = compare_models(
        onnx / "model_float.onnx",
        onnx / "model_int8.onnx",
        frontend,
        detector,
        paths.raw("eval"),
        paths.truth("eval"),
        det_thresholds=params["evaluation"]["det_thresholds"],
    )
    for variant in ("float", "int8"):
        atomic_write_json(out / f"{variant}.json", both[variant])
    atomic_write_jsonl(out / "episodes.jsonl", both["rows"]["int8"])
    gate = {
        "decision_agreement": both["decision_agreement"],
        "target": float(params["quantize"]["agreement_target"]),
        "n_frames": both["n_frames"],
    }
    gate["passed"] = gate["decision_agreement"] is not None and gate["decision_agreement"] >= gate["target"]
    atomic_write_json(out / "int8_gate.json", gate)
    household, rows = evaluate_detector_rows(
        onnx / "model_int8.onnx", frontend, detector, paths.raw("household"), paths.truth("household")
    )
    atomic_write_json(out / "household.json", household)
    atomic_write_jsonl(out / "household_episodes.jsonl", rows)
    headline = _headline({**{v: both[v] for v in ("float", "int8")}, "household": household})
    return _record(out, f"evaluate@{model}", started, {**headline, "int8_gate": gate})


def evaluate_baseline(params: dict, paths: Paths) -> dict:
    """The conventional detector (Doppler band energy against CFAR, runtime.cfar) on the same eval batch."""
    from common.io import atomic_write_jsonl
    from runtime.cfar import CfarConfig
    from training.evaluate import evaluate_cfar_rows

    started = time.perf_counter()
    out = paths.evaluation("cfar")
    result, rows = evaluate_cfar_rows(
        paths.raw("eval"),
        paths.truth("eval"),
        params["frontend"],
        CfarConfig.from_params(params),
        det_thresholds_db=params["evaluation"]["cfar_det_thresholds_db"],
    )
    atomic_write_json(out / "cfar.json", result)
    atomic_write_jsonl(out / "episodes.jsonl", rows)
    household, rows = evaluate_cfar_rows(
        paths.raw("household"), paths.truth("household"), params["frontend"], CfarConfig.from_params(params)
    )
    atomic_write_json(out / "household.json", household)
    atomic_write_jsonl(out / "household_episodes.jsonl", rows)
    return _record(out, "evaluate_baseline", started, _headline({"cfar": result, "household": household}))


HEADLINE = (
    "false_triggers_per_empty_hour",
    "false_triggers_per_device_day",
    "entry_recall",
    "entry_latency_median_s",
    "entry_latency_p95_s",
    "false_absences_per_occupied_hour",
)


def _headline(results: dict) -> dict:
    return {name: {k: r.get(k) for k in HEADLINE} for name, r in results.items()}


# --- package and deploy ---------------------------------------------------------------------------


def _release_evidence(paths: Paths, model: str):
    from deploy.release_gate import ModelEvidence

    gate = read_json(paths.evaluation(model) / "int8_gate.json")
    return ModelEvidence(model, read_json(paths.evaluation(model) / "int8.json"), bool(gate["passed"]))


def release_decision(params: dict, paths: Paths) -> tuple[dict, dict]:
    """The release gate over the turn's models (deploy.release_gate): (decision, the shipped model's
    int8 evaluation on the eval batch)."""
    from deploy.release_gate import ReleaseRules, decide_release

    rules = ReleaseRules.from_dict(params["package"].get("release"))
    evidence = {m: _release_evidence(paths, m) for m in ("retrained", "seed")}
    decision = decide_release(evidence["retrained"], evidence["seed"], rules)
    return decision, evidence[decision["shipped"]].evaluation


def package(params: dict, paths: Paths) -> dict:
    """Sign a bundle: the model the release gate picks (int8), rare-event trigger, front-end/detector/MBDP/
    calibration configs, test vectors, lineage; release_gate.json beside it says which model and why."""
    import numpy as np
    import polars as pl

    from common.params import params_hash
    from deploy.packaging import package_bundle
    from flows.lineage import data_hashes, git_revision
    from mining.pool import gather_windows, open_frames
    from mining.rare_event import detector_with_trigger
    from runtime.calibration import CalibrationConfig
    from runtime.mbdp import bundle_tuning

    started = time.perf_counter()
    pk = params["package"]
    release, evaluation = release_decision(params, paths)
    shipped = release["shipped"]
    model_dir = paths.model(shipped)
    rows = pl.read_parquet(paths.curated("eval") / "windows.parquet", columns=["end_row"])[
        "end_row"
    ].to_numpy()
    pick = np.linspace(0, len(rows) - 1, num=min(len(rows), int(pk["test_vectors"]))).astype(np.int64)
    test_inputs = gather_windows(
        open_frames(paths.curated("eval")), rows[pick], int(params["ingest"]["context_frames"])
    )
    trained_on = [p for b in training_batches(params, shipped) for p in (paths.curated(b), paths.labels(b))]
    detector = read_json(model_dir / "checkpoint" / "detector.json")
    extra: dict = {}
    trigger = read_json(paths.model("rare_event") / "summary.json")
    if "threshold" in trigger:
        extra["rare_event.onnx"] = paths.model("rare_event") / "rare_event.onnx"
        detector = detector_with_trigger(detector, trigger["threshold"])
    calibration = CalibrationConfig.from_dict(params["calibration"]["config"])
    manifest = package_bundle(
        model_int8=model_dir / "onnx" / "model_int8.onnx",
        frontend=params["frontend"],
        detector=detector,
        mbdp=bundle_tuning(pk["profile"]),
        calibration=calibration.to_dict(),
        test_inputs=test_inputs,
        metrics={k: evaluation.get(k) for k in HEADLINE if k != "false_triggers_per_device_day"},
        lineage={
            "git_revision": git_revision(),
            "data_hashes": data_hashes(trained_on),
            "params_hash": params_hash(params),
        },
        package_params={**pk, "self_test_atol": params["deploy"]["self_test_atol"]},
        out_path=paths.bundle,
        extra_files=extra,
        release={"model": shipped, "candidate": release["candidate"], "reason": release["reason"]},
    )
    atomic_write_json(paths.bundle_dir / "release_gate.json", release)
    summary = {
        "version": manifest["version"],
        "release_counter": manifest["release_counter"],
        "files": len(manifest["files"]),
        "model": shipped,
        "release_gate": release["reason"],
        "rare_event_trigger": "threshold" in trigger,
    }
    return _record(paths.bundle_dir, "package", started, summary)


def deploy(params: dict, paths: Paths) -> dict:
    """Install the bundle on the turn's device, then run its calibration on the device's hardware."""
    from deploy.operations import deploy_to_device

    started = time.perf_counter()
    profile = params["package"]["profile"]
    result = deploy_to_device(
        paths.bundle, paths.devices / params["deploy"]["device"], profile, hal=_device_hal(params, profile)
    )
    atomic_write_json(paths.deployment / "deploy.json", result)
    return _record(paths.deployment, "deploy", started, result)


def _device_hal(params: dict, profile: str):
    """The turn's device is the first simulated field unit of the bundle's profile: its audio HAL."""
    from fleet.calibration_hal import unit_hal
    from fleet.simulate import fleet_unit, unit_key

    sim = params["simulate"]
    for index in range(256):
        dev, _ = fleet_unit("field", index, sim, params["calibration"]["config"])
        if dev.profile == profile:
            fs = float(params["calibration"]["config"]["fs_hz"])
            return unit_hal(dev, sim["calibration"], unit_key("field", index, sim), fs)
    raise ValueError(f"no simulated field unit of profile {profile!r} among the first 256")


# --- report ---------------------------------------------------------------------------------------


def report(params: dict, paths: Paths) -> dict:
    from flows.report import write_turn_report

    started = time.perf_counter()
    summary = write_turn_report(params, paths, stage_records(paths))
    return {"stage": "report", "seconds": round(time.perf_counter() - started, 3), "summary": summary}


# --- the registry ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class StageTemplate:
    """A stage, or a family of stages over `items` (DVC `foreach`: name@item)."""

    name: str
    run: Callable[..., dict]  # (params, paths[, item]) -> record
    deps: Callable[..., list[Path]]  # (paths[, item]) -> paths
    outs: Callable[..., list[Path]]
    params: tuple[str, ...]
    items: tuple[str, ...] = ()
    metrics: Callable[[Paths], list[Path]] = field(default=lambda p: [])
    persist: bool = False


TEMPLATES: tuple[StageTemplate, ...] = (
    StageTemplate(
        "simulate",
        simulate,
        lambda p, b: [Path("fleet"), Path("runtime")],
        lambda p, b: [p.raw(b), p.truth(b)],
        ("simulate", "calibration.config"),
        items=SIMULATED,
    ),
    StageTemplate(
        "ingest",
        ingest,
        lambda p, b: [p.raw(b), Path("ingest"), Path("runtime")],
        lambda p, b: [p.curated(b), p.quarantine(b)],
        ("frontend", "ingest"),
        items=BATCHES,
    ),
    StageTemplate(
        "label_seed",
        label_seed,
        lambda p: [p.curated("seed"), p.truth("seed"), Path("mining")],
        lambda p: [p.labels("seed")],
        ("labeling", "detector.stream_start"),
    ),
    StageTemplate(
        "lab_seed",  # flows/lab_seed.py: the imported lab batch when turn.seed_data asks for it
        lab_seed,
        lambda p: [Path("ingest"), Path("mining")],
        lambda p: [*lab_seed_outputs(p), p.quarantine("lab")],
        ("turn.seed_data", "frontend", "ingest", "labeling", "detector.stream_start"),
    ),
    StageTemplate(
        "train",
        train,
        lambda p, m: (
            [p.curated(b) for b in TRAINING_DATA[m]]
            + [p.labels(b) for b in TRAINING_DATA[m]]
            + lab_seed_outputs(p)
            + [Path("training")]
        ),
        lambda p, m: [p.model(m) / "checkpoint"],
        ("training", "detector", "ingest.context_frames", "frontend", "turn.seed_data"),
        items=MODELS,
    ),
    StageTemplate(
        "export",
        export,
        lambda p, m: [p.model(m) / "checkpoint", p.curated("eval"), Path("training")],
        lambda p, m: [p.model(m) / "onnx"],
        ("quantize", "package.profile"),
        items=MODELS,
    ),
    StageTemplate(
        "mine",
        mine,
        lambda p: [p.model("seed") / "onnx", p.curated("seed"), p.curated("field"), Path("mining")],
        lambda p: [p.labels("field-picks")],
        ("mining", "detector"),
    ),
    StageTemplate(
        "label_field",
        label_field,
        lambda p: [p.labels("field-picks"), p.truth("field"), p.curated("field")],
        lambda p: [p.labels("field")],
        ("labeling", "mining.weak_label_confidence_min"),
    ),
    StageTemplate(
        "rare_event",
        rare_event,
        lambda p: [
            p.labels("seed"),
            p.labels("field"),
            p.curated("seed"),
            p.curated("field"),
            p.model("seed") / "onnx",
            p.model("retrained") / "onnx",
            Path("mining"),
        ],
        lambda p: [p.model("rare_event")],
        ("mining.rare_event", "mining.seed", "ingest.context_frames"),
    ),
    StageTemplate(
        "evaluate",
        evaluate,
        lambda p, m: [
            p.model(m) / "checkpoint",
            p.model(m) / "onnx",
            *(d for b in HELD_OUT for d in (p.raw(b), p.truth(b))),
        ],
        lambda p, m: [p.evaluation(m)],
        ("frontend", "evaluation", "quantize.agreement_target"),
        items=MODELS,
    ),
    StageTemplate(
        "evaluate_baseline",
        evaluate_baseline,
        lambda p: [*(d for b in HELD_OUT for d in (p.raw(b), p.truth(b))), Path("runtime")],
        lambda p: [p.evaluation("cfar")],
        ("frontend", "runtime.cfar", "evaluation.cfar_det_thresholds_db"),
    ),
    StageTemplate(
        "package",
        package,
        lambda p: [
            *(p.model(m) / part for m in MODELS for part in ("checkpoint", "onnx")),
            p.model("rare_event"),
            *(p.evaluation(m) for m in MODELS),
            p.curated("eval"),
            Path("deploy"),
            Path("runtime/mbdp_presets.json"),
        ],
        lambda p: [p.bundle_dir],
        ("package", "frontend", "calibration.config", "deploy.self_test_atol"),
    ),
    StageTemplate(
        "deploy",
        deploy,
        lambda p: [p.bundle_dir, Path("fleet")],
        lambda p: [p.deployment],
        (
            "deploy",
            "package.profile",
            "simulate.fleet_seed",
            "simulate.profiles_mix",
            "simulate.calibration",
            "calibration.config",
        ),
    ),
    StageTemplate(
        "report",
        report,
        lambda p: (
            [p.evaluation(m) for m in (*MODELS, "cfar")]
            + [p.deployment, p.bundle_dir, p.labels("field-picks"), p.labels("field")]
            + [p.curated("field"), p.curated("eval")]
        ),
        lambda p: [p.report_dir / "report.md", p.report_dir / "index.html", p.report_dir / "plots"],
        ("turn", "report", "frontend", "ingest.context_frames"),
        metrics=lambda p: [p.report_dir / "report.json"],
    ),
)


def _bind(fn: Callable, item: str | None) -> Callable:
    return fn if item is None else (lambda *args: fn(*args, item))


def build_registry() -> dict[str, Stage]:
    """Concrete stages (name or name@item), in template order; `execution_order` sorts them."""
    stages: dict[str, Stage] = {}
    for t in TEMPLATES:
        for item in t.items or (None,):
            name = t.name if item is None else f"{t.name}@{item}"
            stages[name] = Stage(
                name,
                _bind(t.run, item),
                _bind(t.deps, item),
                _bind(t.outs, item),
                t.params,
                t.metrics,
                t.persist,
            )
    return stages


REGISTRY: dict[str, Stage] = build_registry()


def _within(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def execution_order(paths: Paths) -> list[str]:
    """Stages sorted so each runs after every stage that writes one of its inputs (Kahn's algorithm)."""
    producers = {name: st.outs(paths) + st.metrics(paths) for name, st in REGISTRY.items()}
    needs = {
        name: {
            other
            for other, outs in producers.items()
            if other != name and any(_within(d, o) for d in st.deps(paths) for o in outs)
        }
        for name, st in REGISTRY.items()
    }
    order: list[str] = []
    while needs:
        ready = [n for n, deps in needs.items() if not deps - set(order)]
        if not ready:
            raise RuntimeError(f"stage dependency cycle among {sorted(needs)}")
        for n in ready:
            order.append(n)
            del needs[n]
    return order


def stage_records(paths: Paths) -> list[dict]:
    """The timing/summary records every stage left beside its outputs, in pipeline order."""
    records = []
    for name in execution_order(paths):
        for out in REGISTRY[name].outs(paths):
            record = out / STAGE_RECORD
            if record.exists():
                records.append(read_json(record))
                break
    return records


def run_stage(name: str, params: dict, paths: Paths) -> dict:
    if name not in REGISTRY:
        raise KeyError(f"unknown stage {name!r}; stages: {', '.join(REGISTRY)}")
    return REGISTRY[name].run(params, paths)
