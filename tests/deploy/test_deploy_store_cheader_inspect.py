"""Artifact store round trips, C header emission and the human-readable manifest."""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess

import pytest
from deploy_testkit import manifest_fields, payload_files, tiny_model_bytes

from deploy.bundle import build_bundle
from deploy.cheader import c_header_text, emit_c_header
from deploy.errors import StoreError
from deploy.inspect import format_manifest
from deploy.store import FsspecStore, LocalStore, open_store


def _exercise(store, tmp_path):
    a, b = b"bundle-a" * 1000, b"bundle-b"
    source = tmp_path / "b.bin"
    source.write_bytes(b)
    da, db = store.put(a), store.put(source)
    assert da == hashlib.sha256(a).hexdigest() and db == hashlib.sha256(b).hexdigest()
    assert store.put(a) == da  # idempotent
    assert store.list() == sorted([da, db])
    assert store.exists(da) and not store.exists("0" * 64)
    assert store.read_bytes(da) == a
    assert store.get(db, tmp_path / "out" / "b.bin").read_bytes() == b
    with pytest.raises(StoreError, match="no object"):
        store.read_bytes("0" * 64)
    with pytest.raises(StoreError, match="sha256"):
        store.read_bytes("../../etc/passwd")
    return da


def test_local_store_round_trip_and_corruption(tmp_path):
    store = LocalStore(tmp_path / "store")
    digest = _exercise(store, tmp_path)
    assert not [p for p in (tmp_path / "store").rglob(".*")]  # no temp files left behind
    obj = tmp_path / "store" / "objects" / digest[:2] / digest
    obj.write_bytes(b"tampered")
    with pytest.raises(StoreError, match="corrupt"):
        store.read_bytes(digest)
    with pytest.raises(StoreError, match="corrupt"):
        store.get(digest, tmp_path / "got.bin")
    assert not (tmp_path / "got.bin").exists()


def test_fsspec_store_round_trip_on_memory_filesystem(tmp_path):
    store = open_store("memory://flywheel-test-store/bundles")
    assert isinstance(store, FsspecStore)
    try:
        _exercise(store, tmp_path)
        assert not store.fs.exists("/flywheel-test-store/bundles/incoming") or not store.fs.ls(
            "/flywheel-test-store/bundles/incoming"
        )
    finally:
        store.fs.rm("/flywheel-test-store", recursive=True)


def test_open_store_picks_local_for_paths(tmp_path):
    assert isinstance(open_store(tmp_path / "s"), LocalStore)
    assert isinstance(open_store(f"file://{tmp_path}/s2"), LocalStore)


def _array_from_header(text: str) -> bytes:
    body = text[text.index("= {") : text.index("};")]
    return bytes(int(h, 16) for h in re.findall(r"0x([0-9a-f]{2})", body))


def test_c_header_round_trips_the_model(tmp_path):
    model = tiny_model_bytes()
    path = emit_c_header(model, tmp_path / "model_int8.h")
    text = path.read_text()
    assert _array_from_header(text) == model
    assert f"presence_model_int8_len = {len(model)}u;" in text
    assert hashlib.sha256(model).hexdigest() in text
    with pytest.raises(ValueError, match="identifier"):
        c_header_text(model, "not-an identifier")


@pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler on this machine")
def test_c_header_compiles_and_carries_the_bytes(tmp_path):
    model = tiny_model_bytes()
    emit_c_header(model, tmp_path / "model_int8.h")
    (tmp_path / "main.c").write_text(
        '#include <stdio.h>\n#include "model_int8.h"\n'
        "int main(void) { unsigned long s = 0;\n"
        "  for (size_t i = 0; i < presence_model_int8_len; i++) s = s * 31u + presence_model_int8[i];\n"
        '  printf("%zu %lu\\n", presence_model_int8_len, s); return 0; }\n'
    )
    subprocess.run(["cc", "-std=c11", "-Wall", "-Werror", "-o", "main", "main.c"], cwd=tmp_path, check=True)
    out = subprocess.run([str(tmp_path / "main")], capture_output=True, text=True, check=True).stdout.split()
    expected = 0
    for byte in model:
        expected = (expected * 31 + byte) % 2**64
    assert out == [str(len(model)), str(expected)]


def test_format_manifest_is_readable(tmp_path, keystore):
    manifest = build_bundle(payload_files(), manifest_fields(version="1.4.2"), keystore, tmp_path / "b.tar")
    text = format_manifest(manifest)
    needles = ["presence 1.4.2", "counter 1", "speaker4", "model_int8.onnx", "zero point 0"]
    needles += ["features float32 [N×32×48]", "mbdp", "false_alarms_per_hour", "c/model_int8.h"]
    for needle in needles:
        assert needle in text, needle
