"""LightningModule around PresenceNet: confidence- and class-weighted cross-entropy, AdamW, cosine LR."""

from __future__ import annotations

import numpy as np

from runtime.feature_channels import LEVEL_CHANNELS
from training.config import TrainingConfig
from training.datamodule import augment
from training.model import ModelConfig, build_model


def make_lit_module(
    cfg: ModelConfig, class_weights: np.ndarray, tr: TrainingConfig, channels: tuple[str, ...] = ("power",)
):
    """Return the LightningModule instance (lightning imported here to keep CLI start-up fast); channels:
    the front-end's feature channels (the augmentation's gain moves only the level channels)."""
    import lightning as L
    import torch
    from torch.nn import functional as F

    aug = tr.augment
    level_mask = [c in LEVEL_CHANNELS for c in channels]

    class LitClassifier(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.model = build_model(cfg)
            self.register_buffer("class_weights", torch.as_tensor(class_weights, dtype=torch.float32))
            self.aug_generator = torch.Generator().manual_seed(tr.seed + 1)

        def forward(self, x):
            return self.model(x)

        def _loss(self, logits, y, w):
            per_sample = F.cross_entropy(logits, y, reduction="none")  # [B]
            weight = self.class_weights[y] * w  # class balance x label confidence
            return (per_sample * weight).sum() / weight.sum().clamp_min(1e-6)

        def training_step(self, batch, batch_idx):
            x, y, w = batch
            x = augment(
                x,
                aug.gain_db,
                aug.noise_db,
                aug.velocity_shift_bins,
                self.aug_generator,
                level_mask,
            )
            logits, _ = self.model(x)
            loss = self._loss(logits, y, w)
            self.log("train_loss", loss, on_step=False, on_epoch=True, batch_size=len(y))
            return loss

        def validation_step(self, batch, batch_idx):
            x, y, w = batch
            logits, _ = self.model(x)
            loss = self._loss(logits, y, w)
            acc = (logits.argmax(1) == y).float().mean()
            self.log("val_loss", loss, on_step=False, on_epoch=True, batch_size=len(y))
            self.log("val_acc", acc, on_step=False, on_epoch=True, batch_size=len(y))

        def configure_optimizers(self):
            opt = torch.optim.AdamW(self.parameters(), lr=tr.learning_rate, weight_decay=tr.weight_decay)
            sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(tr.epochs, 1))
            return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "epoch"}}

    return LitClassifier()
