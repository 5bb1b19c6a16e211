"""CMSIS-DSP export: coefficient convention (order, negated feedback, Q31 with postShift), header and
JSON content (the real CMSIS kernels against the float reference: tests/bench/test_bench_cmsis.py)."""

import json

import numpy as np

from runtime.crossover import lr4_sections
from runtime.fixed_point import (
    cmsis_coefficients,
    export_bundle_files,
    export_c_header,
    export_q31_json,
    post_shift_for,
    to_q31,
)
from runtime.mbdp import design_crossover

FS = 48000.0


def test_feedback_signs_are_negated_and_a0_normalised():
    sos = np.array([[0.5, 0.2, 0.1, 2.0, -1.0, 0.5]])  # a0 = 2
    np.testing.assert_allclose(cmsis_coefficients(sos), [[0.25, 0.1, 0.05, 0.5, -0.25]])


def test_post_shift_is_the_smallest_that_fits_q31():
    assert post_shift_for(np.array([0.5, -0.99])) == 0
    assert post_shift_for(np.array([1.97, -0.97])) == 1
    assert post_shift_for(np.array([-1.0])) == 0  # −1 is representable in Q31
    assert post_shift_for(np.array([3.5])) == 2


def test_q31_matches_the_reference_lr4_stage():
    q, shift = to_q31(lr4_sections(150.0, FS)["lowpass"])
    assert shift == 1
    # REFERENCE.md (converted through float32): [102069, 204139, 102069, 2117669888, -1044336320]
    np.testing.assert_allclose(q[:5], [102069, 204139, 102069, 2117669888, -1044336320], atol=64)
    c = cmsis_coefficients(lr4_sections(150.0, FS)["lowpass"]).reshape(-1)
    np.testing.assert_allclose(q / 2**30, c, atol=2**-30)  # Q31 scaled by 2^-postShift, rounded
    assert q[3] > 0 and q[4] < 0  # −a1 > 0, −a2 < 0 for a low-pass pole pair


def test_export_lists_every_cascade_in_header_and_json():
    design = design_crossover([120.0, 800.0, 4000.0], FS)
    record = export_q31_json(design)
    names = [c["name"] for c in record["cascades"]]
    assert names[:2] == ["split0_lowpass", "split0_highpass"] and "band0_allpass" in names
    stages = {c["name"]: c["num_stages"] for c in record["cascades"]}
    assert stages["band0_allpass"] == 2 and stages["band1_allpass"] == 1 and "band2_allpass" not in stages
    header = export_c_header(design)
    for c in record["cascades"]:
        assert f"mbdp_{c['name']}_coeffs[{5 * c['num_stages']}]" in header
        assert f"MBDP_{c['name'].upper()}_POST_SHIFT {c['post_shift']}" in header
    files = export_bundle_files(design)
    assert json.loads(files["mbdp_q31.json"]) == json.loads(json.dumps(record))
    assert files["mbdp.h"].decode() == header
