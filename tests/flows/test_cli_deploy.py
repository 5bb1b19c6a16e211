"""`flywheel` deploy commands through typer's CliRunner: bundle verify/inspect, device provision/status,
deploy (refusals included), and one staged rollout through the Prefect flow on a tiny fleet."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "deploy"))
from deploy_testkit import detector_payload, manifest_fields

from flows.cli import app

pytest.importorskip("onnxruntime")
runner = CliRunner()


def _bundle(out: Path, counter: int, detector: dict | None = None, profile: str = "speaker4") -> Path:
    """A bundle signed with the default keystore (FLYWHEEL_KEYSTORE: a per-session test folder)."""
    from deploy.bundle import build_bundle
    from deploy.keystore import Keystore

    fields = manifest_fields(version=f"2.{counter}.0", release_counter=counter, profile=profile)
    build_bundle(detector_payload(detector), fields, Keystore(), out)
    return out


def _run(*args: str):
    result = runner.invoke(app, [str(a) for a in args])
    return result.exit_code, result.output + (result.stderr if result.stderr_bytes is not None else "")


def test_provision_deploy_status_and_refusals(tmp_path):
    bundle = _bundle(tmp_path / "v1.tar", 1)
    device = tmp_path / "dev"

    code, out = _run("bundle", "verify", bundle)
    assert code == 0 and "signature and hashes verified" in out
    code, out = _run("bundle", "inspect", bundle)
    assert code == 0 and "2.1.0" in out and "speaker4" in out

    code, out = _run("deploy", bundle, "--device", device)
    assert code != 0 and "not a provisioned device" in out
    code, out = _run("device", "provision", device, "--profile", "speaker4")
    assert code == 0 and "release counter 0" in out
    code, out = _run("device", "status", device, "--json")
    assert code == 0 and json.loads(out)["release_counter"] == 0 and json.loads(out)["boot_slot"] is None

    code, out = _run("deploy", bundle, "--device", device)
    assert code == 0 and "installed 2.1.0 into slot A" in out
    code, out = _run("device", "status", device, "--json")
    status = json.loads(out)
    assert (status["active_slot"], status["bundle_version"], status["release_counter"]) == ("A", "2.1.0", 1)
    assert status["last_refusal"] is None

    code, out = _run("deploy", bundle, "--device", device)  # the installed bundle again
    assert code != 0 and "release counter 1 is not above the installed 1" in out
    status = json.loads(_run("device", "status", device, "--json")[1])
    assert status["bundle_version"] == "2.1.0" and "not above" in status["last_refusal_reason"]

    tampered = tmp_path / "v2-tampered.tar"
    data = bytearray(_bundle(tmp_path / "v2.tar", 2).read_bytes())
    data[len(data) // 2] ^= 0x01
    tampered.write_bytes(bytes(data))
    code, out = _run("bundle", "verify", tampered)
    assert code != 0 and "error" in out
    code, out = _run("deploy", tampered, "--device", device)
    assert code != 0 and "refused at verify" in out
    status = json.loads(_run("device", "status", device, "--json")[1])
    assert (status["boot_slot"], status["bundle_version"], status["release_counter"]) == ("A", "2.1.0", 1)
    assert status["last_refusal"]["step"] == "verify"


def _tiny_params(tmp_path: Path, project_root: Path, canary_hours: float = 0.05) -> Path:
    params = yaml.safe_load((project_root / "params.yaml").read_text())
    params["deploy"]["rollout"].update(canary_hours=canary_hours, min_canary_hours=canary_hours)
    params_file = tmp_path / "params.yaml"
    params_file.write_text(yaml.safe_dump(params, sort_keys=False))  # key order matters (profiles_mix)
    return params_file


def test_rollout_command_exit_codes_and_decisions(tmp_path, project_root, monkeypatch):
    """The command's wiring, with the flow's steps run without Prefect (the flow itself is tested below)."""
    import flows.rollout
    from common.params import load_params
    from deploy.keystore import Keystore
    from deploy.staged import run_staged_rollout
    from flows.field_logs import learning_params
    from flows.simulated_fleet import SimulatedCanaryLogs, provision_field_fleet

    def steps_without_prefect(bundle, fleet_dir, params_file, n_devices=None, canary_fraction=None):
        p = load_params(params_file)
        rollout = {**p["deploy"]["rollout"], "canary_fraction": canary_fraction}
        provision_field_fleet(fleet_dir, n_devices, Keystore().trusted_public_keys(), p["simulate"])
        logs = SimulatedCanaryLogs.from_params(p["simulate"], rollout, learning_params(p))
        doc = run_staged_rollout(bundle, fleet_dir, rollout, logs)
        return {**doc, "decision_log": "decisions.json"}

    monkeypatch.setattr(flows.rollout, "staged_rollout", steps_without_prefect)
    params_file, fleet = _tiny_params(tmp_path, project_root), tmp_path / "fleet"
    args = ("--fleet", fleet, "--devices", 5, "--canary-fraction", 0.4, "--params", params_file)
    code, out = _run("rollout", tmp_path / "missing.tar", *args)
    assert code == 2 and "no such bundle" in out
    code, out = _run("rollout", _bundle(tmp_path / "v1.tar", 1), *args)
    assert code == 0 and "[gate] proceed: canaries within limits" in out and "outcome: rolled_out" in out, out
    bad = _bundle(tmp_path / "v2-bad.tar", 2, {"strict_threshold": 0.0, "lenient_threshold": 0.0})
    code, out = _run("rollout", bad, *args)
    assert code == 1 and "[gate] halt: lights-on share" in out and "outcome: halted" in out, out
    code, out = _run("rollout", bad, *args)  # again: halted canaries keep release 2, others are canaries now
    assert code == 1 and out.count(": at release 2") == 2 and "outcome: halted" in out, out
    other = _bundle(tmp_path / "v3-other.tar", 3, profile="studio9")
    code, out = _run("rollout", other, *args)
    assert code == 2 and "no device" in out and "can take studio9 release 3" in out, out


@pytest.mark.slow
def test_rollout_flow_halts_and_publishes_its_decisions(tmp_path, prefect_harness, project_root):
    from flows.rollout import staged_rollout

    fleet = tmp_path / "fleet"
    bad = _bundle(tmp_path / "bad.tar", 1, {"strict_threshold": 0.0, "lenient_threshold": 0.0})
    doc = staged_rollout(
        bundle=str(bad),
        fleet_dir=str(fleet),
        # against the factory detector the logs need more than 3 minutes per canary (test_deploy_staged)
        params_file=str(_tiny_params(tmp_path, project_root, canary_hours=0.25)),
        n_devices=5,
        canary_fraction=0.4,
    )
    assert doc["outcome"] == "halted"
    log = json.loads(Path(doc["decision_log"]).read_text())
    assert [e["step"] for e in log["decisions"]] == [
        "plan",
        "install_canaries",
        "observe",
        "gate",
        "rollback",
    ]
    gate = log["decisions"][3]
    # a detector stuck "present" never lets the routines switch the lights off; the truth agrees
    assert gate["decision"] == "halt" and gate["reasons"][0].startswith("lights-on share")
    assert gate["numbers"]["agrees_with_reference"]
    assert (
        len(log["summary"]["canaries"]) == 2 and log["summary"]["rolled_back"] == log["summary"]["canaries"]
    )
    for name in log["summary"]["canaries"]:
        status = json.loads(_run("device", "status", fleet / name, "--json")[1])
        assert status["boot_slot"] is None and status["release_counter"] == 1  # back to the factory detector

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    with get_client(sync_client=True) as client:
        keys = ArtifactFilterKey(any_=["rollout-decisions", "rollout-gate"])
        artifacts = client.read_artifacts(artifact_filter=ArtifactFilter(key=keys))
    markdown = next(a for a in artifacts if a.key == "rollout-decisions")
    assert "| gate | halt |" in markdown.data
    assert any(a.key == "rollout-gate" for a in artifacts)
