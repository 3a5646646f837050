r"""Observation models: how the series is observed given the structural signal.

An observation model owns everything the rest of the library needs to know about the
observation noise: its parameters (sites `observation.{parameter}`), their priors and
units, the noise variance that the Kalman likelihood uses given them, the likelihood of
the observed site, the noise of forecasts, whether a draw's predictive is exactly Normal,
and the one-step tail probability that anomaly scoring uses. `Model`, `forecast` and
`anomalies` ask it and never test which family it is, so a new family (say Poisson) is one
new subclass; subclasses register themselves by `name`, so `Model(observation="name")`
finds them.

Everything here is traceable under `jax.vmap` (no Python control flow on array values),
so a many-series layer can map a model over series.
"""

from __future__ import annotations

from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from jax.scipy.stats import norm
from scipy import special

from bsts.components import UNIT_NONE, UNIT_SCALE, ModelInputs
from bsts.distribution import StateSpaceDistribution
from bsts.kalman import StateSpace, kalman_filter, log_likelihood, sample_states
from bsts.predictive import future_predictive

__all__ = [
    "OBSERVATION",
    "Gaussian",
    "Observation",
    "StudentT",
    "check_prior",
    "observation_model",
    "observation_models",
    "observation_params",
]

OBSERVATION = "observation"  # the key (and site prefix) of the observation parameters

_REGISTRY: dict[str, type[Observation]] = {}


