r"""Count and binary observations: Poisson, negative binomial, Bernoulli and binomial.

The structural components describe a latent signal $\theta_t$ on the link scale (the log
rate, or the log odds) exactly as they describe a Gaussian series' mean; the observations
are counts or 0/1 given it:

$$
y_t \mid \theta_t \sim \text{Poisson}(e^{\theta_t}), \qquad
y_t \mid \theta_t \sim \text{NB}(e^{\theta_t}, r), \qquad
y_t \mid \theta_t \sim \text{Bernoulli}\big(\sigma(\theta_t)\big), \qquad
y_t \mid \theta_t \sim \text{Binomial}\big(n_t, \sigma(\theta_t)\big),
$$

with $\text{Var}(y_t) = \mu_t + \mu_t^2 / r$ for the negative binomial. The states are
integrated out by the Laplace approximation around their posterior mode
(`bsts.kalman.laplace`): the likelihood NUTS, SVI and MAP see is one Kalman filter of a
linear-Gaussian model, and its gradient is exact for that approximation. Give
`importance_samples` to correct it by importance sampling when exactness matters.

The target is not standardised (the counts are the data), and the level's prior mean is
the link of the mean of the first ten observations.
"""

from __future__ import annotations

from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from jax.scipy.special import betainc, gammaincc, gammaln

from bsts.components import UNIT_NONE, ModelInputs
from bsts.distribution import LaplaceStateSpaceDistribution
from bsts.kalman import StateSpace
from bsts.kalman.laplace import (
    importance_resampled_states,
    laplace_approximation,
    laplace_one_step_log_likelihood,
    signal_predictive_nodes,
)
from bsts.observation import OBSERVATION, Observation, check_prior

__all__ = ["Bernoulli", "Binomial", "Count", "NegativeBinomial", "Poisson"]

# Draws beyond this log rate (about 4.9e8) are clipped: JAX's Poisson counts are 32-bit
# integers unless x64 is on.
_MAX_LOG_RATE = 20.0
# The level's prior mean comes from the first observations.
_LEVEL_WINDOW = 10


