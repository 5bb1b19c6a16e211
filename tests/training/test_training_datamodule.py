"""Window gathering from the feature store, capture split, class weights, augmentation physics."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from training.config import TrainRun
from training.datamodule import (
    DataError,
    TrainingBatch,
    augment,
    class_weights,
    gather_windows,
    load_window_index,
    make_datamodule,
    normalisation_stats,
    split_by_capture,
)


def test_gathered_windows_equal_direct_slicing(synth_batches):
    index = load_window_index(synth_batches, 32)
    windows = gather_windows(index, np.arange(len(index)), 32)
    for k in [0, 5, len(index) - 1]:
        b = synth_batches[index.store_idx[k]]
        frames = np.load(f"{b.curated_dir}/frames.npy", allow_pickle=False)
        end = index.end_row[k]
        np.testing.assert_array_equal(windows[k], frames[end - 31 : end + 1])
    # labels come from the right window ids
    labels = pl.concat([pl.read_parquet(b.labels_path) for b in synth_batches])
    lookup = dict(zip(labels["window_id"].to_list(), labels["label"].to_list(), strict=True))
    assert [lookup[w] for w in index.window_id] == index.label.tolist()


def test_window_matches_runtime_context_windows(synth_batches):
    from runtime.windows import context_windows

    b = synth_batches[0]
    index = load_window_index([b], 32)
    frames = np.load(f"{b.curated_dir}/frames.npy", allow_pickle=False)[:192]  # first capture
    ref, end_frame = context_windows(frames, 32, 8)
    first = np.flatnonzero(index.end_row < 192)
    got = gather_windows(index, first, 32)
    order = np.argsort(index.end_row[first])
    np.testing.assert_array_equal(got[order], ref)
    np.testing.assert_array_equal(np.sort(index.end_frame[first]), end_frame)


def test_labels_for_unknown_windows_are_dropped(tmp_path, synth_batches):
    b = synth_batches[0]
    labels = pl.read_parquet(b.labels_path)
    extra = labels.head(2).with_columns(pl.lit("nowhere:99").alias("window_id"))
    path = tmp_path / "labels.parquet"
    pl.concat([labels, extra]).write_parquet(path)
    assert len(load_window_index([TrainingBatch(b.curated_dir, path)], 32)) == labels.height


def test_missing_files_raise(tmp_path):
    with pytest.raises(DataError, match="missing"):
        load_window_index([TrainingBatch(tmp_path, tmp_path / "labels.parquet")], 32)


def test_split_is_by_capture_and_deterministic():
    ids = np.array([f"c{i % 10}" for i in range(200)])
    m1, m2 = split_by_capture(ids, 0.2, 7), split_by_capture(ids, 0.2, 7)
    np.testing.assert_array_equal(m1, m2)
    assert set(ids[m1]).isdisjoint(set(ids[~m1]))
    assert len(set(ids[m1])) == 2
    # shuffled rows give the same captures
    perm = np.random.default_rng(0).permutation(200)
    assert set(ids[perm][split_by_capture(ids[perm], 0.2, 7)]) == set(ids[m1])


def test_class_weights_balance_counts():
    w = class_weights(np.array([0] * 80 + [1] * 15 + [2] * 5))
    counts = np.array([80, 15, 5])
    np.testing.assert_allclose(w * counts, (w * counts)[0])  # every class carries equal total weight
    assert w.mean() == pytest.approx(1.0)
    assert class_weights(np.array([0, 0, 2]))[1] == 0.0


def test_normalisation_stats_match_numpy(synth_batches):
    index = load_window_index(synth_batches[:1], 32)
    mean, std = normalisation_stats(index, 32, chunk=7)
    w = gather_windows(index, np.arange(len(index)), 32).reshape(-1, 48)
    np.testing.assert_allclose(mean, w.mean(0), rtol=1e-5)
    np.testing.assert_allclose(std, w.std(0), rtol=1e-4)


def test_augmentation_respects_physics():
    import torch

    g = torch.Generator().manual_seed(0)
    x = torch.zeros(64, 4, 48)
    x[:, :, 20] = 30.0  # a single Doppler line
    # gain only: one constant dB offset per window, within ±3 dB
    y = augment(x, 3.0, 0.0, 0, g)
    offset = y - x
    assert torch.allclose(offset, offset[:, :1, :1].expand_as(offset), atol=1e-5)
    assert offset.abs().max() <= 3.0
    # shift only: the line moves by at most one bin, the rest stays at the floor, no wrap-around
    y = augment(x, 0.0, 0.0, 1, g)
    peak_bins = y[:, 0].argmax(-1)
    assert set(peak_bins.tolist()) <= {19, 20, 21} and len(set(peak_bins.tolist())) > 1
    assert torch.equal(torch.sort(y[:, 0], dim=-1).values, torch.sort(x[:, 0], dim=-1).values)
    edge = torch.zeros(1, 1, 48)
    edge[..., 0] = 5.0
    for _ in range(10):
        shifted = augment(edge, 0.0, 0.0, 1, g)
        assert shifted[..., -1].item() == 0.0  # -v_max never reappears at +v_max
    # noise only: zero-mean jitter with the given std
    y = augment(torch.zeros(256, 8, 48), 0.0, 1.0, 0, g)
    assert abs(y.mean().item()) < 0.05 and abs(y.std().item() - 1.0) < 0.05


def test_datamodule_uses_training_stats_and_split(synth_batches, tiny_params):
    dm = make_datamodule(synth_batches, TrainRun.from_params(tiny_params))
    assert len(dm.train_index) + len(dm.val_index) == len(dm.index)
    assert set(dm.train_index.capture_id).isdisjoint(dm.val_index.capture_id)
    x, y, w = next(iter(dm.train_dataloader()))
    assert tuple(x.shape) == (16, 32, 48) and y.shape == (16,) and w.shape == (16,)
    assert ((w >= 0) & (w <= 1)).all()


def test_window_labelled_twice_keeps_most_confident(tmp_path, synth_batches):
    b = synth_batches[0]
    labels = pl.read_parquet(b.labels_path)
    first = labels.row(0, named=True)
    weak = pl.DataFrame(
        [{**first, "label": (first["label"] + 1) % 3, "source": "weak:dialogue", "confidence": 0.1}],
        schema=labels.schema,
    )
    path = tmp_path / "labels.parquet"
    pl.concat([weak, labels]).write_parquet(path)
    index = load_window_index([TrainingBatch(b.curated_dir, path)], 32)
    assert len(index) == labels.height
    assert index.label[list(index.window_id).index(first["window_id"])] == first["label"]
