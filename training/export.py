"""ONNX export of the trained classifier: BatchNorm folded, dynamic batch, checked against onnxruntime.

Input `features` float32 [N, context_frames, n_velocity_bins * in_channels]; outputs `logits` [N,3] and
`embedding` [N,D]; weights embedded in the file (external_data=False).
"""

from __future__ import annotations

import io
import logging
import tempfile
from pathlib import Path

import numpy as np

from common.io import atomic_write_bytes
from training.config import ExportConfig
from training.model import fold_batchnorm, load_checkpoint

log = logging.getLogger(__name__)

INPUT_NAME, OUTPUT_NAMES = "features", ("logits", "embedding")


class ExportError(RuntimeError):
    """The exported model does not match the torch model, or export failed."""


def _export_bytes(model, example, opset: int) -> tuple[bytes, str]:
    """Try the dynamo exporter, fall back to the legacy TorchScript one; return (bytes, exporter)."""
    import torch

    registration = logging.getLogger("torch.onnx._internal.exporter._registration")
    level = registration.level
    registration.setLevel(logging.ERROR)  # "torchvision is not installed" x4: irrelevant here
    try:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "model.onnx"
            torch.onnx.export(
                model,
                (example,),
                str(path),
                input_names=[INPUT_NAME],
                output_names=list(OUTPUT_NAMES),
                dynamic_shapes={"features": {0: torch.export.Dim("batch", min=1, max=65536)}},
                external_data=False,
                dynamo=True,
                verbose=False,
                opset_version=max(opset, 18),
            )
            return path.read_bytes(), "dynamo"
    except Exception as exc:  # exporter-internal failures vary by version; the legacy path is the fallback
        log.warning("dynamo ONNX export failed (%s); falling back to dynamo=False", exc)
    finally:
        registration.setLevel(level)
    buf = io.BytesIO()
    torch.onnx.export(
        model,
        (example,),
        buf,
        input_names=[INPUT_NAME],
        output_names=list(OUTPUT_NAMES),
        dynamic_axes={INPUT_NAME: {0: "batch"}, "logits": {0: "batch"}, "embedding": {0: "batch"}},
        opset_version=opset,
        do_constant_folding=True,
        dynamo=False,
    )
    return buf.getvalue(), "torchscript"


def export_onnx(ckpt_path: str | Path, onnx_path: str | Path, ex: ExportConfig, seed: int) -> None:
    """Export model.ckpt to ONNX at onnx_path and check onnxruntime against torch on random windows
    (drawn with seed: training.seed)."""
    import onnx
    import onnxruntime as ort
    import torch

    opset, atol = ex.opset, ex.atol
    model = fold_batchnorm(load_checkpoint(ckpt_path))
    cfg = model.cfg
    rng = np.random.default_rng(seed)
    example = torch.from_numpy(
        rng.normal(-50, 8, (2, cfg.context_frames, cfg.input_width)).astype(np.float32)
    )
    blob, exporter = _export_bytes(model, example, opset)
    onnx.checker.check_model(onnx.load_from_string(blob))

    # equivalence check at a batch size different from the example's (dynamic axis really works)
    check = rng.normal(-50, 8, (5, cfg.context_frames, cfg.input_width)).astype(np.float32)
    sess = ort.InferenceSession(blob, providers=["CPUExecutionProvider"])
    ort_logits, ort_emb = sess.run(list(OUTPUT_NAMES), {INPUT_NAME: check})
    with torch.no_grad():
        t_logits, t_emb = model(torch.from_numpy(check))
    err = max(np.abs(ort_logits - t_logits.numpy()).max(), np.abs(ort_emb - t_emb.numpy()).max())
    if not err <= atol:
        raise ExportError(f"onnxruntime differs from torch by {err:.3g} (> {atol}) after {exporter} export")
    atomic_write_bytes(onnx_path, blob)
    log.info("exported %s with the %s exporter (max |ort - torch| = %.2g)", onnx_path, exporter, err)
