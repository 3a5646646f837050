"""The public filtering entry points: exact filter and the fast log-likelihood."""

from __future__ import annotations

import jax
import numpy as np
from jaxtyping import Array, Float

from bsts._compile import jit
from bsts.kalman.adjoint import exact_total_log_likelihood
from bsts.kalman.exact_block import exact_log_likelihood
from bsts.kalman.marginal import (
    gap_capacity,
    interior_gaps,
    steady_state_marginal_log_likelihood,
)
from bsts.kalman.parallel import parallel_filter
from bsts.kalman.sequential import sequential_filter
from bsts.kalman.state_space import StateSpace
from bsts.kalman.steady import steady_state_log_likelihood
from bsts.kalman.steps import FilterResult, prepare

__all__ = ["kalman_filter", "log_likelihood", "marginal_log_likelihood"]


def kalman_filter(ssm: StateSpace, y: Float[Array, " T"], parallel: bool = False) -> FilterResult:
    """Run the Kalman filter over a univariate series.

    Args:
        ssm: the state-space model.
        y: observations, shape `(T,)`; NaN marks a missing step.
        parallel: use the associative-scan form (O(log T) depth, more total work; pays off
            on accelerators for long series). Both forms give the same numbers to float
            tolerance.

    Returns:
        The per-step log-likelihood and the filtered and predicted moments.

    Raises:
        ValueError: `y` is not 1-D or its length disagrees with the model.
    """
    ssm, y, observed = prepare(ssm, y)
    if parallel:
        return parallel_filter(ssm, y, observed)
    return sequential_filter(ssm, y, observed)


def log_likelihood(ssm: StateSpace, y: Float[Array, " T"]) -> Float[Array, " T"]:
    r"""Per-step log-likelihood $\log p(y_t \mid y_{<t})$: the hot path of model fitting.

    Equal to `kalman_filter(ssm, y).log_likelihood` to float tolerance, but faster when
    F, Q, H and r are declared constant (given without a time axis): the filter then
    switches to its steady state once the covariance has converged (see
    `bsts.kalman.steady`). Time-varying models, and series with missing steps after the
    burn-in, run the exact sequential filter.

    Args:
        ssm: the state-space model.
        y: observations, shape `(T,)`; NaN marks a missing step.

    Returns:
        The per-step log-likelihood, 0 at missing steps.
    """
    ssm, y, observed = prepare(ssm, y)
    if ssm.has_constant_dynamics:
        return steady_state_log_likelihood(ssm, y, observed)
    return sequential_filter(ssm, y, observed).log_likelihood


def marginal_log_likelihood(
    ssm: StateSpace, y: Float[Array, " T"], max_gaps: int | None = 0
) -> Float[Array, ""]:
    r"""The marginal log-likelihood $\log p(y)$: the fastest path, for model fitting.

    Equal to `kalman_filter(ssm, y).log_likelihood.sum()` to float tolerance. When F, Q, H
    and r are declared constant it runs no covariance recursion over time: the
    steady-state filter plus an exact low-rank correction for the initial covariance
    (see `bsts.kalman.marginal`), carried across missing steps by a scan with one step per
    gap (`bsts.kalman.segments`). Otherwise, or when that closed form fails numerically,
    it runs the exact filter, whose gradient is a hand-written adjoint
    (`bsts.kalman.adjoint`; reverse mode only).

    Args:
        ssm: the state-space model.
        y: observations, shape `(T,)`; NaN marks a missing step.
        max_gaps: for a traced `y`, the most missing steps before its last observation
            that the closed form makes room for (a static bound; the positions are found at
            run time): 0 for none, or None to run the exact filter directly (for a series
            with many gaps, where it is the cheaper path). A concrete `y` sets the bound
            from its own gaps (`bsts.kalman.marginal.gap_capacity`) and ignores this.

    Returns:
        A scalar.
    """
    count = interior_gaps(y)
    if count is not None:
        max_gaps = gap_capacity(count, np.shape(y)[0])
    ssm, y, observed = prepare(ssm, y)
    if max_gaps is None:
        if ssm.has_constant_dynamics:
            return exact_log_likelihood(ssm, y, observed)
        return exact_total_log_likelihood(ssm, y, observed)
    if ssm.has_constant_dynamics:
        F = ssm.transition_matrix
        frozen = None if isinstance(F, jax.core.Tracer) else _FrozenArray(F)
        return _constant_dynamics_marginal(ssm, y, observed, max_gaps, frozen)
    return exact_total_log_likelihood(ssm, y, observed)


class _FrozenArray:
    """A concrete array as a hashable static argument, compared by value."""

    def __init__(self, array):
        self.array = np.asarray(array)
        self._key = (self.array.shape, self.array.dtype.str, self.array.tobytes())

    def __hash__(self) -> int:
        return hash(self._key)

    def __eq__(self, other) -> bool:
        return isinstance(other, _FrozenArray) and self._key == other._key


# Compiled once per shape, gap capacity and concrete F: NumPyro evaluates the model eagerly
# while it looks for initial values, and there each `lax.cond` would compile on its own.
# A concrete F stays concrete inside (static), so its sparse products still apply.
@jit(static_argnames=("max_gaps", "frozen_transition"))
def _constant_dynamics_marginal(ssm, y, observed, max_gaps, frozen_transition):
    if frozen_transition is not None:
        ssm = ssm.replace(transition_matrix=frozen_transition.array)
    return steady_state_marginal_log_likelihood(ssm, y, observed, max_gaps)