class Count(Observation):
    """Base class of observation models for counts and binary data (see the module).

    Subclasses give `log_density` (of one step given the signal), `mean_response` (the
    inverse link), `link_of_mean`, `initial_signal` and `sample_observations`, and check
    the values they accept in `check_values`.

    Args:
        importance_samples: 0 (default) for the Laplace approximation; an even number of
            draws to correct it by importance sampling: the likelihood (slower by about
            that factor; the draws use fixed random numbers, so it stays a smooth function
            of the parameters) and the state paths behind `decompose`, `trend` and
            forecasts (importance resampling).
        max_iterations: the most Newton steps of the mode search.
    """

    standardise: ClassVar[bool] = False
    discrete: ClassVar[bool] = True
    has_scale: ClassVar[bool] = False
    exact_predictive = False

    def __init__(self, importance_samples: int = 0, max_iterations: int = 50):
        if (
            isinstance(importance_samples, bool)
            or not isinstance(importance_samples, (int, np.integer))
            or importance_samples < 0
            or importance_samples % 2
        ):
            raise ValueError(
                f"importance_samples must be 0 or a positive even integer, got "
                f"{importance_samples!r}"
            )
        if (
            isinstance(max_iterations, bool)
            or not isinstance(max_iterations, (int, np.integer))
            or max_iterations < 1
        ):
            raise ValueError(f"max_iterations must be a positive integer, got {max_iterations!r}")
        self.importance_samples = int(importance_samples)
        self.max_iterations = int(max_iterations)

    @property
    def scale_prior(self):
        """None: counts have no observation scale."""
        return None

    @property
    def priors(self) -> dict[str, dist.Distribution]:
        """None for Poisson and Bernoulli."""
        return {}

    @property
    def units(self) -> dict[str, str]:
        """Every parameter is dimensionless."""
        return {name: UNIT_NONE for name in self.priors}

    def sample(self, inputs: ModelInputs) -> dict:
        """The family's parameters as sites `observation.{parameter}` (none by default)."""
        return {name: numpyro.sample(f"{OBSERVATION}.{name}", p) for name, p in self.priors.items()}

    def variance(self, params, inputs):
        """Unused by the likelihood, which sets the variances of its approximation: 1."""
        return jnp.ones(())

    def log_density(self, y, theta, params: dict):
        r"""$\log p(y_t \mid \theta_t)$ of one step (scalars; `params` the family's)."""
        raise NotImplementedError

    def mean_response(self, signal):
        r"""The inverse link: the rate $E[y_t \mid \theta_t]$, or the probability."""
        raise NotImplementedError

    def conditional_mean(self, theta, params: dict):
        r"""$E[y_t \mid \theta_t]$: the inverse link (a binomial's times its trials)."""
        return self.mean_response(theta)

    def link_of_mean(self, mean: float, count: int) -> float:
        """The signal of a mean of `count` observations, kept finite."""
        raise NotImplementedError

    def initial_signal(self, y, params: dict):
        """A first guess of the signal from the (NaN-free) values, for the mode search."""
        raise NotImplementedError

    def sample_observations(self, key, params: dict, signal):
        """Integer draws of $y$ given signal paths `(draws, steps)` (JAX).

        Args:
            key: a JAX random key.
            params: the family's parameters, each with a leading draw axis (or scalars).
            signal: `(draws, steps)` signal paths.
        """
        raise NotImplementedError

    def check_values(self, y: np.ndarray, target: str, columns: dict | None = None) -> None:
        """Raise a clear error for values the family cannot have observed."""
        observed = y[~np.isnan(y)]
        bad = observed[(observed < 0) | (observed != np.round(observed))]
        if bad.size:
            raise ValueError(
                f"the target {target!r} holds values that are not counts (non-negative "
                f"integers) for observation={self.name!r}, e.g. {bad[:3].tolist()}; use "
                "observation='gaussian' (or 'student_t') for continuous data"
            )

    def initial_level(self, observed: np.ndarray, columns: dict | None = None) -> float:
        """The link of the mean of the first observations."""
        first = observed[:_LEVEL_WINDOW]
        return float(self.link_of_mean(float(np.mean(first)), first.size))

    def likelihood(self, ssm: StateSpace, inputs: ModelInputs, params: dict):
        """The Laplace-approximated distribution of the series (`bsts.kalman.laplace`)."""
        params = self.with_steps(params, ssm)
        return LaplaceStateSpaceDistribution(self, ssm, params, inputs.num_timesteps)

    def with_steps(self, params: dict, ssm: StateSpace) -> dict:
        """The draw's parameters with the family's per-step ones (none here), `(T,)` each.

        A family with per-step data (a binomial's trials) carries it in its state-space
        model's `observation_var`, which a count model's likelihood does not use
        otherwise, so that every method that gets the model gets the data with it.
        """
        return params

    def laplace(self, ssm: StateSpace, y, params: dict):
        """This family's Laplace approximation of one draw (`laplace_approximation`)."""
        params = self.with_steps(params, ssm)
        start = self.initial_signal(jnp.nan_to_num(y), params)
        return laplace_approximation(ssm, y, self.log_density, start, params, self.max_iterations)

    def approximation(self, ssm: StateSpace, y, params: dict):
        """The approximating linear-Gaussian model at the mode and its pseudo-observations."""
        approx = self.laplace(ssm, y, params)
        return approx.state_space, approx.pseudo_observations

    def draw_states(self, key, ssm: StateSpace, y, params: dict):
        """One path of the states: from the Laplace approximation, or importance-resampled.

        With `importance_samples` > 0 the path is picked by its importance weight among
        that many draws of the approximation (`importance_resampled_states`), which
        removes the approximation's bias from smoothed states, rates and forecasts.
        """
        if not self.importance_samples:
            return super().draw_states(key, ssm, y, params)
        params = self.with_steps(params, ssm)
        return importance_resampled_states(
            key, self.laplace(ssm, y, params), y, self.log_density, params, self.importance_samples
        )

    def draw_future(self, key, ssm: StateSpace, y, start, horizon: int, params: dict):
        """A path of the future signal; the moments are unused for counts (zeros).

        With `importance_samples` > 0 the whole path, future included, is drawn by
        `draw_states` on the extended series.
        """
        if not self.importance_samples:
            return super().draw_future(key, ssm, y, start, horizon, params)
        states = self.draw_states(key, ssm, y, params)
        T = states.shape[0]
        H = jnp.broadcast_to(ssm.observation_matrix, (T, ssm.state_dim))
        signal = jnp.einsum("ti,ti->t", states, H) + jnp.broadcast_to(ssm.observation_offset, (T,))
        future = jax.lax.dynamic_slice_in_dim(signal, start, horizon)
        return future, jnp.zeros_like(future), jnp.zeros_like(future)

    def cdf(self, y, theta, params: dict):
        r"""$P(Y_t \le y \mid \theta_t)$ (0 for $y < 0$)."""
        raise NotImplementedError

    def response_variance(self, theta, params: dict):
        r"""$\text{Var}(Y_t \mid \theta_t)$."""
        raise NotImplementedError

    def one_step_tail(self, key, ssm: StateSpace, y, params: dict):
        """One-step predictive mean, variance and two-sided tail probability of the counts.

        The signal's one-step predictive from the Laplace approximation's filter, the
        count distribution integrated against it by Gauss–Hermite quadrature; the tail
        is `min(1, 2 min(P(Y <= y), P(Y >= y)))`. `key` is unused.
        """
        theta, log_weights = signal_predictive_nodes(self.laplace(ssm, y, params), y)
        weights = jnp.exp(log_weights)[None, :]
        counts = jnp.nan_to_num(y)[:, None]
        # Per-step parameters against theta's (steps, nodes).
        params = jax.tree_util.tree_map(
            lambda v: v[:, None] if jnp.ndim(v) else v, self.with_steps(params, ssm)
        )
        at_most = jnp.sum(weights * self.cdf(counts, theta, params), axis=1)
        at_least = 1.0 - jnp.sum(weights * self.cdf(counts - 1.0, theta, params), axis=1)
        tail = jnp.minimum(1.0, 2.0 * jnp.minimum(at_most, at_least))
        mu = self.conditional_mean(theta, params)
        mean = jnp.sum(weights * mu, axis=1)
        second = jnp.sum(weights * (self.response_variance(theta, params) + mu**2), axis=1)
        return mean, jnp.maximum(second - mean**2, 0.0), tail

    def one_step_log_likelihood(self, ssm: StateSpace, y, params: dict):
        r"""Approximate $\log p(y_t \mid y_{<t})$ per step (Gauss–Hermite over the signal)."""
        approx = self.laplace(ssm, y, params)
        params = self.with_steps(params, ssm)
        return laplace_one_step_log_likelihood(approx, y, self.log_density, params)

    def predictive_noise(self, key, params, shape):
        """Counts have no additive noise (see `sample_observations`)."""
        raise NotImplementedError(f"{self.name} observations are drawn, not added as noise")

    def tail_probability(self, key, params, residual, signal_var):
        """Not defined for counts: anomaly scoring uses `count_tail_probability`."""
        raise NotImplementedError(f"{self.name} observations have no Normal tail")

    def __eq__(self, other) -> bool:
        if isinstance(other, str):
            return other == self.name
        if type(other) is not type(self):
            return NotImplemented
        return (
            super().__eq__(other)
            and self.importance_samples == other.importance_samples
            and self.max_iterations == other.max_iterations
        )

    def __hash__(self) -> int:
        return hash(type(self))

    def __repr__(self) -> str:
        priors = [f"{k}_prior={v!r}" for k, v in self.priors.items()]
        if self.importance_samples:
            priors.append(f"importance_samples={self.importance_samples}")
        return f"{type(self).__name__}({', '.join(priors)})"


