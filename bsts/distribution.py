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
import jax.numpy as jnp
import numpyro.distributions as dist
from numpyro.distributions import constraints

from bsts.kalman import StateSpace, log_likelihood, marginal_log_likelihood, simulate
from bsts.kalman.laplace import laplace_log_likelihood

__all__ = ["LaplaceStateSpaceDistribution", "StateSpaceDistribution"]


class StateSpaceDistribution(dist.Distribution):
    """The marginal distribution of a univariate series under a state-space model.

    Args:
        ssm: the state-space model.
        num_timesteps: T, the length of the series.
        max_gaps: the room for missing steps before the last observation when the series
            is traced (`bsts.kalman.marginal_log_likelihood`).
    """

    arg_constraints: ClassVar[dict] = {}
    support = constraints.real_vector
    pytree_data_fields = ("ssm",)
    pytree_aux_fields = ("num_timesteps", "max_gaps")

    def __init__(
        self,
        ssm: StateSpace,
        num_timesteps: int,
        *,
        max_gaps: int | None = 0,
        validate_args=None,
    ):
        self.ssm = ssm
        self.num_timesteps = int(num_timesteps)
        self.max_gaps = max_gaps
        super().__init__(
            batch_shape=(), event_shape=(self.num_timesteps,), validate_args=validate_args
        )

    def log_prob(self, value):
        """The marginal log-likelihood of the whole series (NaN = missing)."""
        return marginal_log_likelihood(self.ssm, value, max_gaps=self.max_gaps)

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


class LaplaceStateSpaceDistribution(dist.Distribution):
    """A series of counts (or 0/1) given a latent linear-Gaussian state.

    `log_prob` is the Laplace approximation of the marginal log-likelihood, or its
    importance-sampling correction (`bsts.kalman.laplace`); `sample` simulates the signal
    forward and draws the observations.

    Args:
        family: the observation model (`bsts.counts.Count`).
        ssm: the latent state's model (its `observation_var` is unused).
        params: the family's parameters (`{}` for Poisson and Bernoulli).
        num_timesteps: T.
    """

    arg_constraints: ClassVar[dict] = {}
    support = constraints.real_vector
    pytree_data_fields = ("ssm", "params")
    pytree_aux_fields = ("family", "num_timesteps")

    # The importance draws' key is fixed (common random numbers): the estimate is then a
    # smooth, deterministic function of the parameters, as NUTS and BFGS need.
    _IMPORTANCE_SEED = 20261203

    def __init__(
        self, family, ssm: StateSpace, params: dict, num_timesteps: int, *, validate_args=None
    ):
        self.family = family
        self.ssm = ssm
        self.params = dict(params)
        self.num_timesteps = int(num_timesteps)
        super().__init__(
            batch_shape=(), event_shape=(self.num_timesteps,), validate_args=validate_args
        )

    def log_prob(self, value):
        """The approximate marginal log-likelihood of the whole series (NaN = missing)."""
        family = self.family
        key = jax.random.PRNGKey(self._IMPORTANCE_SEED) if family.importance_samples else None
        return laplace_log_likelihood(
            self.ssm,
            value,
            family.log_density,
            family.initial_signal(jnp.nan_to_num(value), self.params),
            self.params,
            importance_samples=family.importance_samples,
            key=key,
            max_iterations=family.max_iterations,
        )

    def sample(self, key, sample_shape=()):
        """Simulate signal paths forward and draw observations given them."""
        count = 1
        for size in sample_shape:
            count *= size
        key_signal, key_draw = jax.random.split(key)
        keys = jax.random.split(key_signal, count)
        T = self.num_timesteps
        H = jnp.broadcast_to(self.ssm.observation_matrix, (T, self.ssm.state_dim))
        offset = jnp.broadcast_to(self.ssm.observation_offset, (T,))

        def signal(k):
            states, _ = simulate(k, self.ssm, T)
            return jnp.einsum("ti,ti->t", states, H) + offset

        draws = self.family.sample_observations(key_draw, self.params, jax.vmap(signal)(keys))
        return draws.reshape(*sample_shape, T)
