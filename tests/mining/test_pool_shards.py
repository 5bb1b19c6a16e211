"""Pool scoring by shards of a fixed number of windows: merged in any order, on any number of workers, the
scores and embeddings have the bytes of one pass over the pool."""

from __future__ import annotations

import io
import sys
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

import pytest

from mining.scoring import PoolShard, merge_pool_parts, pool_shards, score_pool, score_pool_shard

CHUNK = 16  # small chunks and shards so a small pool has several of each
SHARD = 48


@pytest.fixture(scope="module")
def pool(tmp_path_factory):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "training"))
    from training_testkit import band_energy_model

    from training.synthetic import make_synthetic_batch

    root = tmp_path_factory.mktemp("pool")
    curated, _ = make_synthetic_batch(
        root, n_captures=4, frames_per_capture=96, context_frames=8, window_stride=2
    )
    model = root / "model.onnx"
    model.write_bytes(band_energy_model(8, 48, 2.5, -60.0, -35.0))
    return model, curated


def _bytes(scores, embeddings) -> tuple[bytes, bytes]:
    buf = io.BytesIO()
    scores.write_ipc(buf)
    return buf.getvalue(), embeddings.tobytes() + str(embeddings.shape).encode()


def test_shards_cover_the_table_in_fixed_sizes(pool):
    _, curated = pool
    shards = pool_shards(curated, SHARD, CHUNK)
    assert len(shards) > 2 and shards[0] == PoolShard(0, 0, SHARD)
    assert [s.start for s in shards[1:]] == [s.stop for s in shards[:-1]]
    assert all(s.stop - s.start == SHARD for s in shards[:-1]) and shards[-1].stop - shards[-1].start > 0
    with pytest.raises(ValueError, match="multiple of chunk"):
        pool_shards(curated, SHARD + 1, CHUNK)


def test_shards_in_reverse_order_or_on_two_workers_merge_to_the_one_pass_bytes(pool):
    model, curated = pool
    whole = _bytes(*score_pool(model, curated, 8, chunk=CHUNK))
    shards = pool_shards(curated, SHARD, CHUNK)
    parts = [score_pool_shard(model, curated, 8, s, CHUNK) for s in shards]
    assert _bytes(*merge_pool_parts(curated, parts[::-1])) == whole
    with ThreadPoolExecutor(2) as workers:
        futures = [workers.submit(score_pool_shard, model, curated, 8, s, CHUNK) for s in shards]
        done = [f.result() for f in as_completed(futures)]
    assert _bytes(*merge_pool_parts(curated, done)) == whole


def test_a_missing_part_is_refused(pool):
    model, curated = pool
    parts = [score_pool_shard(model, curated, 8, s, CHUNK) for s in pool_shards(curated, SHARD, CHUNK)]
    with pytest.raises(ValueError, match="do not cover"):
        merge_pool_parts(curated, parts[1:])