class _LogLink(Count):
    """Counts whose signal is the log of their mean (Poisson, negative binomial)."""

    def mean_response(self, signal):
        r"""$e^\theta$."""
        return jnp.exp(signal) if isinstance(signal, jax.Array) else np.exp(signal)

    def link_of_mean(self, mean, count):
        r"""$\log$ of the mean, at least half a count in the window."""
        return np.log(max(mean, 0.5 / count))

    def initial_signal(self, y, params):
        r"""$\log(y + 1/2)$."""
        return jnp.log(y + 0.5)


class Poisson(_LogLink):
    r"""Poisson counts with a log link, $y_t \sim \text{Poisson}(e^{\theta_t})$.

    No parameters of its own. Args as `Count`.
    """

    name = "poisson"
    label = "Poisson"

    def log_density(self, y, theta, params):
        r"""$y\theta - e^\theta - \log y!$."""
        return y * theta - jnp.exp(theta) - gammaln(y + 1.0)

    def cdf(self, y, theta, params):
        r"""The regularised upper incomplete gamma function $Q(y + 1, e^\theta)$."""
        value = gammaincc(jnp.maximum(y, 0.0) + 1.0, jnp.exp(theta))
        return jnp.where(y < 0, 0.0, value)

    def response_variance(self, theta, params):
        r"""$e^\theta$."""
        return jnp.exp(theta)

    def sample_observations(self, key, params, signal):
        """Poisson draws at each path's rate."""
        return jax.random.poisson(key, jnp.exp(jnp.minimum(signal, _MAX_LOG_RATE)))


