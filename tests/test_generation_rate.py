"""benchmarks/generation_rate.py: today's path and the fast path on the same sites, one table."""

from __future__ import annotations

from pathlib import Path

from test_benchmarks import load_script


def test_smoke_run_times_every_mode_on_the_same_samples(tmp_path: Path) -> None:
    script = load_script("generation_rate")
    markdown = tmp_path / "generation.md"
    timings = script.main(["--smoke", "--markdown", str(markdown)])
    assert [t.mode.name for t in timings] == [
        "today: DeepSense text, 1 process",
        "arrays, 1 process",
        "fast: arrays, 2 processes",
        "camera: arrays + camera, 2 processes",
    ]
    samples = {t.samples for t in timings}
    assert len(samples) == 1 and samples.pop() > 20  # the same sites, hence the same rows, in every mode
    assert all(t.seconds > 0 and t.rate > 0 for t in timings)
    text = markdown.read_text()
    assert "| mode | format | workers | sensors | samples | seconds | samples/s | vs today |" in text
    assert "| today: DeepSense text, 1 process | deepsense | 1 | none |" in text and "| 1.00x |" in text
    assert "| fast: arrays, 2 processes | arrays | 2 | none |" in text
    assert "| camera: arrays + camera, 2 processes | arrays | 2 | camera |" in text
    assert "python benchmarks/generation_rate.py --smoke" in text and "no GPU" in text
    ratio = timings[2].rate / timings[0].rate
    assert f"**{script.verdict(ratio)}**" in text


def test_a_rerun_replaces_the_table_and_keeps_the_reading(tmp_path: Path) -> None:
    script = load_script("generation_rate")
    markdown = tmp_path / "generation.md"
    markdown.write_text("# old title\n\n| old | table |\n\n## Reading the table\n\n- kept by hand.\n")
    script.main(["--smoke", "--markdown", str(markdown)])
    text = markdown.read_text()
    assert "| old | table |" not in text and "| mode | format |" in text
    assert text.endswith("## Reading the table\n\n- kept by hand.\n") and text.count("## Reading") == 1
    assert script.kept_reading(tmp_path / "absent.md") == ""


def test_verdict_says_met_or_missed_and_by_how_much() -> None:
    script = load_script("generation_rate")
    assert script.verdict(6.5) == "met: 6.50x >= 5x (by 1.50x)"
    assert script.verdict(4.0) == "missed: 4.00x < 5x (short by 1.00x, 80 % of the target)"


def test_modes_pass_the_options_of_each_path() -> None:
    script = load_script("generation_rate")
    today, arrays, fast, camera = script.modes(2)
    assert script.synth_args(today, 3, 2, 0)[-6:] == [
        "--format",
        "deepsense",
        "--workers",
        "1",
        "--sensors",
        "none",
    ]
    assert script.synth_args(fast, 3, 2, 0)[-4:] == ["--format", "arrays", "--workers", "2"]
    assert "--sensors" not in script.synth_args(arrays, 3, 2, 0)  # the store's default: no sensor
    assert script.synth_args(camera, 3, 2, 0)[-6:] == [
        "--format",
        "arrays",
        "--workers",
        "2",
        "--sensors",
        "camera",
    ]
