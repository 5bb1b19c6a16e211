"""Fixtures for training tests: synthetic curated batches with class-dependent Doppler bands."""

from __future__ import annotations

import copy

import pytest
from training_testkit import TINY_PARAMS

from training.config import TrainRun
from training.datamodule import TrainingBatch
from training.synthetic import make_synthetic_batch


@pytest.fixture(autouse=True)
def _one_thread():
    import torch

    torch.set_num_threads(1)


@pytest.fixture
def tiny_params() -> dict:
    return copy.deepcopy(TINY_PARAMS)


@pytest.fixture(scope="session")
def synth_batches(tmp_path_factory) -> list[TrainingBatch]:
    root = tmp_path_factory.mktemp("curated")
    a = make_synthetic_batch(root, "batch-a", n_captures=6, frames_per_capture=192, seed=1)
    b = make_synthetic_batch(root, "batch-b", n_captures=3, frames_per_capture=160, seed=2)
    return [TrainingBatch(*a), TrainingBatch(*b)]


@pytest.fixture(scope="session")
def trained_dir(tmp_path_factory, synth_batches):
    """One tiny training run shared by export/quantize/threshold tests."""
    import torch

    from training.train import train_classifier

    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("trained")
    metrics = train_classifier(synth_batches, TrainRun.from_params(TINY_PARAMS), out)
    return out, metrics
