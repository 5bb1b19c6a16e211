"""A device with a bundle installed runs runtime.pipeline + the rare-event trigger, and logs its version."""

import json
import tarfile

import numpy as np
import pytest
from config_testkit import detector_config, frontend_config

from fleet.config import sim_section
from fleet.simulate import simulate_batch

pytest.importorskip("runtime.pipeline")
onnx = pytest.importorskip("onnx")


def linear_model(in_shape: list, out_dim: int, bias: list, reduce: bool) -> bytes:
    """ONNX: (mean over frames if reduce) → MatMul → Add; outputs logits (+ embedding when reduce)."""
    from onnx import TensorProto, helper, numpy_helper

    d = in_shape[-1]
    name = "features" if reduce else "embedding"
    inp = helper.make_tensor_value_info(name, TensorProto.FLOAT, in_shape)
    nodes, outs = [], [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", out_dim])]
    inits = [
        numpy_helper.from_array(np.zeros((d, out_dim), np.float32), "W"),
        numpy_helper.from_array(np.array(bias, np.float32), "B"),
    ]
    src = name
    if reduce:
        nodes.append(helper.make_node("ReduceMean", ["features", "axes"], ["embedding"], keepdims=0))
        inits.append(numpy_helper.from_array(np.array([1], np.int64), "axes"))
        outs.append(helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["N", d]))
        src = "embedding"
    nodes += [helper.make_node("MatMul", [src, "W"], ["p"]), helper.make_node("Add", ["p", "B"], ["logits"])]
    model = helper.make_model(
        helper.make_graph(nodes, "m", [inp], outs, inits), opset_imports=[helper.make_opsetid("", 18)]
    )
    model.ir_version = 8
    return model.SerializeToString()


@pytest.fixture
def bundle(tmp_path):

    fe, det = frontend_config(), detector_config()
    root = tmp_path / "bundle"
    (root / "payload").mkdir(parents=True)
    (root / "manifest.json").write_text(json.dumps({"version": "9.9.9-test"}))
    (root / "payload" / "frontend.json").write_text(json.dumps(fe.to_dict()))
    (root / "payload" / "detector.json").write_text(
        json.dumps({**det.to_dict(), "rare_event_threshold": 0.5})
    )
    shape = ["N", det.context_frames, fe.n_velocity_bins]
    # the classifier always says "none"; the rare-event model always says "rare"
    (root / "payload" / "model_int8.onnx").write_bytes(linear_model(shape, 3, [6.0, 0.0, 0.0], True))
    (root / "payload" / "rare_event.onnx").write_bytes(
        linear_model(["N", fe.n_velocity_bins], 2, [-6.0, 6.0], False)
    )
    return root


@pytest.mark.parametrize("as_tar", [False, True])
def test_field_batch_runs_the_installed_bundle(tmp_path, bundle, as_tar):
    path = bundle
    if as_tar:
        path = tmp_path / "bundle.tar"
        with tarfile.open(path, "w") as tar:
            tar.add(bundle, arcname=".")
    sim = json.loads(json.dumps(sim_section(None)))
    sim.update(capture_s=5.0, workers=1)
    sim["policy"].update(sample_prob=0.0, rare_event_cooldown_s=0.0)
    sim["field"]["occupied_fraction"] = 0.9
    raw = tmp_path / "raw" / "b"
    s = simulate_batch("field", 1, 0.15, 2, raw, tmp_path / "truth" / "b", bundle_path=path, sim_params=sim)
    caps = [json.loads(x) for x in (raw / "captures.jsonl").read_text().splitlines()]
    assert caps and all(c["firmware"] == "9.9.9-test" for c in caps)
    # no detections from a model that never fires; uploads come from the rare-event trigger
    assert {c["trigger"] for c in caps} == {"rare_event"}
    assert s["firmware"] == "9.9.9-test"


def test_missing_bundle_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        simulate_batch("field", 1, 0.01, 1, tmp_path / "r", tmp_path / "t", bundle_path=tmp_path / "nope")