class NegativeBinomial(_LogLink):
    r"""Over-dispersed counts: the negative binomial with a log link.

    $$
    y_t \mid \theta_t \sim \text{NB}(\mu_t = e^{\theta_t}, r), \qquad
    \text{Var}(y_t) = \mu_t + \mu_t^2 / r, \qquad r \sim \text{InverseGamma}(1/2, 1/2).
    $$

    The concentration's prior (site `observation.concentration`) is a half-normal on the
    over-dispersion $r^{-1/2}$, the coefficient of variation of the Gamma rate behind the
    counts, written as the InverseGamma(1/2, 1/2) it is equivalent to: it shrinks towards
    the Poisson ($r \to \infty$) and allows strong over-dispersion (a coefficient of
    variation of 1 or more) with prior probability 0.32.

    Args:
        concentration_prior: prior of $r$; default the above.
        importance_samples: as `Count`.
        max_iterations: as `Count`.
    """

    name = "negative_binomial"
    label = "negative binomial"

    def __init__(self, concentration_prior=None, importance_samples=0, max_iterations=50):
        super().__init__(importance_samples, max_iterations)
        # r^(-1/2) ~ HalfNormal(1) is r ~ InverseGamma(1/2, 1/2).
        default = dist.InverseGamma(0.5, 0.5)
        self.concentration_prior = check_prior(
            default if concentration_prior is None else concentration_prior, "concentration_prior"
        )

    @property
    def priors(self):
        """The concentration's prior."""
        return {"concentration": self.concentration_prior}

    def log_density(self, y, theta, params):
        r"""The NB2 log mass in $\theta = \log\mu$."""
        r = params["concentration"]
        log_total = jnp.logaddexp(jnp.log(r), theta)  # log(r + mu)
        return (
            gammaln(y + r)
            - gammaln(r)
            - gammaln(y + 1.0)
            + r * (jnp.log(r) - log_total)
            + y * (theta - log_total)
        )

    def cdf(self, y, theta, params):
        r"""The regularised incomplete beta function $I_{r/(r+\mu)}(r, y + 1)$."""
        r = params["concentration"]
        p = jnp.exp(jnp.log(r) - jnp.logaddexp(jnp.log(r), theta))
        value = betainc(r, jnp.maximum(y, 0.0) + 1.0, p)
        return jnp.where(y < 0, 0.0, value)

    def response_variance(self, theta, params):
        r"""$\mu + \mu^2 / r$."""
        mu = jnp.exp(theta)
        return mu + mu**2 / params["concentration"]

    def sample_observations(self, key, params, signal):
        """Gamma–Poisson draws: a Gamma(r, r/mu) rate, then Poisson."""
        signal = jnp.asarray(signal)
        mu = jnp.exp(jnp.minimum(signal, _MAX_LOG_RATE))
        r = jnp.asarray(params["concentration"], signal.dtype)
        r = jnp.broadcast_to(r.reshape(r.shape + (1,) * (signal.ndim - r.ndim)), signal.shape)
        key_rate, key_count = jax.random.split(key)
        rate = jax.random.gamma(key_rate, r) * mu / r
        return jax.random.poisson(key_count, jnp.minimum(rate, np.exp(_MAX_LOG_RATE)))


