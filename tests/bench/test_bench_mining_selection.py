"""The mining bench's selection figure: the quota mix in a child process, its own time and peak memory."""

import sys

import numpy as np
import pytest

from bench.mining import measure_selection

PARAMS = {
    "mining": {"quotas": {"hard_negative": 0.35, "uncertain": 0.25, "novel": 0.2, "diverse": 0.2}},
    "bench": {"mining": {"embedding_dim": 32, "labeled": 500, "devices": 5, "seed": 19, "budget": 60}},
}


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="ru_maxrss inheritance is Linux behaviour")
def test_selection_peak_rss_is_the_childs_own_not_the_parents():
    ballast = np.ones(400 * 2**20 // 8)  # 400 MB resident in the parent when it starts the child
    figures = measure_selection(PARAMS, 5000)
    assert figures["picks"] == figures["unique"] == 60
    assert figures["seconds"] > 0
    assert 0 < figures["peak_rss_mb"] < 350  # a small pool: far below what the parent holds
    del ballast
