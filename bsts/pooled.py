r"""Hyperparameters shared by a group of series: the posterior mode of a pooled fit.

Series of one kind (one class of a classifier) can share one set of hyperparameters
$\theta$: the mode of

$$
p(\theta \mid y_1, \dots, y_M) \propto p(\theta) \prod_{m=1}^{M} p(y_m \mid \theta),
$$

each $p(y_m \mid \theta)$ the exact Kalman marginal likelihood of a series with its own
length, gaps, time steps and covariates. A group runs one compiled program
(`bsts.batch`, kind "pooled_map"): its series are padded to a common bucket length and
the group to a common size with all-missing members, which add nothing, so groups of
different sizes and lengths share a program.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from bsts.batch import (
    Program,
    bucket_length,
    compile_all,
    compiled,
    padded_arrays,
    run_calls,
)
from bsts.data import SeriesData
from bsts.kalman.marginal import shared_gap_capacity
from bsts.model import Model

__all__ = ["pooled_modes"]


def pooled_modes(
    model: Model,
    groups: Sequence[Sequence[SeriesData]],
    *,
    num_steps: int = 2000,
    seed: int = 0,
    size: int | None = None,
    length: int | None = None,
    workers: int | None = None,
) -> list[dict]:
    """The pooled posterior mode of each group of series.

    Args:
        model: the model every group shares (a paddable one).
        groups: the groups, each a non-empty list of prepared series; all series
            evenly spaced, or all not.
        num_steps: the most objective evaluations of BFGS.
        seed: the key of the prior-median start.
        size: the group size to pad to (default: the largest group's); the same size and
            length across calls share one compiled program.
        length: the series length to pad to (default: the bucket of the longest series).
        workers: local threads.

    Returns:
        Per group, the site-keyed constrained mode (deterministic sites included), each
        value with a leading axis of one set, as `bsts.scoring.log_likelihoods` takes it.

    Raises:
        ValueError: an empty group, a mixture of evenly and unevenly spaced series, or a
            model that cannot pad series.
    """
    if not groups or any(len(group) == 0 for group in groups):
        raise ValueError("every group needs at least one series")
    members = [series for group in groups for series in group]
    if len({series.regular for series in members}) != 1:
        raise ValueError("pooled series must all be evenly spaced, or all not")
    if not model.paddable:
        raise ValueError(f"{model!r} cannot pad series, so it cannot pool them")
    longest = max(series.num_timesteps for series in members)
    length = bucket_length(max(longest, length or 0), per_doubling=1)
    size = max(size or 0, max(len(group) for group in groups))
    program = Program(
        "pooled_map",
        length,
        members[0].regular,
        (("num_steps", int(num_steps)),),
        shared_gap_capacity([series.gap_capacity for series in members]),
    )
    key = jax.random.PRNGKey(seed)
    calls = [(key, _stacked(model, group, length, size)) for group in groups]
    compile_all([(model, program, calls[0])])
    function = compiled(model, program, *calls[0])
    results = run_calls([(function, call) for call in calls], workers=workers)
    return [{name: np.asarray(value)[None] for name, value in mode.items()} for mode, _ in results]


def _stacked(model: Model, group: Sequence[SeriesData], length: int, size: int) -> dict:
    """A group's padded arrays stacked on a leading axis, filled to `size` members."""
    arrays = [padded_arrays(series, model.inputs(series), length) for series in group]
    empty = jax.tree_util.tree_map(jnp.zeros_like, arrays[0])
    empty["y"] = jnp.full_like(arrays[0]["y"], jnp.nan)
    empty["initial_level"] = jnp.zeros_like(arrays[0]["initial_level"])
    empty["length"] = jnp.zeros_like(arrays[0]["length"])
    arrays += [empty] * (size - len(group))
    return jax.tree_util.tree_map(lambda *values: jnp.stack(values), *arrays)