class Bernoulli(Count):
    r"""Binary outcomes with a logit link, $y_t \sim \text{Bernoulli}(\sigma(\theta_t))$.

    No parameters of its own. Args as `Count`.
    """

    name = "bernoulli"
    label = "Bernoulli"

    def log_density(self, y, theta, params):
        r"""$y\theta - \log(1 + e^\theta)$."""
        return y * theta - jax.nn.softplus(theta)

    def mean_response(self, signal):
        """The logistic function."""
        return _logistic(signal)

    def link_of_mean(self, mean, count):
        """The logit, the proportion kept half an outcome from 0 and 1."""
        return _logit(mean, count)

    def initial_signal(self, y, params):
        """The logit of 3/4 for a 1 and of 1/4 for a 0."""
        return jnp.log(3.0) * (2.0 * y - 1.0)

    def cdf(self, y, theta, params):
        r"""0 below 0, $1 - \pi$ from 0 to 1, then 1."""
        return jnp.where(y < 0, 0.0, jnp.where(y < 1, jax.nn.sigmoid(-theta), 1.0))

    def response_variance(self, theta, params):
        r"""$\pi (1 - \pi)$."""
        probability = jax.nn.sigmoid(theta)
        return probability * (1.0 - probability)

    def sample_observations(self, key, params, signal):
        """0/1 draws with each path's probability."""
        signal = jnp.asarray(signal)
        return jax.random.bernoulli(key, jax.nn.sigmoid(signal)).astype(jnp.int32)

    def check_values(self, y, target, columns=None):
        """Only 0 and 1 (NaN is missing)."""
        observed = y[~np.isnan(y)]
        bad = observed[(observed != 0) & (observed != 1)]
        if bad.size:
            raise ValueError(
                f"the target {target!r} holds values other than 0 and 1 for "
                f"observation='bernoulli', e.g. {bad[:3].tolist()}; code the outcome as 0/1 "
                "(or use observation='poisson' for counts)"
            )


