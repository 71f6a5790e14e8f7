"""``wmlm export`` to ONNX and the torch-free ``Predictor``: outputs agree with PyTorch on real batches.

One tiny model is trained once for the module (``tests/conf/beam_gps.yaml`` with the site-invariant
options of the quickstart: beam frame ``last_beam``, GPS range, the relative beam head, plus the power and
position heads, which read the inputs too) and exported once with the default exporter.

Tolerance: ``atol = rtol = 1e-4`` (``ATOL``, ``RTOL``). ONNX Runtime and PyTorch run the same float32
function with different kernels (fused attention in PyTorch, other summation orders and GELU/softmax
implementations in ONNX Runtime), so results differ in the last bits; observed differences are ~1e-6.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from conftest import write_scenario

from wmlm import WMLM
from wmlm.beams import beam_predictions
from wmlm.cli import main, run
from wmlm.deploy import spec
from wmlm.deploy.export import ATOL, RTOL
from wmlm.deploy.predictor import Predictor, PredictorInputError, top_k_beams

CONF = Path(__file__).parent / "conf"
BENCHMARKS = Path(__file__).parents[1] / "benchmarks"
MODALITIES = (
    "[{class_path: wmlm.modalities.BeamModality, init_args: {frame: last_beam}},"
    " {class_path: wmlm.modalities.GpsModality, init_args: {features: range}}]"
)
HEADS = "[{class_path: wmlm.heads.BeamHead, init_args: {relative_to: beam}}, power, position]"


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """``{"checkpoint", "model" (eval), "batches" (real validation and training batches), "export"}``."""
    root = tmp_path_factory.mktemp("export")
    for seed, name in enumerate(("scenario1", "scenario2", "scenario3")):
        write_scenario(root / "data" / name, seed=seed)
    with pytest.MonkeyPatch.context() as patch:  # the autouse cache fixture is per test, this is not
        patch.setenv("WMLM_CACHE_DIR", str(root / "cache"))
        cli = run(
            [
                "fit",
                "--config",
                str(CONF / "beam_gps.yaml"),
                "--data.init_args.root",
                str(root / "data"),
                "--trainer.default_root_dir",
                str(root / "runs"),
                "--model.init_args.modalities",
                MODALITIES,
                "--model.init_args.heads",
                HEADS,
                "--test_after_fit",
                "false",
            ]
        )
        batches = list(cli.datamodule.val_dataloader()) + list(cli.datamodule.train_dataloader())
    checkpoint = next((root / "runs").rglob("last.ckpt"))
    from wmlm.deploy.export import export_onnx

    export_onnx(checkpoint, root / "exported")
    model = WMLM.load_from_checkpoint(checkpoint, map_location="cpu", weights_only=True).eval()
    return {"checkpoint": checkpoint, "model": model, "batches": batches, "export": root / "exported"}


def numpy_inputs(
    batch: dict[str, Any], modalities: tuple[str, ...] = ("beam", "gps")
) -> dict[str, np.ndarray]:
    return {m: batch[m].numpy() for m in modalities}


def torch_outputs(model: WMLM, batch: dict[str, Any]) -> dict[str, np.ndarray]:
    with torch.no_grad():
        return {head: value.numpy() for head, value in model(batch).items()}


def take(batch: dict[str, Any], count: int) -> dict[str, Any]:
    """A copy of the first ``count`` windows of a batch (nested dicts included), safe to modify."""
    return {k: take(v, count) if isinstance(v, dict) else v[:count].clone() for k, v in batch.items()}


def test_export_writes_graph_and_description(trained: dict[str, Any]) -> None:
    info = json.loads((trained["export"] / spec.SPEC_FILE).read_text())
    assert (trained["export"] / spec.MODEL_FILE).is_file()
    assert info["format"] == spec.FORMAT and info["exporter"] in ("dynamo", "torchscript")
    assert info["past"] == 5 and info["future"] == 3 and info["batch"] == "dynamic"
    assert info["source_checkpoint"] == str(trained["checkpoint"].resolve())
    inputs = {i["modality"]: i for i in info["inputs"]}
    assert inputs["beam"]["shape"] == ["B", 5, 64] and inputs["beam"]["dtype"] == "float32"
    assert inputs["gps"]["shape"] == ["B", 5, 2] and inputs["gps"]["mask_shape"] == ["B", 5]
    outputs = {o["head"]: o for o in info["outputs"]}
    assert outputs["beam"]["shape"] == ["B", 3, 64] and outputs["beam"]["kind"] == "beam_logits"
    assert "beam i + 1" in outputs["beam"]["meaning"]
    assert outputs["position"]["shape"] == ["B", 3, 2] and outputs["power"]["shape"] == ["B", 3, 64]
    assert max(info["verification"]["max_abs_difference"].values()) < ATOL


@pytest.mark.parametrize("size", [1, 7, 8])
def test_onnx_matches_pytorch_on_real_batches(trained: dict[str, Any], size: int) -> None:
    predictor = Predictor(trained["export"], intra_op_threads=1)
    checked = 0
    for batch in trained["batches"]:
        if len(batch["index"]) < size:
            continue
        batch = take(batch, size)
        expected = torch_outputs(trained["model"], batch)
        got = predictor.predict(numpy_inputs(batch))
        assert got.keys() == expected.keys()
        for head, value in expected.items():
            np.testing.assert_allclose(got[head], value, atol=ATOL, rtol=RTOL, err_msg=head)
        checked += 1
    assert checked >= 2


def test_masked_steps_match_pytorch(trained: dict[str, Any]) -> None:
    batch = take(trained["batches"][0], 6)
    batch["mask"]["gps"][:, :3] = False  # GPS missing for three steps of every window
    batch["mask"]["beam"][0, 1] = False
    expected = torch_outputs(trained["model"], batch)
    masks = {m: batch["mask"][m].numpy() for m in ("beam", "gps")}
    got = Predictor(trained["export"], intra_op_threads=1).predict(numpy_inputs(batch), masks)
    for head, value in expected.items():
        np.testing.assert_allclose(got[head], value, atol=ATOL, rtol=RTOL, err_msg=head)


def test_top_k_beams_are_pytorch_predictions(trained: dict[str, Any]) -> None:
    batch = trained["batches"][0]
    predictor = Predictor(trained["export"], intra_op_threads=1)
    beams = predictor.top_k_beams(numpy_inputs(batch), k=3)
    with torch.no_grad():
        logits = trained["model"](batch)["beam"]
    expected = beam_predictions(logits)  # 1-based, as in the CSV files
    assert beams.shape == (len(batch["index"]), 3, 3)
    # ranks are compared where PyTorch's scores are clearly apart: ONNX Runtime may swap near-ties
    ranked = logits.sort(dim=-1, descending=True).values
    for k in range(3):
        above = ranked[..., k - 1] - ranked[..., k] if k else torch.full_like(ranked[..., 0], torch.inf)
        clear = (above > 1e-3) & (ranked[..., k] - ranked[..., k + 1] > 1e-3)
        np.testing.assert_array_equal(beams[..., k][clear], expected[f"top-{k + 1} beam"][clear].numpy())
        assert clear.float().mean() > 0.5
    assert top_k_beams(np.array([[0.1, 0.9, 0.5]]), k=2).tolist() == [[2, 3]]


def test_predictor_runs_without_torch(trained: dict[str, Any], tmp_path: Path) -> None:
    inputs = numpy_inputs(trained["batches"][0])
    np.savez(tmp_path / "inputs.npz", **inputs)
    expected = Predictor(trained["export"], intra_op_threads=1).predict(inputs)
    script = f"""
