"""Prequential ("test, then train") evaluation of an ``OnlineAdapter`` on one site's sample stream.

    from wmlm.deploy.prequential import prequential_evaluate, scenario_stream
    result = prequential_evaluate(adapter, scenario_stream(scenario, {"beam": "beam_power"}))
    result.summary()  # {"windows", "top1": [t+1..t+F], "top3": [...], "dba", "update_s_per_pass", ...}
    result.running_accuracy(3)  # [passes] top-3 over the windows of the passes so far, after each pass

Time runs sample by sample. At each sample the adapter predicts from what has arrived so far; the best beam
measured at sample ``t`` is handed to ``observe`` ``label_delay`` samples later (the sweep's answer comes a
few samples late); once a pass's last sample has arrived, its remaining labels are delivered and
``end_pass`` learns from it. A window (the prediction made at sample ``t`` for samples ``t+1 .. t+F``) is
scored with the scores returned at ``t``, i.e. before anything from that window, or from later, was
learned; every window of the site counts, the first pass's included. Windows are those the offline data
module would make: ``past`` inputs and ``future`` labelled targets inside one contiguous run of one pass.
"""

from __future__ import annotations

import itertools
import time
from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from wmlm.beams import PREDICTED_TOP_K
from wmlm.data.deepsense import ScenarioData
from wmlm.deploy.online import OnlineAdapter, Sample
from wmlm.metrics import BeamTopK, DistanceBasedAccuracy

DEFAULT_LABEL_DELAY = 3  # samples between a sweep and its best beam reaching the adapter
SAMPLE_RATE_HZ = 10.0  # DeepSense 6G: one sample every 100 ms


@dataclass(frozen=True)
class LabelledSample:
    """A sample and the best beam measured at it (1-based), which the evaluator holds back.

    Only ``sample`` ever reaches ``predict``; ``beam`` reaches the adapter through ``observe``, later.
    """

    sample: Sample
    beam: int


def scenario_stream(
    scenarios: ScenarioData | Sequence[ScenarioData], inputs: Mapping[str, str]
) -> Iterator[LabelledSample]:
    """The rows of loaded scenarios of one site, in file order, one scenario after the other, as a stream.

    Scenarios of one site (e.g. DeepSense 1 and 2, one base station) continue one stream: pass ids are
    renumbered ``0, 1, ...`` in order of appearance and indices are shifted to keep increasing, with a gap
    between scenarios so that no window spans two of them.

    Args:
        scenarios: e.g. from ``wmlm.data.cache.load_scenarios`` with the input fields and ``beam_label``.
        inputs: ``{modality: field}``, e.g. ``model.data_fields()["inputs"]``.
    """
    passes: dict[tuple[int, int], int] = {}
    offset = 0
    for number, scenario in enumerate([scenarios] if isinstance(scenarios, ScenarioData) else scenarios):
        labels = scenario.fields["beam_label"]
        shift = offset - int(scenario.index.min()) if len(scenario) else 0
        for row in range(len(scenario)):
            values = {name: scenario.fields[f][row] for name, f in inputs.items()}
            pass_id = passes.setdefault((number, int(scenario.sequence[row])), len(passes))
            sample = Sample(int(scenario.index[row]) + shift, pass_id, values)
            yield LabelledSample(sample, int(labels[row]) + 1)
        offset += (int(scenario.index.max()) - int(scenario.index.min()) + 2) if len(scenario) else 0


