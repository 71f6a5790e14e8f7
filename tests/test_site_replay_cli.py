"""``wmlm online``: replaying a recorded site through an online adapter from the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import write_scenario

from wmlm.cli import main
from wmlm.deploy.site_replay import ONLINE_VARIANTS, online_options

CONF = Path(__file__).parent / "conf" / "beam_gps.yaml"
PAST, FUTURE = 5, 3  # the WMLM defaults the tiny config keeps
SITE_LENGTHS = (14, 12, 16, 13, 15)  # passes of the replayed site, in samples


@pytest.fixture(scope="module")
def fitted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """``(data root, last.ckpt)``: a tiny fit on two scenarios; ``site`` is the scenario it never saw."""
    root = tmp_path_factory.mktemp("replay")
    for seed, name in enumerate(("scenario1", "scenario2")):
        write_scenario(root / "data" / name, seed=seed)
    write_scenario(root / "data" / "site", seed=7, sequence_lengths=SITE_LENGTHS)
    args = ["fit", "--config", str(CONF), "--data.init_args.root", str(root / "data")]
    args += [
        "--data.init_args.scenarios",
        "[scenario1, scenario2]",
        "--trainer.default_root_dir",
        str(root / "runs"),
    ]
    with pytest.MonkeyPatch.context() as patch:  # the autouse cache fixture is per test, this is not
        patch.setenv("WMLM_CACHE_DIR", str(root / "cache"))
        assert main([*args, "--test_after_fit", "false"]) == 0
    return root / "data", next((root / "runs").rglob("last.ckpt"))


def test_replay_prints_both_variants_and_writes_the_running_accuracy(
    fitted: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data, ckpt = fitted
    out = tmp_path / "replay.json"
    argv = ["online", "--ckpt", str(ckpt), "--data", str(data), "--scenarios", "site", "--compare"]
    assert main([*argv, "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    windows = sum(n - PAST - FUTURE + 1 for n in SITE_LENGTHS)
    assert f"site: {sum(SITE_LENGTHS)} samples in {len(SITE_LENGTHS)} passes" in printed
    assert "zero-shot:" in printed and "prior+memory:" in printed and "over budget" in printed
    written = json.loads(out.read_text())
    assert [v["variant"] for v in written["variants"]] == ["zero-shot", "prior+memory"]
    for variant in written["variants"]:
        assert variant["windows"] == windows and variant["passes"] == len(SITE_LENGTHS)
        assert len(variant["top1"]) == FUTURE and len(variant["running_top3"]) == len(SITE_LENGTHS)
        mean_top3 = sum(variant["top3"]) / FUTURE
        assert variant["running_top3"][-1] == pytest.approx(mean_top3, abs=1e-6)
    # the first pass is served by the pretrained model alone in both: nothing was learned before it
    zero, adapted = written["variants"]
    assert adapted["running_top3"][0] == pytest.approx(zero["running_top3"][0], abs=1e-6)


def test_an_existing_json_is_kept_unless_overwrite(
    fitted: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data, ckpt = fitted
    out = tmp_path / "replay.json"
    out.write_text("mine")
    argv = ["online", "--ckpt", str(ckpt), "--data", str(data), "--scenarios", "site", "--json", str(out)]
    assert main([*argv, "--adapt", "zero-shot"]) == 1
    assert f"wmlm: error: --json {out} exists; pass --overwrite" in capsys.readouterr().err
    assert out.read_text() == "mine"
    assert main([*argv, "--adapt", "zero-shot", "--overwrite"]) == 0
    assert json.loads(out.read_text())["variants"][0]["variant"] == "zero-shot"


def test_state_resumes_where_the_last_replay_stopped(
    fitted: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data, ckpt = fitted
    state = tmp_path / "state"
    argv = ["online", "--ckpt", str(ckpt), "--data", str(data), "--scenarios", "site", "--state", str(state)]
    assert main(argv) == 0
    assert f"saved the adapter to {state} ({len(SITE_LENGTHS)} passes learned)" in capsys.readouterr().out
    assert main([*argv, "--adapt", "heads"]) == 0  # the saved settings win, and the run says so
    printed = capsys.readouterr().out
    assert f"resuming the adapter in {state} ({len(SITE_LENGTHS)} passes learned)" in printed
    assert "not --adapt" in printed and f"({2 * len(SITE_LENGTHS)} passes learned)" in printed

    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep")
    assert main([*argv[:-1], str(mine)]) == 1
    assert "was not written by wmlm online" in capsys.readouterr().err
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]


@pytest.mark.parametrize(
    ("extra", "code", "message"),
    [
        (["--scenarios", "nowhere"], 1, "unknown scenario(s) ['nowhere']"),
        (["--adapt", "everything"], 2, "argument --adapt: invalid choice: 'everything'"),
        (["--sample-rate-hz", "0"], 2, "--sample-rate-hz must be > 0 samples per second, got 0.0"),
    ],
)
def test_bad_input_is_one_clear_message(
    fitted: tuple[Path, Path], extra: list[str], code: int, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    data, ckpt = fitted
    assert main(["online", "--ckpt", str(ckpt), "--data", str(data), *extra]) == code
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_a_missing_checkpoint_names_the_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "none.ckpt"
    assert main(["online", "--ckpt", str(missing), "--data", str(tmp_path)]) == 1
    assert str(missing) in capsys.readouterr().err


def test_variant_options() -> None:
    assert online_options("prior+memory", 20) == {
        "adapt": "heads", "steps_per_pass": 0, "site_prior": 50.0, "site_memory": 0.3
    }  # fmt: skip
    assert online_options("heads+backbone+prior", 7, site_prior=5.0)["steps_per_pass"] == 7
    assert online_options("zero-shot", 20)["steps_per_pass"] == 0
    assert all(online_options(v, 1)["adapt"] in ("heads", "heads+backbone") for v in ONLINE_VARIANTS)
    with pytest.raises(ValueError, match=r"unknown online variant 'memory\+heads'"):
        online_options("memory+heads", 1)
