"""Safe readers for untrusted raw batch files: JSONL line by line, .npy and .wav sample files.

Nothing here trusts a declared size: a .npy header's shape and dtype are checked against the
contract and the size limit before any data is touched, arrays are memory-mapped with
allow_pickle=False, and NaN/Inf are searched chunk by chunk. Every problem raises `Rejected`.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ingest.config import IngestConfig
from ingest.contract import Reject

MAX_LINE_BYTES = 1 << 20  # a JSONL line longer than this is malformed, not read whole


class Rejected(Exception):
    """A file or record cannot be ingested; `.reject` says why."""

    def __init__(self, reason: str, field: str | None, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reject = Reject(reason, field, detail)


@dataclass(frozen=True)
class SampleLimits:
    """Limits on sample files, from the ingest config."""

    max_declared_bytes: int
    sample_tolerance: int
    nonfinite_chunk: int

    @classmethod
    def from_config(cls, ing: IngestConfig) -> SampleLimits:
        return cls(
            max_declared_bytes=int(ing.max_declared_mb * 2**20),
            sample_tolerance=ing.sample_tolerance,
            nonfinite_chunk=ing.nonfinite_check_chunk,
        )


def iter_jsonl(path: Path) -> Iterator[tuple[int, str, Any]]:
    """Yield (line_no, raw_text, record) for every non-blank line; record is a Reject when unparsable."""
    with open(path, "rb") as fh:
        line_no = 0
        while True:
            raw = fh.readline(MAX_LINE_BYTES + 1)
            if not raw:
                return
            line_no += 1
            if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
                while raw and not raw.endswith(b"\n"):  # skip the rest of the over-long line
                    raw = fh.readline(MAX_LINE_BYTES)
                yield line_no, "", Reject("malformed_json", None, f"line longer than {MAX_LINE_BYTES} bytes")
                continue
            if not raw.strip():
                continue
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                yield (
                    line_no,
                    raw.decode("utf-8", "replace"),
                    Reject("malformed_json", None, f"not UTF-8 ({exc.reason})"),
                )
                continue
            try:
                record = json.loads(text, parse_constant=_reject_constant)
            except (json.JSONDecodeError, ValueError) as exc:
                msg = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
                yield line_no, text, Reject("malformed_json", None, f"not valid JSON ({msg})")
                continue
            yield line_no, text, record


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not JSON")


def resolve_in_batch(raw_dir: Path, relative: str) -> Path:
    """The sample file a record names, refusing anything that escapes the batch folder."""
    if not relative or "\x00" in relative or os.path.isabs(relative):
        raise Rejected(
            "path_outside_batch", "file", f"file {relative!r:.80} is not a relative path inside the batch"
        )
    root = raw_dir.resolve()
    target = (root / relative).resolve()  # follows symlinks: a link pointing out is refused too
    if root not in target.parents:
        raise Rejected(
            "path_outside_batch", "file", f"file {relative!r:.80} resolves outside the batch folder"
        )
    if not target.is_file():
        raise Rejected("missing_file", "file", f"file {relative!r:.80} does not exist")
    if target.suffix not in (".npy", ".wav"):
        raise Rejected("bad_file_type", "file", f"file {relative!r:.80} is neither .npy nor .wav")
    return target


def read_npy_header(path: Path) -> tuple[tuple[int, ...], np.dtype, int]:
    """(shape, dtype, data offset) from the header alone; raises Rejected for anything unreadable."""
    with open(path, "rb") as fh:
        try:
            version = np.lib.format.read_magic(fh)
            if version == (1, 0):
                shape, _fortran, dtype = np.lib.format.read_array_header_1_0(fh)
            elif version in ((2, 0), (3, 0)):
                shape, _fortran, dtype = np.lib.format.read_array_header_2_0(fh)
            else:
                raise ValueError(f"unsupported .npy version {version}")
        except ValueError as exc:
            msg = str(exc)
            reason = (
                "pickled_object_array"
                if "pickle" in msg.lower() or "object" in msg.lower()
                else "unreadable_npy"
            )
            if "EOF" in msg or "truncat" in msg.lower():
                reason = "truncated_array"
            raise Rejected(reason, "file", f"{path.name}: bad .npy header ({msg[:120]})") from None
        return tuple(shape), dtype, fh.tell()


def load_iq(path: Path, record: dict, limits: SampleLimits) -> np.ndarray:
    """complex64 [n_mics, n_samples] from an iq/*.npy file, after every contract check."""
    shape, dtype, offset = read_npy_header(path)
    if dtype.hasobject:
        raise Rejected(
            "pickled_object_array", "file", f"{path.name}: dtype {dtype} holds Python objects (needs pickle)"
        )
    declared = int(np.prod(shape, dtype=np.float64)) * dtype.itemsize
    if declared > limits.max_declared_bytes:
        raise Rejected(
            "declared_size_too_large",
            "file",
            f"{path.name}: header declares {shape} {dtype} = "
            f"{declared / 2**20:.0f} MiB > {limits.max_declared_bytes / 2**20:.0f} MiB",
        )
    if path.stat().st_size < offset + declared:
        raise Rejected(
            "truncated_array",
            "file",
            f"{path.name}: {path.stat().st_size - offset} data bytes, header declares {declared}",
        )
    if dtype != np.complex64:
        raise Rejected("wrong_dtype", "file", f"{path.name}: dtype {dtype}, expected complex64")
    if len(shape) != 2:
        raise Rejected("wrong_shape", "file", f"{path.name}: shape {shape}, expected (n_mics, n_samples)")
    iq = np.load(path, allow_pickle=False, mmap_mode="r")  # [n_mics, n]
    _check_samples(path.name, iq, record, float(record["fs_hz"]), limits)
    return np.ascontiguousarray(iq)


def load_pcm_as_iq(path: Path, record: dict, limits: SampleLimits, out_fs_hz: float) -> np.ndarray:
    """Passband pcm/*.wav → complex64 [n_mics, n] baseband at out_fs_hz through runtime.demod."""
    import scipy.io.wavfile

    if path.stat().st_size > limits.max_declared_bytes:
        raise Rejected(
            "declared_size_too_large", "file", f"{path.name}: {path.stat().st_size} bytes over the limit"
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", scipy.io.wavfile.WavFileWarning)
            rate, pcm = scipy.io.wavfile.read(path, mmap=False)  # [n] or [n, ch]
    except (ValueError, EOFError, OSError) as exc:
        raise Rejected("unreadable_wav", "file", f"{path.name}: {str(exc)[:120]}") from None
    if abs(rate - float(record["fs_hz"])) > 0.5:
        raise Rejected(
            "sample_rate_mismatch", "fs_hz", f"{path.name}: wav rate {rate} Hz, record says {record['fs_hz']}"
        )
    pcm = np.atleast_2d(pcm.T)  # [ch, n]
    if np.issubdtype(pcm.dtype, np.integer):
        pcm = pcm.astype(np.float32) / float(np.iinfo(pcm.dtype).max)
    pcm = pcm.astype(np.float32, copy=False)
    _check_samples(path.name, pcm, record, float(rate), limits)
    try:
        from runtime.demod import demodulate
    except ImportError:
        raise Rejected(
            "demodulator_unavailable", "file", "runtime.demod is not available for pcm captures"
        ) from None
    try:
        iq = demodulate(
            pcm, float(rate), float(record["carrier_hz"]), out_fs_hz, edge="settled"
        )  # [n_mics, n_out]
    except ValueError as exc:  # e.g. a sample rate too low for the carrier
        raise Rejected("demodulation_failed", "fs_hz", f"{path.name}: {str(exc)[:160]}") from None
    return np.asarray(iq, dtype=np.complex64)


def _check_samples(name: str, samples: np.ndarray, record: dict, fs_hz: float, limits: SampleLimits) -> None:
    if samples.ndim != 2:
        raise Rejected("wrong_shape", "file", f"{name}: shape {samples.shape}, expected (n_mics, n_samples)")
    if samples.shape[0] != record["n_mics"]:
        raise Rejected(
            "n_mics_mismatch",
            "n_mics",
            f"{name}: {samples.shape[0]} channels, record says n_mics={record['n_mics']}",
        )
    expected = float(record["duration_s"]) * fs_hz
    if abs(samples.shape[1] - expected) > limits.sample_tolerance:
        raise Rejected(
            "sample_count_mismatch",
            "duration_s",
            f"{name}: {samples.shape[1]} samples, "
            f"{record['duration_s']} s at {fs_hz:g} Hz needs {expected:.0f}",
        )
    for start in range(0, samples.shape[1], limits.nonfinite_chunk):
        chunk = samples[:, start : start + limits.nonfinite_chunk]
        if not np.isfinite(chunk).all():
            raise Rejected("nonfinite_samples", "file", f"{name}: NaN/Inf samples from sample {start}")
