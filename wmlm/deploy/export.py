"""``wmlm export``: a trained WMLM as an ONNX graph plus a JSON description, for ONNX Runtime, or as
safetensors weights plus its configuration, for sharing (``wmlm.deploy.safetensors_export``).

    wmlm export --ckpt runs/x/.../last.ckpt --format onnx --out exported/ [--modalities beam,gps]
                [--batch dynamic|N] [--exporter auto|dynamo|torchscript] [--opset 18] [--overwrite]
    wmlm export --ckpt runs/x/.../last.ckpt --format safetensors --out shared/ [--overwrite]

writes ``exported/model.onnx`` and ``exported/wmlm_export.json``; ``wmlm.deploy.Predictor`` runs the pair
from numpy without torch. ``--out`` follows ``wmlm.outputs``' policy: a new or empty folder, or, with
``--overwrite``, one an earlier ``wmlm export`` wrote (its marker file says so); any other folder, or a
file, is refused before the checkpoint is read. Overwriting removes only the files an export writes.

The graph is a pure-tensor view of ``WMLM.forward``: inputs are one tensor per chosen modality
``[B, P, *step_shape]`` (linear beam power, metres, ... exactly what the model's batches hold) and one mask
per modality ``[B, P]`` float32 (1 = step present, 0 = missing); outputs are every head's output. The
wrapper rebuilds the batch dict the model and heads read (``BeamHead(relative_to="beam")`` gathers from
``batch["beam"]``), so nothing in the model changes for export. The causal mask of the backbone depends
only on ``P``, which is fixed at export; only the batch axis can be dynamic.

A model trained with several modalities can be exported with fewer (``--modalities beam``): a left-out
modality contributes nothing to the fused embedding, exactly as when its mask is all zero in PyTorch.
Heads that read a modality's values (the relative beam head, the power head) need that modality.

Exporter: ``auto`` uses torch's ``torch.export``-based ("dynamo") exporter when ``onnxscript`` is installed
(the ``deploy`` extra installs it) and falls back to the TorchScript-based one if it is missing or fails;
both were checked to agree with PyTorch here (torch 2.14, onnxruntime 1.32). After writing the graph,
ONNX Runtime runs it on random example windows and the export fails unless every output matches
PyTorch within ``ATOL`` / ``RTOL`` (the kernels differ, so float32 results differ in the last bits).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import logging
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor, nn

from wmlm.deploy import spec
from wmlm.deploy.describe import describe
from wmlm.deploy.destination import check_destination, claim
from wmlm.deploy.safetensors_export import write_safetensors
from wmlm.errors import EXIT_USAGE, WmlmError
from wmlm.model.checkpoint import is_remote, read_checkpoint
from wmlm.model.llm_backbone import LLMBackbone
from wmlm.model.trust import check_checkpoint_classes
from wmlm.model.wmlm import WMLM
from wmlm.outputs import atomic_write_text

log = logging.getLogger(__name__)
Exporter = Literal["auto", "dynamo", "torchscript"]
ATOL = RTOL = 1e-4  # ONNX Runtime vs PyTorch, float32 (observed differences: docs/results/constants.md)
EXAMPLE_BATCH = 2  # torch.export specialises sizes 0 and 1, so a dynamic axis is traced at 2
EXTERNAL_DATA_BYTES = 1 << 30  # larger weights go to model.onnx.data (protobuf files stop at 2 GB)


class ExportError(WmlmError):
    """The checkpoint or the options cannot be exported (the message says why and what to do)."""

    exit_code = EXIT_USAGE


class ExportWrapper(nn.Module):
    """``WMLM`` with a pure-tensor signature for ONNX.

    ``forward(x_1, ..., x_M, mask_1, ..., mask_M)`` with ``x_i [B, P, *step_shape]`` of modality ``i`` of
    ``modalities`` and ``mask_i [B, P]`` float (1 present, 0 missing) returns the heads' outputs in
    ``heads`` order. The batch dict is rebuilt inside, so heads that read inputs (``relative_to``) work.
    """

    def __init__(self, model: WMLM, modalities: Sequence[str]) -> None:
        super().__init__()
        self.model = model
        self.modalities = tuple(modalities)
        self.heads = tuple(model.heads)

    def forward(self, *tensors: Tensor) -> tuple[Tensor, ...]:
        count = len(self.modalities)
        batch: dict[str, Any] = dict(zip(self.modalities, tensors[:count]))
        # the model's batches carry bool masks; plugin heads may rely on that
        batch["mask"] = {m: mask > 0.5 for m, mask in zip(self.modalities, tensors[count:])}
        outputs = self.model(batch)
        return tuple(outputs[h] for h in self.heads)


def load_model(checkpoint: str | Path) -> WMLM:
    """The ``WMLM`` of a Lightning checkpoint, on the CPU, in eval mode.

    The file is read by ``wmlm.model.checkpoint.read_checkpoint`` (local, ``weights_only``) and the classes its
    hyperparameters name are checked (``wmlm.model.trust``) before the model is rebuilt from them.
    """
    from lightning.pytorch.core.saving import _load_state

    contents = read_checkpoint(checkpoint)
    check_checkpoint_classes(contents.get("hyper_parameters"), str(checkpoint))
    try:
        model = _load_state(WMLM, contents, strict=True)
    except (RuntimeError, KeyError, TypeError, ValueError) as error:
        if isinstance(error, WmlmError):
            raise
        raise ExportError(
            f"checkpoint {checkpoint} does not rebuild a WMLM: {error}. Checkpoints of models built in Python "
            "with Modality/TaskHead objects lack their configuration; train through `wmlm fit` (configs "
            "are saved with the checkpoint) or pass names."
        ) from error
    if not isinstance(model, WMLM):
        raise ExportError(
            f"wmlm export supports WMLM checkpoints; {checkpoint} holds a {type(model).__name__}"
        )
    return model.eval()


def choose_modalities(model: WMLM, names: Sequence[str] | None) -> list[str]:
    """The modalities to export, in the model's order; all of them when ``names`` is None."""
    available = list(model.modality_specs)
    if names is None:
        return available
    unknown = [n for n in names if n not in available]
    if unknown or not names:
        raise ExportError(f"--modalities {list(names)}: the model's modalities are {', '.join(available)}")
    return [n for n in available if n in names]


