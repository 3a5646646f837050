r"""A NumPyro distribution whose density is the Kalman filter.

`StateSpaceDistribution(ssm)` is the distribution of a whole series $y_{0:T-1}$ (event shape
`(T,)`) under a linear-Gaussian state-space model with the latent states integrated out:
`log_prob` is the exact marginal log-likelihood (NaN entries are missing and skipped) and
`sample` simulates the model forward. NumPyro's `Predictive`, `log_likelihood` and the ArviZ
converters therefore work on models that use it.
"""

from __future__ import annotations

from typing import ClassVar

import jax
import numpyro.distributions as dist
from numpyro.distributions import constraints

from bsts.kalman import StateSpace, log_likelihood, marginal_log_likelihood, simulate

__all__ = ["StateSpaceDistribution"]


class StateSpaceDistribution(dist.Distribution):
    """The marginal distribution of a univariate series under a state-space model.

    Args:
        ssm: the state-space model.
        num_timesteps: T, the length of the series.
        gapped: the series misses steps before its last observation
            (`bsts.kalman.marginal_log_likelihood`).
    """

    arg_constraints: ClassVar[dict] = {}
    support = constraints.real_vector
    pytree_data_fields = ("ssm",)
    pytree_aux_fields = ("num_timesteps", "gapped")

    def __init__(
        self, ssm: StateSpace, num_timesteps: int, *, gapped: bool = False, validate_args=None
    ):
        self.ssm = ssm
        self.num_timesteps = int(num_timesteps)
        self.gapped = bool(gapped)
        super().__init__(
            batch_shape=(), event_shape=(self.num_timesteps,), validate_args=validate_args
        )

    def log_prob(self, value):
        """The marginal log-likelihood of the whole series (NaN = missing)."""
        return marginal_log_likelihood(self.ssm, value, gapped=self.gapped)

    def pointwise_log_prob(self, value):
        r"""One-step-ahead $\log p(y_t \mid y_{<t})$ per step, 0 where missing."""
        return log_likelihood(self.ssm, value)

    def sample(self, key, sample_shape=()):
        """Simulate series forward from the model."""
        count = 1
        for size in sample_shape:
            count *= size
        keys = jax.random.split(key, count)
        draws = jax.vmap(lambda k: simulate(k, self.ssm, self.num_timesteps)[1])(keys)
        return draws.reshape(*sample_shape, self.num_timesteps)