@dataclass
class PrequentialResult:
    """Scores of every window of one site, in the order they were predicted.

    Attributes:
        scores: ``[W, F, 64]`` logits returned at prediction time. targets: ``[W, F]`` best beams, 0-based.
        pass_number: ``[W]`` how many passes had been learned from when the window was predicted.
        first_pass: ``adapter.passes_ended`` when the evaluation started (0 for a fresh adapter), so that
            ``pass_number - first_pass`` is the 0-based pass of this stream a window belongs to.
        update_seconds, pass_seconds: per ended pass, wall time of ``end_pass`` and the pass's duration in
            real time (samples / ``sample_rate_hz``). predict_seconds: wall time of each ``predict`` call.
    """

    scores: torch.Tensor
    targets: torch.Tensor
    pass_number: np.ndarray
    first_pass: int = 0
    update_seconds: list[float] = field(default_factory=list)
    pass_seconds: list[float] = field(default_factory=list)
    predict_seconds: list[float] = field(default_factory=list)

    def accuracy(self, k: int, step: int | None = None) -> float:
        """Top-``k`` accuracy over all windows (``step``: one 0-based future step; None: all steps)."""
        metric = BeamTopK(k, step)
        metric.update(self.scores, self.targets)
        return float(metric.compute())

    def by_pass(self, k: int) -> list[tuple[int, int, float]]:
        """``(passes learned from, windows, top-k over all steps)`` for each pass, in order."""
        top = self.scores.topk(k, dim=-1).indices
        hits = (top == self.targets[..., None]).any(-1).float().mean(-1).numpy()  # [W]
        return [
            (int(n), int((self.pass_number == n).sum()), float(hits[self.pass_number == n].mean()))
            for n in np.unique(self.pass_number)
        ]

    def running_windows(self) -> np.ndarray:
        """``[P] int64``: windows scored in this stream's passes ``0 .. n``, for each ended pass ``n``
        (``P = len(pass_seconds)``; a pass too short for a window adds none)."""
        passes = len(self.pass_seconds)
        return np.cumsum(np.bincount(self.pass_number - self.first_pass, minlength=passes)[:passes])

    def running_accuracy(self, k: int) -> np.ndarray:
        """``[P] float64``: for each ended pass ``n`` (0-based), the top-``k`` accuracy (share of hits over
        all future steps) of every window predicted in passes ``0 .. n``, i.e. what an operator would have
        measured at the site after ``n + 1`` passes; NaN while no window has been scored yet.

        One value per ended pass, and the last equals ``accuracy(k)``: the curve ends at the prequential
        accuracy over the whole stream."""
        passes = len(self.pass_seconds)
        if not len(self.targets):
            return np.full(passes, np.nan)
        top = self.scores.topk(k, dim=-1).indices  # [W, F, k]
        hits = (top == self.targets[..., None]).any(-1).sum(-1).double().numpy()  # [W] hits out of F
        relative = self.pass_number - self.first_pass
        running_hits = np.cumsum(np.bincount(relative, weights=hits, minlength=passes)[:passes])
        steps = self.running_windows() * self.targets.shape[1]
        with np.errstate(invalid="ignore", divide="ignore"):  # 0 / 0 before the first window: NaN
            return np.where(steps > 0, running_hits / steps, np.nan)

    def summary(self) -> dict[str, object]:
        """Top-1/top-3 per future step, DBA, and the time budget: seconds of update per pass against the
        passes' real-time duration, and prediction latency."""
        steps = self.targets.shape[1] if len(self.targets) else 0
        dba = DistanceBasedAccuracy(max_k=PREDICTED_TOP_K)
        if len(self.targets):
            dba.update(self.scores, self.targets)
        predict_ms = 1e3 * np.asarray(self.predict_seconds or [0.0])
        return {
            "windows": int(len(self.targets)),
            "passes": len(self.update_seconds),
            "top1": [self.accuracy(1, s) for s in range(steps)],
            "top3": [self.accuracy(3, s) for s in range(steps)],
            "dba": float(dba.compute()),
            "update_s_per_pass": float(np.mean(self.update_seconds)) if self.update_seconds else 0.0,
            "update_s_max": float(np.max(self.update_seconds)) if self.update_seconds else 0.0,
            "pass_s_mean": float(np.mean(self.pass_seconds)) if self.pass_seconds else 0.0,
            # share of passes whose update took longer than the pass lasted (0: real time everywhere)
            "passes_over_budget": float(
                np.mean(np.asarray(self.update_seconds) > np.asarray(self.pass_seconds))
            )
            if self.update_seconds
            else 0.0,
            "predict_ms_median": float(np.median(predict_ms)),
            "predict_ms_p95": float(np.percentile(predict_ms, 95)),
        }


def prequential_evaluate(
    adapter: OnlineAdapter,
    stream: Iterable[LabelledSample],
    label_delay: int = DEFAULT_LABEL_DELAY,
    sample_rate_hz: float = SAMPLE_RATE_HZ,
) -> PrequentialResult:
    """Run one site's ``stream`` through ``adapter`` test-then-train (module docstring).

    Args:
        adapter: a fresh adapter for the site (it is updated in place).
        stream: the site's samples in time order; passes are runs of one ``pass_id``.
        label_delay: samples between sample ``t`` arriving and its best beam being observed (>= 0).
        sample_rate_hz: samples per second, for the passes' real-time duration.
    """
    if label_delay < 0:
        raise ValueError(f"prequential evaluation: label_delay must be >= 0 samples, got {label_delay}")
    future = adapter.future
    scores, targets, passes = [], [], []
    result = PrequentialResult(torch.zeros(0), torch.zeros(0), np.zeros(0), first_pass=adapter.passes_ended)
    for _, items in itertools.groupby(stream, key=lambda item: item.sample.pass_id):
        predicted: dict[int, torch.Tensor] = {}
        labels: dict[int, int] = {}
        pending: deque[tuple[int, int]] = deque()
        count = 0
        for item in items:
            count += 1
            started = time.perf_counter()
            prediction = adapter.predict(item.sample)
            result.predict_seconds.append(time.perf_counter() - started)
            if prediction is not None:
                predicted[prediction.index] = prediction.scores
            labels[item.sample.index] = item.beam - 1
            pending.append((item.sample.index, item.beam))
            while pending and pending[0][0] <= item.sample.index - label_delay:
                adapter.observe(*pending.popleft())
        while pending:  # the pass is over; its last sweeps are answered before the update
            adapter.observe(*pending.popleft())
        for index, window_scores in predicted.items():
            following = [labels.get(index + j + 1) for j in range(future)]
            if all(beam is not None for beam in following):
                scores.append(window_scores)
                targets.append(torch.tensor(following, dtype=torch.int64))
                passes.append(adapter.passes_ended)
        result.update_seconds.append(adapter.end_pass().seconds)
        result.pass_seconds.append(count / sample_rate_hz)
    result.scores = torch.stack(scores) if scores else torch.zeros(0, future, 64)
    result.targets = torch.stack(targets) if targets else torch.zeros(0, future, dtype=torch.int64)
    result.pass_number = np.asarray(passes, dtype=np.int64)
    return result
