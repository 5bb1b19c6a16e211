"""train_classifier: fit PresenceNet on curated batches, keep the best epoch, write its artifacts.

out_dir gets: model.ckpt (state dict + model config, torch.save; load with weights_only=True),
metrics.json, logs/ (Lightning CSV logs), val_predictions.parquet (per validation window:
window_id, capture_id, end_frame, label, confidence, p_none, p_minor, p_major) and detector.json
(the run's detector config with the strict/lenient thresholds chosen on those predictions,
training.thresholds).
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import time
import warnings
from pathlib import Path

import numpy as np
import polars as pl

from common.io import atomic_write_json, atomic_write_parquet
from runtime.labels import CLASSES, N_CLASSES
from training.config import TrainRun
from training.datamodule import TrainingBatch, gather_windows, make_datamodule
from training.model import ModelConfig, save_checkpoint
from training.thresholds import thresholds_from_run


def predict_windows(model, windows: np.ndarray, batch_size: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """Torch inference: probs [N,3] and embedding [N,D] float32 for windows [N,T,V]."""
    import torch

    model.eval()
    probs, embs = [], []
    with torch.no_grad():
        for start in range(0, len(windows), batch_size):
            logits, emb = model(torch.from_numpy(np.ascontiguousarray(windows[start : start + batch_size])))
            probs.append(torch.softmax(logits, 1).numpy())
            embs.append(emb.numpy())
    if not probs:
        return np.zeros((0, N_CLASSES), np.float32), np.zeros((0, model.cfg.embedding_dim), np.float32)
    return np.concatenate(probs).astype(np.float32), np.concatenate(embs).astype(np.float32)


def _progress_callbacks() -> list:
    try:
        import rich  # noqa: F401
        from lightning.pytorch.callbacks import RichProgressBar

        return [RichProgressBar()]
    except ImportError:
        return []


def train_classifier(batches: list[TrainingBatch], run: TrainRun, out_dir: str | Path) -> dict:
    """Train; keep the weights of the epoch with the lowest val loss; write artifacts; return metrics."""
    import lightning as L

    # lightning 2.6 on torch 2.13 warns about torch's own pytree API on every fit; not ours to fix
    warnings.filterwarnings("ignore", message=".*LeafSpec.*")
    import torch
    from lightning.pytorch.callbacks import Callback
    from lightning.pytorch.loggers import CSVLogger

    tr = run.training
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(tr.num_threads)
    L.seed_everything(tr.seed, workers=True, verbose=False)
    context = run.model.context_frames

    dm = make_datamodule(batches, run)
    cfg = run.model
    if dm.mean.shape[0] != cfg.input_width:
        raise ValueError(
            f"feature store has {dm.mean.shape[0]} values per frame, params say {cfg.input_width} "
            f"({cfg.n_velocity_bins} velocity bins x {cfg.in_channels} channels)"
        )
    lit = _build_lit(cfg, dm, run)
    has_val = len(dm.val_index) > 0

    class KeepBest(Callback):
        """Snapshot the model weights at the lowest val_loss (last epoch when there is no validation)."""

        def __init__(self) -> None:
            self.best_loss, self.best_epoch, self.state = float("inf"), -1, None

        def on_validation_epoch_end(self, trainer, pl_module) -> None:
            if trainer.sanity_checking:
                return
            loss = float(trainer.callback_metrics.get("val_loss", float("inf")))
            if loss < self.best_loss:
                self.best_loss, self.best_epoch = loss, trainer.current_epoch
                self.state = copy.deepcopy(pl_module.model.state_dict())

        def on_train_epoch_end(self, trainer, pl_module) -> None:
            if not has_val:
                self.best_epoch, self.state = (
                    trainer.current_epoch,
                    copy.deepcopy(pl_module.model.state_dict()),
                )

    keep_best = KeepBest()
    show_progress = tr.progress_bar
    # Lightning's start-up chatter (accelerator lines, a cloud-logging tip) is noise in stage logs
    logging.getLogger("lightning.pytorch.utilities.rank_zero").setLevel(logging.WARNING)
    trainer = L.Trainer(
        max_epochs=tr.epochs,
        accelerator="cpu",
        devices=1,
        deterministic=True,
        logger=CSVLogger(str(out_dir), name="logs", version=""),
        callbacks=[keep_best, *(_progress_callbacks() if show_progress else [])],
        enable_checkpointing=False,
        enable_progress_bar=show_progress,
        enable_model_summary=False,
        limit_val_batches=1.0 if has_val else 0,
        num_sanity_val_steps=0,
        log_every_n_steps=1,
    )
    t0 = time.perf_counter()
    trainer.fit(lit, datamodule=dm)
    train_s = time.perf_counter() - t0

    model = lit.model
    model.load_state_dict(keep_best.state)
    model.eval()
    save_checkpoint(model, out_dir / "model.ckpt")

    metrics: dict = {
        "n_train_windows": len(dm.train_index),
        "n_val_windows": len(dm.val_index),
        "n_train_captures": int(np.unique(dm.train_index.capture_id).size),
        "n_val_captures": int(np.unique(dm.val_index.capture_id).size),
        "train_class_counts": dict(
            zip(CLASSES, np.bincount(dm.train_index.label, minlength=3).tolist(), strict=True)
        ),
        "class_weights": dm.class_weights.tolist(),
        "best_epoch": keep_best.best_epoch,
        "epochs": tr.epochs,
        "train_seconds": round(train_s, 3),
        "n_parameters": int(sum(p.numel() for p in model.parameters())),
    }
    if has_val:
        windows = gather_windows(dm.val_index, np.arange(len(dm.val_index)), context)
        probs, _ = predict_windows(model, windows)
        labels = dm.val_index.label
        pred = probs.argmax(1)
        metrics["val_loss"] = keep_best.best_loss
        metrics["val_accuracy"] = float((pred == labels).mean())
        metrics["val_recall"] = {
            name: float((pred[labels == i] == i).mean()) if (labels == i).any() else None
            for i, name in enumerate(CLASSES)
        }
        preds = pl.DataFrame(
            {
                "window_id": dm.val_index.window_id,
                "capture_id": dm.val_index.capture_id,
                "end_frame": dm.val_index.end_frame,
                "label": labels,
                "confidence": dm.val_index.confidence,
                "source": dm.val_index.source,
                "p_none": probs[:, 0],
                "p_minor": probs[:, 1],
                "p_major": probs[:, 2],
            }
        ).sort(["capture_id", "end_frame"])
        atomic_write_parquet(out_dir / "val_predictions.parquet", preds)
        try:
            detector, point = thresholds_from_run(out_dir, run)
            metrics["thresholds"] = {k: detector[k] for k in ("strict_threshold", "lenient_threshold")}
            metrics["operating_point"] = point
        except ValueError as exc:  # e.g. no `none` windows in validation: thresholds stay as configured
            metrics["thresholds_error"] = str(exc)
    # the full runtime detector config (frame hop and context included), ready for a bundle
    atomic_write_json(out_dir / "detector.json", _detector_config(run, metrics.get("thresholds", {})))
    atomic_write_json(out_dir / "metrics.json", metrics)
    return metrics


def _build_lit(cfg: ModelConfig, dm, run: TrainRun):
    from training.lit_module import make_lit_module

    lit = make_lit_module(cfg, dm.class_weights, run.training, run.feature_channels)
    lit.model.set_normalisation(dm.mean, dm.std)
    return lit


def _detector_config(run: TrainRun, thresholds: dict) -> dict:
    return dataclasses.replace(run.detector, **thresholds).to_dict()
