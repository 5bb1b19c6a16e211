"""Operator-facing deploy operations over the default keystore and device folders (what the CLI calls)."""

from __future__ import annotations

import tarfile
from pathlib import Path

from deploy.agent import device_status, install_bundle, provision_device, read_state
from deploy.bundle import bundle_sha256
from deploy.device_calibration import CalibrationHal, bundle_calibration_config, calibrate_device
from deploy.errors import BundleError
from deploy.keystore import Keystore
from deploy.layout import MANIFEST_NAME
from deploy.verify import verify_bundle


def verify_with_default_keys(bundle: Path) -> tuple[bool, str]:
    """Verify against the keystore's trusted keys and revocation list."""
    if not Path(bundle).is_file():
        return False, "no such bundle file"
    ks = Keystore()
    try:
        manifest = verify_bundle(bundle, ks.trusted_public_keys(), ks.revoked())
    except BundleError as exc:
        return False, exc.reason
    return (
        True,
        f"{manifest['name']} {manifest['version']} (release {manifest['release_counter']}), "
        f"{len(manifest['files'])} files, signature and hashes verified",
    )


def inspect_bundle(bundle: Path) -> str:
    from deploy.inspect import format_manifest

    ks = Keystore()
    manifest = verify_bundle(bundle, ks.trusted_public_keys(), ks.revoked())
    return format_manifest(manifest)


def provision(device_dir: Path, profile: str) -> str:
    state = provision_device(device_dir, profile, Keystore().trusted_public_keys())
    return f"provisioned {device_dir} ({state['profile']}, release counter {state['release_counter']})"


def deploy_to_device(bundle: Path, device_dir: Path, profile: str, hal: CalibrationHal | None = None) -> dict:
    """Provision the device if it is new, then install; the bundle already active is reported, not redone.

    With the device's audio HAL, the active bundle's calibration then runs (deploy.device_calibration).
    """
    device_dir = Path(device_dir)
    if not (device_dir / "state.json").exists():
        provision(device_dir, profile)
    sha = bundle_sha256(bundle)
    if _active_manifest(device_dir) == _bundle_manifest(bundle):
        result = {"installed": True, "already_active": True}
    else:
        result = install_bundle(bundle, device_dir).to_dict()
    if hal is not None and result["installed"]:
        slot = device_dir / "slots" / str(read_state(device_dir)["active_slot"])
        result["calibration"] = calibrate_device(device_dir, hal, bundle_calibration_config(slot))
    return {**result, "bundle_sha256": sha, "status": device_status(device_dir)}


def _bundle_manifest(bundle: Path) -> bytes | None:
    with tarfile.open(bundle) as tar:
        member = tar.extractfile(MANIFEST_NAME)
        return member.read() if member else None


def _active_manifest(device_dir: Path) -> bytes | None:
    state = read_state(device_dir)
    slot = state.get("active_slot")
    path = device_dir / "slots" / str(slot) / MANIFEST_NAME
    return path.read_bytes() if state.get("good") and path.exists() else None


def deploy_bundle(bundle: Path, device_dir: Path) -> tuple[bool, str]:
    if not (Path(device_dir) / "state.json").exists():
        return False, f"{device_dir}: not a provisioned device (run `flywheel device provision` first)"
    result = install_bundle(bundle, device_dir).to_dict()
    if result["installed"]:
        return True, f"installed {result['version']} into slot {result['slot']}: active and marked good"
    return False, f"refused at {result['step']}: {result['reason']}"
