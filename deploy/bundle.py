"""Deterministic signed bundle builder: the same inputs always give the same bytes.

Layout of the uncompressed USTAR tar, entries in this order:
    manifest.json    canonical JSON (deploy.manifest.canonical_json_bytes)
    manifest.sig     canonical JSON {key_id, signature_b64}: ed25519 over the exact manifest.json bytes
    payload/<name>   every payload file, sorted by name
Every entry: regular file, mtime 0, uid/gid 0, uname/gname "", mode 0o644. No directory entries.
"""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
from collections.abc import Mapping
from pathlib import Path

from common.io import atomic_path
from deploy.keystore import Keystore
from deploy.layout import FILE_MODE, MANIFEST_NAME, PAYLOAD_PREFIX, SIGNATURE_NAME
from deploy.manifest import build_manifest, canonical_json_bytes, check_payload_name
from deploy.verify import verify_bundle

_CHUNK = 1 << 20


def _tar_info(name: str, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mtime = 0
    info.mode = FILE_MODE
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.type = tarfile.REGTYPE
    return info


def _hash_source(source: Path | bytes) -> dict:
    digest = hashlib.sha256()
    if isinstance(source, bytes):
        digest.update(source)
        return {"sha256": digest.hexdigest(), "size": len(source)}
    size = 0
    with open(source, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return {"sha256": digest.hexdigest(), "size": size}


def build_bundle(
    payload_files: Mapping[str, Path | bytes],
    manifest_fields: dict,
    keystore: Keystore,
    out_path: str | os.PathLike,
) -> dict:
    """Write a signed bundle to `out_path` atomically and return its manifest.

    payload_files: name under payload/ (e.g. "model_int8.onnx", "c/model_int8.h") -> file path or bytes.
    manifest_fields: every manifest field except `files` and `format_version` (see deploy.manifest).
    """
    sources: dict[str, Path | bytes] = {}
    for name, source in payload_files.items():
        check_payload_name(name)
        sources[name] = source if isinstance(source, bytes) else Path(source)
    files = {name: _hash_source(sources[name]) for name in sorted(sources)}
    manifest = build_manifest(manifest_fields, files)
    manifest_bytes = canonical_json_bytes(manifest)
    signature_bytes = canonical_json_bytes(keystore.sign(manifest_bytes))

    with atomic_path(out_path, suffix=".tar") as tmp:
        with tarfile.open(tmp, mode="w", format=tarfile.USTAR_FORMAT) as tar:
            for name, blob in ((MANIFEST_NAME, manifest_bytes), (SIGNATURE_NAME, signature_bytes)):
                tar.addfile(_tar_info(name, len(blob)), io.BytesIO(blob))
            for name in sorted(sources):
                info = _tar_info(PAYLOAD_PREFIX + name, files[name]["size"])
                source = sources[name]
                if isinstance(source, bytes):
                    tar.addfile(info, io.BytesIO(source))
                else:
                    with open(source, "rb") as fh:
                        tar.addfile(info, fh)
        # a source file that changed between hashing and packing must not leave a broken bundle behind
        key_id = keystore.active_key_id
        verify_bundle(tmp, {key_id: keystore.public_keys()[key_id]}, max_entry_bytes=None)
    return manifest


def bundle_sha256(path: str | os.PathLike) -> str:
    return _hash_source(Path(path))["sha256"]
