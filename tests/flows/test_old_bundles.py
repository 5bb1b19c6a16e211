"""Bundles built by earlier versions of main keep working: a rollout's baseline cohort runs the bundle
deployed before, so the device agent, the evaluation and the simulated units running a bundle must
accept them as they were built (their front-end and model).

tests/fixtures/bundles/smoke-247e5a6.tar.xz is the smoke turn's bundle built at main 247e5a6, before
the front-end had feature channels (its frontend.json has no `channels`; its model takes [N, 32, 48]),
with the public key it was signed with beside it. Add a fixture here whenever a change to the bundle's
files could break what is already on devices.
"""

from __future__ import annotations

import json
import lzma
import tarfile
from pathlib import Path

import numpy as np
import pytest

FIXTURES = Path(__file__).parents[1] / "fixtures" / "bundles"
OLD = ("smoke-247e5a6",)


@pytest.fixture(scope="module", params=OLD)
def old_bundle(request, tmp_path_factory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("old-bundle") / f"{request.param}.tar"
    out.write_bytes(lzma.decompress((FIXTURES / f"{request.param}.tar.xz").read_bytes()))
    return out, (FIXTURES / f"{request.param}.pub").read_text().strip()


def _payload_json(bundle: Path, name: str) -> dict:
    with tarfile.open(bundle) as tar:
        return json.loads(tar.extractfile(f"payload/{name}").read())


def test_the_fixture_is_a_bundle_from_before_feature_channels(old_bundle) -> None:
    bundle, _ = old_bundle
    assert "channels" not in _payload_json(bundle, "frontend.json")


def test_the_device_agent_installs_an_old_bundle(old_bundle, tmp_path) -> None:
    from deploy.agent import device_status, install_bundle, provision_device
    from deploy.keystore import key_id_of

    bundle, public_key = old_bundle
    device = tmp_path / "device"
    provision_device(device, "speaker4", {key_id_of(public_key): public_key})
    result = install_bundle(bundle, device)
    assert result.installed, result.reason
    assert device_status(device)["good"]


def test_the_evaluation_and_the_simulated_units_run_an_old_bundle(old_bundle, tmp_path) -> None:
    from common.params import load_params
    from fleet.simulate import simulate_batch
    from runtime.detector import DetectorConfig
    from runtime.frontend import FrontendConfig
    from runtime.pipeline import DevicePipeline
    from training.evaluate import evaluate_bundle_rows, read_bundle_payload

    bundle, _ = old_bundle
    params = load_params()
    raw, truth = tmp_path / "raw", tmp_path / "truth"
    sim, calibration = params["simulate"], params["calibration"]["config"]
    simulate_batch("eval", 1, 0.03, 5, raw, truth, sim_params=sim, calibration=calibration)
    figures, episodes = evaluate_bundle_rows(bundle, raw, truth)
    assert {r["kind"] for r in episodes} <= {"entry", "false_trigger", "false_absence"}
    assert figures["n_captures"] > 0 and figures["stream_hours"] > 0
    # the front-end as it was built: power only, 48 values per frame, as the model takes them
    model, frontend, detector = read_bundle_payload(bundle)
    assert FrontendConfig.from_dict(frontend).frame_width == 48
    iq = np.load(raw / json.loads((raw / "captures.jsonl").read_text().splitlines()[0])["file"])
    decisions = DevicePipeline(model, frontend, DetectorConfig.from_json(detector)).run_capture(
        iq, 2000.0, 40000.0
    )
    assert decisions.probs.shape[1] == 3 and np.isfinite(decisions.probs).all()
    # field units that run the old bundle decide their uploads with it
    field = simulate_batch(
        "field", 1, 0.05, 6, tmp_path / "field", tmp_path / "field-truth", bundle_path=bundle,
        sim_params=params["simulate"], calibration=params["calibration"]["config"],
    )  # fmt: skip
    assert field["n_captures"] > 0
