"""Context windows and class order."""

from __future__ import annotations

import numpy as np
import pytest

from runtime.labels import CLASS_INDEX, CLASSES
from runtime.windows import context_windows


def test_class_order() -> None:
    assert CLASSES == ("none", "minor", "major")
    assert CLASS_INDEX["major"] == 2


def test_context_windows_cover_contract_frames() -> None:
    frames = np.arange(20 * 3, dtype=np.float64).reshape(20, 3)
    windows, end = context_windows(frames, context=5, stride=4)
    np.testing.assert_array_equal(end, [4, 8, 12, 16])
    assert windows.shape == (4, 5, 3) and windows.dtype == np.float32
    for k, e in enumerate(end):
        np.testing.assert_array_equal(windows[k], frames[e - 4 : e + 1])


def test_context_windows_short_and_bad_input() -> None:
    windows, end = context_windows(np.zeros((3, 2)), context=5, stride=1)
    assert windows.shape == (0, 5, 2) and end.shape == (0,)
    with pytest.raises(ValueError):
        context_windows(np.zeros(5), context=2, stride=1)
    with pytest.raises(ValueError):
        context_windows(np.zeros((5, 2)), context=2, stride=0)
