"""Device agent for a simulated device (a folder): provisioning, A/B install with rollback, boot, status.

Device folder:
    calibration.json  the calibration record (deploy.device_calibration), once the device calibrated
    state.json        profile, active_slot, good, bundle_version, release_counter, previous_slot,
                      last_refusal {reason, step, bundle, at}, slots {A|B: {state, version, release_counter}}
    slots/A, slots/B  installed bundles (manifest.json, manifest.sig, payload/...)
    trusted_keys/     <key_id>.pub (hex raw ed25519 public keys)
    revoked.json      revoked key ids

Install (each named step is a fault-injection point, see INSTALL_STEPS):
    verify        whole bundle checked (signature, hashes, layout); nothing written yet
    policy        right profile, release counter strictly above the installed one
    extract       verified again while written into slots/.tmp-X (every file fsynced)
    extract_file  (after each extracted file)
    self_test     test vectors through the model in the temp folder
    install_slot  state marks slot X as being replaced, then the old X is moved aside
    slot_swap     temp folder renamed to slots/X
    switch        state.json (atomic) makes X active on trial, remembering the previous slot
    health_check  X re-verified from disk and self-tested again; failure rolls back to the previous slot
    mark_good     state marks X good and records its release counter
A refusal before `switch` leaves slots and state untouched except `last_refusal`. A device killed at any
step boots a good slot: a trial slot that was never marked good is not booted (device_boot).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import shutil
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from common.io import atomic_write_json, atomic_write_text, read_json
from deploy.device_calibration import calibration_status
from deploy.errors import BundleError
from deploy.keystore import PublicKeyLike, key_id_of, load_public_key, raw_public_bytes
from deploy.selftest import run_self_test
from deploy.verify import DEFAULT_MAX_ENTRY_BYTES, extract_bundle, verify_bundle, verify_slot

SLOTS = ("A", "B")
INSTALL_STEPS = (
    "verify",
    "policy",
    "extract",
    "extract_file",
    "self_test",
    "install_slot",
    "slot_swap",
    "switch",
    "health_check",
    "mark_good",
)
CHECK_STEPS = ("self_test", "health_check")


class DeviceError(Exception):
    """The device folder is missing, not provisioned, or provisioned twice."""


class SimulatedPowerCut(BaseException):
    """Raised by FaultInjector to stop an install dead at a step, as a power cut would."""


@dataclass
class FaultInjector:
    """kill_at: raise SimulatedPowerCut when that step begins. fail_at: make that check report failure."""

    kill_at: str | None = None
    fail_at: str | None = None

    def __post_init__(self) -> None:
        if self.kill_at is not None and self.kill_at not in INSTALL_STEPS:
            raise ValueError(f"unknown step {self.kill_at!r}; steps: {INSTALL_STEPS}")
        if self.fail_at is not None and self.fail_at not in CHECK_STEPS:
            raise ValueError(f"fail_at must be one of {CHECK_STEPS}")

    def checkpoint(self, step: str) -> None:
        if step == self.kill_at:
            raise SimulatedPowerCut(step)


@dataclass(frozen=True)
class InstallResult:
    installed: bool  # True only when the bundle is installed, active and marked good
    reason: str
    step: str  # last step reached
    slot: str | None
    version: str | None
    release_counter: int | None

    def to_dict(self) -> dict:
        return asdict(self)


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _fsync_tree(root: Path) -> None:
    for dirpath, _, _ in os.walk(root):
        _fsync_dir(Path(dirpath))


# -- device folder ------------------------------------------------------------------------------
def _state_path(device_dir: Path) -> Path:
    return device_dir / "state.json"


def read_state(device_dir: str | os.PathLike) -> dict:
    path = _state_path(Path(device_dir))
    if not path.exists():
        raise DeviceError(f"{device_dir} is not a provisioned device (no state.json)")
    return read_json(path)


def _write_state(device_dir: Path, state: dict) -> None:
    atomic_write_json(_state_path(device_dir), state)


def device_trust(device_dir: str | os.PathLike) -> tuple[dict[str, PublicKeyLike], set[str]]:
    """(trusted public keys by key id, revoked key ids) stored on the device."""
    device_dir = Path(device_dir)
    keys = {}
    for path in sorted((device_dir / "trusted_keys").glob("*.pub")):
        key = load_public_key(path.read_text().strip())
        keys[key_id_of(key)] = key
    return keys, set(read_json(device_dir / "revoked.json"))


def provision_device(
    device_dir: str | os.PathLike,
    profile: str,
    trusted_keys: dict[str, PublicKeyLike] | list[PublicKeyLike],
    revoked: Iterable[str] = (),
    max_entry_bytes: int = DEFAULT_MAX_ENTRY_BYTES,
) -> dict:
    """Factory state: empty slots A and B, trusted keys, revocation list, release counter 0."""
    device_dir = Path(device_dir)
    if _state_path(device_dir).exists():
        raise DeviceError(f"{device_dir} is already provisioned")
    if not profile:
        raise DeviceError("a device needs a profile")
    keys = list(trusted_keys.values()) if isinstance(trusted_keys, dict) else list(trusted_keys)
    if not keys:
        raise DeviceError("a device needs at least one trusted key")
    for slot in SLOTS:
        (device_dir / "slots" / slot).mkdir(parents=True, exist_ok=True)
    for key in keys:
        public = load_public_key(key)
        atomic_write_text(
            device_dir / "trusted_keys" / f"{key_id_of(public)}.pub", raw_public_bytes(public).hex()
        )
    atomic_write_json(device_dir / "revoked.json", sorted(set(revoked)))
    state = {
        "profile": profile,
        "active_slot": None,
        "previous_slot": None,
        "good": False,
        "bundle_version": None,
        "release_counter": 0,
        "last_refusal": None,
        "max_entry_bytes": int(max_entry_bytes),
        "slots": {slot: {"state": "empty", "version": None, "release_counter": None} for slot in SLOTS},
    }
    _write_state(device_dir, state)
    return state


def update_device_trust(
    device_dir: str | os.PathLike, add_keys: Iterable[PublicKeyLike] = (), revoke: Iterable[str] = ()
) -> tuple[list[str], list[str]]:
    """Service operation: trust more public keys and/or revoke key ids. Returns (trusted ids, revoked ids).

    Revoked keys stop new installs; slots already installed under them still boot.
    """
    device_dir = Path(device_dir)
    read_state(device_dir)
    for key in add_keys:
        public = load_public_key(key)
        path = device_dir / "trusted_keys" / f"{key_id_of(public)}.pub"
        atomic_write_text(path, raw_public_bytes(public).hex())
    _, revoked = device_trust(device_dir)
    atomic_write_json(device_dir / "revoked.json", sorted(revoked | set(revoke)))
    trusted, revoked = device_trust(device_dir)
    return sorted(trusted), sorted(revoked)


# -- boot and status ----------------------------------------------------------------------------
def _boot_candidates(state: dict) -> list[str]:
    slots = state["slots"]
    active = state["active_slot"]
    order = [active] if active and state["good"] and slots[active]["state"] == "good" else []
    if active and not state["good"] and state.get("previous_slot"):  # trial never marked good
        order.append(state["previous_slot"])
    order += [s for s in SLOTS if s not in order]
    return [s for s in order if slots[s]["state"] == "good"]


def device_boot(device_dir: str | os.PathLike) -> str | None:
    """The slot the bootloader would start: the first good slot that still verifies; None = no bundle."""
    device_dir = Path(device_dir)
    state = read_state(device_dir)
    trusted, _ = device_trust(device_dir)
    for slot in _boot_candidates(state):
        try:
            verify_slot(device_dir / "slots" / slot, trusted)
        except BundleError:
            continue
        return slot
    return None


def device_status(device_dir: str | os.PathLike) -> dict:
    """Active slot, bundle version, release counter, last refusal and reason (plus what would boot)."""
    device_dir = Path(device_dir)
    state = read_state(device_dir)
    boot = device_boot(device_dir)
    refusal = state["last_refusal"]
    return {
        "device": str(device_dir),
        "profile": state["profile"],
        "active_slot": state["active_slot"],
        "good": state["good"],
        "boot_slot": boot,
        "bundle_version": state["slots"][boot]["version"] if boot else None,
        "release_counter": state["release_counter"],
        "last_refusal": refusal,
        "last_refusal_reason": refusal["reason"] if refusal else None,
        "slots": state["slots"],
        "calibration": calibration_status(device_dir),
    }


def recover(device_dir: str | os.PathLike) -> dict:
    """What the agent does at start-up: drop half-built slot folders, abandon an unconfirmed trial."""
    device_dir = Path(device_dir)
    slots_dir = device_dir / "slots"
    for leftover in slots_dir.glob(".*"):
        shutil.rmtree(leftover, ignore_errors=True)
    state = read_state(device_dir)
    for slot in SLOTS:
        if not (slots_dir / slot).exists():  # killed between moving the old slot aside and the rename
            (slots_dir / slot).mkdir()
            state["slots"][slot] = {"state": "empty", "version": None, "release_counter": None}
    active = state["active_slot"]
    if active and not state["good"]:
        state["slots"][active]["state"] = "bad"
        state["active_slot"] = state["previous_slot"]
        state["good"] = state["previous_slot"] is not None
        state["previous_slot"] = None
    _write_state(device_dir, state)
    return state


# -- install ------------------------------------------------------------------------------------
def _refuse(device_dir: Path, state: dict, bundle: Path, step: str, reason: str) -> InstallResult:
    state["last_refusal"] = {"reason": reason, "step": step, "bundle": str(bundle), "at": _now()}
    _write_state(device_dir, state)
    active = state["active_slot"]
    return InstallResult(
        installed=False,
        reason=reason,
        step=step,
        slot=active,
        version=state["slots"][active]["version"] if active else None,
        release_counter=state["release_counter"],
    )


def install_bundle(
    bundle_path: str | os.PathLike, device_dir: str | os.PathLike, faults: FaultInjector | None = None
) -> InstallResult:
    """Verify, check policy, install into the inactive slot, self-test, switch, health-check, mark good."""
    bundle = Path(bundle_path)
    device_dir = Path(device_dir)
    faults = faults or FaultInjector()
    state = recover(device_dir)
    trusted, revoked = device_trust(device_dir)
    limit = state["max_entry_bytes"]

    faults.checkpoint("verify")
    try:
        manifest = verify_bundle(bundle, trusted, revoked, max_entry_bytes=limit)
    except BundleError as exc:
        return _refuse(device_dir, state, bundle, "verify", exc.reason)

    faults.checkpoint("policy")
    if manifest["profile"] != state["profile"]:
        reason = f"wrong profile: bundle is for {manifest['profile']!r}, device is {state['profile']!r}"
        return _refuse(device_dir, state, bundle, "policy", reason)
    if manifest["release_counter"] <= state["release_counter"]:
        reason = (
            f"release counter {manifest['release_counter']} is not above the installed "
            f"{state['release_counter']} (downgrade or re-deploy refused)"
        )
        return _refuse(device_dir, state, bundle, "policy", reason)

    active = state["active_slot"]
    target = "B" if active == "A" else "A"
    slots_dir = device_dir / "slots"
    staging = slots_dir / f".tmp-{target}"
    killed = False  # a power cut leaves its debris for recover(); every other exit cleans up
    try:
        faults.checkpoint("extract")
        try:
            extracted = extract_bundle(
                bundle,
                staging,
                trusted,
                revoked,
                limit,
                after_file=lambda _: faults.checkpoint("extract_file"),
            )
        except BundleError as exc:
            return _refuse(device_dir, state, bundle, "extract", exc.reason)
        if extracted != manifest:
            return _refuse(
                device_dir, state, bundle, "extract", "bundle changed between verification and extraction"
            )
        _fsync_tree(staging)

        faults.checkpoint("self_test")
        result = run_self_test(staging, manifest)
        if faults.fail_at == "self_test":
            result = type(result)(False, "self-test failure injected")
        if not result.ok:
            return _refuse(device_dir, state, bundle, "self_test", f"self-test failed: {result.reason}")

        faults.checkpoint("install_slot")
        state["slots"][target] = {"state": "installing", "version": None, "release_counter": None}
        _write_state(device_dir, state)
        old = slots_dir / f".old-{target}"
        if (slots_dir / target).exists():
            os.replace(slots_dir / target, old)
        faults.checkpoint("slot_swap")
        os.replace(staging, slots_dir / target)
        _fsync_dir(slots_dir)
        shutil.rmtree(old, ignore_errors=True)
    except SimulatedPowerCut:
        killed = True
        raise
    finally:
        if not killed and staging.exists():
            shutil.rmtree(staging, ignore_errors=True)

    faults.checkpoint("switch")
    version, counter = manifest["version"], manifest["release_counter"]
    state["slots"][target] = {"state": "trial", "version": version, "release_counter": counter}
    state["previous_slot"] = active if active and state["good"] else None
    state["active_slot"] = target
    state["good"] = False
    _write_state(device_dir, state)

    faults.checkpoint("health_check")
    problem = _health_check(slots_dir / target, trusted)
    if faults.fail_at == "health_check":
        problem = "health-check failure injected"
    if problem:
        state["slots"][target]["state"] = "bad"
        state["active_slot"] = state["previous_slot"]
        state["good"] = state["previous_slot"] is not None
        state["previous_slot"] = None
        return _refuse(
            device_dir, state, bundle, "health_check", f"health check failed, rolled back: {problem}"
        )

    faults.checkpoint("mark_good")
    state["slots"][target]["state"] = "good"
    state["good"] = True
    state["previous_slot"] = None
    state["bundle_version"] = version
    state["release_counter"] = counter
    _write_state(device_dir, state)
    return InstallResult(True, "installed", "mark_good", target, version, counter)


def _health_check(slot_dir: Path, trusted: dict[str, PublicKeyLike]) -> str | None:
    """Re-read the installed slot from disk: signature, hashes, and the self-test once more."""
    try:
        manifest = verify_slot(slot_dir, trusted)
    except BundleError as exc:
        return exc.reason
    result = run_self_test(slot_dir, manifest)
    return None if result.ok else result.reason
