"""Figures from metrics files: matplotlib's Agg canvas, no display and no pyplot global state.

Figures are drawn from the JSON a command wrote, never from models, so an experiment re-plots without scoring
again (model soups' plotting scripts read the results files the same way). `plot_curves` is the one
"accuracy vs x with bootstrap bands" drawing; figure-specific functions (`plot_lmc` for WARM Figs. 3-5) only
turn a metrics dict into panels of series.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Sequence, TypedDict

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from warm.errors import WarmError
from warm.fileio import atomic_file


class Series(TypedDict, total=False):
    """One curve: `label`, `x`, `y` (None for a missing point), optional band `lo`/`hi`, and `style`
    (matplotlib line keyword arguments, e.g. {"linestyle": "--", "marker": "o"})."""

    label: str
    x: Sequence[float]
    y: Sequence[float | None]
    lo: Sequence[float | None]
    hi: Sequence[float | None]
    style: dict[str, Any]


def _values(values: Sequence[float | None]) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in values], dtype=np.float64)


def draw_series(ax, series: Series) -> None:
    """Draw one series on `ax`; its band (when given) is shaded in the line's colour."""
    x, y = _values(series["x"]), _values(series["y"])
    if x.shape != y.shape:
        raise WarmError(f"series {series.get('label')!r}: {x.size} x values but {y.size} y values")
    (line,) = ax.plot(x, y, label=series.get("label"), **series.get("style", {}))
    if series.get("lo") is not None and series.get("hi") is not None:
        ax.fill_between(x, _values(series["lo"]), _values(series["hi"]), color=line.get_color(), alpha=0.18,
                        linewidth=0)


def plot_curves(panels: dict[str, list[Series]], xlabel: str, ylabel: str, path: str | os.PathLike, *,
                title: str | None = None, ncols: int = 3) -> Path:
    """One panel per key (the key is the panel's title), each with its series and a legend; saved to `path`."""
    if not panels:
        raise WarmError("nothing to plot: no panels")
    ncols = max(1, min(ncols, len(panels)))
    nrows = math.ceil(len(panels) / ncols)
    fig = Figure(figsize=(4.4 * ncols, 3.6 * nrows), layout="constrained")
    FigureCanvasAgg(fig)
    axes = list(fig.subplots(nrows, ncols, squeeze=False).flat)
    for ax, (name, series_list) in zip(axes, panels.items()):
        for series in series_list:
            draw_series(ax, series)
        ax.set_title(name, fontsize=10)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        if any(s.get("label") for s in series_list):
            ax.legend(fontsize=8)
    for ax in axes[len(panels):]:  # the unused cells of the last row
        ax.set_visible(False)
    if title:
        fig.suptitle(title)
    return save_figure(fig, path)


def save_figure(fig: Figure, path: str | os.PathLike, dpi: int = 150) -> Path:
    """Save atomically: to a temporary sibling with the same suffix (matplotlib picks the format from it), then
    rename, so a re-plot never leaves a half-written image where a finished one is expected."""
    path = Path(path)
    with atomic_file(path, "wb") as handle:
        fig.savefig(handle, dpi=dpi, format=(path.suffix.lstrip(".") or "png"))
    return path


def _percent(summaries: list[dict | None], key: str) -> list[float | None]:
    return [None if not s or s.get(key) is None else 100 * s[key] for s in summaries]


def lmc_panels(lmc: dict[str, Any], subset: str | None = None) -> dict[str, list[Series]]:
    """Panels of WARM Figs. 3-5 from `lmc.json` (warm.evaluate.interpolation schema): per split, WA(λ) solid
    with its bootstrap band, ENS(λ) dashed, and Diag, the dotted chord between the end models' accuracies.
    `subset="length_adversarial"` plots that subset of each split instead of all pairs."""
    panels: dict[str, list[Series]] = {}
    for split, entry in lmc["splits"].items():
        points = [p if subset is None else p[subset] for p in entry["curves"]]
        lams = [p["lambda"] for p in entry["curves"]]
        n = points[0]["wa"]["n"]
        wa = [p["wa"] for p in points]
        panels[f"{split} (n={n})"] = [
            {"label": "WA(λ), 95% CI", "x": lams, "y": _percent(wa, "accuracy"), "lo": _percent(wa, "lo"),
             "hi": _percent(wa, "hi"), "style": {"marker": "o", "markersize": 3.5, "linestyle": "-"}},
            {"label": "ENS(λ)", "x": lams, "y": _percent([p["ens"] for p in points], "accuracy"),
             "style": {"linestyle": "--", "marker": "x", "markersize": 3.5}},
            {"label": "Diag", "x": [lams[0], lams[-1]],
             "y": [None if p["diag"] is None else 100 * p["diag"] for p in (points[0], points[-1])],
             "style": {"linestyle": ":", "color": "grey"}},
        ]
    return panels


def plot_lmc(lmc: dict[str, Any], path: str | os.PathLike, subset: str | None = None) -> Path:
    """Accuracy (%) vs λ, one panel per split (WARM Figs. 3-5), drawn from the lmc.json dict alone."""
    config = lmc.get("config", {})
    names = [Path(str(config[k])).name for k in ("model_a", "model_b") if config.get(k)]
    title = "θ(λ) = (1-λ)·θ_A + λ·θ_B" + (f",  A = {names[0]}, B = {names[1]}" if len(names) == 2 else "")
    if subset:
        title += f"  [{subset.replace('_', '-')} pairs]"
    return plot_curves(lmc_panels(lmc, subset), "λ", "pairwise accuracy (%)", path, title=title)
