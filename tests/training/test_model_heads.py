"""PresenceNet heads: shapes, config round trip and validation, BatchNorm folding, what the head keeps."""

from __future__ import annotations

import numpy as np
import pytest
from config_testkit import model_config, repo_params

from training.model import ModelConfig, build_model, fold_batchnorm


def _model(head: str, seed: int = 0):
    import torch

    torch.manual_seed(seed)
    return build_model(model_config(channels=8, embedding_dim=8, head=head)).eval()


@pytest.mark.parametrize("head", ["global", "velocity"])
def test_heads_give_logits_and_embedding(head):
    import torch

    logits, emb = _model(head)(torch.randn(5, 32, 48))
    assert logits.shape == (5, 3) and emb.shape == (5, 8)
    assert _model(head).embed.in_features == (8 * 6 if head == "velocity" else 8)  # V/8 = 6 positions


def test_config_round_trip_default_and_validation():
    cfg = model_config(channels=8, embedding_dim=8, head="velocity")
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg
    # checkpoints written before the option existed carry no head: they were global
    assert ModelConfig.from_dict({k: v for k, v in cfg.to_dict().items() if k != "head"}).head == "global"
    params = repo_params()
    params["training"].update({"channels": 8, "embedding_dim": 8, "head": "velocity"})
    assert ModelConfig.from_params(params).head == "velocity"
    with pytest.raises(ValueError, match="head"):
        model_config(head="attention")


def test_velocity_head_folds_batchnorm_exactly():
    import torch

    model = _model("velocity")
    with torch.no_grad():
        for mod in model.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.running_mean.uniform_(-0.2, 0.2)
                mod.running_var.uniform_(0.5, 2.0)
    x = torch.randn(4, 32, 48)
    folded = fold_batchnorm(model)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    np.testing.assert_allclose(folded(x)[0].detach().numpy(), model(x)[0].detach().numpy(), atol=1e-4)


def test_only_the_velocity_head_sees_where_on_the_axis_the_energy_is():
    """The same blob at two velocities 8 bins apart (the total stride, away from the edges): pooled over
    velocity, the final feature map just moves by one position and what reaches the embedding cannot
    change; keeping the positions, it does."""
    import torch

    x = torch.zeros(2, 32, 48)  # background = the convolutions' zero padding: edges look like background
    x[0, :, 14:18] = 1.0
    x[1, :, 22:26] = 1.0
    change = {}
    for head in ("global", "velocity"):
        model = _model(head)
        with torch.no_grad():
            pooled = model.pool(model.blocks(model.stem(x.unsqueeze(1)))).numpy()  # [2, c] or [2, c*V/8]
        change[head] = float(np.abs(pooled[0] - pooled[1]).max() / np.abs(pooled).max())
    assert change["global"] < 1e-5  # float rounding
    assert change["velocity"] > 0.1
