"""``OnlineAdapter``: one base station's WMLM that predicts every sample as it arrives and learns from
each vehicle pass once the pass has ended and its best beams have been observed.

    from wmlm.deploy.online import OnlineAdapter, Sample
    adapter = OnlineAdapter.from_checkpoint("wmlm.ckpt", adapt="heads", buffer_windows=2048, steps_per_pass=20)
    for each 100 ms sample of the site:
        prediction = adapter.predict(Sample(index=k, pass_id=seq, inputs={"beam": power_linear_64}))
        if prediction is not None:
            serve(prediction.beams)                  # [F, k] codebook beams (1-based), best first
        adapter.observe(k - 3, best_beam_of_sample)  # the sweep's answer, a few samples late
    adapter.end_pass()                               # the vehicle left: learn from its pass

Protocol, per site (one adapter per site; each holds its own copy of the model):

- ``predict(sample)`` appends the sample to the current pass and, once the pass holds ``past`` contiguous
  samples (``index`` stepping by 1; a gap restarts the history, as ``wmlm.data.windows.run_ids`` does),
  returns the top-k beams of each of the next ``future`` samples. A sample whose ``pass_id`` differs from
  the current pass ends that pass first (as ``end_pass`` would).
- ``observe(index, beam)`` records the best beam measured at sample ``index`` of the current pass. Labels of
  a pass that has already ended are not used (counted in ``late_labels``): a pass is learned from once.
- ``end_pass()`` turns the ended pass into windows (``past`` inputs, ``future`` observed best beams, all
  inside one contiguous run), adds them to the replay buffer and runs exactly ``steps_per_pass`` optimizer
  steps on minibatches drawn from the buffer. Nothing is learned at any other time, so a window is always
  predicted before anything from it, or from later, reaches the weights.

What learns (``adapt``): ``heads`` trains the task heads only; ``heads+backbone`` also trains the fusion
projections and the causal transformer. Modality encoders are always fixed: they are the alignment space
the model was pretrained into, and a few passes of one site are too little to move them safely. Only the
beam head's loss is used (the sweep gives best beams, nothing else); with ``heads+backbone`` other heads
see a changed trunk without being retrained.

``site_prior`` (pseudo-counts, e.g. 50) also keeps ``wmlm.deploy.site_prior.SiteBeamPrior``: counts of where
this site's best beam went from each beam, learned from every window of each ended pass (with or without
optimizer steps) and blended into every prediction; the served beams and ``scores`` are then the blend's. ``site_memory`` (a
weight, e.g. 0.3) also keeps ``wmlm.deploy.site_memory.SiteMemory``: the trunk's hidden state and beam now of
every window of each ended pass with its observed future beams; the nearest kept windows vote, and their
vote is mixed into every prediction (after the prior) with that weight.

The replay buffer and the windows it holds live in ``wmlm.deploy.replay``, samples, predictions and
update reports in ``wmlm.deploy.samples``; they are re-exported here.
"""

from __future__ import annotations

import copy
import dataclasses
import time
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor

from wmlm.beams import NUM_BEAMS
from wmlm.deploy.replay import BEAM_TARGET, BufferPolicy, ReplayBuffer, Window, collate_windows
from wmlm.deploy.samples import Pass, Prediction, Sample, Step, UpdateReport, stack_steps, step_inputs
from wmlm.deploy.site_memory import SiteMemory
from wmlm.deploy.site_prior import SiteBeamPrior
from wmlm.errors import ConfigError
from wmlm.model.wmlm import WMLM

__all__ = [
    "Adapt",
    "BufferPolicy",
    "OnlineAdapter",
    "Prediction",
    "ReplayBuffer",
    "Sample",
    "UpdateReport",
    "Window",
    "collate_windows",
]

Adapt = Literal["heads", "heads+backbone"]