import sys
sys.modules["torch"] = None  # any import of torch now fails
import numpy as np
from wmlm.deploy import Predictor
inputs = dict(np.load({str(tmp_path / "inputs.npz")!r}))
outputs = Predictor({str(trained["export"])!r}, intra_op_threads=1).predict(inputs)
np.savez({str(tmp_path / "outputs.npz")!r}, **outputs)
loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "lightning", "open_clip"))
print("heavy modules:", [m for m in loaded if sys.modules[m] is not None])
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "heavy modules: []" in done.stdout
    outputs = np.load(tmp_path / "outputs.npz")
    assert set(outputs.files) == set(expected)
    for head, value in expected.items():
        np.testing.assert_array_equal(outputs[head], value)


def test_predictor_rejects_bad_inputs_with_clear_errors(trained: dict[str, Any]) -> None:
    predictor = Predictor(trained["export"], intra_op_threads=1)
    good = numpy_inputs(take(trained["batches"][0], 4))
    bad_cases = [
        ({"beam": good["beam"]}, r"missing input\(s\) \['gps'\]; this export takes beam, gps"),
        ({**good, "lidar": good["gps"]}, "unknown input 'lidar'"),
        ({**good, "beam": good["beam"].astype(np.float64)}, "'beam' has dtype float64, expected float32"),
        ({**good, "beam": good["beam"][:, :4]}, r"'beam' has shape \[4, 4, 64\], expected \[B, 5, 64\]"),
        ({**good, "gps": good["gps"][..., :1]}, r"'gps' has shape \[4, 5, 1\], expected \[B, 5, 2\]"),
        ({**good, "gps": good["gps"][:3]}, "'gps' has batch size 3, other inputs 4"),
        ({**good, "beam": good["beam"].tolist()}, "'beam' must be a numpy array"),
        ({**good, "gps": np.full_like(good["gps"], np.nan)}, "'gps' holds NaN"),
    ]
    for inputs, message in bad_cases:
        with pytest.raises(PredictorInputError, match=message):
            predictor.predict(inputs)
    with pytest.raises(PredictorInputError, match=r"mask of 'gps' has shape \[4, 4\], expected \[4, 5\]"):
        predictor.predict(good, masks={"gps": np.ones((4, 4), dtype=bool)})
    with pytest.raises(PredictorInputError, match="mask of 'beam' must be bool or 0/1"):
        predictor.predict(good, masks={"beam": np.full((4, 5), 0.3, dtype=np.float32)})
    with pytest.raises(FileNotFoundError, match="wmlm export"):
        Predictor(trained["export"].parent / "nothing here")


