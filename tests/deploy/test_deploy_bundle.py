"""Bundle building: determinism, layout, manifest schema and signature."""

from __future__ import annotations

import copy
import hashlib
import json
import tarfile

import pytest
from deploy_testkit import manifest_fields, payload_files

from deploy.bundle import build_bundle, bundle_sha256
from deploy.errors import BundleError, ManifestError
from deploy.keystore import Keystore
from deploy.manifest import canonical_json_bytes, parse_manifest_bytes, validate_manifest
from deploy.verify import verify_bundle


def test_same_inputs_give_identical_bytes(tmp_path, keystore):
    a = tmp_path / "a.tar"
    b = tmp_path / "b.tar"
    build_bundle(payload_files(), manifest_fields(), keystore, a)
    files = payload_files()
    on_disk = tmp_path / "model.onnx"
    on_disk.write_bytes(files["model_int8.onnx"])
    files["model_int8.onnx"] = on_disk  # a path or bytes: same bundle
    build_bundle(dict(reversed(files.items())), manifest_fields(), keystore, b)
    assert bundle_sha256(a) == bundle_sha256(b) == hashlib.sha256(a.read_bytes()).hexdigest()
    c = tmp_path / "c.tar"
    build_bundle(payload_files(), manifest_fields(version="1.0.1"), keystore, c)
    assert bundle_sha256(c) != bundle_sha256(a)


def test_layout_headers_and_manifest(tmp_path, keystore):
    out = tmp_path / "b.tar"
    manifest = build_bundle(payload_files(), manifest_fields(), keystore, out)
    with tarfile.open(out) as tar:
        members = tar.getmembers()
        names = [m.name for m in members]
        assert names[:2] == ["manifest.json", "manifest.sig"]
        assert names[2:] == sorted(names[2:]) and all(n.startswith("payload/") for n in names[2:])
        for m in members:
            assert (m.mtime, m.uid, m.gid, m.uname, m.gname, m.mode, m.type) == (0, 0, 0, "", "", 0o644, b"0")
        manifest_bytes = tar.extractfile("manifest.json").read()
        signature = json.loads(tar.extractfile("manifest.sig").read())
        model = tar.extractfile("payload/model_int8.onnx").read()
    assert manifest_bytes == canonical_json_bytes(manifest)
    assert signature["key_id"] == keystore.active_key_id
    keystore.public_keys()[keystore.active_key_id].verify(
        __import__("base64").b64decode(signature["signature_b64"]), manifest_bytes
    )
    assert manifest["files"]["model_int8.onnx"] == {
        "sha256": hashlib.sha256(model).hexdigest(),
        "size": len(model),
    }
    assert set(manifest["files"]) == set(payload_files())
    assert manifest["format_version"] == 1 and manifest["release_counter"] == 1
    assert verify_bundle(out, keystore.trusted_public_keys()) == manifest
    assert out.stat().st_size % tarfile.RECORDSIZE == 0


def test_verify_limits_declared_sizes(tmp_path, keystore):
    out = tmp_path / "b.tar"
    build_bundle(payload_files(), manifest_fields(), keystore, out)
    with pytest.raises(BundleError, match="above the limit"):
        verify_bundle(out, keystore.trusted_public_keys(), max_entry_bytes=100)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda m: m.pop("profile"), "missing 'profile'"),
        (lambda m: m.update(version="1.0"), "semantic version"),
        (lambda m: m.update(release_counter=0), "release_counter"),
        (lambda m: m.update(release_counter=True), "wrong type"),
        (lambda m: m.update(params_hash="xyz"), "params_hash"),
        (lambda m: m["metrics"].update(recall=float("nan")), "finite"),
        (lambda m: m["model"]["quantization"].update(zero_point=300), "zero_point"),
        (lambda m: m["model"]["quantization"].update(scale=0.0), "scale"),
        (lambda m: m["model"].update(file="missing.onnx"), "not listed"),
        (lambda m: m["configs"].pop("mbdp"), "configs.mbdp"),
        (lambda m: m["configs"]["detector"].pop("runtime_version"), "configs.detector"),
        (lambda m: m["model"]["inputs"][0].update(shape=[]), "shape"),
        (lambda m: m["self_test"].update(atol=-1.0), "atol"),
        (lambda m: m.update(release="seed"), "release must be"),
        (lambda m: m.update(release={"model": "seed", "candidate": "retrained"}), "release must be"),
    ],
)
def test_manifest_schema_rejects_bad_fields(tmp_path, keystore, mutate, message):
    manifest = build_bundle(payload_files(), manifest_fields(), keystore, tmp_path / "b.tar")
    validate_manifest(manifest)
    bad = copy.deepcopy(manifest)
    mutate(bad)
    with pytest.raises(ManifestError, match=message):
        validate_manifest(bad)


def test_manifest_bytes_must_be_canonical_and_unique_keys(tmp_path, keystore):
    manifest = build_bundle(payload_files(), manifest_fields(), keystore, tmp_path / "b.tar")
    assert parse_manifest_bytes(canonical_json_bytes(manifest)) == manifest
    with pytest.raises(ManifestError, match="canonical"):
        parse_manifest_bytes(json.dumps(manifest, indent=1).encode())
    with pytest.raises(ManifestError, match="duplicate key"):
        parse_manifest_bytes(b'{"a":1,"a":2}')


@pytest.mark.parametrize("name", ["../x", "/abs", "a/../b", ".hidden", "a\\b", "", "x" * 91])
def test_unsafe_payload_names_are_refused_at_build(tmp_path, keystore, name):
    files = payload_files()
    files[name] = b"x"
    with pytest.raises(ManifestError):
        build_bundle(files, manifest_fields(), keystore, tmp_path / "b.tar")
    assert not (tmp_path / "b.tar").exists()


def test_caller_cannot_set_files(tmp_path, keystore):
    fields = manifest_fields()
    fields["files"] = {}
    with pytest.raises(ManifestError, match="must not set"):
        build_bundle(payload_files(), fields, keystore, tmp_path / "b.tar")


def test_revoked_active_key_cannot_sign(tmp_path):
    store = Keystore(tmp_path / "k")
    store.revoke(store.active_key_id)
    with pytest.raises(Exception, match="revoked"):
        build_bundle(payload_files(), manifest_fields(), store, tmp_path / "b.tar")


def test_manifest_release_block_round_trips(tmp_path, keystore):
    release = {"model": "seed", "candidate": "retrained", "reason": "retrained held back: recall"}
    manifest = build_bundle(
        payload_files(), {**manifest_fields(), "release": release}, keystore, tmp_path / "b.tar"
    )
    assert manifest["release"] == release
    assert verify_bundle(tmp_path / "b.tar", keystore.trusted_public_keys())["release"] == release