class Binomial(Count):
    r"""Successes out of a known number of trials, with a logit link.

    $$
    y_t \mid \theta_t \sim \text{Binomial}\big(n_t, \sigma(\theta_t)\big), \qquad
    \log p(y_t \mid \theta_t) = y_t\theta_t - n_t \log(1 + e^{\theta_t})
        + \log \binom{n_t}{y_t}.
    $$

    The trials $n_t$ are data: a column of the frame (kept as given, not standardised;
    forecasts need its future values in `future=`), or one number for every step. The
    components describe the log odds; `mean_response` is the probability $\sigma(\theta_t)$
    (the fitted rate of `decompose`), and forecasts are counts of successes. A step with
    0 trials carries no information and must have a missing target. No parameters of
    its own.

    Args:
        trials: the trials' column name, or a positive integer for every step.
        importance_samples: as `Count`.
        max_iterations: as `Count`.

    Raises:
        ValueError: no trials, or trials that are neither a column name nor a positive
            integer.
    """

    name = "binomial"
    label = "binomial"

    def __init__(self, trials: str | int | None = None, importance_samples=0, max_iterations=50):
        super().__init__(importance_samples, max_iterations)
        if trials is None:
            raise ValueError(
                "observation='binomial' needs its number of trials: pass "
                "observation=bsts.Binomial(trials='<column of trials>') (or trials=<n> for "
                "the same number at every step)"
            )
        fixed = isinstance(trials, (int, np.integer)) and not isinstance(trials, bool)
        if not (isinstance(trials, str) and trials) and not (fixed and trials >= 1):
            raise ValueError(f"trials must be a column name or a positive integer, got {trials!r}")
        self.trials = int(trials) if fixed else trials

    @property
    def columns(self) -> tuple[str, ...]:
        """The trials' column, when the trials are a column."""
        return (self.trials,) if isinstance(self.trials, str) else ()

    def variance(self, params, inputs):
        """The trials per step (see `Count.with_steps`), or 1 for a fixed number."""
        if isinstance(self.trials, str):
            return jnp.asarray(inputs.covariates[self.trials])
        return jnp.ones(())

    def with_steps(self, params, ssm):
        """The parameters with `trials`, `(T,)` from the model, or the fixed number."""
        if isinstance(self.trials, str):
            trials = jnp.asarray(ssm.observation_var)
        else:
            trials = jnp.asarray(float(self.trials))
        return {**params, "trials": trials}

    def future_params(self, columns):
        """The future trials (checked: non-negative integers), or the fixed number."""
        if not isinstance(self.trials, str):
            return {"trials": float(self.trials)}
        trials = np.asarray(columns[self.trials], dtype=float)
        _check_trials(trials, self.trials, "future")
        return {"trials": trials}

    def log_density(self, y, theta, params):
        r"""$y\theta - n \log(1 + e^\theta) + \log\binom{n}{y}$."""
        n = params["trials"]
        return (
            y * theta
            - n * jax.nn.softplus(theta)
            + gammaln(n + 1.0)
            - gammaln(y + 1.0)
            - gammaln(jnp.maximum(n - y, 0.0) + 1.0)
        )

    def mean_response(self, signal):
        """The probability of a success, the logistic function of the signal."""
        return _logistic(signal)

    def conditional_mean(self, theta, params):
        r"""$n_t \sigma(\theta_t)$."""
        return params["trials"] * jax.nn.sigmoid(theta)

    def link_of_mean(self, mean, count):
        """The logit of a proportion of `count` trials, kept half a trial from 0 and 1."""
        return _logit(mean, count)

    def initial_level(self, observed, columns=None):
        """The logit of the successes' share of the trials over the first observations."""
        first = observed[:_LEVEL_WINDOW]
        if isinstance(self.trials, str):
            trials = float(np.sum(columns[self.trials][:_LEVEL_WINDOW]))
        else:
            trials = float(self.trials * first.size)
        return float(self.link_of_mean(float(np.sum(first)) / trials, trials))

    def initial_signal(self, y, params):
        r"""The logit of $(y + 1/2) / (n + 1)$."""
        return jnp.log(y + 0.5) - jnp.log(jnp.maximum(params["trials"] - y, 0.0) + 0.5)

    def cdf(self, y, theta, params):
        r"""$I_{1 - \pi}(n - y, y + 1)$ for $0 \le y < n$; 0 below, 1 from $n$ on."""
        n = params["trials"]
        inside = (y >= 0) & (y < n)
        k = jnp.clip(y, 0.0, jnp.maximum(n - 1.0, 0.0))
        value = betainc(jnp.where(inside, n - k, 1.0), k + 1.0, jax.nn.sigmoid(-theta))
        return jnp.where(y < 0, 0.0, jnp.where(y >= n, 1.0, value))

    def response_variance(self, theta, params):
        r"""$n \pi (1 - \pi)$."""
        probability = jax.nn.sigmoid(theta)
        return params["trials"] * probability * (1.0 - probability)

    def sample_observations(self, key, params, signal):
        """Binomial draws with each path's probability and each step's trials."""
        signal = jnp.asarray(signal)
        trials = jnp.broadcast_to(jnp.asarray(params["trials"], signal.dtype), signal.shape)
        draws = jax.random.binomial(key, trials, jax.nn.sigmoid(signal))
        return jnp.round(draws).astype(jnp.int32)

    def check_values(self, y, target, columns=None):
        """Counts of successes, at most the trials; trials non-negative integers."""
        super().check_values(y, target)
        name = self.trials
        if isinstance(name, str):
            trials = np.asarray(columns[name], dtype=float)
            _check_trials(trials, name, "data")
        else:
            trials = np.full(y.shape, float(name))
        observed = ~np.isnan(y)
        over = observed & (y > trials)
        if over.any():
            first = int(np.flatnonzero(over)[0])
            raise ValueError(
                f"the target {target!r} has more successes than trials at "
                f"{int(over.sum())} steps (first: {y[first]:g} of {trials[first]:g}); the "
                "trials must count every attempt"
            )
        empty = observed & (trials == 0)
        if empty.any():
            raise ValueError(
                f"the target {target!r} is observed at {int(empty.sum())} steps with 0 "
                "trials; set the target to NaN (missing) where there were no trials"
            )

    def __eq__(self, other) -> bool:
        same = super().__eq__(other)
        if same is NotImplemented or not same or isinstance(other, str):
            return same
        return self.trials == other.trials

    def __hash__(self) -> int:
        return hash((type(self), self.trials))

    def __repr__(self) -> str:
        extra = f", importance_samples={self.importance_samples}" if self.importance_samples else ""
        return f"Binomial(trials={self.trials!r}{extra})"


def _check_trials(trials: np.ndarray, name: str, where: str) -> None:
    bad = trials[(trials < 0) | (trials != np.round(trials))]
    if bad.size:
        raise ValueError(
            f"the trials column {name!r} holds values in the {where} that are not counts "
            f"(non-negative integers), e.g. {bad[:3].tolist()}"
        )


def _logistic(signal):
    if isinstance(signal, jax.Array):
        return jax.nn.sigmoid(signal)
    return 1.0 / (1.0 + np.exp(-np.asarray(signal, dtype=float)))


def _logit(mean, count):
    """The logit of a proportion of `count` outcomes, kept half an outcome from 0 and 1."""
    p = min(max(mean, 0.5 / count), 1.0 - 0.5 / count)
    return np.log(p / (1.0 - p))