class Observation:
    """Base class of observation models.

    Subclasses set `name` (registered, for `Model(observation=name)`) and `label`, keep
    their priors in `priors`, and implement `sample`, `variance`, `predictive_noise` and
    `tail_probability`. Parameters are passed around as `{parameter: value}` dicts (the
    `observation` entry of a model's nested parameters).

    Two observation models are equal when they are the same family with the same priors;
    one also equals its registered name, so `model.observation == "student_t"` reads as
    expected.
    """

    name: ClassVar[str] = ""
    label: ClassVar[str] = ""
    exact_predictive: ClassVar[bool] = True
    """Whether each posterior draw's predictive is exactly Normal, so that the posterior
    predictive is an exact Gaussian mixture (`bsts.mixture`); else forecasts are summarised
    from their draws."""
    standardise: ClassVar[bool] = True
    """Whether the target is standardised before fitting (counts are not)."""
    discrete: ClassVar[bool] = False
    """Whether observations are integers (counts, or 0/1)."""
    has_scale: ClassVar[bool] = True
    """Whether the family has an observation noise scale (`observation.scale`)."""

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("name"):
            _REGISTRY[cls.name] = cls

    def __init__(self, scale_prior: dist.Distribution | None = None):
        self.scale_prior = check_prior(
            dist.HalfNormal(1.0) if scale_prior is None else scale_prior, "scale_prior"
        )

    @property
    def priors(self) -> dict[str, dist.Distribution]:
        """The fixed priors, keyed by parameter."""
        return {"scale": self.scale_prior}

    @property
    def units(self) -> dict[str, str]:
        """Unit of each parameter: how to map it back to original units."""
        return {"scale": UNIT_SCALE}

    @property
    def core(self) -> Observation:
        """The Gaussian observation model at the heart of this one (itself if Gaussian)."""
        return self

    def sample(self, inputs: ModelInputs) -> dict:
        """Draw the parameters as NumPyro sites `observation.{parameter}`."""
        return {"scale": numpyro.sample(f"{OBSERVATION}.scale", self.scale_prior)}

    def variance(self, params: dict, inputs: ModelInputs):
        """The observation noise variance of the state-space model given the parameters.

        For a non-Gaussian family this is the variance of its Gaussian approximation.
        """
        raise NotImplementedError

    def likelihood(self, ssm: StateSpace, inputs: ModelInputs, params: dict) -> dist.Distribution:
        """The distribution of the observed series given the state-space model.

        Args:
            ssm: the model's state-space form (`Model.state_space`).
            inputs: the model inputs.
            params: the observation parameters (unused by the Gaussian families, whose
                noise is already in `ssm`).
        """
        return StateSpaceDistribution(ssm, inputs.num_timesteps, max_gaps=inputs.gaps)

    @property
    def columns(self) -> tuple[str, ...]:
        """Data columns the family reads, kept as given (not standardised): none here."""
        return ()

    def check_values(self, y: np.ndarray, target: str, columns: dict | None = None) -> None:
        """Raise a clear error for values the family cannot have observed (any real here).

        Args:
            y: the target's values, NaN where missing.
            target: the target's name, for the message.
            columns: the values of the family's own `columns`, keyed by name.
        """

    def future_params(self, columns: dict) -> dict:
        """Per-step parameters of the forecast steps, from the future values of `columns`.

        Args:
            columns: the future values of the family's `columns`, each `(horizon,)`.

        Returns:
            Entries to add to the draws' parameters before `sample_observations` (none).
        """
        return {}

    def initial_level(self, observed: np.ndarray, columns: dict | None = None) -> float:
        """The level's prior mean in model units: the first observed (standardised) value.

        Args:
            observed: the observed values, in order.
            columns: the family's `columns` at those steps.
        """
        return float(observed[0])

    def approximation(self, ssm: StateSpace, y, params: dict) -> tuple[StateSpace, jax.Array]:
        """The linear-Gaussian model (and its data) that the smoother and forecasts use.

        The model itself and `y` for the Gaussian families; for counts, the Laplace
        approximation at the states' mode and its pseudo-observations.
        """
        return ssm, jnp.asarray(y)

    def one_step_tail(self, key, ssm: StateSpace, y, params: dict):
        """One-step predictive mean, variance and two-sided tail probability per step.

        For one parameter draw: the Kalman filter predicts each step from the ones before
        it, and `tail_probability` scores the observation against that prediction.

        Args:
            key: a JAX random key (for families that integrate by Monte Carlo).
            ssm: the draw's state-space model.
            y: the series (NaN where missing).
            params: the draw's observation parameters.

        Returns:
            `(mean, variance, tail)`, each `(T,)`, in model units.
        """
        filtered = kalman_filter(ssm, y)
        T = y.shape[0]
        y_filled = jnp.where(jnp.isnan(y), 0.0, y)
        H = jnp.broadcast_to(ssm.observation_matrix, (T, ssm.state_dim))
        mean = jnp.einsum("ti,ti->t", H, filtered.predicted_mean) + ssm.observation_offset
        signal_var = jnp.einsum("ti,tij,tj->t", H, filtered.predicted_cov, H)
        tail, variance = self.tail_probability(key, params, y_filled - mean, signal_var)
        return mean, variance, tail

    def draw_states(self, key, ssm: StateSpace, y, params: dict):
        """One path of the states given the series, for one parameter draw, `(T, d)`.

        The simulation smoother of `approximation`: exact for the Gaussian families.
        """
        ssm, y = self.approximation(ssm, y, params)
        return sample_states(key, ssm, y, num_samples=1)[0]

    def draw_future(self, key, ssm: StateSpace, y, start, horizon: int, params: dict):
        """`(signal, mean, var)` of the future steps for one draw (`future_predictive`).

        Args:
            key: a JAX random key.
            ssm: the draw's model over the extended series.
            y: the extended series, NaN from `start` on.
            start: the first future step.
            horizon: the number of future steps.
            params: the draw's observation parameters.
        """
        ssm, y = self.approximation(ssm, y, params)
        return future_predictive(key, ssm, y, start, horizon)

    def one_step_log_likelihood(self, ssm: StateSpace, y, params: dict):
        r"""$\log p(y_t \mid y_{<t})$ per step in model units, 0 where missing."""
        return log_likelihood(ssm, y)

    def mean_response(self, signal):
        """$E[y_t]$ given the signal: the signal itself (an identity link)."""
        return signal

    def predictive_noise(self, key, params: dict, shape: tuple[int, int]):
        """Observation noise of forecast steps, standardised units.

        Args:
            key: a JAX random key.
            params: the parameters, each with a leading draw axis of length `shape[0]`.
            shape: `(num_draws, horizon)`.
        """
        raise NotImplementedError

    def tail_probability(self, key, params: dict, residual, signal_var):
        """Two-sided one-step tail probability of each observation, for one draw.

        Args:
            key: a JAX random key (for families that integrate by Monte Carlo).
            params: the parameters of one posterior draw.
            residual: `(T,)` observation minus its one-step predictive mean.
            signal_var: `(T,)` one-step predictive variance of the signal.

        Returns:
            `(tail, variance)`: the tail probability and the predictive variance per step.
        """
        raise NotImplementedError

    def held_out_log_density(self, y, mean, signal_var, params: dict) -> np.ndarray:
        r"""$\log p(y)$ of values the fit has not seen, for one parameter draw (NumPy).

        Args:
            y: the values.
            mean: their predictive means (the signal's).
            signal_var: the predictive variances of the signal, noise excluded.
            params: the draw's observation parameters, in the units of `y`.
        """
        raise NotImplementedError(f"{type(self).__name__} has no held-out density")

    def mixture_sds(self, params: dict, variances, u) -> np.ndarray:
        """Per draw, the sd of one Normal component of an equal-weight predictive mixture.

        Args:
            params: the observation parameters, each with a leading draw axis.
            variances: `(draws, horizon)` each draw's predictive variance with the noise
                of the Gaussian core (`variance` at weight 1).
            u: `(draws,)` uniforms in (0, 1), stratified across the draws, for families
                whose predictive mixes over a latent variable.
        """
        raise NotImplementedError(f"{type(self).__name__} has no Normal-mixture predictive")

    def __eq__(self, other) -> bool:
        if isinstance(other, str):
            return other == self.name
        if type(other) is not type(self):
            return NotImplemented
        return self.priors.keys() == other.priors.keys() and all(
            _same_distribution(self.priors[k], other.priors[k]) for k in self.priors
        )

    def __hash__(self) -> int:
        return hash(type(self))

    def __repr__(self) -> str:
        priors = ", ".join(f"{k}_prior={v!r}" for k, v in self.priors.items())
        return f"{type(self).__name__}({priors})"