def test_cli_export_with_a_modality_left_out(trained: dict[str, Any], tmp_path: Path, capsys) -> None:
    out = tmp_path / "beam_only"
    args = ["export", "--ckpt", str(trained["checkpoint"]), "--format", "onnx", "--out", str(out)]
    assert main([*args, "--modalities", "beam", "--exporter", "torchscript"]) == 0
    assert "torchscript exporter" in capsys.readouterr().out
    info = json.loads((out / spec.SPEC_FILE).read_text())
    assert [i["modality"] for i in info["inputs"]] == ["beam"] and info["modalities_left_out"] == ["gps"]
    predictor = Predictor(out, intra_op_threads=1)
    batch = take(trained["batches"][0], 7)
    got = predictor.predict(numpy_inputs(batch, ("beam",)))
    # the graph without GPS is the model on batches without GPS
    without_gps = {k: v for k, v in batch.items() if k != "gps"}
    without_gps["mask"] = {"beam": batch["mask"]["beam"]}
    for head, value in torch_outputs(trained["model"], without_gps).items():
        np.testing.assert_allclose(got[head], value, atol=ATOL, rtol=RTOL, err_msg=head)
    # GPS left out fuses like GPS masked out (the position head then predicts absolute positions,
    # because it adds the last GPS position only when GPS is an input)
    masked = {**batch, "mask": {"beam": batch["mask"]["beam"], "gps": torch.zeros_like(batch["mask"]["gps"])}}
    expected_beam = torch_outputs(trained["model"], masked)["beam"]
    np.testing.assert_allclose(got["beam"], expected_beam, atol=ATOL, rtol=RTOL)

    assert main([*args, "--modalities", "beam"]) == 1  # refuses to overwrite (OutputError)
    assert "already holds output of wmlm export; pass --overwrite" in capsys.readouterr().err
    assert main([*args, "--modalities", "gps", "--overwrite"]) == 2  # the relative beam head reads beam
    assert "include that modality in --modalities" in capsys.readouterr().err
    assert main([*args, "--modalities", "radar", "--overwrite"]) == 2
    assert "the model's modalities are beam, gps" in capsys.readouterr().err


