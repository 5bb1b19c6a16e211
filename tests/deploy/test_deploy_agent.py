"""Device agent: provisioning, A/B install, status, health-check rollback, fault injection at every step."""

from __future__ import annotations

import json

import pytest

from deploy.agent import (
    INSTALL_STEPS,
    DeviceError,
    FaultInjector,
    SimulatedPowerCut,
    device_boot,
    device_status,
    install_bundle,
    provision_device,
    read_state,
)
from deploy.verify import verify_slot


def test_provision_gives_factory_state(tmp_path, keystore):
    device = tmp_path / "dev"
    provision_device(device, "speaker4", keystore.trusted_public_keys())
    state = json.loads((device / "state.json").read_text())
    assert state["active_slot"] is None and state["release_counter"] == 0 and state["last_refusal"] is None
    assert (device / "slots" / "A").is_dir() and (device / "slots" / "B").is_dir()
    assert sorted(p.stem for p in (device / "trusted_keys").iterdir()) == [keystore.active_key_id]
    assert json.loads((device / "revoked.json").read_text()) == []
    assert device_boot(device) is None
    status = device_status(device)
    assert status["bundle_version"] is None and status["last_refusal_reason"] is None
    with pytest.raises(DeviceError, match="already provisioned"):
        provision_device(device, "speaker4", keystore.trusted_public_keys())
    with pytest.raises(DeviceError, match="trusted key"):
        provision_device(tmp_path / "dev2", "speaker4", {})


def test_installs_alternate_slots_and_report_status(device, make_bundle):
    assert device_boot(device) == "A"
    r2 = install_bundle(make_bundle("v2.tar", version="1.1.0", release_counter=2), device)
    assert (r2.installed, r2.slot, r2.version, r2.release_counter) == (True, "B", "1.1.0", 2)
    r3 = install_bundle(make_bundle("v3.tar", version="2.0.0", release_counter=5), device)
    assert (r3.installed, r3.slot) == (True, "A")
    status = device_status(device)
    assert status["active_slot"] == status["boot_slot"] == "A"
    assert status["bundle_version"] == "2.0.0" and status["release_counter"] == 5 and status["good"]
    assert status["slots"]["B"]["version"] == "1.1.0"
    manifest = verify_slot(device / "slots" / "A", {k: v for k, v in _trusted(device).items()})
    assert manifest["version"] == "2.0.0"
    assert sorted(p.name for p in (device / "slots").iterdir()) == ["A", "B"]  # no temp folders left


def _trusted(device):
    from deploy.agent import device_trust

    return device_trust(device)[0]


def test_health_check_failure_rolls_back(device, make_bundle, snapshot):
    result = install_bundle(
        make_bundle("v2.tar", version="1.1.0", release_counter=2),
        device,
        FaultInjector(fail_at="health_check"),
    )
    assert not result.installed and result.step == "health_check" and "rolled back" in result.reason
    status = device_status(device)
    assert status["active_slot"] == status["boot_slot"] == "A" and status["good"]
    assert status["bundle_version"] == "1.0.0" and status["release_counter"] == 1
    assert status["slots"]["B"]["state"] == "bad"
    assert "health check failed" in status["last_refusal_reason"]
    # a later good release installs normally into B
    assert install_bundle(make_bundle("v2b.tar", version="1.1.1", release_counter=3), device).installed


def test_corrupted_active_slot_falls_back_to_the_other_good_slot(device, make_bundle):
    assert install_bundle(make_bundle("v2.tar", version="1.1.0", release_counter=2), device).installed
    model = device / "slots" / "B" / "payload" / "model_int8.onnx"
    model.write_bytes(model.read_bytes()[:-1] + b"\x00")  # bit rot in the active slot
    assert device_boot(device) == "A"


@pytest.mark.parametrize("step", INSTALL_STEPS)
def test_killed_at_any_step_still_boots_a_good_slot(device, make_bundle, step):
    bundle = make_bundle("v2.tar", version="1.1.0", release_counter=2)
    with pytest.raises(SimulatedPowerCut):
        install_bundle(bundle, device, FaultInjector(kill_at=step))
    boot = device_boot(device)
    assert boot == "A"  # never marked good, so the previous good slot boots
    assert verify_slot(device / "slots" / boot, _trusted(device))["version"] == "1.0.0"
    assert read_state(device)["release_counter"] == 1
    # on the next start the agent recovers and the same bundle installs cleanly
    result = install_bundle(bundle, device)
    assert result.installed and result.slot == "B", result.reason
    assert device_boot(device) == "B"
    assert sorted(p.name for p in (device / "slots").iterdir()) == ["A", "B"]


def test_killed_during_first_install_boots_nothing_then_recovers(tmp_path, keystore, make_bundle):
    device = tmp_path / "fresh"
    provision_device(device, "speaker4", keystore.trusted_public_keys())
    bundle = make_bundle("v1.tar")
    with pytest.raises(SimulatedPowerCut):
        install_bundle(bundle, device, FaultInjector(kill_at="health_check"))
    assert device_boot(device) is None  # factory image: never boots an unconfirmed bundle
    assert install_bundle(bundle, device).installed and device_boot(device) == "A"


def test_fault_injector_rejects_unknown_steps():
    with pytest.raises(ValueError, match="unknown step"):
        FaultInjector(kill_at="typo")
    with pytest.raises(ValueError, match="fail_at"):
        FaultInjector(fail_at="verify")