class Gaussian(Observation):
    r"""Gaussian observation noise, $\varepsilon_t \sim \mathcal N(0, \sigma_\varepsilon^2)$.

    Args:
        scale_prior: prior of $\sigma_\varepsilon$ (site `observation.scale`) in
            standardised units; default HalfNormal(1).
    """

    name = "gaussian"
    label = "Gaussian"

    def variance(self, params, inputs):
        r"""$\sigma_\varepsilon^2$."""
        return params["scale"] ** 2

    def predictive_noise(self, key, params, shape):
        """Normal noise with each draw's scale."""
        scale = jnp.asarray(params["scale"]).reshape(shape[0], 1)
        return scale * jax.random.normal(_normal_key(key), shape)

    def held_out_log_density(self, y, mean, signal_var, params):
        """The Normal log density with variance `signal_var` plus the noise's."""
        var = np.asarray(signal_var, dtype=float) + np.asarray(params["scale"], dtype=float) ** 2
        z = np.asarray(y, dtype=float) - np.asarray(mean, dtype=float)
        return -0.5 * (np.log(2 * np.pi * var) + z * z / var)

    def mixture_sds(self, params, variances, u):
        """The predictive is Normal: its own sd (`u` is unused)."""
        return np.sqrt(np.asarray(variances, dtype=float))

    def tail_probability(self, key, params, residual, signal_var):
        """Under the Normal predictive; `key` is unused."""
        variance = signal_var + params["scale"] ** 2
        return 2.0 * norm.cdf(-jnp.abs(residual) / jnp.sqrt(variance)), variance


