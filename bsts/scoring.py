r"""Exact marginal log-likelihoods of many series under many parameter sets, batched.

A generative classifier (`bsts.analysis.Classifier`) scores each series under the fits
of other series: $\log p(\tilde y_j \mid \theta_i)$ for a series $j$ and a stack of
parameter sets $\theta_1, \dots, \theta_K$, by the Kalman filter with the states
integrated out. Each series runs one compiled program per model structure and bucket of
lengths (`bsts.batch`), vmapped over the $K$ parameter sets, so a collection of series
compiles a handful of programs whatever its size.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax.numpy as jnp
import numpy as np
from jaxtyping import Float

from bsts.batch import (
    Program,
    compile_all,
    compile_cost,
    compiled,
    is_compiled,
    merged_lengths,
    padded_arrays,
    padded_length,
    run_calls,
)
from bsts.data import SeriesData
from bsts.inference import nest_parameters
from bsts.model import OBSERVATION_WEIGHTS, Model

__all__ = ["log_likelihoods"]


def log_likelihoods(
    model: Model,
    jobs: Sequence[tuple[SeriesData, dict] | tuple[SeriesData, dict, dict]],
    *,
    workers: int | None = None,
) -> list[Float[np.ndarray, " K"]]:
    r"""$\log p(\tilde y \mid \theta_k)$ of each job's series under each of its parameter sets.

    The density is that of the standardised series $\tilde y$ (`SeriesData.y`); the
    original units add $-T_{\text{obs}} \log(\text{scale})$, the same for every
    parameter set.

    Args:
        model: the model (Gaussian or another observation model without per-step
            latent weights).
        jobs: `(series, flat parameters)` pairs, or triples with covariates that differ by
            parameter set: the parameters are site-keyed arrays with a leading axis of $K$
            sets (`Posterior.flat_draws` stacked), $K$ the same for every job; the
            covariates, by name, are `(K, T)` arrays over the series' steps, added to its
            own (which must not name them too).
        workers: local threads (default: one per core).

    Returns:
        One `(K,)` array per job, in order.

    Raises:
        ValueError: no jobs, parameter stacks of different sizes, or a model whose
            observation keeps a weight per step (Student-t), which another series'
            parameters cannot supply.
    """
    if not jobs:
        raise ValueError("no series to score")
    jobs = [(job[0], job[1], job[2] if len(job) > 2 else {}) for job in jobs]
    sizes = {int(np.shape(next(iter(params.values())))[0]) for _, params, _ in jobs}
    if len(sizes) != 1:
        raise ValueError(f"every job needs the same number of parameter sets, got {sorted(sizes)}")
    if any(OBSERVATION_WEIGHTS in params for _, params, _ in jobs):
        raise ValueError(
            "per-step observation weights (a Student-t fit) belong to one series; score "
            "other series with a Gaussian observation model"
        )
    size = sizes.pop()

    def call(i: int, length: int):
        series, params, covariates = jobs[i]
        program = Program("log_likelihood", length, series.regular, (), series.gap_capacity)
        arrays = padded_arrays(series, model.inputs(series), length)
        by_set = {name: _padded(values, length) for name, values in covariates.items()}
        return program, (nest_parameters(model, params), arrays, by_set)

    groups = [(series.regular, series.gap_capacity) for series, _, _ in jobs]
    lengths = merged_lengths(
        model,
        [
            (padded_length(model, series.num_timesteps, "log_likelihood"), group)
            for (series, _, _), group in zip(jobs, groups, strict=True)
        ],
        compile_cost("log_likelihood", draws=size),
        lambda i, length: is_compiled(model, *_flat(call(i, length))),
    )
    calls = [call(i, length) for i, length in enumerate(lengths)]
    first = _first_per_program(calls)
    compile_all([(model, program, example) for program, example in first])
    functions = {program: compiled(model, program, *example) for program, example in first}
    # Longest first, so that the short calls left for last fill the threads' ends.
    order = sorted(range(len(calls)), key=lambda i: -calls[i][0].length)
    finished = run_calls([(functions[calls[i][0]], calls[i][1]) for i in order], workers=workers)
    out: list = [None] * len(calls)
    for i, values in zip(order, finished, strict=True):
        out[i] = np.asarray(values, dtype=float)
    return out


def _padded(values, length: int):
    """`(K, T)` values padded with zeros to `(K, length)`, in JAX's default float type."""
    values = np.asarray(values, dtype=float)
    padded = np.zeros((values.shape[0], length))
    padded[:, : values.shape[1]] = values
    return jnp.asarray(padded, jnp.zeros(()).dtype)


def _flat(call: tuple[Program, tuple]) -> tuple:
    program, example = call
    return (program, *example)


def _first_per_program(calls: list[tuple[Program, tuple]]) -> list[tuple[Program, tuple]]:
    first: dict[Program, tuple] = {}
    for program, example in calls:
        first.setdefault(program, example)
    return list(first.items())
