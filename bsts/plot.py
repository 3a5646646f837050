"""Plots of fits, forecasts, components, residuals and chains (matplotlib).

Every function draws on the `ax=` (or `axes=`) it is given, or on a new figure, and
returns what it drew on: Axes for a single panel, a Figure for several.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from bsts import _arviz
from bsts.forecast import Decomposition, Forecast, one_step_predictions
from bsts.inference import Posterior

__all__ = ["plot_components", "plot_diagnostics", "plot_forecast", "plot_residuals"]

_DATA_COLOR = "0.2"
_BAND_COLOR = "C0"


def _check_intervals(intervals) -> list[float]:
    values = sorted(float(p) for p in np.atleast_1d(intervals))
    if not values or any(not 0 < p < 1 for p in values):
        raise ValueError(f"intervals must lie in (0, 1), got {intervals!r}")
    return values


def _band(draws: np.ndarray, mass: float) -> tuple[np.ndarray, np.ndarray]:
    tail = 50 * (1 - mass)
    return np.percentile(draws, tail, axis=0), np.percentile(draws, 100 - tail, axis=0)


def plot_forecast(
    post: Posterior | Forecast,
    prediction: Forecast | None = None,
    *,
    actual: pd.Series | None = None,
    intervals=(0.5, 0.9),
    history: int | None = None,
    ax: Axes | None = None,
) -> Axes:
    """Fan chart: the observed series, then the forecast's mean and central bands.

    Call it as `plot_forecast(prediction)` (the forecast carries its history) or as
    `plot_forecast(post, prediction)`.

    Args:
        post: the fitted posterior (its series is the history), or the forecast itself.
        prediction: `bsts.forecast(post, ...)`; omit it when `post` is the forecast.
        actual: optional held-out values to overlay on the forecast period.
        intervals: central band masses, widest drawn lightest.
        history: show only the last `history` observed steps (default all).
        ax: Axes to draw on.

    Returns:
        The Axes.
    """
    if isinstance(post, Forecast) and prediction is None:
        prediction, observed = post, post.history
        if observed is None:
            raise ValueError("this Forecast carries no history: call plot_forecast(post, forecast)")
    elif isinstance(prediction, Forecast):
        observed = pd.Series(post.series.to_original(post.series.y), index=post.series.index)
    else:
        raise TypeError("plot_forecast takes a Forecast, or a Posterior and its Forecast")
    bands = _check_intervals(intervals)
    ax = ax if ax is not None else plt.subplots(figsize=(9, 4))[1]
    if history is not None:
        observed = observed.iloc[-int(history) :]
    ax.plot(observed.index, observed.to_numpy(), color=_DATA_COLOR, lw=1, label="observed")
    # Widest band lightest, so that the legend tells the bands apart.
    for rank, mass in enumerate(reversed(bands)):
        lower, upper = prediction.interval(mass)
        ax.fill_between(
            prediction.index,
            lower,
            upper,
            color=_BAND_COLOR,
            alpha=0.18 + 0.17 * rank,
            lw=0,
            label=f"{mass:.0%} interval",
        )
    mean = prediction.mean()
    ax.plot(prediction.index, mean, color=_BAND_COLOR, lw=1.5, label="forecast mean")
    if actual is not None:
        ax.plot(actual.index, np.asarray(actual, float), "o", color="C3", ms=3, label="actual")
    ax.legend(loc="upper left", frameon=False)
    ax.set_title("Forecast")
    return ax


def plot_components(
    decomposition: Decomposition,
    *,
    observed: pd.Series | None = None,
    interval: float = 0.9,
    axes=None,
) -> Figure:
    """One panel per component (smoothed mean and band), then the fitted signal.

    Args:
        decomposition: `bsts.decompose(post)`.
        observed: optional observed series, drawn as points on the fitted panel.
        interval: mass of the central band.
        axes: a sequence of Axes, one per component plus one for the fitted signal.

    Returns:
        The Figure.
    """
    (mass,) = _check_intervals(interval)
    parts = {**decomposition.draws, "fitted": decomposition.fitted}
    if axes is None:
        axes = plt.subplots(
            len(parts), 1, figsize=(9, 2.2 * len(parts)), sharex=True, squeeze=False
        )[1][:, 0]
    axes = list(np.ravel(axes))
    if len(axes) != len(parts):
        raise ValueError(f"axes must hold {len(parts)} Axes (components + fitted), got {len(axes)}")
    index = decomposition.index
    for ax, (name, draws) in zip(axes, parts.items(), strict=True):
        lower, upper = _band(draws, mass)
        ax.fill_between(index, lower, upper, color=_BAND_COLOR, alpha=0.3, lw=0)
        ax.plot(index, draws.mean(axis=0), color=_BAND_COLOR, lw=1.2)
        if name == "fitted" and observed is not None:
            ax.plot(observed.index, np.asarray(observed, float), ".", color=_DATA_COLOR, ms=2)
        ax.set_ylabel(name)
    axes[0].set_title(f"Components (mean and {mass:.0%} interval)")
    return axes[0].figure


def plot_residuals(post: Posterior, *, threshold: float = 3.0, ax: Axes | None = None) -> Axes:
    """Standardised one-step-ahead residuals; those beyond `threshold` flagged in red.

    Args:
        post: the fitted posterior.
        threshold: flag residuals with absolute value above this.
        ax: Axes to draw on.

    Returns:
        The Axes.
    """
    if not threshold > 0:
        raise ValueError(f"threshold must be positive, got {threshold!r}")
    ax = ax if ax is not None else plt.subplots(figsize=(9, 3))[1]
    table = one_step_predictions(post)
    residual = table["residual"]
    ax.plot(table.index, residual.to_numpy(), ".", color=_DATA_COLOR, ms=3)
    flagged = residual[residual.abs() > threshold]
    ax.plot(
        flagged.index,
        flagged.to_numpy(),
        "o",
        color="C3",
        ms=5,
        mfc="none",
        label=f"|residual| > {threshold:g} ({len(flagged)})",
    )
    for level in (-threshold, threshold):
        ax.axhline(level, color="C3", lw=0.8, ls="--")
    ax.axhline(0.0, color="0.6", lw=0.8)
    ax.set_ylabel("standardised residual")
    ax.set_title("One-step-ahead residuals")
    ax.legend(loc="upper left", frameon=False)
    return ax


def plot_diagnostics(post: Posterior, kind: str = "trace") -> Figure:
    """ArviZ trace or rank plots of every parameter (original units).

    Args:
        post: the fitted posterior (several chains make rank plots meaningful).
        kind: "trace" or "rank".

    Returns:
        The Figure.
    """
    if kind not in ("trace", "rank"):
        raise ValueError(f"kind must be 'trace' or 'rank', got {kind!r}")
    return _arviz.plot_chains(_arviz.to_inference_data(post.samples), kind)
