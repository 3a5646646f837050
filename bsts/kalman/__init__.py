"""The Kalman engine: pure JAX, no NumPyro, no pandas.

Exact filtering, smoothing and simulation smoothing for linear-Gaussian state-space models
with univariate observations, time-varying matrices and missing values (NaN), and the
Laplace approximation for non-Gaussian observations of such a state (`laplace`).
Everything works under `jit`, `vmap` and `grad`.
"""

from bsts.kalman.filter import kalman_filter, log_likelihood, marginal_log_likelihood
from bsts.kalman.laplace import (
    LaplaceApproximation,
    laplace_approximation,
    laplace_log_likelihood,
    laplace_one_step_log_likelihood,
)
from bsts.kalman.smoother import (
    SmootherResult,
    kalman_smoother,
    sample_states,
    simulate,
    smoothed_means,
)
from bsts.kalman.state_space import StateSpace
from bsts.kalman.steps import FilterResult

__all__ = [
    "FilterResult",
    "LaplaceApproximation",
    "SmootherResult",
    "StateSpace",
    "kalman_filter",
    "kalman_smoother",
    "laplace_approximation",
    "laplace_log_likelihood",
    "laplace_one_step_log_likelihood",
    "log_likelihood",
    "marginal_log_likelihood",
    "sample_states",
    "simulate",
    "smoothed_means",
]
