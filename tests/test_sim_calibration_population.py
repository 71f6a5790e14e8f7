"""benchmarks/sim_calibration.py --random-sites: real sites against the 5-95 % range of a random population."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from test_benchmarks import load_script

from wmlm.data.simulated import ensure_simulated


def test_population_mode_writes_the_table_and_plot(tmp_path: Path) -> None:
    # "real" sites that are the population's own sites 1-3, written in the DeepSense layout and read back:
    # pooled, the real data is then exactly the pooled random population
    real_root = ensure_simulated(tmp_path / "cache", [], sequences=3, seed=1, sensors=(), random_sites=3)
    markdown, plot = tmp_path / "population.md", tmp_path / "population.png"
    sites = "X=s1_site00001+s1_site00002,Y=s1_site00003"
    script = load_script("sim_calibration")
    rows = script.main(
        ["--real-root", str(real_root), "--random-sites", "3", "--seed", "1", "--sequences", "3"]
        + ["--real-sites", sites, "--markdown", str(markdown), "--plot", str(plot)]
    )
    names = [row.statistic for row in rows]
    assert names == [
        "beam change per step, mean (beams)",
        "peak-to-median power, median (dB)",
        "samples per sequence, mean",
        *(f"repeat-last-beam accuracy, {k} step(s)" for k in (1, 2, 3)),
    ]
    for row in rows:
        assert set(row.real) == {"X", "Y"}
        assert abs(row.ratio - 1) < 1e-12 and row.pooled_ok  # pooled real = pooled random
        low, mid, high = row.percentiles
        assert low <= mid <= high
    text = markdown.read_text()
    assert "| statistic | real X | real Y | random 5 % | 50 % | 95 % | pooled real |" in text
    assert "TV distance 0.000 (pass)" in text
    inside = sum(row.gap(v) == 0 for row in rows for v in row.real.values())
    assert f"**Per site: {inside} of 12 inside the 5-95 % range. Pooled: 7 of 7 within 10 %.**" in text
    assert "3 random sites of population 1, 3 passes each" in text and "no GPU" in text
    assert "python benchmarks/sim_calibration.py --real-root" in text and "--random-sites 3" in text
    assert "Real sites: X = s1_site00001 + s1_site00002; Y = s1_site00003." in text
    assert plot.stat().st_size > 1000
    # site Y is random site 3 itself: its value is one of the three the percentiles are taken over
    population = load_script("calibration_population")
    per_random = [script.statistics(r) for r in population.random_recordings(3, 3, 1)]
    for row in rows:
        values = [s[row.statistic] for s in per_random]
        assert row.real["Y"] == values[2]
        assert np.allclose(row.percentiles, np.percentile(values, [5, 50, 95]))


def test_the_gap_is_signed_distance_to_the_range() -> None:
    script = load_script("calibration_population")
    row = script.PopulationRow("s", {"A": 0.5}, (1.0, 2.0, 3.0), 2.0, 2.1)
    assert row.gap(0.5) == -0.5 and row.gap(3.25) == 0.25 and row.gap(1.0) == 0.0 and row.gap(2.9) == 0.0
    assert row.ratio == 1.05 and row.pooled_ok
    assert not script.PopulationRow("s", {}, (1.0, 2.0, 3.0), 2.0, 2.3).pooled_ok