class StudentT(Observation):
    r"""Student-t observation noise, as a scale mixture of normals.

    The model stays linear-Gaussian given the mixing weights, so the Kalman likelihood
    stays exact:

    $$
    \varepsilon_t \mid \lambda_t \sim \mathcal N(0, \sigma_\varepsilon^2 / \lambda_t), \qquad
    \lambda_t \sim \text{Gamma}(\nu/2, \nu/2), \qquad \nu \sim \text{Gamma}(2, 0.1),
    $$

    which integrates to $\varepsilon_t \sim t_\nu(0, \sigma_\varepsilon)$. The sites are
    `observation.scale`, `observation.df` ($\nu$, the Gamma(2, 0.1) prior of Juárez &
    Steel, 2010) and `observation.weights` ($\lambda_t$, one per step); an outlier gets a
    small weight, so it barely moves the states.

    Forecast steps have no fitted weight: the state-space model gives them weight 1 (the
    Gaussian core), and their noise is drawn with a fresh weight from its prior, so a
    draw's predictive is Student-t and not Normal. Anomaly scoring likewise integrates
    over a fresh weight (Monte Carlo over 256 draws), since the fitted weight of a step has
    seen that step.

    Args:
        scale_prior: prior of $\sigma_\varepsilon$ in standardised units; default
            HalfNormal(1).
        df_prior: prior of $\nu$; default Gamma(2, 0.1).
    """

    name = "student_t"
    label = "Student-t"
    exact_predictive = False
    weight_draws: ClassVar[int] = 256
    density_nodes: ClassVar[int] = 801

    def __init__(self, scale_prior=None, df_prior=None):
        super().__init__(scale_prior)
        self.df_prior = check_prior(
            dist.Gamma(2.0, 0.1) if df_prior is None else df_prior, "df_prior"
        )

    @property
    def priors(self):
        """The scale and degrees-of-freedom priors."""
        return {"scale": self.scale_prior, "df": self.df_prior}

    @property
    def units(self):
        """The scale in the target's units; df and weights dimensionless."""
        return {"scale": UNIT_SCALE, "df": UNIT_NONE, "weights": UNIT_NONE}

    @property
    def core(self) -> Observation:
        """Gaussian noise with the same scale prior (every weight 1)."""
        return Gaussian(self.scale_prior)

    def sample(self, inputs):
        """Scale, degrees of freedom and one mixing weight per step."""
        params = super().sample(inputs)
        df = numpyro.sample(f"{OBSERVATION}.df", self.df_prior)
        params["df"] = df
        params["weights"] = numpyro.sample(
            f"{OBSERVATION}.weights",
            dist.Gamma(df / 2.0, df / 2.0).expand([inputs.num_timesteps]).to_event(1),
        )
        return params

    def variance(self, params, inputs):
        r"""$\sigma_\varepsilon^2 / \lambda_t$; steps past the fitted weights get weight 1."""
        return params["scale"] ** 2 / _pad_weights(params["weights"], inputs.num_timesteps)

    def predictive_noise(self, key, params, shape):
        """Student-t noise: Normal noise divided by the root of a fresh weight."""
        scale = jnp.asarray(params["scale"]).reshape(shape[0], 1)
        normal = jax.random.normal(_normal_key(key), shape)
        half_df = jnp.asarray(params["df"]).reshape(shape[0], 1) / 2.0
        weights = jax.random.gamma(_weight_key(key), jnp.broadcast_to(half_df, shape))
        return scale * normal / jnp.sqrt(weights / half_df)

    def held_out_log_density(self, y, mean, signal_var, params):
        r"""The held-out density, the noise's weight integrated out by quadrature.

        $$
        \log \int \mathcal N(y; \mu, s^2 + \sigma_\varepsilon^2 / \lambda)\,
        \text{Gamma}(\lambda; \nu/2, \nu/2)\, d\lambda .
        $$

        A fresh weight for every value, as for a forecast step. The trapezoid rule runs on
        `density_nodes` points of $\log\lambda$ from 30 sds below its mean (sd
        $\sqrt{\psi'(\nu/2)}$; a small $\nu$ has a long left tail), or lower where an
        outlier's integrand peaks ($\lambda \approx \sigma_\varepsilon^2 / (y - \mu)^2$),
        to 12 sds above. With no signal variance this is the Student-t density to 1e-12
        relative up to 2,000 scales from the mean (`tests/test_observation.py`).
        """
        y, mean, signal_var, scale, df = (
            np.asarray(v, dtype=float)[..., None]
            for v in np.broadcast_arrays(y, mean, signal_var, params["scale"], params["df"])
        )
        a = df / 2.0
        centre = special.digamma(a) - np.log(a)
        spread = np.sqrt(special.polygamma(1, a))
        residual = y - mean
        outlier = np.log(scale**2 / np.maximum(residual**2, 1e-300)) - 6.0
        low = np.minimum(centre - 30.0 * spread, outlier)
        high = centre + 12.0 * spread
        g = low + (high - low) * np.linspace(0.0, 1.0, self.density_nodes)  # log lambda
        lam = np.exp(g)
        # The Gamma(a, a) density of log lambda, and the Normal given lambda.
        log_prior = a * np.log(a) - special.gammaln(a) + a * g - a * lam
        var = signal_var + scale**2 / lam
        log_normal = -0.5 * (np.log(2 * np.pi * var) + residual**2 / var)
        trapezoid = np.ones(self.density_nodes)
        trapezoid[[0, -1]] = 0.5
        step = (high - low) / (self.density_nodes - 1)
        return special.logsumexp(log_prior + log_normal, b=trapezoid * step, axis=-1)

    def mixture_sds(self, params, variances, u):
        r"""$\sqrt{s^2 + \sigma_\varepsilon^2 / \lambda}$ with one weight per draw.

        The weight of draw $i$ is the Gamma($\nu_i/2$, $\nu_i/2$) quantile at $u_i$:
        stratified over the draws, so the equal-weight mixture over draws integrates over
        the weight as well as over the parameters.
        """
        variances = np.asarray(variances, dtype=float)
        scale = np.asarray(params["scale"], dtype=float).reshape(-1, 1)
        a = np.asarray(params["df"], dtype=float).reshape(-1, 1) / 2.0
        weights = special.gammaincinv(a, np.asarray(u, dtype=float).reshape(-1, 1)) / a
        signal = np.maximum(variances - scale**2, 0.0)
        return np.sqrt(signal + scale**2 / np.maximum(weights, 1e-300))

    def tail_probability(self, key, params, residual, signal_var):
        """Under the Student-t predictive, by Monte Carlo over fresh weights."""
        half_df = params["df"] / 2.0
        weights = jax.random.gamma(key, half_df, (self.weight_draws,)) / half_df
        total = signal_var[:, None] + params["scale"] ** 2 / weights[None, :]
        z = jnp.abs(residual)[:, None] / jnp.sqrt(total)
        return jnp.mean(2.0 * norm.cdf(-z), axis=1), jnp.mean(total, axis=1)


