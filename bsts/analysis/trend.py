r"""Is there a trend? The posterior of the level's change over a window, and of the slope.

From simulation-smoothed state paths $\mu^{(s)}_{0:T-1}$ of the model's level component
(one with `is_level`: `LocalLevel`, `LocalLinearTrend`, `SemiLocalLinearTrend`,
`ChangePointTrend`), drawn given each posterior
parameter draw, the window $[t_a, t_b]$ gives per path

$$
\Delta^{(s)} = \mu^{(s)}_{t_b} - \mu^{(s)}_{t_a}, \qquad
r^{(s)} = \Delta^{(s)} / (\tau_{t_b} - \tau_{t_a}), \qquad
\bar\delta^{(s)} = \frac{1}{t_b - t_a + 1}\sum_{t=t_a}^{t_b} \delta^{(s)}_t ,
$$

with $\tau_t$ the time in typical steps (so unevenly sampled series are handled) and
$\delta_t$ the slope state, when the component has one. Each row reports the posterior mean,
the central interval and $P(\cdot > 0 \mid y)$, $P(\cdot < 0 \mid y)$ as fractions of paths.
The level excludes seasonality, regression and noise, so a seasonal swing is not a trend.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes

from bsts.analysis._common import check_interval, elapsed_steps, state_draws, tails, window
from bsts.inference import Posterior

__all__ = ["plot_trend", "trend"]


def _trend_component(post: Posterior, component: str | None) -> tuple[str, object]:
    candidates = [(n, c) for n, c in post.model if c.is_level]
    if component is not None:
        candidates = [(n, c) for n, c in candidates if n == component]
        if not candidates:
            names = [n for n, c in post.model if c.is_level]
            raise ValueError(
                f"component {component!r} is not a trend component; choose from {names}"
            )
    if not candidates:
        raise ValueError(
            "trend() needs a model with a level: LocalLevel, LocalLinearTrend or "
            "SemiLocalLinearTrend (or another component with is_level, e.g. ChangePointTrend)"
        )
    return candidates[0]


def _level_paths(post, start, end, component, num_samples, seed):
    if not isinstance(post, Posterior):
        raise TypeError(f"post must be a bsts Posterior (from bsts.fit), got {type(post).__name__}")
    if isinstance(num_samples, bool) or not isinstance(num_samples, (int, np.integer)):
        raise ValueError(f"num_samples must be a positive integer, got {num_samples!r}")
    if num_samples < 1:
        raise ValueError(f"num_samples must be a positive integer, got {num_samples!r}")
    name, kind = _trend_component(post, component)
    first, last = window(post.series.index, start, end, "trend window")
    states = state_draws(post, num_samples, seed)
    sl = post.model.layout(post.inputs).slices[name]
    scale = post.series.scale
    level = states[:, :, sl.start] * scale
    slope = states[:, :, sl.start + 1] * scale if kind.has_slope else None
    return name, first, last, level, slope


def trend(
    post: Posterior,
    start=None,
    end=None,
    *,
    interval: float = 0.9,
    component: str | None = None,
    num_samples: int = 400,
    seed: int = 0,
) -> pd.DataFrame:
    """Posterior of the level change over a window, its rate, and the mean slope.

    Args:
        post: a fitted posterior whose model has a level component.
        start: first time of the window (default the first observation); need not be in
            the index (the window starts at the first time at or after it).
        end: last time of the window (default the last observation).
        interval: mass of the central credible interval.
        component: which trend component (default the first one).
        num_samples: simulation-smoother paths (cycling through the parameter draws).
        seed: seed of the simulation smoother.

    Returns:
        DataFrame indexed by "change" (level at end minus level at start, original units),
        "rate" (change per typical time step) and, for components with a slope, "slope"
        (the slope state averaged over the window, per step); columns mean, lower, upper,
        prob_positive, prob_negative.

    Raises:
        TypeError: `post` is not a Posterior.
        ValueError: the model has no level, the window is inverted, outside the data or
            shorter than two observations, or a bad interval / num_samples.
    """
    interval = check_interval(interval)
    _, first, last, level, slope = _level_paths(post, start, end, component, num_samples, seed)
    frame = _table(level, slope, first, last, elapsed_steps(post.series.dt), interval)
    frame.attrs.update(start=post.series.index[first], end=post.series.index[last])
    return frame


def _table(level, slope, first, last, times, interval) -> pd.DataFrame:
    change = level[:, last] - level[:, first]
    rows = {"change": change, "rate": change / (times[last] - times[first])}
    if slope is not None:
        rows["slope"] = slope[:, first : last + 1].mean(axis=1)
    table = {}
    for label, values in rows.items():
        lower, upper = tails(values, interval)
        table[label] = {
            "mean": float(values.mean()),
            "lower": float(lower),
            "upper": float(upper),
            "prob_positive": float(np.mean(values > 0)),
            "prob_negative": float(np.mean(values < 0)),
        }
    return pd.DataFrame.from_dict(table, orient="index")


def plot_trend(
    post: Posterior,
    start=None,
    end=None,
    *,
    interval: float = 0.9,
    component: str | None = None,
    num_samples: int = 400,
    seed: int = 0,
    ax: Axes | None = None,
) -> Axes:
    """The smoothed level (mean and band) over the data, the window shaded.

    Args:
        post: a fitted posterior whose model has a level component.
        start: first time of the window (as for `trend`).
        end: last time of the window.
        interval: mass of the band.
        component: which trend component (default the first one).
        num_samples: simulation-smoother paths.
        seed: seed of the simulation smoother.
        ax: Axes to draw on.

    Returns:
        The Axes.
    """
    interval = check_interval(interval)
    name, first, last, level, slope = _level_paths(post, start, end, component, num_samples, seed)
    summary = _table(level, slope, first, last, elapsed_steps(post.series.dt), interval)
    summary = summary.loc["change"]
    index = post.series.index
    ax = ax if ax is not None else plt.subplots(figsize=(9, 4))[1]
    level = level + post.series.location
    lower, upper = tails(level, interval)
    observed = post.series.to_original(post.series.y)
    ax.plot(index, observed, ".", color="0.3", ms=3, label="observed")
    ax.fill_between(index, lower, upper, color="C0", alpha=0.3, lw=0, label=f"{interval:.0%}")
    ax.plot(index, level.mean(axis=0), color="C0", lw=1.5, label=f"{name} (smoothed)")
    ax.axvspan(index[first], index[last], color="C1", alpha=0.1, lw=0, label="window")
    ax.set_title(
        f"Level change over the window: {summary['mean']:.3g} "
        f"[{summary['lower']:.3g}, {summary['upper']:.3g}], "
        f"P(> 0) = {summary['prob_positive']:.2f}"
    )
    ax.legend(loc="best", frameon=False)
    return ax
