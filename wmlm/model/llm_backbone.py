"""LLM reprogramming (``WMLM(backbone={"kind": "llm", "path": ...})``): a pretrained causal language model as
the backbone, the paper's Table I first paradigm (what LLM4CP and BeamLLM do).

The language model comes from a **local** Hugging Face checkpoint folder (``config.json`` plus weights, as
``save_pretrained`` or ``huggingface-cli download gpt2 --local-dir DIR`` write them); wmlm never downloads
weights (``local_files_only=True``) and refuses anything that is not an existing folder. No tokenizer is
involved: the fused per-step embeddings ``[B, P, width]`` are projected to the LM's hidden size and given as
``inputs_embeds``; the LM's last hidden states are projected back to ``width`` for the heads.

Trainable: the two projections, every normalisation layer (``LayerNorm`` / ``RMSNorm``), learned position
embeddings (GPT-2's ``wpe``; rotary models have none) and, with ``lora_rank > 0``, LoRA adapters (``peft``)
on the attention projections. Everything else (attention, MLPs, token embeddings) stays frozen, also when
``WMLM`` calls ``requires_grad_`` on the backbone at each epoch (this module only toggles its own trainable
set). ``transformers`` and ``peft`` are imported only when such a backbone is built (``pip install
'wmlm[llm]'``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from wmlm.errors import ConfigError
from wmlm.model.backbone import BackbonePreset

BACKBONE_KINDS = ("llm",)
OPTION_KEYS = ("kind", "path", "lora_rank", "lora_alpha", "lora_dropout", "lora_targets")
KEY = "model.backbone"


@dataclass(frozen=True)
class LLMOptions:
    """What ``model.backbone`` says, checked.

    Attributes:
        path: local Hugging Face checkpoint folder of a causal LM (holds ``config.json``).
        lora_rank: rank of the LoRA adapters; 0: none (only norms, positions and projections train).
        lora_alpha: LoRA scaling numerator (the update is scaled by ``lora_alpha / lora_rank``).
        lora_dropout: dropout on the LoRA branch.
        lora_targets: module names that get adapters; None: peft's default for the model type (GPT-2:
            ``c_attn``; Llama/Qwen: ``q_proj``, ``v_proj``).
    """

    path: Path
    lora_rank: int = 0
    lora_alpha: float = 16.0
    lora_dropout: float = 0.0
    lora_targets: tuple[str, ...] | None = None


def parse_backbone(spec: Mapping[str, Any] | None) -> LLMOptions | None:
    """``LLMOptions`` of ``model.backbone``, or None for the preset's own transformer; ``ConfigError`` naming
    the key otherwise. Checks only the local file system: nothing is imported or downloaded."""
    if spec is None:
        return None
    if not isinstance(spec, Mapping):
        raise ConfigError(f"{KEY} must be null or a mapping like {{kind: llm, path: DIR}}, got {spec!r}")
    unknown = sorted(set(spec) - set(OPTION_KEYS))
    if unknown:
        raise ConfigError(f"{KEY}: unknown keys {unknown}; known: {', '.join(OPTION_KEYS)}")
    if spec.get("kind") not in BACKBONE_KINDS:
        raise ConfigError(f"{KEY}.kind must be one of {', '.join(BACKBONE_KINDS)}, got {spec.get('kind')!r}")
    raw = spec.get("path")
    if not raw:
        raise ConfigError(f"{KEY}.path: the local folder of a Hugging Face causal language model is required")
    path = Path(str(raw)).expanduser()
    if not path.is_dir() or not (path / "config.json").is_file():
        raise ConfigError(
            f"{KEY}.path: {str(raw)!r} is not a local Hugging Face model folder (a directory holding "
            "config.json); wmlm never downloads weights: fetch them yourself, e.g. "
            "`huggingface-cli download gpt2 --local-dir DIR`, and set the path to DIR"
        )
    rank = spec.get("lora_rank", 0)
    if not isinstance(rank, int) or isinstance(rank, bool) or rank < 0:
        raise ConfigError(f"{KEY}.lora_rank must be an integer >= 0 (0: no LoRA), got {rank!r}")
    alpha, dropout = spec.get("lora_alpha", 16.0), spec.get("lora_dropout", 0.0)
    if not isinstance(alpha, (int, float)) or alpha <= 0:
        raise ConfigError(f"{KEY}.lora_alpha must be a number > 0, got {alpha!r}")
    if not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
        raise ConfigError(f"{KEY}.lora_dropout must be in [0, 1), got {dropout!r}")
    targets = spec.get("lora_targets")
    if targets is not None and (isinstance(targets, str) or not all(isinstance(t, str) for t in targets)):
        raise ConfigError(f"{KEY}.lora_targets must be a list of module names or null, got {targets!r}")
    return LLMOptions(
        path=path,
        lora_rank=rank,
        lora_alpha=float(alpha),
        lora_dropout=float(dropout),
        lora_targets=None if targets is None else tuple(targets),
    )


def _import_transformers() -> Any:
    try:
        import transformers
    except ImportError:
        raise ConfigError(f"{KEY}: kind llm needs transformers and peft: pip install 'wmlm[llm]'") from None
    return transformers


def load_language_model(path: Path) -> nn.Module:
    """The base model (no LM head) of the local checkpoint folder ``path``, in float32, never downloaded."""
    transformers = _import_transformers()
    major, minor = (int(x) for x in transformers.__version__.split(".")[:2])
    dtype = {"dtype" if (major, minor) >= (4, 56) else "torch_dtype": torch.float32}  # renamed in 4.56
    logs = transformers.utils.logging
    bars, verbosity = logs.is_progress_bar_enabled(), logs.get_verbosity()
    logs.disable_progress_bar()  # no per-tensor loading bar, no report of the LM head left out
    logs.set_verbosity_error()
    try:
        return transformers.AutoModel.from_pretrained(path, local_files_only=True, **dtype)
    except (OSError, ValueError, KeyError) as error:
        raise ConfigError(f"{KEY}.path: cannot load a language model from {str(path)!r}: {error}") from None
    finally:
        logs.set_verbosity(verbosity)
        if bars:
            logs.enable_progress_bar()


def _is_norm(module: nn.Module) -> bool:
    """LayerNorm / RMSNorm, including the model-specific classes (``Qwen2RMSNorm``, ``LlamaRMSNorm``)."""
    return isinstance(module, (nn.LayerNorm, nn.RMSNorm)) or type(module).__name__.endswith(
        ("LayerNorm", "RMSNorm")
    )


def _is_position_embedding(name: str, module: nn.Module) -> bool:
    """Learned absolute position embeddings (GPT-2 ``wpe``, OPT/BART ``embed_positions``, BERT-like)."""
    leaf = name.rsplit(".", 1)[-1]
    return isinstance(module, nn.Embedding) and (leaf == "wpe" or "position" in leaf)


class LLMBackbone(nn.Module):
    """A frozen causal LM between two projections: ``[B, P, width] -> [B, P, width]``.

    Args:
        options: the checked ``model.backbone`` (``parse_backbone``).
        preset: wmlm's width (``preset.width``, what the fusion and the heads use); its depth and heads are
            unused, ``max_steps`` becomes the LM's ``max_position_embeddings`` when that is smaller.
        past: steps per window, checked against the LM's positions.
        activation_checkpointing: the LM's own gradient checkpointing
            (``gradient_checkpointing_enable``).

    Attributes:
        input_proj: ``nn.Linear(width, hidden)``; lm: the language model (with LoRA layers when asked);
        output_proj: ``nn.Linear(hidden, width)``.
    """

    def __init__(
        self, options: LLMOptions, preset: BackbonePreset, past: int, activation_checkpointing: bool = False
    ) -> None:
        super().__init__()
        lm = load_language_model(options.path)
        config = lm.config
        hidden = int(config.hidden_size)
        positions = getattr(config, "max_position_embeddings", None)
        if positions is not None and past > positions:
            raise ConfigError(
                f"model.past={past} exceeds the language model's max_position_embeddings={positions}"
            )
        steps = preset.max_steps if positions is None else min(preset.max_steps, int(positions))
        self.preset = BackbonePreset(preset.width, preset.depth, preset.heads, preset.mlp_ratio, steps)
        self.options = options
        self.activation_checkpointing = activation_checkpointing
        self.input_proj = nn.Linear(preset.width, hidden)
        lm.requires_grad_(False)
        lm.train()  # from_pretrained returns eval mode; like any part, the LM follows WMLM's train/eval
        trainable = [m for n, m in lm.named_modules() if _is_norm(m) or _is_position_embedding(n, m)]
        if options.lora_rank > 0:
            lm = self._add_lora(lm, options)
        self.lm = lm
        self.output_proj = nn.Linear(hidden, preset.width)
        if activation_checkpointing:
            reentrant = {"use_reentrant": False}
            if hasattr(lm, "activation_checkpointing_enable"):  # transformers >= 5 (the old name warns)
                lm.activation_checkpointing_enable(activation_checkpointing_kwargs=reentrant)
            else:
                lm.gradient_checkpointing_enable(gradient_checkpointing_kwargs=reentrant)
        ids = {id(p) for m in trainable for p in m.parameters()}
        ids |= {id(p) for n, p in lm.named_parameters() if "lora_" in n}
        ids |= {id(p) for p in [*self.input_proj.parameters(), *self.output_proj.parameters()]}
        self.trainable_names = tuple(n for n, p in self.named_parameters() if id(p) in ids)
        self.requires_grad_(True)

    @staticmethod
    def _add_lora(lm: nn.Module, options: LLMOptions) -> nn.Module:
        """``lm`` with LoRA layers injected in place (no ``PeftModel`` wrapper: state-dict keys stay short)."""
        _import_transformers()
        try:
            from peft import LoraConfig, inject_adapter_in_model
        except ImportError:
            raise ConfigError(f"{KEY}.lora_rank > 0 needs peft: pip install 'wmlm[llm]'") from None
        targets = None if options.lora_targets is None else list(options.lora_targets)
        if targets is None:
            from peft.utils import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING as DEFAULTS

            targets = DEFAULTS.get(lm.config.model_type)
            if targets is None:
                raise ConfigError(
                    f"{KEY}.lora_targets: peft has no default for model type {lm.config.model_type!r}; "
                    "name the modules (e.g. [q_proj, v_proj])"
                )
        config = LoraConfig(
            r=options.lora_rank,
            lora_alpha=options.lora_alpha,
            lora_dropout=options.lora_dropout,
            target_modules=targets,
            fan_in_fan_out=lm.config.model_type == "gpt2",  # GPT-2's Conv1D stores weights transposed
        )
        try:
            return inject_adapter_in_model(config, lm)
        except ValueError as error:
            raise ConfigError(f"{KEY}.lora_targets: {error}") from None

    def requires_grad_(self, requires_grad: bool = True) -> LLMBackbone:
        """Toggle only the trainable set (projections, norms, positions, LoRA); the rest stays frozen."""
        wanted = set(self.trainable_names)
        for name, parameter in self.named_parameters():
            parameter.requires_grad_(requires_grad and name in wanted)
        return self

    def check_steps(self, steps: int) -> None:
        """``ValueError`` when a window of ``steps`` steps is longer than the LM's positions."""
        if steps > self.preset.max_steps:
            raise ValueError(f"backbone: {steps} steps exceed the language model's {self.preset.max_steps}")

    def forward(self, x: Tensor) -> Tensor:
        """``x``: ``[B, P, width]`` fused steps -> ``[B, P, width]``, causal over steps (the LM's own mask)."""
        self.check_steps(x.shape[1])
        out = self.lm(inputs_embeds=self.input_proj(x), use_cache=False, return_dict=True)
        return self.output_proj(out.last_hidden_state)
