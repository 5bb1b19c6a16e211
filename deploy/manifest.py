"""Bundle manifest: schema, canonical JSON encoding and validation.

The manifest is the signed part of a bundle. Everything a device needs to trust the payload is in it:
identity (name, semantic version, monotonic release counter, device profile), lineage (git revision,
DVC hashes of the training data, params hash, metrics), the model's input/output spec, the configs with
the runtime versions they were made for, and sha256 + size of every payload file.

Schema (format_version 1; names in `files` are relative to `payload/` in the tar):

    format_version   int, == FORMAT_VERSION
    name             str, [A-Za-z0-9._-]+
    version          str, semantic version (MAJOR.MINOR.PATCH[-pre][+build])
    release_counter  int >= 1, strictly increasing from one release to the next
    profile          str, device profile the bundle is built for
    git_revision     str, non-empty
    data_hashes      {dataset: str}      DVC hashes of the training data
    params_hash      str, 64 hex (common.params.params_hash)
    metrics          {name: number}
    model            {file, inputs: [tensor], outputs: [tensor],
                      quantization: {dtype int8|int16, scale, zero_point}}
                     tensor = {name, shape: [int | str], dtype}
    configs          {frontend|detector|mbdp|calibration: {file, runtime_version}}
    created_by       str
    self_test        optional {vectors: file (default test_vectors.npz), atol: float (default 1e-4),
                      mbdp_vectors: file (MBDP input and expected outputs), mbdp_atol: float (default 1e-6)}
    files            {name: {sha256: 64 hex, size: int >= 0}}
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from deploy.errors import ManifestError

FORMAT_VERSION = 1
REQUIRED_CONFIGS = ("frontend", "detector", "mbdp", "calibration")
RELEASE_KEYS = ("model", "candidate", "reason")  # optional manifest block: which model shipped and why
# int8 weights always; activations int8, or int16 when the quantization gate had to fall back to it
ACTIVATION_DTYPES = {"int8": (-128, 127), "int16": (-32768, 32767)}
DEFAULT_SELF_TEST = {"vectors": "test_vectors.npz", "atol": 1e-4, "mbdp_atol": 1e-6}

SEMVER_RE = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?$"
)
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
PATH_COMPONENT_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,99}$")
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
MAX_PAYLOAD_NAME_LEN = 90  # fits the 100-byte USTAR name field with the "payload/" prefix


def canonical_json_bytes(obj: Any) -> bytes:
    """The one byte encoding of a JSON value that gets signed: sorted keys, no spaces, ASCII, no NaN."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False).encode(
        "ascii"
    )


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict:
    out: dict = {}
    for key, value in pairs:
        if key in out:
            raise ManifestError(f"manifest has duplicate key {key!r}")
        out[key] = value
    return out


def _refuse_constant(name: str) -> Any:
    raise ManifestError(f"manifest contains non-finite number {name}")


def parse_manifest_bytes(data: bytes) -> dict:
    """Parse signed manifest bytes strictly: canonical encoding, no duplicate keys, then schema check."""
    try:
        text = data.decode("ascii")
        manifest = json.loads(text, object_pairs_hook=_no_duplicate_keys, parse_constant=_refuse_constant)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ManifestError(f"manifest.json is not valid JSON: {exc}") from exc
    if not isinstance(manifest, dict):
        raise ManifestError("manifest.json must be a JSON object")
    if canonical_json_bytes(manifest) != data:
        raise ManifestError("manifest.json is not in canonical encoding")
    validate_manifest(manifest)
    return manifest


