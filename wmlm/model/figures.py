"""Pictures of beam predictions: pure functions from numpy arrays to matplotlib figures, images and PNGs.

Shared inputs (all numpy, one row per window of ``past`` input and ``future`` target steps):

- ``true_beams [N, F] int``: the optimal beam of each future step, 0-based (``batch["target"]["beam"]``).
- ``pred_topk [N, F, K] int``: the K best-ranked beams of each future step, 0-based, best first.
- ``pass_ids [N] int``: the vehicle pass of each window (``pass_ids_from_index``), windows of a pass in
  time order.

Figures show beams 1-based (1..64), as in the DeepSense files. matplotlib is imported inside the functions and
draws on its non-interactive Agg canvas without pyplot (the global backend, e.g. a notebook's, is left
alone), so no display is needed.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from wmlm.beams import NUM_BEAMS

if TYPE_CHECKING:
    from matplotlib.figure import Figure

TOP_KS = (1, 3, 5)
FIGURE_NAMES = ("tracks", "topk", "offsets")


def _figure(width_in: float, height_in: float, dpi: int) -> Figure:
    """A new figure on its own Agg canvas: no pyplot, no global backend switch, nothing to close."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    # fixed margins: a layout engine (constrained, tight) would double the drawing time
    fig = Figure(figsize=(width_in, height_in), dpi=dpi)
    FigureCanvasAgg(fig)
    return fig


def _check(true_beams: np.ndarray, pred_topk: np.ndarray) -> None:
    if true_beams.ndim != 2 or pred_topk.ndim != 3 or pred_topk.shape[:2] != true_beams.shape:
        raise ValueError(
            f"expected true_beams [N, F] and pred_topk [N, F, K], got {true_beams.shape} and {pred_topk.shape}"
        )


def pass_ids_from_index(scenario_id: np.ndarray, index: np.ndarray) -> np.ndarray:
    """``[N]`` vehicle pass of each window, from windows in loader order.

    A pass is a run of windows of one scenario whose ``index`` (CSV index of the last past row ``[N]``)
    grows by one from window to window. Windows never cross a sequence, so consecutive windows of two
    passes are at least ``past + future`` rows apart and start a new run.
    """
    scenario_id, index = np.asarray(scenario_id), np.asarray(index)
    new = np.ones(len(index), dtype=bool)
    new[1:] = (scenario_id[1:] != scenario_id[:-1]) | (index[1:] != index[:-1] + 1)
    return np.cumsum(new) - 1


def topk_accuracy(true_beams: np.ndarray, pred_topk: np.ndarray, ks: Sequence[int] = TOP_KS) -> np.ndarray:
    """``[len(ks), F]`` share of windows whose true beam is among the k best-ranked, per future step."""
    _check(true_beams, pred_topk)
    hits = pred_topk == true_beams[..., None]  # [N, F, K]
    return (
        np.stack([hits[..., :k].any(axis=-1).mean(axis=0) for k in ks])
        if len(true_beams)
        else np.zeros((len(ks), true_beams.shape[1]))
    )


def beam_offsets(true_beams: np.ndarray, pred_topk: np.ndarray) -> np.ndarray:
    """``[N, F]`` predicted top-1 beam minus true beam, in beams (positive: predicted too high)."""
    _check(true_beams, pred_topk)
    return pred_topk[..., 0].astype(np.int64) - true_beams.astype(np.int64)


def _chosen_passes(pass_ids: np.ndarray, max_passes: int) -> list[int]:
    """The ``max_passes`` passes with the most windows (ties: earliest), in order of first appearance."""
    ids, first, counts = np.unique(pass_ids, return_index=True, return_counts=True)
    order = np.lexsort((first, -counts))[:max_passes]
    return [int(i) for i in ids[order[np.argsort(first[order])]]]


def plot_beam_tracks(
    true_beams: np.ndarray,
    pred_topk: np.ndarray,
    pass_ids: np.ndarray,
    max_passes: int = 4,
    dpi: int = 80,
) -> Figure:
    """True best beam over time with the predicted top-1 beams of a few vehicle passes, end to end.

    Window ``j`` of a pass predicts sample ``j + s`` for future step ``t+s``; every prediction is drawn
    at the sample it predicts, so markers on the line are hits. x: sample index within the pass (the
    first predicted sample is 1), passes side by side between dashed lines; y: beam 1..64. Markers:
    ``t+1`` and, when F > 1, ``t+F``. The passes with the most windows are drawn (one axis: a panel per
    pass would cost four times the drawing time).
    """
    _check(true_beams, pred_topk)
    passes = _chosen_passes(np.asarray(pass_ids), max_passes) if len(true_beams) else []
    future = true_beams.shape[1]
    fig = _figure(7.0, 2.8, dpi)
    fig.subplots_adjust(left=0.08, right=0.98, bottom=0.16, top=0.8)
    ax = fig.subplots()
    start, ticks, tick_labels = 0, [], []
    for n, pass_id in enumerate(passes):
        rows = np.flatnonzero(pass_ids == pass_id)
        truth, pred = true_beams[rows], pred_topk[rows, :, 0]
        j = np.arange(len(rows))
        # truth of sample j+1 is window j's first target; the last window also gives j+2 .. j+F
        x_true = start + np.concatenate([j + 1, len(rows) + np.arange(1, future)])
        y_true = np.concatenate([truth[:, 0], truth[-1, 1:]]) + 1
        first = n == 0
        ax.plot(x_true, y_true, "-", color="black", lw=1.5, label="true beam" if first else None)
        ax.plot(
            start + j + 1, pred[:, 0] + 1, "o", ms=3, color="tab:blue", label="top-1, t+1" if first else None
        )
        if future > 1:
            label = f"top-1, t+{future}" if first else None
            ax.plot(start + j + future, pred[:, -1] + 1, "x", ms=3, color="tab:orange", label=label)
        ax.text(start + 1, NUM_BEAMS + 3, f"pass {pass_id}", fontsize=7, va="bottom")
        length = len(rows) + future - 1
        step = max(5 * round(length / 25), 5)
        ticks += [start + t for t in range(1, length + 1, step)]
        tick_labels += [str(t) for t in range(1, length + 1, step)]
        start += length + 2
        if n < len(passes) - 1:
            ax.axvline(start, color="gray", ls="--", lw=0.8)
    ax.set_xlim(0, max(start, 2))
    ax.set_xticks(ticks, tick_labels)
    ax.set_ylim(0.5, NUM_BEAMS + 0.5)
    ax.set_yticks([1, 16, 32, 48, 64])
    ax.set_ylabel("beam")
    ax.set_xlabel("sample within the pass")
    ax.grid(alpha=0.3)
    if passes:
        fig.legend(loc="upper center", ncols=3, fontsize=7, frameon=False)
    else:
        ax.text(0.5, 0.5, "no windows", ha="center", va="center", transform=ax.transAxes)
    return fig


