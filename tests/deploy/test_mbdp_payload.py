"""The bundle's MBDP part: tuning from the profile presets, self-test vectors the device reproduces."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest

from deploy.mbdp_payload import TUNING_FILE, VECTORS_FILE, mbdp_payload, mbdp_test_signal
from deploy.selftest import _mbdp_problem
from runtime.mbdp import (
    MBDP_RUNTIME_VERSION,
    PRESETS_FILE,
    bundle_tuning,
    load_preset,
    true_peak,
    tuning_configs,
)


@pytest.fixture(scope="module")
def payload() -> dict[str, bytes]:
    return mbdp_payload(bundle_tuning("speaker4"), seconds=0.1, seed=1)


def _write(tmp_path, files: dict[str, bytes]):
    for name, blob in files.items():
        (tmp_path / name).write_bytes(blob)
    return tmp_path / TUNING_FILE, tmp_path / VECTORS_FILE


def test_tuning_carries_both_presets_of_the_profile():
    tuning = bundle_tuning("display2")
    assert tuning["runtime_version"] == MBDP_RUNTIME_VERSION and tuning["profile"] == "display2"
    configs = tuning_configs(tuning)
    assert configs["playback"] == load_preset("display2")
    assert configs["sensing"] == load_preset("display2_sensing")


def test_presets_with_different_crossovers_are_refused(tmp_path):
    presets = json.loads(PRESETS_FILE.read_text())
    presets["speaker4_sensing"]["crossovers_hz"] = [150, 800, 4000]
    (tmp_path / "presets.json").write_text(json.dumps(presets))
    with pytest.raises(ValueError, match="share fs and crossovers"):
        bundle_tuning("speaker4", tmp_path / "presets.json")


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda t: t.update(runtime_version="mbdp-design-1"), "runtime_version"),
        (lambda t: t["modes"].pop("sensing"), "modes must be exactly"),
        (lambda t: t["modes"]["playback"]["bands"].pop(), "modes.playback"),
        (lambda t: t["modes"]["sensing"]["bands"][0].update(ratio=0.5), "modes.sensing"),
    ],
)
def test_malformed_tuning_names_the_field(mutate, message):
    tuning = bundle_tuning("speaker4")
    mutate(tuning)
    with pytest.raises(ValueError, match=message):
        tuning_configs(tuning)


def test_payload_is_deterministic_and_carries_the_fixed_point_export(payload):
    assert mbdp_payload(bundle_tuning("speaker4"), seconds=0.1, seed=1) == payload
    assert {TUNING_FILE, VECTORS_FILE, "mbdp.h", "mbdp_q31.json"} <= set(payload)
    assert b"arm_biquad_cascade_df1_q31" in payload["mbdp.h"]


def test_test_signal_drives_the_true_peak_limiter(payload):
    x = mbdp_test_signal(48000.0, 0.1, seed=1)
    assert np.max(np.abs(x[: x.size // 10])) < 10 ** (-20 / 20)  # starts quiet
    assert np.max(np.abs(x)) > 1.0  # ends above full scale: only the limiter keeps it under the ceiling
    with np.load(io.BytesIO(payload[VECTORS_FILE]), allow_pickle=False) as v:
        np.testing.assert_array_equal(v["input"], x)
        ceiling = load_preset("speaker4").ceiling_dbtp
        assert 20 * np.log10(true_peak(v["expected_playback"])) <= ceiling + 0.2
        assert not np.allclose(v["expected_playback"], v["expected_sensing"])  # the modes differ


def test_device_reproduces_the_vectors(payload, tmp_path):
    assert _mbdp_problem(*_write(tmp_path, payload), atol=1e-6) is None


def test_tuning_that_does_not_match_its_vectors_is_caught(payload, tmp_path):
    tuning = bundle_tuning("speaker4")
    tuning["modes"]["sensing"]["bands"][0]["makeup_db"] += 1.0
    tuning_path, vectors_path = _write(tmp_path, {**payload, TUNING_FILE: json.dumps(tuning).encode()})
    problem = _mbdp_problem(tuning_path, vectors_path, atol=1e-6)
    assert problem is not None and "mbdp sensing output differs" in problem


def test_missing_expected_mode_is_caught(payload, tmp_path):
    with np.load(io.BytesIO(payload[VECTORS_FILE]), allow_pickle=False) as v:
        buf = io.BytesIO()
        np.savez(buf, input=v["input"], expected_playback=v["expected_playback"])
    problem = _mbdp_problem(*_write(tmp_path, {**payload, VECTORS_FILE: buf.getvalue()}), atol=1e-6)
    assert problem is not None and "expected_sensing" in problem
