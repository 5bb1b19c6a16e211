"""DSP-friendly presence classifier: depthwise-separable 2-D convolutions over a Doppler context window.

Input [N, context_frames, n_velocity_bins * in_channels] in dB, the front-end's feature channels
interleaved by velocity bin (runtime.feature_channels); per-column normalisation lives inside the model
as buffers so the exported ONNX takes raw front-end features. The stem reads the C channels of each bin
with a (3, 3C) kernel at stride (2, 2C) and padding (1, C): on the interleaved layout that is exactly a
C-input-channel 3x3 convolution over (time, velocity), so no transpose is needed on the device.
Only ops a DSP kernel library has: Conv (regular and depthwise), ReLU, global average pool, Gemm.
BatchNorm is folded into the preceding convolution by `fold_batchnorm` before export.

Two heads (ModelConfig.head). "global" averages the last feature map over time and velocity, so the
embedding cannot tell where on the velocity axis the energy sits. "velocity" (params.yaml's choice)
collapses only time, with a depthwise convolution spanning the whole remaining time axis, and keeps the
V/8 velocity positions: a walker at 1 m/s, a breathing chest near 0 m/s and a fan folded across the band
then look different to the Gemm that follows. It costs about 7 k MACs more.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass
from typing import Any

from runtime.config import config_from_dict
from runtime.labels import N_CLASSES


@dataclass(frozen=True)
class ModelConfig:
    """Built from params.yaml (from_params) or a checkpoint's model config: the fields every checkpoint
    has carried are required; the defaults are the behaviour of checkpoints written before the key."""

    context_frames: int
    n_velocity_bins: int
    channels: int
    embedding_dim: int
    n_classes: int = N_CLASSES
    # "global" is the default so checkpoints written before the option existed load as they were trained
    head: str = "global"
    in_channels: int = 1  # feature channels per velocity bin (1: checkpoints from before channels)

    @property
    def input_width(self) -> int:
        """Values per input frame: n_velocity_bins * in_channels."""
        return self.n_velocity_bins * self.in_channels

    def __post_init__(self) -> None:
        if self.head not in HEADS:
            raise ValueError(f"model head must be one of {HEADS}, got {self.head!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelConfig:
        return config_from_dict(cls, d, "model config")

    @classmethod
    def from_params(cls, params: dict) -> ModelConfig:
        from runtime.frontend import FrontendConfig

        return cls(
            in_channels=FrontendConfig.from_dict(params["frontend"]).n_channels,
            context_frames=int(params["ingest"]["context_frames"]),
            n_velocity_bins=int(params["frontend"]["n_velocity_bins"]),
            channels=int(params["training"]["channels"]),
            embedding_dim=int(params["training"]["embedding_dim"]),
            head=str(params["training"]["head"]),
        )


HEADS = ("global", "velocity")


def _strided(n: int, times: int) -> int:
    """Length after `times` kernel-3, padding-1, stride-2 convolutions."""
    for _ in range(times):
        n = (n - 1) // 2 + 1
    return n


def build_model(cfg: ModelConfig):
    """Return a PresenceNet (torch.nn.Module); torch is imported here so module import stays cheap."""
    import torch
    from torch import nn

    def conv_bn(c_in: int, c_out: int, stride, groups: int, kernel, pad=None) -> nn.Sequential:
        if pad is None:
            pad = kernel // 2 if isinstance(kernel, int) else 0
        return nn.Sequential(
            nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=pad, groups=groups, bias=False),
            nn.BatchNorm2d(c_out),
            nn.ReLU(),
        )

    class PresenceNet(nn.Module):
        def __init__(self, cfg: ModelConfig) -> None:
            super().__init__()
            self.cfg = cfg
            c = cfg.channels
            k = cfg.in_channels
            self.register_buffer("feature_mean", torch.zeros(cfg.input_width))  # [V*k] dB
            self.register_buffer("feature_inv_std", torch.ones(cfg.input_width))  # [V*k] 1/dB
            # on the interleaved [T, V*k] image: a k-channel 3x3 stride-2 conv over (time, velocity)
            self.stem = conv_bn(
                1, c, stride=(2, 2 * k), groups=1, kernel=(3, 3 * k), pad=(1, k)
            )  # [N,c,T/2,V/2]
            self.blocks = nn.Sequential(
                conv_bn(c, c, stride=2, groups=c, kernel=3),  # depthwise  [N,c,T/4,V/4]
                conv_bn(c, c, stride=1, groups=1, kernel=1),  # pointwise
                conv_bn(c, c, stride=1, groups=c, kernel=3),
                conv_bn(c, c, stride=1, groups=1, kernel=1),
                conv_bn(c, c, stride=2, groups=c, kernel=3),  # [N,c,T/8,V/8]
                conv_bn(c, c, stride=1, groups=1, kernel=1),
            )
            t_last, v_last = _strided(cfg.context_frames, 3), _strided(cfg.n_velocity_bins, 3)
            if cfg.head == "velocity":  # [N,c,T/8,V/8] -> [N,c,1,V/8] -> [N, c*V/8]
                self.pool = nn.Sequential(
                    conv_bn(c, c, stride=1, groups=c, kernel=(t_last, 1)), nn.Flatten(1)
                )
                pooled = c * v_last
            else:  # [N,c,T/8,V/8] -> [N,c]
                self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(1))
                pooled = c
            self.embed = nn.Linear(pooled, cfg.embedding_dim)
            self.head = nn.Linear(cfg.embedding_dim, cfg.n_classes)

        def set_normalisation(self, mean, std) -> None:
            mean_t = torch.as_tensor(mean, dtype=torch.float32)
            std_t = torch.as_tensor(std, dtype=torch.float32).clamp_min(1e-3)
            self.feature_mean.copy_(mean_t)
            self.feature_inv_std.copy_(1.0 / std_t)

        def forward(self, features):  # features [N, T, V*k] dB
            x = (features - self.feature_mean) * self.feature_inv_std  # [N,T,V*k]
            x = x.unsqueeze(1)  # [N,1,T,V*k]
            x = self.blocks(self.stem(x))  # [N,c,T/8,V/8]
            x = self.pool(x)  # [N,c] (global) or [N,c*V/8] (velocity)
            embedding = torch.relu(self.embed(x))  # [N,D]
            logits = self.head(embedding)  # [N,3]
            return logits, embedding

    return PresenceNet(cfg)


def fold_batchnorm(model):
    """Return an eval-mode copy of `model` with every BatchNorm folded into the conv before it."""
    from torch import nn
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    fused = copy.deepcopy(model).eval()
    for seq in fused.modules():
        if not isinstance(seq, nn.Sequential):
            continue
        children = list(seq.children())
        for i in range(len(children) - 1):
            conv, bn = children[i], children[i + 1]
            if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                seq[i] = fuse_conv_bn_eval(conv, bn)
                seq[i + 1] = nn.Identity()
    return fused


def load_checkpoint(ckpt_path) -> Any:
    """Rebuild the model from out_dir/model.ckpt (a dict of tensors + config, loaded weights_only)."""
    import torch

    blob = torch.load(ckpt_path, map_location="cpu", weights_only=True)
    model = build_model(ModelConfig.from_dict(blob["config"]))
    model.load_state_dict(blob["state_dict"])
    return model.eval()


def save_checkpoint(model, ckpt_path) -> None:
    """Write {state_dict, config} atomically with torch.save (tensors and plain values only)."""
    import io

    import torch

    from common.io import atomic_write_bytes

    buf = io.BytesIO()
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    torch.save({"state_dict": state, "config": model.cfg.to_dict()}, buf)
    atomic_write_bytes(ckpt_path, buf.getvalue())
