"""One whole flywheel turn on tiny params, through the Prefect flow, from simulation to report."""

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def turn(tmp_path_factory, prefect_harness, project_root):
    from flows.turn import flywheel_turn

    data = tmp_path_factory.mktemp("turn")
    records = flywheel_turn(
        params_file=str(project_root / "params.yaml"), preset="tiny", data_dir=str(data), use_dvc=False
    )
    return data, records


def test_every_stage_ran_and_left_a_record(turn):
    from flows.stages import REGISTRY

    _, records = turn
    assert set(records) == set(REGISTRY)
    for name, rec in records.items():
        assert rec["stage"] == name and isinstance(rec["summary"], dict), name


def test_report_has_the_headline_numbers(turn):
    data, _ = turn
    report = json.loads((data / "reports" / "turn-001" / "report.json").read_text())
    for name in ("seed_float", "seed_int8", "retrained_float", "retrained_int8", "cfar"):
        row = report["evaluation"][name]
        assert row["false_alarms_per_hour"] >= 0
        assert 0 <= row["recall_major"] <= 1
    assert report["labels"]["field_paid"] <= report["labels"]["budget"]
    assert (data / "reports" / "turn-001" / "plots" / "false_alarms_by_type.png").stat().st_size > 0


def test_bundle_verifies_and_is_active_on_the_device(turn, project_root):
    data, _ = turn
    bundle = data / "bundles" / "turn-001" / "bundle.tar"
    cli = [sys.executable, "-m", "flows.cli"]
    assert subprocess.run([*cli, "bundle", "verify", str(bundle)], cwd=project_root).returncode == 0
    deployment = json.loads((data / "deployments" / "turn-001" / "deploy.json").read_text())
    assert deployment["installed"] is True


def test_bundle_ships_the_model_the_release_gate_picked(turn):
    import hashlib
    import tarfile

    data, _ = turn
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