def observation_models() -> tuple[str, ...]:
    """The registered observation models' names."""
    return tuple(_REGISTRY)


def observation_model(
    observation: str | Observation, scale_prior: dist.Distribution | None = None
) -> Observation:
    """An observation model from its name or itself, with an optional scale prior.

    Raises:
        ValueError: an unknown name, or a scale prior that contradicts the given object's.
    """
    if isinstance(observation, Observation):
        if scale_prior is not None and not _same_distribution(scale_prior, observation.scale_prior):
            raise ValueError(
                "observation_scale_prior disagrees with the observation object's "
                "scale_prior; give the prior to the object instead: "
                f"{type(observation).__name__}(scale_prior=...)"
            )
        return observation
    if not isinstance(observation, str) or observation not in _REGISTRY:
        raise ValueError(
            f"unknown observation model {observation!r}; choose one of "
            f"{', '.join(_REGISTRY)} or pass an Observation"
        )
    family = _REGISTRY[observation]
    if not family.has_scale:
        if scale_prior is not None:
            raise ValueError(
                f"observation={observation!r} has no noise scale: drop observation_scale_prior"
            )
        return family()
    return family(scale_prior)


def observation_params(params: dict) -> dict:
    """The observation parameters out of a model's parameters.

    Accepts the nested form (`{"observation": {...}}`) and the site-keyed one
    (`{"observation.scale": ...}`), even mixed.
    """
    out = dict(params.get(OBSERVATION, {}))
    prefix = f"{OBSERVATION}."
    out.update(
        {
            site[len(prefix) :]: value
            for site, value in params.items()
            if isinstance(site, str) and site.startswith(prefix)
        }
    )
    return out


def _pad_weights(weights, T: int):
    """The mixing weights over T steps; steps past the fitted ones (a forecast) get 1."""
    weights = jnp.asarray(weights)
    fitted = weights.shape[-1]
    if fitted >= T:
        return weights[..., :T]
    return jnp.concatenate([weights, jnp.ones((*weights.shape[:-1], T - fitted))], axis=-1)


# A family's normal draws use the first half of the key and its mixing weights the second,
# so the same seed gives a Student-t forecast the same normal draws as a Gaussian one.
def _normal_key(key):
    return jax.random.split(key)[0]


def _weight_key(key):
    return jax.random.split(key)[1]


def check_prior(prior, what: str) -> dist.Distribution:
    """The prior itself, or a ValueError naming `what` when it is not a NumPyro distribution."""
    if not isinstance(prior, dist.Distribution):
        raise ValueError(f"{what} must be a numpyro Distribution, got {type(prior).__name__}")
    return prior


def _same_distribution(a: dist.Distribution, b: dist.Distribution) -> bool:
    """Same family with the same parameters (identity for anything not comparable)."""
    if a is b:
        return True
    if type(a) is not type(b) or a.batch_shape != b.batch_shape:
        return False
    try:
        return all(
            np.array_equal(np.asarray(getattr(a, k)), np.asarray(getattr(b, k)))
            for k in a.arg_constraints
        )
    except (AttributeError, TypeError, jax.errors.ConcretizationTypeError):
        return False