def check_payload_name(name: str) -> None:
    """A payload name is a relative path of safe components: no '..', no absolute path, no backslash."""
    if not isinstance(name, str) or not name:
        raise ManifestError(f"payload name {name!r} must be a non-empty string")
    if len(name) > MAX_PAYLOAD_NAME_LEN:
        raise ManifestError(f"payload name {name!r} is longer than {MAX_PAYLOAD_NAME_LEN} characters")
    for part in name.split("/"):
        if not PATH_COMPONENT_RE.match(part):
            raise ManifestError(f"payload name {name!r} has an unsafe path component {part!r}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return (isinstance(value, int | float) and not isinstance(value, bool)) and math.isfinite(value)


def _require(manifest: dict, key: str, kind: type | tuple[type, ...]) -> Any:
    if key not in manifest:
        raise ManifestError(f"manifest is missing {key!r}")
    value = manifest[key]
    if not isinstance(value, kind) or isinstance(value, bool):
        raise ManifestError(f"manifest field {key!r} has the wrong type ({type(value).__name__})")
    return value


def _check_tensor(spec: Any, where: str) -> None:
    if not isinstance(spec, dict) or set(spec) != {"name", "shape", "dtype"}:
        raise ManifestError(f"{where} must be {{name, shape, dtype}}")
    if not isinstance(spec["name"], str) or not spec["name"]:
        raise ManifestError(f"{where}.name must be a non-empty string")
    if not isinstance(spec["dtype"], str) or not spec["dtype"]:
        raise ManifestError(f"{where}.dtype must be a non-empty string")
    shape = spec["shape"]
    if not isinstance(shape, list) or not shape:
        raise ManifestError(f"{where}.shape must be a non-empty list")
    for dim in shape:
        if not ((_is_int(dim) and dim > 0) or (isinstance(dim, str) and dim)):
            raise ManifestError(f"{where}.shape has an invalid dimension {dim!r}")


def _check_model(model: dict, files: dict) -> None:
    for key in ("file", "inputs", "outputs", "quantization"):
        if key not in model:
            raise ManifestError(f"manifest model spec is missing {key!r}")
    if model["file"] not in files:
        raise ManifestError(f"model file {model['file']!r} is not listed in files")
    for key in ("inputs", "outputs"):
        if not isinstance(model[key], list) or not model[key]:
            raise ManifestError(f"model.{key} must be a non-empty list")
        for i, spec in enumerate(model[key]):
            _check_tensor(spec, f"model.{key}[{i}]")
    quant = model["quantization"]
    if not isinstance(quant, dict):
        raise ManifestError("model.quantization must be an object")
    if quant.get("dtype") not in ACTIVATION_DTYPES:
        raise ManifestError(f"model.quantization.dtype must be one of {sorted(ACTIVATION_DTYPES)}")
    if not _is_number(quant.get("scale")) or quant["scale"] <= 0:
        raise ManifestError("model.quantization.scale must be a positive number")
    zero_point = quant.get("zero_point")
    low, high = ACTIVATION_DTYPES.get(quant.get("dtype"), (0, 0))
    if not _is_int(zero_point) or not low <= zero_point <= high:
        raise ManifestError(f"model.quantization.zero_point must be an {quant.get('dtype')} integer")


def _check_files(files: dict) -> None:
    if not files:
        raise ManifestError("manifest lists no payload files")
    for name, entry in files.items():
        check_payload_name(name)
        if not isinstance(entry, dict) or set(entry) != {"sha256", "size"}:
            raise ManifestError(f"files[{name!r}] must be {{sha256, size}}")
        if not isinstance(entry["sha256"], str) or not SHA256_RE.match(entry["sha256"]):
            raise ManifestError(f"files[{name!r}].sha256 must be 64 lowercase hex digits")
        if not _is_int(entry["size"]) or entry["size"] < 0:
            raise ManifestError(f"files[{name!r}].size must be a non-negative integer")
    names = set(files)
    for name in names:  # "a" and "a/b" cannot both be files
        parts = name.split("/")
        for i in range(1, len(parts)):
            if "/".join(parts[:i]) in names:
                raise ManifestError(f"payload name {name!r} nests under the file {'/'.join(parts[:i])!r}")


def validate_manifest(manifest: dict) -> None:
    """Raise ManifestError unless `manifest` follows the schema in this module's docstring."""
    if not isinstance(manifest, dict):
        raise ManifestError("manifest must be an object")
    fmt = _require(manifest, "format_version", int)
    if fmt != FORMAT_VERSION:
        raise ManifestError(f"unsupported manifest format_version {fmt} (this agent reads {FORMAT_VERSION})")
    if not NAME_RE.match(_require(manifest, "name", str)):
        raise ManifestError(f"bundle name {manifest['name']!r} has unsafe characters")
    if not SEMVER_RE.match(_require(manifest, "version", str)):
        raise ManifestError(f"version {manifest['version']!r} is not a semantic version")
    if _require(manifest, "release_counter", int) < 1:
        raise ManifestError("release_counter must be an integer >= 1")
    for key in ("profile", "git_revision", "created_by"):
        if not _require(manifest, key, str):
            raise ManifestError(f"manifest field {key!r} must not be empty")
    data_hashes = _require(manifest, "data_hashes", dict)
    if not all(isinstance(v, str) and v for v in data_hashes.values()):
        raise ManifestError("data_hashes values must be non-empty strings")
    if not SHA256_RE.match(_require(manifest, "params_hash", str)):
        raise ManifestError("params_hash must be 64 lowercase hex digits")
    metrics = _require(manifest, "metrics", dict)
    for key, value in metrics.items():
        if not _is_number(value):
            raise ManifestError(f"metric {key!r} must be a finite number")
    files = _require(manifest, "files", dict)
    _check_files(files)
    _check_model(_require(manifest, "model", dict), files)
    configs = _require(manifest, "configs", dict)
    for key in REQUIRED_CONFIGS:
        entry = configs.get(key)
        if not isinstance(entry, dict) or set(entry) != {"file", "runtime_version"}:
            raise ManifestError(f"configs.{key} must be {{file, runtime_version}}")
        if entry["file"] not in files:
            raise ManifestError(f"configs.{key}.file {entry['file']!r} is not listed in files")
        if not isinstance(entry["runtime_version"], str) or not entry["runtime_version"]:
            raise ManifestError(f"configs.{key}.runtime_version must be a non-empty string")
    if "release" in manifest:
        rel = manifest["release"]
        if not isinstance(rel, dict) or not all(isinstance(rel.get(k), str) for k in RELEASE_KEYS):
            raise ManifestError(f"release must be {{{', '.join(RELEASE_KEYS)}}} (strings)")
    if "self_test" in manifest:
        st = manifest["self_test"]
        if not isinstance(st, dict) or not set(st) <= {"vectors", "atol", "mbdp_vectors", "mbdp_atol"}:
            raise ManifestError("self_test must be {vectors?, atol?, mbdp_vectors?, mbdp_atol?}")
        for key in ("vectors", "mbdp_vectors"):
            if key in st and st[key] not in files:
                raise ManifestError(f"self_test.{key} {st[key]!r} is not listed in files")
        for key in ("atol", "mbdp_atol"):
            if key in st and (not _is_number(st[key]) or st[key] < 0):
                raise ManifestError(f"self_test.{key} must be a non-negative number")


def self_test_settings(manifest: dict) -> dict:
    """self_test block with defaults filled in."""
    return {**DEFAULT_SELF_TEST, **manifest.get("self_test", {})}


def build_manifest(fields: dict, files: dict[str, dict]) -> dict:
    """Merge caller fields with format_version and the file table; validate the result."""
    if "files" in fields or "format_version" in fields:
        raise ManifestError("caller fields must not set 'files' or 'format_version'")
    manifest = {**fields, "format_version": FORMAT_VERSION, "files": files}
    # round-trip through canonical JSON so tuples become lists and the manifest is plain JSON
    try:
        manifest = json.loads(canonical_json_bytes(manifest))
    except (TypeError, ValueError) as exc:
        raise ManifestError(f"manifest fields are not plain JSON: {exc}") from exc
    validate_manifest(manifest)
    return manifest