class OnlineAdapter:
    """A per-site WMLM that serves predictions and adapts after every vehicle pass (module docstring).

    Args:
        model: a trained ``WMLM`` with one beam head (``target_fields == {"beam": "beam_label"}``); it is
            copied, so one pretrained model can seed many sites.
        adapt: ``heads`` or ``heads+backbone`` (fusion + transformer + heads); encoders never learn.
        buffer_windows: replay-buffer capacity in windows. buffer_policy: ``fifo`` or ``reservoir``.
        steps_per_pass: optimizer steps after each ended pass (0: never learn, i.e. zero-shot serving).
        batch_size: windows per optimizer step.
        lr: AdamW learning rate, constant (a stream has no end to decay towards).
        weight_decay: AdamW weight decay (0: decay would pull pretrained weights towards zero).
        top_k: beams per future step in each ``Prediction``.
        augment: apply the model's training augmentations (e.g. ``BeamFlip``) to update batches; off by
            default, since the point is to learn this site's own geometry.
        seed: seed of buffer sampling and of dropout during updates.
        site_prior: pseudo-counts of the model's prediction in a per-site count posterior
            (``SiteBeamPrior``); None: serve the model's prediction alone. Needs a ``beam_power`` modality,
            whose last past step's strongest beam is the "beam now" the counts are kept for.
        site_memory: weight in (0, 1] of a per-site nearest-neighbour memory's vote (``SiteMemory`` with
            its defaults; replace ``adapter.memory`` for others); None: no memory. Needs a ``beam_power``
            modality, as ``site_prior`` does. Its keys are the trunk's hidden states, so it is meant for a
            trunk that does not learn (``adapt="heads"``).
    """

    def __init__(
        self,
        model: WMLM,
        adapt: Adapt = "heads",
        buffer_windows: int = 2048,
        buffer_policy: BufferPolicy = "fifo",
        steps_per_pass: int = 20,
        batch_size: int = 64,
        lr: float = 3e-4,
        weight_decay: float = 0.0,
        top_k: int = 3,
        augment: bool = False,
        seed: int = 0,
        site_prior: float | None = None,
        site_memory: float | None = None,
    ) -> None:
        if adapt not in ("heads", "heads+backbone"):
            raise ConfigError(f"online adaptation: adapt must be 'heads' or 'heads+backbone', got {adapt!r}")
        if steps_per_pass < 0 or batch_size < 1 or not 1 <= top_k <= NUM_BEAMS:
            raise ConfigError(
                f"online adaptation: need steps_per_pass >= 0, batch_size >= 1, 1 <= top_k <= {NUM_BEAMS}; "
                f"got {steps_per_pass}, {batch_size}, {top_k}"
            )
        # what ``save`` records to rebuild this adapter (``wmlm.deploy.adapter_state``)
        self.options: dict[str, Any] = {
            "adapt": adapt, "buffer_windows": buffer_windows, "buffer_policy": buffer_policy,
            "steps_per_pass": steps_per_pass, "batch_size": batch_size, "lr": lr, "weight_decay": weight_decay,
            "top_k": top_k, "augment": augment, "seed": seed, "site_prior": site_prior, "site_memory": site_memory,
        }  # fmt: skip
        self.model = copy.deepcopy(model).cpu().eval()
        self.head_name = _beam_head(self.model)
        self.adapt, self.steps_per_pass, self.batch_size = adapt, steps_per_pass, batch_size
        self.top_k, self.augment = top_k, augment
        self.past, self.future = self.model.past, self.model.future
        self.buffer = ReplayBuffer(buffer_windows, buffer_policy, seed)
        self.model.requires_grad_(False)
        self.trained = (
            [self.model.heads]
            if adapt == "heads"
            else [self.model.heads, self.model.fusion, self.model.backbone]
        )
        for module in self.trained:
            module.requires_grad_(True)
        params = [p for module in self.trained for p in module.parameters()]
        self.optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
        self.generator = torch.Generator().manual_seed(seed)
        self.passes_ended = 0
        self.late_labels = 0  # labels that arrived after their pass ended (unused)
        self.updates: list[UpdateReport] = []
        self._pass: Pass | None = None
        self.prior = SiteBeamPrior(self.future, site_prior) if site_prior is not None else None
        self.memory = SiteMemory(self.future, weight=site_memory) if site_memory is not None else None
        self._power = (
            _power_modality(self.model) if self.prior is not None or self.memory is not None else None
        )

    @classmethod
    def from_checkpoint(cls, checkpoint: str | Path, **options: Any) -> OnlineAdapter:
        """An adapter for a Lightning checkpoint of a ``WMLM``, read safely by
        ``wmlm.deploy.export.load_model`` (local file, ``weights_only``, classes checked)."""
        from wmlm.deploy.export import load_model

        return cls(load_model(checkpoint), **options)

    def save(self, folder: str | Path, overwrite: bool = True) -> Path:
        """Write what this adapter learned to ``folder`` (safetensors + JSON, no pickle;
        ``wmlm.deploy.adapter_state``); no pass may be in progress."""
        from wmlm.deploy.adapter_state import save_adapter

        return save_adapter(self, folder, overwrite)

    @classmethod
    def load(cls, folder: str | Path, model: WMLM) -> OnlineAdapter:
        """The adapter ``save`` wrote to ``folder``, around ``model`` (the pretrained WMLM it started from)."""
        from wmlm.deploy.adapter_state import load_adapter

        return load_adapter(folder, model, cls)

    # ------------------------------------------------------------------------------------ serving
    def predict(self, sample: Sample) -> Prediction | None:
        """Record ``sample`` and predict the next ``future`` samples' beams; None until the current run of
        the pass holds ``past`` contiguous samples."""
        if self._pass is not None and sample.pass_id != self._pass.pass_id:
            self.end_pass()
        current = self._pass if self._pass is not None else Pass(sample.pass_id)
        self._pass = current
        previous = current.steps[-1] if current.steps else None
        if previous is not None and sample.index <= previous.index:
            raise ValueError(
                f"online adaptation: sample index {sample.index} after {previous.index}; samples must arrive in "
                "increasing index order"
            )
        run = 0 if previous is None else previous.run + (sample.index != previous.index + 1)
        step = Step(sample.index, *step_inputs(self.model.modality_specs, sample.inputs), run=run)
        current.steps.append(step)
        current.by_index[step.index] = step
        history = current.steps[-self.past :]
        if len(history) < self.past or history[0].run != run:
            return None
        batch = stack_steps(history)
        with torch.inference_mode():
            hidden = self.model.backbone(self.model.fuse(self.model.embed(batch), batch["mask"]))  # [1, P, D]
            scores = self.model.heads[self.head_name](hidden, batch)[0]  # [F, 64]
        now = self._beam_now(step)
        if now is not None and (self.prior is not None or self.memory is not None):
            probabilities = scores.softmax(-1)
            if self.prior is not None:
                probabilities = self.prior.posterior(now, probabilities)
            if self.memory is not None:
                key = self.memory.key(hidden[:, -1], torch.tensor([now]))[0]
                probabilities = self.memory.blend(key, probabilities)
            scores = probabilities.log()
        beams = scores.topk(self.top_k, dim=-1).indices + 1
        return Prediction(step.index, beams, scores)

    def observe(self, index: int, beam: int) -> None:
        """Record the best beam (1-based codebook number) measured at sample ``index`` of the current pass."""
        if not 1 <= beam <= NUM_BEAMS:
            raise ValueError(f"online adaptation: beam {beam} is outside 1..{NUM_BEAMS}")
        step = self._pass.by_index.get(index) if self._pass is not None else None
        if step is None:
            latest = self._pass.steps[-1].index if self._pass is not None and self._pass.steps else None
            if latest is not None and index > latest:
                raise ValueError(f"online adaptation: label for sample {index}, which has not arrived yet")
            self.late_labels += 1  # its pass has ended (or it was never seen): a pass is learned once
            return
        step.beam = beam - 1

    # ------------------------------------------------------------------------------------ learning
    def end_pass(self) -> UpdateReport:
        """End the current pass: add its complete windows to the buffer, then take ``steps_per_pass``
        optimizer steps (none while the buffer is empty)."""
        started = time.perf_counter()
        ended, self._pass = self._pass, None
        windows = self._windows(ended) if ended is not None else []
        if windows and self._keeps_hidden:
            windows = self._with_hidden(windows)
        for window in windows:
            self.buffer.add(window)
        if self.prior is not None and ended is not None:
            self._count(ended)
        if self.memory is not None and windows:
            self._remember(ended, windows)  # type: ignore[arg-type]
        losses = [self._step() for _ in range(self.steps_per_pass if len(self.buffer) else 0)]
        report = UpdateReport(
            self.passes_ended,
            len(windows),
            len(self.buffer),
            len(losses),
            time.perf_counter() - started,
            float(np.mean(losses)) if losses else None,
        )
        self.passes_ended += 1
        self.updates.append(report)
        return report

    def _learnable(self, ended: Pass) -> list[list[Step]]:
        """The ``past + future`` steps of every window of ``ended`` inside one run, all futures observed."""
        steps, span = ended.steps, self.past + self.future
        chunks = [steps[first : first + span] for first in range(len(steps) - span + 1)]
        return [
            c for c in chunks if c[0].run == c[-1].run and all(s.beam is not None for s in c[self.past :])
        ]

    def _windows(self, ended: Pass) -> list[Window]:
        windows = []
        for chunk in self._learnable(ended):
            batch = stack_steps(chunk[: self.past])
            windows.append(
                Window(
                    {m: batch[m][0] for m in self.model.modality_specs},
                    {m: batch["mask"][m][0] for m in self.model.modality_specs},
                    torch.tensor([s.beam for s in chunk[self.past :]], dtype=torch.int64),
                    chunk[self.past - 1].index,
                    self.passes_ended,
                )
            )
        return windows

    def _beam_now(self, step: Step) -> int | None:
        """The strongest beam (0-based) of ``step``'s sweep; None without a prior or a sweep."""
        if self._power is None or not step.mask[self._power]:
            return None
        return int(step.inputs[self._power].argmax())

    def _count(self, ended: Pass) -> None:
        for chunk in self._learnable(ended):  # the windows the buffer gets
            now = self._beam_now(chunk[self.past - 1])
            if now is not None:
                self.prior.add(now, torch.tensor([s.beam for s in chunk[self.past :]]))  # type: ignore[union-attr]

    def _remember(self, ended: Pass, windows: list[Window]) -> None:
        """Add the ended pass's windows (those with a sweep at their last past step) to the memory."""
        nows = [self._beam_now(chunk[self.past - 1]) for chunk in self._learnable(ended)]  # windows' order
        kept = [(w, now) for w, now in zip(windows, nows) if now is not None]
        if not kept:
            return
        if all(w.hidden is not None for w, _ in kept):
            hidden = torch.stack([w.hidden for w, _ in kept])  # type: ignore[misc]
        else:
            hidden = self._hidden([w for w, _ in kept])
        keys = self.memory.key(hidden[:, -1], torch.tensor([now for _, now in kept]))  # type: ignore[union-attr]
        self.memory.add(keys, torch.stack([w.target for w, _ in kept]))  # type: ignore[union-attr]

    @property
    def _keeps_hidden(self) -> bool:
        # augmentations change the inputs of every replay, so their hidden states cannot be kept; without
        # steps (zero-shot serving) nothing is ever replayed, so a trunk pass per window would be wasted
        return (
            self.adapt == "heads"
            and self.steps_per_pass > 0
            and not (self.augment and self.model.augmentations)
        )

    def _hidden(self, windows: list[Window]) -> Tensor:
        """The trunk's hidden states ``[N, P, width]`` of ``N`` windows, as it is now."""
        batch = collate_windows(windows)
        with torch.no_grad():
            return self.model.backbone(self.model.fuse(self.model.embed(batch), batch["mask"]))

    def _with_hidden(self, windows: list[Window]) -> list[Window]:
        return [dataclasses.replace(w, hidden=h) for w, h in zip(windows, self._hidden(windows))]

    def _step(self) -> float:
        windows = self.buffer.sample(self.batch_size)
        batch = collate_windows(windows)
        if self.augment:
            for augmentation in self.model.augmentations:
                batch = augmentation(batch)
        for module in self.trained:
            module.train()  # dropout in what learns; fixed parts stay deterministic
        try:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(int(torch.randint(0, 2**31 - 1, (1,), generator=self.generator)))
                kept = [w.hidden for w in windows if w.hidden is not None]
                if len(kept) == len(windows):
                    hidden = torch.stack(kept)
                    outputs = self.model.heads[self.head_name](hidden, batch)
                else:
                    outputs = self._forward_for_update(batch)
                loss = self.model.heads[self.head_name].loss(outputs, batch)
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(self.optimizer.param_groups[0]["params"], 1.0)
                self.optimizer.step()
        finally:
            self.model.eval()
        return float(loss.detach())

    def _forward_for_update(self, batch: dict[str, Any]) -> Tensor:
        # fixed parts run without autograd: the encoders always, the trunk too when only heads learn
        with torch.no_grad():
            embeddings = self.model.embed(batch)
            if self.adapt == "heads":
                hidden = self.model.backbone(self.model.fuse(embeddings, batch["mask"]))
        if self.adapt != "heads":
            hidden = self.model.backbone(self.model.fuse(embeddings, batch["mask"]))
        return self.model.heads[self.head_name](hidden, batch)


def _power_modality(model: WMLM) -> str:
    """The name of the model's modality that reads beam power (``field == "beam_power"``)."""
    names = [n for n, m in model.modality_specs.items() if m.field == "beam_power"]
    if not names:
        raise ConfigError(
            f"online adaptation: site_prior needs a beam-power modality; the model's are {list(model.modality_specs)}"
        )
    return names[0]


def _beam_head(model: WMLM) -> str:
    """The name of the model's one head that predicts best beams."""
    names = [n for n, h in model.heads.items() if dict(h.target_fields) == {BEAM_TARGET: "beam_label"}]
    if len(names) != 1:
        raise ConfigError(
            f"online adaptation needs exactly one beam head (target 'beam_label'); the model's heads are "
            f"{list(model.heads)}"
        )
    return names[0]