def example_inputs(model: WMLM, modalities: Sequence[str], batch: int) -> tuple[Tensor, ...]:
    """Random but valid inputs ``(x_1..x_M, mask_1..mask_M)`` to trace with (positive power, metres)."""
    generator = torch.Generator().manual_seed(0)
    tensors = []
    for name in modalities:
        modality = model.modality_specs[name]
        shape = (batch, model.past, *modality.step_shape)
        if modality.dtype.is_floating_point:
            tensors.append(torch.rand(shape, generator=generator, dtype=modality.dtype))
        else:
            tensors.append(torch.randint(0, 256, shape, generator=generator).to(modality.dtype))
    masks = [torch.ones(batch, model.past) for _ in modalities]
    return (*tensors, *masks)


def export_onnx(
    checkpoint: str | Path,
    out_dir: str | Path,
    modalities: Sequence[str] | None = None,
    batch: int | Literal["dynamic"] = "dynamic",
    exporter: Exporter = "auto",
    opset: int = 18,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Export a checkpoint's model to ``out_dir/model.onnx`` and describe it in ``wmlm_export.json``.

    Args:
        checkpoint: a Lightning checkpoint of a ``WMLM`` (``wmlm fit`` writes them).
        out_dir, modalities, batch, exporter, opset, overwrite: as for ``export_model``.

    Returns:
        The JSON description (``wmlm.deploy.describe.describe``).
    """
    checkpoint = checkpoint if is_remote(checkpoint) else Path(checkpoint)  # a URL stays a URL, to be refused
    check_destination(Path(out_dir), overwrite)  # before the (slow) loading
    return export_model(
        load_model(checkpoint), out_dir, modalities, batch, exporter, opset, overwrite, checkpoint
    )


def export_model(
    model: WMLM,
    out_dir: str | Path,
    modalities: Sequence[str] | None = None,
    batch: int | Literal["dynamic"] = "dynamic",
    exporter: Exporter = "auto",
    opset: int = 18,
    overwrite: bool = False,
    source: Path | None = None,
) -> dict[str, Any]:
    """Export ``model`` (e.g. freshly built, for benchmarks) to ``out_dir``; see ``export_onnx``.

    Args:
        model: the model to export (evaluated in eval mode, on the CPU).
        out_dir: folder for the two files (created).
        modalities: inputs of the graph (default: all the model's modalities).
        batch: ``"dynamic"`` (any batch size) or a fixed batch size.
        exporter: see the module docstring.
        opset: ONNX opset of the graph.
        overwrite: replace an earlier export in ``out_dir``.
        source: the checkpoint the model came from, recorded in the JSON (None: built in Python).
    """
    out_dir = Path(out_dir)
    if batch != "dynamic" and (not isinstance(batch, int) or batch < 1):
        raise ExportError(f"batch must be 'dynamic' or a positive integer, got {batch!r}")
    replacing = check_destination(out_dir, overwrite)
    model_path, spec_path = out_dir / spec.MODEL_FILE, out_dir / spec.SPEC_FILE
    model = model.cpu().eval().requires_grad_(False)
    chosen = choose_modalities(model, modalities)
    wrapper = ExportWrapper(model, chosen).eval()
    example = example_inputs(model, chosen, EXAMPLE_BATCH if batch == "dynamic" else batch)
    input_names = [spec.input_name(m) for m in chosen] + [spec.mask_name(m) for m in chosen]
    output_names = [spec.output_name(h) for h in wrapper.heads]
    with torch.no_grad(), _without_attention_fastpath():
        try:
            expected = wrapper(*example)
        except KeyError as error:  # a head reads a modality left out of the export
            raise ExportError(
                f"{error.args[0]}; include that modality in --modalities (chosen: {', '.join(chosen)})"
            ) from None
        claim(out_dir, replacing, "onnx")  # until the new JSON is written, the folder holds no export
        used = _export_graph(
            wrapper, example, model_path, input_names, output_names, batch == "dynamic", exporter, opset
        )
    differences = _verify(model_path, example, expected, input_names, output_names)
    verification = {
        "example_batch": len(example[0]),
        "max_abs_difference": differences,
        "atol": ATOL,
        "rtol": RTOL,
    }
    description = describe(model, chosen, expected, batch, used, opset, source, verification)
    # the JSON appears last and whole: its presence marks a finished export
    atomic_write_text(spec_path, json.dumps(description, indent=2) + "\n")
    return description


def export_safetensors(
    checkpoint: str | Path, out_dir: str | Path, overwrite: bool = False
) -> dict[str, Path]:
    """Write a checkpoint's model as ``out_dir/model.safetensors`` + ``model.yaml`` (``safetensors_export``)."""
    out_dir = Path(out_dir)
    replacing = check_destination(out_dir, overwrite)  # before the (slow) loading
    model = load_model(checkpoint if is_remote(checkpoint) else Path(checkpoint))
    claim(out_dir, replacing, "safetensors")
    return write_safetensors(model, out_dir, Path(str(checkpoint)))


@contextlib.contextmanager
def _without_attention_fastpath() -> Iterator[None]:
    """Trace the transformer's plain operators, not PyTorch's fused inference kernel.

    Without gradients, ``nn.TransformerEncoderLayer`` runs ``aten::_transformer_encoder_layer_fwd``, which
    the TorchScript-based exporter cannot translate; the plain path computes the same function.
    """
    enabled = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        yield
    finally:
        torch.backends.mha.set_fastpath_enabled(enabled)


def _export_graph(
    wrapper: ExportWrapper,
    example: tuple[Tensor, ...],
    path: Path,
    input_names: list[str],
    output_names: list[str],
    dynamic: bool,
    exporter: Exporter,
    opset: int,
) -> str:
    """Write the ONNX graph with the chosen exporter; returns the one that was used."""
    if exporter not in ("auto", "dynamo", "torchscript"):
        raise ExportError(f"exporter must be auto, dynamo or torchscript, got {exporter!r}")
    if importlib.util.find_spec("onnx") is None:
        raise ExportError("wmlm export needs onnx and onnxruntime: pip install 'wmlm[deploy]'")
    # transformers' models use operators (aten::diff) the TorchScript-based exporter does not translate
    llm = isinstance(wrapper.model.backbone, LLMBackbone)
    if llm and (exporter == "torchscript" or importlib.util.find_spec("onnxscript") is None):
        raise ExportError(
            "a language-model backbone (model.backbone kind llm) exports only with the dynamo exporter: "
            "pip install 'wmlm[deploy]' and use --exporter dynamo or auto"
        )
    if exporter in ("auto", "dynamo"):
        if importlib.util.find_spec("onnxscript") is None:
            if exporter == "dynamo":
                raise ExportError("--exporter dynamo needs onnxscript: pip install 'wmlm[deploy]'")
        else:
            try:
                _export_dynamo(wrapper, example, path, input_names, output_names, dynamic, opset)
                return "dynamo"
            except Exception as error:  # the exporter fails in many ways; the fallback handles them all
                if exporter == "dynamo":
                    raise
                if llm:
                    raise ExportError(
                        f"the dynamo exporter failed on the language-model backbone ({error}); the "
                        "TorchScript-based exporter cannot export it either"
                    ) from error
                log.warning("the dynamo exporter failed (%s); using the TorchScript-based exporter", error)
    _export_torchscript(wrapper, example, path, input_names, output_names, dynamic, opset)
    return "torchscript"


def _large(wrapper: nn.Module) -> bool:
    return sum(p.numel() * p.element_size() for p in wrapper.parameters()) > EXTERNAL_DATA_BYTES


def _export_dynamo(
    wrapper: ExportWrapper,
    example: tuple[Tensor, ...],
    path: Path,
    input_names: list[str],
    output_names: list[str],
    dynamic: bool,
    opset: int,
) -> None:
    batch_dim = torch.export.Dim(spec.BATCH_AXIS, min=1, max=1 << 20)
    # one shared Dim: every input must have the same batch size
    shapes = tuple({0: batch_dim} for _ in example) if dynamic else None
    with warnings.catch_warnings():
        # the shared Dim is named once in the graph; torch says so for every further input
        warnings.filterwarnings("ignore", message=".*shares the same shape constraints.*")
        torch.onnx.export(
            wrapper,
            example,
            str(path),
            dynamo=True,
            input_names=input_names,
            output_names=output_names,
            dynamic_shapes=(shapes,) if shapes else None,  # the wrapper's one *tensors argument
            opset_version=opset,
            external_data=_large(wrapper),
            verbose=False,
        )


def _export_torchscript(
    wrapper: ExportWrapper,
    example: tuple[Tensor, ...],
    path: Path,
    input_names: list[str],
    output_names: list[str],
    dynamic: bool,
    opset: int,
) -> None:
    axes = {name: {0: spec.BATCH_AXIS} for name in [*input_names, *output_names]} if dynamic else None
    with warnings.catch_warnings():
        # shape checks in the model (P, feature sizes) are traced as constants; they hold because only
        # the batch axis varies, so the tracer's warnings about them say nothing here
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", message=".*legacy TorchScript-based ONNX export.*")
        torch.onnx.export(
            wrapper,
            example,
            str(path),
            dynamo=False,
            input_names=input_names,
            output_names=output_names,
            dynamic_axes=axes,
            opset_version=opset,
        )


def _verify(
    path: Path,
    example: tuple[Tensor, ...],
    expected: tuple[Tensor, ...],
    input_names: list[str],
    output_names: list[str],
) -> dict[str, float]:
    """Run the graph on ONNX Runtime; ``{output name: max |onnx - torch|}``, or ExportError if too far."""
    try:
        import onnxruntime
    except ImportError:
        raise ExportError("wmlm export needs onnxruntime: pip install 'wmlm[deploy]'") from None
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(output_names, {n: t.numpy() for n, t in zip(input_names, example)})
    differences = {}
    for name, value, reference in zip(output_names, got, expected):
        actual = torch.from_numpy(value)
        if actual.shape != reference.shape or not torch.allclose(actual, reference, atol=ATOL, rtol=RTOL):
            raise ExportError(
                f"ONNX Runtime disagrees with PyTorch on {name}: shapes {list(actual.shape)} vs "
                f"{list(reference.shape)}, max difference {(actual - reference).abs().max().item():.3g}"
            )
        differences[name] = float((actual - reference).abs().max())
    return differences


def _batch_option(text: str) -> int | str:
    if text == "dynamic":
        return text
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected 'dynamic' or a batch size, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"batch size must be >= 1, got {value}")
    return value


def export_command(argv: list[str]) -> int:
    """``wmlm export --ckpt PATH --format onnx|safetensors --out DIR [...]``; returns 0 (errors raise)."""
    parser = argparse.ArgumentParser(
        prog="wmlm export",
        description="Export a trained WMLM to ONNX (model.onnx + wmlm_export.json) for wmlm.deploy.Predictor, "
        "or to safetensors (model.safetensors + model.yaml) for sharing weights without pickle.",
    )
    parser.add_argument("--ckpt", required=True, help="Lightning checkpoint of a WMLM (e.g. .../last.ckpt)")
    parser.add_argument("--format", default="onnx", choices=["onnx", "safetensors"], help="export format")
    parser.add_argument("--out", required=True, help="output folder (new, empty, or an earlier export's)")
    parser.add_argument(
        "--modalities",
        default=None,
        help="onnx: comma-separated inputs of the graph (default: all the model's)",
    )
    parser.add_argument(
        "--batch",
        type=_batch_option,
        default="dynamic",
        help="onnx: 'dynamic' (default) or a fixed batch size",
    )
    parser.add_argument(
        "--exporter", default="auto", choices=["auto", "dynamo", "torchscript"], help="onnx: ONNX exporter"
    )
    parser.add_argument("--opset", type=int, default=18, help="onnx: ONNX opset version")
    parser.add_argument("--overwrite", action="store_true", help="replace an earlier export in --out")
    args = parser.parse_args(argv)
    if args.format == "safetensors":
        written = export_safetensors(args.ckpt, args.out, overwrite=args.overwrite)
        print(f"wrote {written['weights']} and {written['config'].name} (no pickle: safe to share)")
        return 0
    names = [n.strip() for n in args.modalities.split(",") if n.strip()] if args.modalities else None
    info = export_onnx(
        args.ckpt, args.out, names, args.batch, args.exporter, args.opset, overwrite=args.overwrite
    )
    inputs = ", ".join(f"{i['onnx_name']} {i['shape']} {i['dtype']}" for i in info["inputs"])
    outputs = ", ".join(f"{o['onnx_name']} {o['shape']}" for o in info["outputs"])
    worst = max(info["verification"]["max_abs_difference"].values())
    print(f"wrote {Path(args.out) / spec.MODEL_FILE} and {spec.SPEC_FILE} ({info['exporter']} exporter)")
    print(f"  inputs: {inputs} (+ masks [B, P] float32)")
    print(f"  outputs: {outputs}")
    print(f"  ONNX Runtime vs PyTorch: max |difference| {worst:.2g} (tolerance atol {ATOL}, rtol {RTOL})")
    return 0
