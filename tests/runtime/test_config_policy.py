"""The one strictness policy for typed configs: casts, nested sections, unknown and missing keys named."""

from dataclasses import dataclass

import pytest

from runtime.config import config_from_dict


@dataclass(frozen=True)
class Inner:
    rate: float
    names: tuple[str, ...]


@dataclass(frozen=True)
class Outer:
    count: int
    enabled: bool
    inner: Inner
    limit: float | None
    shares: dict[str, float]
    label: str = "structural"


GOOD = {
    "count": "3",
    "enabled": True,
    "inner": {"rate": 1, "names": ["a", "b"]},
    "limit": None,
    "shares": {"x": 1},
}


def test_values_are_cast_and_nested_sections_built():
    cfg = config_from_dict(Outer, GOOD, "demo")
    assert cfg == Outer(3, True, Inner(1.0, ("a", "b")), None, {"x": 1.0})
    assert isinstance(cfg.inner.rate, float) and isinstance(cfg.shares["x"], float)


def test_unknown_key_names_the_section_and_key_even_when_nested():
    with pytest.raises(ValueError, match=r"demo: unknown key 'cuont'"):
        config_from_dict(Outer, {**GOOD, "cuont": 1}, "demo")
    with pytest.raises(ValueError, match=r"demo\.inner: unknown key 'rat'"):
        config_from_dict(Outer, {**GOOD, "inner": {"rat": 1, "rate": 1, "names": []}}, "demo")


def test_missing_required_key_and_wrong_types_are_refused():
    with pytest.raises(ValueError, match=r"demo: missing key 'count'"):
        config_from_dict(Outer, {k: v for k, v in GOOD.items() if k != "count"}, "demo")
    with pytest.raises(ValueError, match=r"demo\.enabled: expected true or false"):
        config_from_dict(Outer, {**GOOD, "enabled": "false"}, "demo")  # a string is not a bool
    with pytest.raises(ValueError, match=r"demo\.inner\.rate: expected float"):
        config_from_dict(Outer, {**GOOD, "inner": {"rate": "fast", "names": []}}, "demo")


def test_a_bench_subsection_is_an_unknown_key_like_any_other():
    """Benchmark knobs live in the top-level bench: section; a stage section carrying one is refused."""
    with pytest.raises(ValueError, match="demo: unknown key 'bench'"):
        config_from_dict(Outer, {**GOOD, "bench": {"seed": 1}}, "demo")


def test_the_repo_params_sections_build_their_typed_configs():
    from pathlib import Path

    from common.params import load_params
    from ingest.config import IngestConfig
    from mining.config import MiningConfig
    from training.config import QuantizeConfig, TrainingConfig

    params = load_params(Path(__file__).resolve().parents[2] / "params.yaml")
    assert IngestConfig.from_params(params).drift.reference_batch is None
    assert (
        MiningConfig.from_params(params).rare_event.lab_windows
        == params["mining"]["rare_event"]["lab_windows"]
    )
    assert TrainingConfig.from_params(params).export.opset == params["training"]["export"]["opset"]
    assert QuantizeConfig.from_params(params).gate_windows == params["quantize"]["gate_windows"]
    assert (
        IngestConfig.from_params(params).lab_import.tone_segments
        == params["ingest"]["lab_import"]["tone_segments"]
    )


def test_bundle_files_follow_the_policy():
    """mbdp.json modes and calibration records: what to_dict writes loads back; an unknown key is named."""
    from runtime.calibration import CalibrationRecord
    from runtime.mbdp import MbdpConfig, load_preset

    preset = load_preset("speaker4")
    assert MbdpConfig.from_dict(preset.to_dict()) == preset
    with pytest.raises(ValueError, match=r"mbdp\.bands\[0\]: unknown key 'gain'"):
        MbdpConfig.from_dict({**preset.to_dict(), "bands": [{"gain": 1.0}]})
    record = CalibrationRecord("dev-0", 40000.0, -12.0, 30.0, {"40000": -3.0}, {"40000": -90.0})
    assert CalibrationRecord.from_dict(record.to_dict()) == record
    with pytest.raises(ValueError, match="calibration record: unknown key 'target_snr_db'"):
        CalibrationRecord.from_dict({**record.to_dict(), "target_snr_db": 85.0})
