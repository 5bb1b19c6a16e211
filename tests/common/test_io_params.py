"""Atomic writes leave either the old or the new file; params presets merge and fail clearly."""

import json

import numpy as np
import pytest

from common.io import atomic_dir, atomic_save_npy, atomic_write_json, atomic_write_text
from common.params import ParamsError, deep_merge, load_params, params_hash


def test_atomic_write_replaces_and_leaves_no_temp(tmp_path):
    target = tmp_path / "a" / "b.json"
    atomic_write_json(target, {"x": np.float32(1.5), "y": np.arange(2)})
    atomic_write_json(target, {"x": 2})
    assert json.loads(target.read_text()) == {"x": 2}
    assert [p.name for p in target.parent.iterdir()] == ["b.json"]


def test_failed_write_keeps_old_content(tmp_path):
    target = tmp_path / "f.txt"
    atomic_write_text(target, "old")
    with pytest.raises(ValueError, match="allow_pickle"):
        atomic_save_npy(target, np.array([object()]))  # object arrays need pickle: refused
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.txt"]


def test_atomic_dir_is_all_or_nothing(tmp_path):
    target = tmp_path / "out"
    with atomic_dir(target) as tmp:
        (tmp / "one").write_text("1")
    with pytest.raises(RuntimeError), atomic_dir(target) as tmp:
        (tmp / "two").write_text("2")
        raise RuntimeError("crash midway")
    assert sorted(p.name for p in target.iterdir()) == ["one"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_presets_merge_and_unknown_preset_is_named(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("a: {b: 1, c: 2}\npresets:\n  small: {a: {b: 5}}\n")
    assert load_params(path) == {"a": {"b": 1, "c": 2}}
    assert load_params(path, "small")["a"] == {"b": 5, "c": 2}
    with pytest.raises(ParamsError, match="unknown preset 'big'"):
        load_params(path, "big")
    with pytest.raises(ParamsError, match="not found"):
        load_params(tmp_path / "missing.yaml")


def test_deep_merge_does_not_mutate_and_hash_is_stable():
    base = {"x": {"y": 1}}
    merged = deep_merge(base, {"x": {"z": 2}})
    assert base == {"x": {"y": 1}} and merged == {"x": {"y": 1, "z": 2}}
    assert params_hash({"a": 1, "b": 2}) == params_hash({"b": 2, "a": 1})
