"""Forecasts, decompositions and one-step-ahead predictions from a `Posterior`.

Forecasting appends the horizon to the series as missing steps. For each posterior draw the
Kalman filter over the extended series gives the exact Normal predictive of every future
step (the posterior predictive is their mixture), and a path of the future states is drawn
by "filter to the end, then simulate forward" (`bsts.predictive`), to which the
observation model adds noise. Decomposition draws the states over the observed span with
the simulation smoother.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from bsts.data import SeriesData
from bsts.inference import Posterior, nest_parameters
from bsts.kalman import kalman_filter
from bsts.metrics import crps_from_draws, crps_gaussian_mixture
from bsts.mixture import mixture_quantiles, mixture_sd
from bsts.observation import observation_params
from bsts.predictive import program_prng

__all__ = [
    "Decomposition",
    "Forecast",
    "assemble_forecast",
    "decompose",
    "forecast",
    "forecast_draws",
    "one_step_predictions",
]


# The fewest Normal components a non-Normal predictive is approximated by.
_MIXTURE_COMPONENTS = 256
# The fewest simulated paths of a count forecast (each posterior draw repeated).
_COUNT_PATHS = 1000


def _central(mass: float) -> tuple[float, float]:
    """The tail probabilities of the central `mass` interval."""
    if not 0 < mass < 1:
        raise ValueError(f"interval must be in (0, 1), got {mass!r}")
    return (1 - mass) / 2, (1 + mass) / 2


@dataclass(frozen=True)
class Forecast:
    """Posterior predictive of future observations.

    Each posterior draw's predictive is Normal, with moments from the Kalman filter run to
    the end of the data and on over the horizon; the posterior predictive is their
    equal-weight mixture (`bsts.mixture`). Summaries and scores use that mixture exactly
    when it is available, and fall back to the simulated `draws` otherwise.

    Attributes:
        draws: `(num_draws, horizon)` simulated observations in original units.
        index: the future time index.
        history: the fitted series in original units (NaN where missing), so that a
            forecast can be plotted on its own (`bsts.plot_forecast(prediction)`).
        draw_means: `(num_draws, horizon)` each draw's predictive mean, original units.
        draw_sds: `(num_draws, horizon)` each draw's predictive sd, original units. Both
            are None when a draw's predictive is not Normal (Student-t observations).
        components: when a draw's predictive is not Normal, `(means, sds)` of an
            equal-weight Normal mixture, a component per draw (each draw repeated up to
            256 components), that integrates over the noise's latent variable too
            (`Observation.mixture_sds`): what an ensemble of candidates mixes
            (`bsts.ensemble_forecast`). None otherwise.
        discrete: the observations are counts (or 0/1): `draws` are integers, at least
            1,000 paths (posterior draws repeated), and quantiles are values the counts
            take (the inverse of the draws' distribution function).
    """

    draws: np.ndarray
    index: pd.Index
    history: pd.Series | None = None
    draw_means: np.ndarray | None = None
    draw_sds: np.ndarray | None = None
    components: tuple[np.ndarray, np.ndarray] | None = None
    discrete: bool = False

    @property
    def exact(self) -> bool:
        """Whether the predictive is the exact Normal mixture (else it is the draws)."""
        return self.draw_means is not None and self.draw_sds is not None

    def mean(self) -> np.ndarray:
        """The predictive mean per future step."""
        return (self.draw_means if self.exact else self.draws).mean(axis=0)

    def quantiles(self, probs) -> np.ndarray:
        """`(len(probs), horizon)` predictive quantiles, for probabilities in (0, 1)."""
        probs = np.atleast_1d(np.asarray(probs, dtype=float))
        if self.exact:
            return mixture_quantiles(self.draw_means, self.draw_sds, probs)
        if not np.all((probs > 0) & (probs < 1)):
            raise ValueError(f"probabilities must lie in (0, 1), got {probs}")
        method = "inverted_cdf" if self.discrete else "linear"
        return np.quantile(self.draws, probs, axis=0, method=method)

    def sd(self) -> np.ndarray:
        """The predictive standard deviation per future step (law of total variance)."""
        if not self.exact:
            return self.draws.std(axis=0)
        return mixture_sd(self.draw_means, self.draw_sds)

    def interval(self, mass: float) -> tuple[np.ndarray, np.ndarray]:
        """Lower and upper ends of the central `mass` interval per future step."""
        lower, upper = self.quantiles(_central(mass))
        return lower, upper

    def crps(self, actual) -> np.ndarray:
        """CRPS per future step against the outcomes `actual` (lower is better)."""
        actual = np.asarray(actual, dtype=float)
        if self.exact:
            return crps_gaussian_mixture(self.draw_means, self.draw_sds, actual)
        return crps_from_draws(self.draws, actual)

    def to_pandas(self, interval: float = 0.9) -> pd.DataFrame:
        """Mean, median and the central `interval` band per future step."""
        low, high = _central(interval)
        lower, median, upper = self.quantiles([low, 0.5, high])
        return pd.DataFrame(
            {"mean": self.mean(), "median": median, "lower": lower, "upper": upper},
            index=self.index,
        )


def forecast(
    post: Posterior,
    horizon: int | None = None,
    future: pd.DataFrame | None = None,
    seed: int = 0,
    num_samples: int | None = None,
) -> Forecast:
    """Posterior predictive forecast of the next steps.

    Args:
        post: a fitted posterior.
        horizon: number of future steps (continuing the data's frequency).
        future: a DataFrame of future covariates (its index gives the future timestamps);
            required when the model has covariates.
        seed: random seed.
        num_samples: number of posterior draws to use (default all).

    Returns:
        A `Forecast` with draws in original units.

    Raises:
        ValueError: horizon <= 0, no horizon nor future, missing or mismatched covariates.
    """
    if not isinstance(post, Posterior):
        # Collections of posteriors (`bsts.many.Fits`) forecast themselves.
        method = getattr(post, "forecast", None)
        if method is None:
            raise ValueError(
                f"forecast needs a fitted Posterior (or a collection from fit_many), got "
                f"{type(post).__name__}"
            )
        return method(horizon=horizon, future=future, seed=seed, num_samples=num_samples)
    extended = post.series.extend(horizon, future)
    T = post.series.num_timesteps
    horizon = extended.num_timesteps - T
    draw_index = forecast_draws(post, num_samples)
    y = jnp.asarray(extended.y)
    observation = post.model.observation
    key_states, key_noise = jax.random.split(jax.random.PRNGKey(seed))
    # As the compiled forecast programs of `fit_many` do, so that both give the same draws.
    with program_prng():
        keys = jax.random.split(key_states, draw_index.size)
        signal, means, variances = post.map_draws(
            lambda ssm, p, k: observation.draw_future(k, ssm, y, T, horizon, p),
            keys,
            draws=draw_index,
            inputs=post.model.inputs(extended),
        )
    return assemble_forecast(post, extended, key_noise, signal, means, variances, draw_index)


def forecast_draws(post: Posterior, num_samples: int | None) -> np.ndarray:
    """The posterior draw behind each simulated forecast path.

    The first `num_samples` draws (default all), once each; for counts, repeated until
    there are at least 1,000 paths (a MAP fit has one draw, and a count forecast is
    summarised from its paths).
    """
    total = post.num_chains * post.num_draws
    count = total if num_samples is None else min(int(num_samples), total)
    if not post.model.observation.discrete:
        return np.arange(count)
    return np.tile(np.arange(count), -(-_COUNT_PATHS // count))


def assemble_forecast(
    post: Posterior,
    extended: SeriesData,
    key_noise,
    signal,
    means,
    variances,
    draw_index: np.ndarray | None = None,
) -> Forecast:
    """A `Forecast` from the per-draw predictive of the future steps (`future_predictive`).

    Args:
        post: the posterior.
        extended: its series extended by the future steps (`SeriesData.extend`).
        key_noise: PRNG key of the observation noise.
        signal: `(paths, horizon)` simulated signal paths, standardised.
        means: `(paths, horizon)` each path's predictive mean, standardised.
        variances: `(paths, horizon)` each path's predictive variance, standardised.
        draw_index: the posterior draw behind each path (`forecast_draws`); default the
            first draws, once each.

    Returns:
        The forecast in original units.
    """
    count, horizon = np.shape(signal)
    observation = post.model.observation
    draw_index = np.arange(count) if draw_index is None else np.asarray(draw_index)
    params = observation_params({k: v[draw_index] for k, v in post.flat_draws().items()})
    series = post.series
    history = pd.Series(series.to_original(series.y), index=series.index)
    index = extended.index[series.num_timesteps :]
    if observation.discrete:
        T = series.num_timesteps
        future = {name: extended.covariates[name][T:] for name in observation.columns}
        params = {**params, **observation.future_params(future)}
        draws = observation.sample_observations(key_noise, params, jnp.asarray(signal))
        return Forecast(np.asarray(draws, dtype=np.int64), index, history, discrete=True)
    noise = np.asarray(observation.predictive_noise(key_noise, params, (count, horizon)))
    draw_means = draw_sds = components = None
    if observation.exact_predictive:
        draw_means = series.to_original(np.asarray(means))
        draw_sds = np.sqrt(np.asarray(variances)) * series.scale
    else:
        # Each draw repeated until there are enough components to span the latent
        # variable's law (a MAP fit has one draw); component i takes its quantile at a
        # stratified uniform u_i.
        repeat = -(-_MIXTURE_COMPONENTS // count)
        total = count * repeat
        order = np.asarray(jax.random.permutation(jax.random.fold_in(key_noise, 1), total))
        repeated = {  # per-draw parameters only, not a weight per step
            name: np.repeat(np.asarray(v), repeat, axis=0)
            for name, v in params.items()
            if np.ndim(v) == 1
        }
        sds = observation.mixture_sds(
            repeated, np.repeat(np.asarray(variances), repeat, axis=0), (order + 0.5) / total
        )
        means = np.repeat(np.asarray(means), repeat, axis=0)
        components = (series.to_original(means), sds * series.scale)
    draws = series.to_original(np.asarray(signal) + noise)
    return Forecast(draws, index, history, draw_means, draw_sds, components)


@dataclass(frozen=True)
class Decomposition:
    """Smoothed contribution of every component, in original units.

    Attributes:
        draws: component name to draws `(num_draws, T)`; the series' mean is carried by the
            first component with states, so the contributions add up to `fitted`.
        fitted: draws of the fitted signal (everything but observation noise) `(num_draws, T)`.
        index: the time index.
        rate: for counts and binary data, draws of the fitted rate (or probability) on the
            response scale, the inverse link of `fitted`, which with the components is on
            the link scale (log rate, log odds); None for the Gaussian families.
    """

    draws: dict[str, np.ndarray]
    fitted: np.ndarray
    index: pd.Index
    rate: np.ndarray | None = None

    def to_pandas(self, interval: float = 0.9) -> dict[str, pd.DataFrame]:
        """Per component, "fitted" (and "rate" for counts): mean and central interval."""
        tail = 50 * (1 - interval)
        out = {}
        extra = {} if self.rate is None else {"rate": self.rate}
        for name, values in {**self.draws, "fitted": self.fitted, **extra}.items():
            out[name] = pd.DataFrame(
                {
                    "mean": values.mean(axis=0),
                    "lower": np.percentile(values, tail, axis=0),
                    "upper": np.percentile(values, 100 - tail, axis=0),
                },
                index=self.index,
            )
        return out


def decompose(post: Posterior, num_samples: int | None = 200, seed: int = 0) -> Decomposition:
    """Smoothed contribution of each component, with bands, in original units.

    For counts and binary data the contributions are on the link scale (log rate or log
    odds), drawn from each posterior draw's Laplace approximation, and `rate` holds the
    fitted rate (or probability).

    Args:
        post: a fitted posterior (an `Ensemble`: its highest-weight candidate's).
        num_samples: posterior draws to use (default 200; None for all).
        seed: seed of the simulation smoother.

    Returns:
        A `Decomposition` whose components sum to the fitted signal.
    """
    if not isinstance(post, Posterior):
        # An ensemble (`bsts.Ensemble`) decomposes its highest-weight candidate.
        method = getattr(post, "decompose", None)
        if method is None:
            raise ValueError(f"decompose needs a fitted Posterior, got {type(post).__name__}")
        return method(num_samples=num_samples, seed=seed)
    inputs = post.inputs
    states = post.states(num_samples=num_samples, seed=seed)  # (n, T, d)
    n = states.shape[0]
    flat = {k: v[:n] for k, v in post.flat_draws().items()}
    params = nest_parameters(post.model, flat)
    layout = post.model.layout(inputs)
    ssms = post.state_spaces()
    loadings = np.asarray(ssms.observation_matrix[:n])
    if loadings.ndim == 2:  # constant in time: (n, d) -> (n, 1, d)
        loadings = loadings[:, None, :]
    H = np.broadcast_to(loadings, (n, inputs.num_timesteps, layout.state_dim))
    scale, location = post.series.scale, post.series.location
    draws, carried = {}, False
    for name, component in post.model:
        part = np.zeros((n, inputs.num_timesteps))
        if layout.slices[name].stop > layout.slices[name].start:
            sl = layout.slices[name]
            part = part + np.einsum("nti,nti->nt", states[:, :, sl], H[:, :, sl])
        first = post.attach_networks(jax.tree_util.tree_map(lambda a: a[0], params))
        if component.offset(first[name], inputs) is not None:
            offsets = jax.vmap(
                lambda p, c=component, n=name: c.offset(post.attach_networks(p)[n], inputs)
            )(params)
            part = part + np.asarray(offsets)
        part = part * scale
        if not carried and layout.slices[name].stop > layout.slices[name].start:
            part = part + location
            carried = True
        draws[name] = part
    fitted = sum(draws.values())
    observation = post.model.observation
    rate = np.asarray(observation.mean_response(fitted)) if observation.discrete else None
    return Decomposition(draws, fitted, post.series.index, rate)


def one_step_predictions(post: Posterior) -> pd.DataFrame:
    """One-step-ahead predictive mean, sd and standardised residual per time step.

    Averaged over posterior draws: the predictive mean is the mean of the draws' one-step
    means, and the variance adds the spread between draws (law of total variance).

    For counts the moments are those of the count's one-step predictive (the Laplace
    approximation's filter predicts the signal, and the count distribution is integrated
    against it, `Count.one_step_tail`), so `residual` is a Pearson residual.

    Returns:
        DataFrame indexed by time with columns observed, mean, sd, residual (NaN where the
        observation is missing).
    """
    y = jnp.asarray(post.series.y)
    observation = post.model.observation
    if observation.discrete:
        key = jax.random.PRNGKey(0)  # unused by the count families

        def moments(ssm, p):
            mean, var, _ = observation.one_step_tail(key, ssm, y, p)
            return mean, var

        means, variances = post.map_draws(moments)
        return _one_step_table(post, np.asarray(means), np.asarray(variances))

    def moments(ssm, _):
        filtered = kalman_filter(ssm, y)
        T = y.shape[0]
        H = jnp.broadcast_to(ssm.observation_matrix, (T, ssm.state_dim))
        mean = jnp.einsum("ti,ti->t", H, filtered.predicted_mean) + ssm.observation_offset
        var = jnp.einsum("ti,tij,tj->t", H, filtered.predicted_cov, H) + ssm.observation_var
        return mean, var

    means, variances = post.map_draws(moments)
    return _one_step_table(post, np.asarray(means), np.asarray(variances))


def _one_step_table(post: Posterior, means, variances) -> pd.DataFrame:
    """The table of `one_step_predictions` from per-draw means and variances `(draws, T)`."""
    mean = means.mean(axis=0)
    var = variances.mean(axis=0) + means.var(axis=0)
    scale = post.series.scale
    observed = post.series.to_original(post.series.y)
    sd = np.sqrt(var) * scale
    predicted = post.series.to_original(mean)
    return pd.DataFrame(
        {
            "observed": observed,
            "mean": predicted,
            "sd": sd,
            "residual": (observed - predicted) / sd,
        },
        index=post.series.index,
    )
