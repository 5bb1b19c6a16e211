"""One whole flywheel turn on tiny params, through the Prefect flow, from simulation to report."""

import json
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def turn(tmp_path_factory, prefect_harness, project_root):
    from flows.turn import flywheel_turn

    data = tmp_path_factory.mktemp("turn")
    started = time.perf_counter()
    records = flywheel_turn(
        params_file=str(project_root / "params.yaml"), preset="tiny", data_dir=str(data), use_dvc=False
    )
    return data, records, time.perf_counter() - started


def test_every_stage_ran_and_its_time_fits_in_the_turn(turn, project_root):
    from common.params import load_params
    from common.paths import Paths
    from flows.stages import REGISTRY, execution_order
    from flows.turn import _upstream

    data, records, wall_s = turn
    assert set(records) == set(REGISTRY)
    assert not any(r.get("skipped") for r in records.values())  # no DVC: every stage runs
    assert all(r["seconds"] > 0 for r in records.values())
    for name, rec in records.items():
        assert rec["stage"] == name and isinstance(rec["summary"], dict), name
    # a stage starts after its upstream stages finish, so every dependency chain fits in the turn
    paths = Paths.for_params(load_params(project_root / "params.yaml", "tiny"), data)
    finished: dict[str, float] = {}
    for name in execution_order(paths):
        before = max((finished[u] for u in _upstream(name, paths)), default=0.0)
        finished[name] = before + records[name]["seconds"]
    assert max(finished.values()) <= wall_s


def test_every_uploaded_capture_is_ingested_or_quarantined(turn):
    _, records, _ = turn
    for batch in ("seed", "field", "eval"):
        simulated = records[f"simulate@{batch}"]["summary"]
        ingested = records[f"ingest@{batch}"]["summary"]
        assert ingested["received"] == simulated["n_captures"] > 0
        assert ingested["received"] == ingested["ingested"] + ingested["quarantined"]


def test_report_has_the_headline_numbers(turn):
    data, _, _ = turn
    report = json.loads((data / "reports" / "turn-001" / "report.json").read_text())
    evaluations = data / "evaluations" / "turn-001"
    models = [(m, v) for m in ("seed", "retrained") for v in ("float", "int8")]
    files = {f"{m}_{v}": evaluations / m / f"{v}.json" for m, v in models}
    files["cfar"] = evaluations / "cfar" / "cfar.json"
    results = {name: json.loads(f.read_text()) for name, f in files.items()}
    first = results["seed_float"]
    for name, result in results.items():  # every detector is judged on the same eval batch, by the same rules
        assert result["empty_hours"] == first["empty_hours"] > 0
        assert result["entries"] == first["entries"] and result["stream_hours"] == first["stream_hours"]
        assert result["false_triggers_per_empty_hour"] == result["false_triggers"] / result["empty_hours"]
        assert result["entries_detected"] <= result["entries"]
        if result["entries"]:
            assert result["entry_recall"] == result["entries_detected"] / result["entries"]
        for key, value in report["evaluation"][name].items():  # the report shows the evaluation's figures
            assert value == result.get(key), (name, key)
    assert report["labels"]["field_paid"] <= report["labels"]["budget"]
    assert (data / "reports" / "turn-001" / "plots" / "false_alarms_by_type.png").stat().st_size > 0
    page = (data / "reports" / "turn-001" / "index.html").read_text()  # the turn page (flows/report_page.py)
    assert page.count("data:image/png;base64,") == sum(len(v) for v in report["plots"].values()) > 0


def test_bundle_verifies_and_is_active_on_the_device(turn, project_root):
    data, _, _ = turn
    bundle = data / "bundles" / "turn-001" / "bundle.tar"
    cli = [sys.executable, "-m", "flows.cli"]
    assert subprocess.run([*cli, "bundle", "verify", str(bundle)], cwd=project_root).returncode == 0
    deployment = json.loads((data / "deployments" / "turn-001" / "deploy.json").read_text())
    assert deployment["installed"] is True


def test_bundle_ships_the_model_the_release_gate_picked(turn):
    import hashlib
    import tarfile

    data, _, _ = turn
    release = json.loads((data / "bundles" / "turn-001" / "release_gate.json").read_text())
    assert release["shipped"] in ("seed", "retrained") and release["reason"]
    with tarfile.open(data / "bundles" / "turn-001" / "bundle.tar") as tar:
        manifest = json.loads(tar.extractfile("manifest.json").read())
        shipped_bytes = tar.extractfile("payload/model_int8.onnx").read()
    assert manifest["release"]["model"] == release["shipped"]
    expected = (data / "models" / release["shipped"] / "onnx" / "model_int8.onnx").read_bytes()
    assert hashlib.sha256(shipped_bytes).digest() == hashlib.sha256(expected).digest()
    report = (data / "reports" / "turn-001" / "report.md").read_text()
    assert f"bundle ships **{release['shipped']}**" in report


def test_evaluate_cli_accepts_the_turns_own_bundle_and_writes_episode_rows(turn, project_root, tmp_path):
    """The README's `flywheel evaluate` on the bundle this turn built (its detector.json carries the
    rare-event trigger's threshold when the trigger ships), with the per-episode rows beside the JSON."""
    from training.evaluate import evaluate_bundle

    data, _, _ = turn
    bundle = data / "bundles" / "turn-001" / "bundle.tar"
    out = tmp_path / "eval.json"
    args = ["evaluate", "--bundle", str(bundle), "--raw", str(data / "raw" / "eval")]
    args += ["--truth", str(data / "truth" / "eval"), "--json", str(out)]
    res = subprocess.run(
        [sys.executable, "-m", "flows.cli", *args], cwd=project_root, capture_output=True, text=True
    )
    assert res.returncode == 0, res.stderr
    result = json.loads(out.read_text())
    assert "false triggers/empty h" in res.stdout
    rows = [json.loads(line) for line in out.with_suffix(".episodes.jsonl").read_text().splitlines()]
    assert sum(r["kind"] == "entry" for r in rows) == result["entries"]
    assert sum(r["kind"] == "false_trigger" for r in rows) == result["false_triggers"]
    # the CLI reports what the shipped model's evaluation stage measured on the same batch
    shipped = json.loads((data / "bundles" / "turn-001" / "release_gate.json").read_text())["shipped"]
    stage = json.loads((data / "evaluations" / "turn-001" / shipped / "int8.json").read_text())
    assert result["false_triggers"] == stage["false_triggers"] and result["entries"] == stage["entries"]
    assert (
        evaluate_bundle(bundle, data / "raw" / "eval", data / "truth" / "eval")["entries"]
        == result["entries"]
    )