def test_cli_export_with_a_fixed_batch(trained: dict[str, Any], tmp_path: Path) -> None:
    out = tmp_path / "batch3"
    argv = ["export", "--ckpt", str(trained["checkpoint"]), "--out", str(out), "--batch", "3"]
    assert main([*argv, "--exporter", "torchscript"]) == 0
    info = json.loads((out / spec.SPEC_FILE).read_text())
    assert info["batch"] == 3 and info["inputs"][0]["shape"] == [3, 5, 64]
    predictor = Predictor(out, intra_op_threads=1)
    batch = take(trained["batches"][0], 3)
    got = predictor.predict(numpy_inputs(batch))
    for head, value in torch_outputs(trained["model"], batch).items():
        np.testing.assert_allclose(got[head], value, atol=ATOL, rtol=RTOL, err_msg=head)
    with pytest.raises(PredictorInputError, match=r"has shape \[2, 5, 64\], expected \[3, 5, 64\]"):
        predictor.predict(numpy_inputs(take(batch, 2)))


def test_camera_frames_export_as_uint8_inputs(tmp_path: Path) -> None:
    from wmlm.deploy.export import export_model
    from wmlm.heads.beam import BeamHead
    from wmlm.modalities import BeamModality, GpsModality, ImageModality

    torch.manual_seed(0)
    modalities = [BeamModality(frame="last_beam"), ImageModality(tower="tiny"), GpsModality()]
    model = WMLM(modalities, heads=[BeamHead(relative_to="beam")], preset="tiny", embed_dim=16).eval()
    info = export_model(model, tmp_path / "camera", exporter="torchscript")
    image = next(i for i in info["inputs"] if i["modality"] == "image")
    assert image["shape"] == ["B", 5, 3, 64, 64] and image["dtype"] == "uint8"
    predictor = Predictor(tmp_path / "camera", intra_op_threads=1)
    generator = torch.Generator().manual_seed(1)
    for size in (1, 3):
        batch: dict[str, Any] = {
            "beam": torch.rand(size, 5, 64, generator=generator),
            "image": torch.randint(0, 256, (size, 5, 3, 64, 64), generator=generator, dtype=torch.uint8),
            "gps": 30 * torch.randn(size, 5, 2, generator=generator),
        }
        batch["mask"] = {m: torch.ones(size, 5, dtype=torch.bool) for m in ("beam", "image", "gps")}
        got = predictor.predict({m: batch[m].numpy() for m in ("beam", "image", "gps")})
        expected = torch_outputs(model, batch)["beam"]
        np.testing.assert_allclose(got["beam"], expected, atol=ATOL, rtol=RTOL)


def test_latency_benchmark_runs_every_method(tmp_path: Path) -> None:
    script = importlib.util.spec_from_file_location("latency", BENCHMARKS / "latency.py")
    assert script is not None and script.loader is not None
    latency = importlib.util.module_from_spec(script)
    script.loader.exec_module(latency)
    markdown = tmp_path / "latency.md"
    args = ["--runs", "3", "--rounds", "2", "--no-compile", "--exporter", "torchscript"]
    results = latency.main([*args, "--markdown", str(markdown)])
    methods = [row["method"] for row in results["rows"]]
    assert methods[0] == "PyTorch eager" and "ONNX Runtime, 1 thread" in methods
    assert "ONNX Runtime, 2 threads" in methods and any(m.startswith("Predictor") for m in methods)
    for row in results["rows"]:
        assert row["calls"] == 6 and 0 < row["median_ms"] <= row["p90_ms"]
        assert row["max_abs_diff_vs_eager"] < ATOL
    text = markdown.read_text()
    assert "| PyTorch eager |" in text and "python benchmarks/latency.py --runs 3" in text