def plot_topk_per_step(
    true_beams: np.ndarray, pred_topk: np.ndarray, ks: Sequence[int] = TOP_KS, dpi: int = 80
) -> Figure:
    """Grouped bars: top-k accuracy (k in ``ks``, at most K) for each future step ``t+1 .. t+F``."""
    ks = [k for k in ks if k <= pred_topk.shape[-1]]
    accuracy = topk_accuracy(true_beams, pred_topk, ks)  # [len(ks), F]
    future = true_beams.shape[1]
    fig = _figure(5.0, 3.2, dpi)
    fig.subplots_adjust(left=0.13, right=0.97, bottom=0.1, top=0.9)
    ax = fig.subplots()
    width = 0.8 / max(len(ks), 1)
    steps = np.arange(future)
    for i, k in enumerate(ks):
        bars = ax.bar(steps + (i - (len(ks) - 1) / 2) * width, accuracy[i], width, label=f"top-{k}")
        ax.bar_label(bars, fmt="%.2f", fontsize=7)
    ax.set_xticks(steps, [f"t+{s + 1}" for s in steps])
    ax.set_ylim(0, 1.2)
    ax.set_yticks(np.linspace(0, 1, 6))
    ax.set_ylabel("accuracy")
    ax.set_title(f"top-k accuracy per future step ({len(true_beams)} windows)", fontsize=9)
    ax.legend(fontsize=7, loc="upper center", ncols=len(ks), frameon=False)
    ax.grid(axis="y", alpha=0.3)
    return fig


def plot_offset_histogram(
    true_beams: np.ndarray, pred_topk: np.ndarray, max_offset: int = 8, dpi: int = 80
) -> Figure:
    """Share of windows per beam offset (predicted top-1 minus true), one line per future step.

    Offsets beyond ``±max_offset`` are counted in the outermost bins.
    """
    offsets = np.clip(beam_offsets(true_beams, pred_topk), -max_offset, max_offset)
    bins = np.arange(-max_offset, max_offset + 1)
    fig = _figure(5.0, 3.2, dpi)
    fig.subplots_adjust(left=0.13, right=0.97, bottom=0.15, top=0.9)
    ax = fig.subplots()
    for s in range(offsets.shape[1]):
        counts = np.array([(offsets[:, s] == b).sum() for b in bins]) / max(len(offsets), 1)
        ax.plot(bins, counts, "o-", ms=3, label=f"t+{s + 1}")
    ax.set_xticks(
        bins[::2],
        [f"≤{b}" if b == -max_offset else f"≥{b}" if b == max_offset else str(b) for b in bins[::2]],
    )
    ax.set_xlabel("predicted top-1 − true beam")
    ax.set_ylabel("share of windows")
    ax.set_title("beam offset of the top-1 prediction", fontsize=9)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    return fig


def beam_figures(
    true_beams: np.ndarray,
    pred_topk: np.ndarray,
    pass_ids: np.ndarray,
    max_passes: int = 4,
    dpi: int = 80,
) -> dict[str, Figure]:
    """``{name: figure}`` for the names in ``FIGURE_NAMES``: beam tracks, top-k per step, offsets."""
    return {
        "tracks": plot_beam_tracks(true_beams, pred_topk, pass_ids, max_passes, dpi),
        "topk": plot_topk_per_step(true_beams, pred_topk, dpi=dpi),
        "offsets": plot_offset_histogram(true_beams, pred_topk, dpi=dpi),
    }


def figure_to_image(fig: Figure) -> np.ndarray:
    """``[H, W, 3] uint8`` RGB pixels of a figure (``add_image(..., dataformats="HWC")``)."""
    fig.canvas.draw()
    return np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()


def write_beam_figures(
    out_dir: str | Path,
    true_beams: np.ndarray,
    pred_topk: np.ndarray,
    pass_ids: np.ndarray,
    prefix: str = "beam",
    max_passes: int = 4,
    dpi: int = 100,
) -> list[Path]:
    """Write ``<prefix>_tracks.png``, ``<prefix>_topk.png``, ``<prefix>_offsets.png`` into ``out_dir``.

    The folder is created if needed; the same arrays give the same bytes. Returns the paths written.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, fig in beam_figures(true_beams, pred_topk, pass_ids, max_passes, dpi).items():
        path = out / f"{prefix}_{name}.png"
        fig.savefig(path, dpi=dpi, metadata={"Software": None})
        paths.append(path)
    return paths
