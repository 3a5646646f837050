"""Helpers shared by the analysis functions: time windows, state draws, intervals."""

from __future__ import annotations

from functools import lru_cache, partial

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
from jaxtyping import Array, Float

from bsts._compile import jit
from bsts.inference import Posterior
from bsts.observation import Observation, observation_params

__all__ = ["check_interval", "elapsed_steps", "locate", "state_draws", "window"]


def check_interval(interval: float) -> float:
    """Validate the mass of a central credible interval."""
    if isinstance(interval, bool) or not isinstance(interval, (int, float)) or not 0 < interval < 1:
        raise ValueError(f"interval must be a number in (0, 1), got {interval!r}")
    return float(interval)


def tails(draws: np.ndarray, interval: float, axis: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper bounds of the central `interval` of the draws along `axis`."""
    tail = 50.0 * (1.0 - interval)
    return np.percentile(draws, tail, axis=axis), np.percentile(draws, 100.0 - tail, axis=axis)


def locate(index: pd.Index, label, what: str) -> int:
    """Position of a time label in the index, which must hold it exactly.

    Raises:
        ValueError: the label is not a time of the series.
    """
    try:
        key = pd.Timestamp(label) if isinstance(index, pd.DatetimeIndex) else label
        position = index.get_loc(key)
    except (KeyError, TypeError, ValueError):
        raise ValueError(
            f"{what} {label!r} is not a time of the series (which runs from {index[0]} to "
            f"{index[-1]}); use a timestamp of the data's index"
        ) from None
    if not isinstance(position, (int, np.integer)):
        raise ValueError(f"{what} {label!r} matches several rows of the index")
    return int(position)


def window(index: pd.Index, start, end, what: str = "window") -> tuple[int, int]:
    """Positions `(first, last)` of an inclusive time window; None means the series' end.

    Labels need not be in the index: `start` moves to the first time at or after it, `end`
    to the last time at or before it.

    Raises:
        ValueError: the window is inverted, lies outside the data or holds fewer than 2 times.
    """
    convert = pd.Timestamp if isinstance(index, pd.DatetimeIndex) else (lambda v: v)
    try:
        first = 0 if start is None else int(index.searchsorted(convert(start), side="left"))
        last = len(index) - 1 if end is None else int(index.searchsorted(convert(end), "right")) - 1
    except (TypeError, ValueError) as error:
        raise ValueError(
            f"{what} bounds must be times comparable with the index: {error}"
        ) from None
    if start is not None and end is not None and convert(start) > convert(end):
        raise ValueError(f"{what} is inverted: start {start!r} is after end {end!r}")
    if first >= len(index) or last < 0:
        raise ValueError(
            f"{what} ({start!r}, {end!r}) lies outside the data ({index[0]} to {index[-1]})"
        )
    if last - first < 1:
        raise ValueError(f"{what} ({start!r}, {end!r}) holds fewer than two observation times")
    return first, last


def elapsed_steps(dt: np.ndarray) -> np.ndarray:
    """Time of each observation since the first, in units of the typical step."""
    return np.concatenate([[0.0], np.cumsum(dt[1:])])


def state_draws(post: Posterior, num_samples: int, seed: int = 0) -> Float[Array, "n T d"]:
    """Simulation-smoothed state paths, cycling through the parameter draws.

    Unlike `Posterior.states` (one path per parameter draw), this draws `num_samples` paths
    whatever the number of parameter draws, so that a MAP fit (one draw) still gives the
    states' posterior given the mode. Each path comes from the observation family's
    `draw_states`: exact for the Gaussian families, the Laplace approximation (or its
    importance resampling) for counts.

    Returns:
        Standardised states `(num_samples, T, d)`.
    """
    ssms = post.state_spaces()
    params = observation_params(post.flat_draws())
    total = post.num_chains * post.num_draws
    chosen = np.arange(int(num_samples)) % total
    picked = jax.tree_util.tree_map(lambda a: a[chosen], (ssms, params))
    keys = jax.random.split(jax.random.PRNGKey(seed), int(num_samples))
    draw = _draw_paths(post.model.observation)
    return np.asarray(draw(keys, *picked, jnp.asarray(post.series.y)))


# Cached per observation model, with the data as an argument: repeated calls on one
# posterior (another window, a plot) reuse the compiled smoother instead of tracing a new
# closure.
@lru_cache(maxsize=16)
def _draw_paths(observation: Observation):
    @jit
    @partial(jax.vmap, in_axes=(0, 0, 0, None))
    def draw(key, ssm, params, y):
        return observation.draw_states(key, ssm, y, params)

    return draw
