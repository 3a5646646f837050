"""Fitting (NUTS, SVI, MAP) and the `Posterior` it returns.

`fit` wraps the public lower level: `MCMC(NUTS(model))` or `SVI(model, guide)` on the
NumPyro program that `Model.__call__` defines, with the latent states integrated out by the
Kalman filter. The `Posterior` keeps draws in standardised units internally and reports
them in original units.
"""

from __future__ import annotations

import dataclasses
import sys
import warnings
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import pandas as pd
from numpyro.infer import SVI, Trace_ELBO, autoguide

from bsts import _arviz
from bsts._chunks import map_in_chunks
from bsts._nuts import run_nuts
from bsts.batch import (
    GUIDES,
    Program,
    compiled,
    padded_arrays,
    padded_length,
    run_series,
    runs_stepwise,
)
from bsts.components import UNIT_COEFFICIENT, UNIT_NONE, UNIT_SCALE, Component, ModelInputs
from bsts.data import SeriesData, prepare_series
from bsts.kalman import StateSpace
from bsts.model import OBSERVATION_WEIGHTS, Model
from bsts.observation import OBSERVATION, observation_params
from bsts.savefile import Saveable

__all__ = [
    "METHODS",
    "Posterior",
    "as_model",
    "checked_options",
    "fit",
    "nest_parameters",
    "posterior_from_runs",
    "program_for",
    "series_jobs",
]

METHODS = ("nuts", "svi", "map")


@dataclass(frozen=True)
class Posterior(Saveable):
    """Posterior draws of a fitted model.

    Attributes:
        model: the model.
        series: the standardised data it was fitted to.
        method: "nuts", "svi" or "map".
        draws: parameter draws in standardised units, each `(chains, draws, ...)`.
        sample_stats: NUTS diagnostics (e.g. `diverging`), each `(chains, draws)`.
        seed: the seed of the fit.
        losses: the SVI loss trace; for MAP, the objective at the start and at the mode
            (BFGS), or the Adam trace with point-estimated networks; for NUTS with a
            point-estimated network, that of the SVI stage that trained it; else None.
        network_params: learned weights of point-estimated networks (`bsts.neural`), keyed
            by their `numpyro.param` site; empty without such networks.
        adaptation: NUTS's warm-up, per chain: `num_steps` (leapfrog steps of every
            warm-up iteration, `(chains, num_warmup)`) and the adapted `step_size`
            (`(chains,)`); empty for other methods.
    """

    model: Model
    series: SeriesData
    method: str
    draws: dict[str, np.ndarray]
    sample_stats: dict[str, np.ndarray] = field(default_factory=dict)
    seed: int = 0
    losses: np.ndarray | None = None
    network_params: dict = field(default_factory=dict)
    adaptation: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def inputs(self) -> ModelInputs:
        """The model inputs of the fitted series."""
        return self.model.inputs(self.series)

    @property
    def num_chains(self) -> int:
        """Number of chains (1 for SVI and MAP)."""
        return next(iter(self.draws.values())).shape[0]

    @property
    def num_draws(self) -> int:
        """Draws per chain."""
        return next(iter(self.draws.values())).shape[1]

    @property
    def samples(self) -> dict[str, np.ndarray]:
        """Parameter draws in original units, each `(chains, draws, ...)`."""
        units = self.model.units()
        out = {}
        for name, value in self.draws.items():
            if name not in units:
                continue  # internal sites (e.g. horseshoe auxiliaries)
            out[name] = self._to_original(name, units[name], value)
        return out

    def _to_original(self, name: str, unit: str, value: np.ndarray) -> np.ndarray:
        if unit == UNIT_SCALE:
            return value * self.series.scale
        if unit == UNIT_NONE:
            return value
        if unit == UNIT_COEFFICIENT:
            component = dict(zip(self.model.names, self.model.components, strict=True))[
                name.split(".")[0]
            ]
            x_scales = np.array([self.series.covariate_scales[c] for c in component.columns])
            return value * self.series.scale / x_scales
        raise ValueError(f"unknown unit {unit!r} for {name}")

    def flat_draws(self) -> dict[str, np.ndarray]:
        """Standardised draws with chains and draws merged: `(chains * draws, ...)`."""
        return {k: v.reshape(-1, *v.shape[2:]) for k, v in self.draws.items()}

    def state_spaces(self, inputs: ModelInputs | None = None) -> StateSpace:
        """The state-space model of every draw, batched over a leading draw axis."""
        inputs = inputs or self.inputs
        params = nest_parameters(self.model, self.flat_draws())
        return jax.vmap(lambda p: self._draw_state_space(p, inputs))(params)

    def _draw_state_space(self, params: dict, inputs: ModelInputs) -> StateSpace:
        """The state-space model of one draw's nested parameters."""
        return self.model.state_space(self.attach_networks(params), inputs)

    def attach_networks(self, params: dict) -> dict:
        """Nested parameters of one draw with the networks' weights put back."""
        return self.model.attach_networks(params, self.network_params)

    def map_draws(self, fn, *extra, draws=None, inputs: ModelInputs | None = None):
        """`fn(ssm, observation_params, *extra)` for each posterior draw, in bounded memory.

        Each draw's state space is built inside the mapped function, so an uneven series'
        time-varying fields never exist for all draws at once, and the draws are mapped in
        chunks whose per-step buffers fit a fixed budget (`bsts._chunks`).

        Args:
            fn: a traceable function of one draw's `StateSpace`, its observation parameters
                and one item of each of `extra`.
            *extra: arrays with one item per selected draw along their leading axis (keys).
            draws: indices of the flat draws to use (default all, in order).
            inputs: the model inputs (default the fitted series').

        Returns:
            `fn`'s outputs stacked over the selected draws.
        """
        inputs = inputs or self.inputs
        flat = self.flat_draws()
        if draws is not None:
            flat = {name: value[draws] for name, value in flat.items()}
        params, observation = nest_parameters(self.model, flat), observation_params(flat)
        state_dim = max(self.model.layout(inputs).state_dim, 1)
        per_draw = inputs.num_timesteps * state_dim**2

        def one(p, o, *items):
            return fn(self._draw_state_space(p, inputs), o, *items)

        return map_in_chunks(one, (params, observation, *extra), elements_per_item=per_draw)

    def pointwise_log_likelihood(self) -> np.ndarray:
        r"""$\log p(y_t \mid y_{<t})$ per draw and step in original units, `(chains, draws, T)`.

        Zero where $y_t$ is missing.
        """
        y = jnp.asarray(self.series.y)
        observation = self.model.observation
        per_step = self.map_draws(lambda ssm, p: observation.one_step_log_likelihood(ssm, y, p))
        observed = ~np.isnan(self.series.y)
        per_step = np.asarray(per_step) - observed * np.log(self.series.scale)
        return per_step.reshape(self.num_chains, self.num_draws, -1)

    def to_arviz(self):
        """ArviZ data: posterior (original units), sample_stats, observed_data, log_likelihood.

        The log-likelihood is pointwise and one-step-ahead (one value per time step, 0 where
        missing), so `az.loo` and leave-future-out comparisons work on it.
        """
        observed = self.series.to_original(self.series.y)
        return _arviz.to_inference_data(
            self.samples,
            sample_stats=self.sample_stats or None,
            observed_data={"y": observed},
            log_likelihood={"y": self.pointwise_log_likelihood()},
        )

    def summary(self, hdi_prob: float = 0.9):
        """ArviZ summary (mean, sd, hdi, ess_bulk, r_hat) of every parameter, original units.

        A MAP fit is a point, not a sample: its table has the estimate (the posterior
        mode) in the `mean` column and nothing else, rather than NaN spreads and
        diagnostics.
        """
        if self.method == "map":
            return _point_table(self.samples)
        data = _arviz.to_inference_data(self.samples)
        return _arviz.summary(data, hdi_prob=hdi_prob)

    def states(self, num_samples: int | None = None, seed: int = 0) -> np.ndarray:
        """Latent state paths from the simulation smoother, one per posterior draw.

        For counts the smoother runs on each draw's Laplace approximation (paths from the
        Gaussian approximation of the states' posterior), or resamples such paths by their
        importance weights (`bsts.counts.Count`, `importance_samples`).

        Args:
            num_samples: how many posterior draws to use (default all).
            seed: seed of the simulation smoother.

        Returns:
            Standardised states `(num_samples, T, d)`.
        """
        total = self.num_chains * self.num_draws
        count = total if num_samples is None else min(int(num_samples), total)
        keys = jax.random.split(jax.random.PRNGKey(seed), count)
        y = jnp.asarray(self.series.y)
        observation = self.model.observation

        def path(ssm, p, key):
            return observation.draw_states(key, ssm, y, p)

        return np.asarray(self.map_draws(path, keys, draws=np.arange(count)))


def _point_table(samples: dict[str, np.ndarray]) -> pd.DataFrame:
    """One row per parameter element (labelled as ArviZ labels them), the estimate as `mean`."""
    labels, values = [], []
    for name, value in samples.items():
        point = np.asarray(value)[0, 0]
        for index in np.ndindex(point.shape):
            labels.append(f"{name}[{', '.join(map(str, index))}]" if index else name)
            values.append(float(point[index]))
    return pd.DataFrame({"mean": values}, index=pd.Index(labels))


def nest_parameters(model: Model, flat: dict) -> dict:
    """Site-keyed arrays to the `{component: {parameter: value}}` form `state_space` takes.

    The observation model's parameters go under `observation`, like a component's.
    """
    params = {name: {} for name in [*model.names, OBSERVATION]}
    for site, value in flat.items():
        component, _, parameter = site.partition(".")
        if component in params:
            params[component][parameter] = jnp.asarray(value)
        else:
            params[site] = jnp.asarray(value)
    return params


def _positive_int(value, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{what} must be a positive integer, got {value!r}")
    return int(value)


def _non_negative_int(value, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"{what} must be a non-negative integer, got {value!r}")
    return int(value)


def _probability(value, what: str) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float, np.number))
        or not 0 < value < 1
    ):
        raise ValueError(f"{what} must be a number in (0, 1), got {value!r}")
    return float(value)


def _flag(value, what: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{what} must be True or False, got {value!r}")
    return bool(value)


def checked_options(
    *,
    method,
    num_warmup,
    num_samples,
    num_chains,
    num_steps,
    guide,
    learning_rate,
    target_accept_prob,
    max_tree_depth,
    dense_mass,
) -> dict:
    """The fitting options of `fit` (and `fit_many`), validated.

    Raises:
        ValueError: an unknown method or guide, non-positive counts, or a NUTS option out
            of range.
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    if guide not in GUIDES:
        raise ValueError(f"unknown guide {guide!r}; choose one of {', '.join(GUIDES)}")
    return {
        "num_samples": _positive_int(num_samples, "num_samples"),
        "num_chains": _positive_int(num_chains, "num_chains"),
        "num_steps": _positive_int(num_steps, "num_steps"),
        "num_warmup": _non_negative_int(num_warmup, "num_warmup"),
        "guide": guide,
        "learning_rate": float(learning_rate),
        "target_accept_prob": _probability(target_accept_prob, "target_accept_prob"),
        "max_tree_depth": _positive_int(max_tree_depth, "max_tree_depth"),
        "dense_mass": _flag(dense_mass, "dense_mass"),
    }


def as_model(model) -> Model:
    """A `Model` from a model or a single component.

    Raises:
        ValueError: anything else.
    """
    if isinstance(model, Component):
        return Model([model])
    if isinstance(model, Model):
        return model
    raise ValueError(f"model must be a bsts Model or component, got {type(model).__name__}")


def fit(
    model,
    data,
    target: str | None = None,
    method: str = "nuts",
    *,
    num_warmup: int = 500,
    num_samples: int = 500,
    num_chains: int = 2,
    num_steps: int = 2000,
    guide: str = "normal",
    learning_rate: float = 0.01,
    seed: int = 0,
    progress_bar: bool | None = None,
    target_accept_prob: float = 0.8,
    max_tree_depth: int = 10,
    dense_mass: bool = False,
) -> Posterior:
    """Fit a structural model to a series.

    Args:
        model: a `Model`, a single component, or a `bsts.Auto` (then the result is an
            `Ensemble`).
        data: a pandas Series (the target) or DataFrame with `target=` (covariate columns
            are those the components name). NaN in the target is missing data.
        target: the target column of a DataFrame.
        method: "nuts" (MCMC), "svi" (variational) or "map" (posterior mode, by BFGS
            from the prior median, `bsts.bfgs`). With
            point-estimated network weights (`bsts.neural`), "svi" and "map" learn them
            with the rest, and "nuts" runs two stages: SVI (with `guide`, `num_steps`,
            `learning_rate`) trains them, then NUTS samples the structural parameters
            with the network frozen.
        num_warmup: NUTS warm-up iterations per chain.
        num_samples: NUTS draws per chain, or draws taken from the SVI guide.
        num_chains: NUTS chains; they share one compilation and run side by side, on a
            device each when the host exposes enough (`numpyro.set_host_device_count`),
            else from one thread each (see `bsts._nuts`).
        num_steps: SVI steps, or the most objective evaluations of BFGS for MAP (Adam steps
            with point-estimated networks).
        guide: SVI guide: "normal" (AutoNormal), "multivariate_normal" or "low_rank".
        learning_rate: Adam step size for SVI (and MAP with point-estimated networks).
        seed: random seed; the same seed gives the same draws.
        progress_bar: show progress; default: only when writing to a terminal.
        target_accept_prob: NUTS's target acceptance probability, in (0, 1); higher
            means smaller steps (fewer divergences, longer trajectories).
        max_tree_depth: NUTS's largest trajectory has `2**max_tree_depth` steps.
        dense_mass: adapt a dense mass matrix instead of a diagonal one (NUTS), for
            strongly correlated parameters.

    Returns:
        A `Posterior`.

    Raises:
        ValueError: an unknown method or guide, non-positive counts, a NUTS option out of
            range, or bad data.
    """
    given = {
        "num_warmup": num_warmup,
        "num_samples": num_samples,
        "num_chains": num_chains,
        "num_steps": num_steps,
        "guide": guide,
        "learning_rate": learning_rate,
        "target_accept_prob": target_accept_prob,
        "max_tree_depth": max_tree_depth,
        "dense_mass": dense_mass,
    }
    selector = getattr(model, "__bsts_fit__", None)
    if selector is not None:
        # A structure chooser (`bsts.Auto`) sits above this module and fits itself.
        return selector(data, target, method, seed=seed, progress_bar=progress_bar, **given)
    model = as_model(model)
    options = checked_options(method=method, **given)
    if progress_bar is None:
        progress_bar = sys.stderr.isatty()
    series = prepare_series(
        data,
        target,
        model.covariate_columns,
        standardise=model.observation.standardise,
        check_values=model.observation.check_values,
        raw=model.observation.columns,
    )
    inputs, y = model.inputs(series), jnp.asarray(series.y)
    problem = _Problem(model, series, inputs, y, seed, progress_bar)
    post = _FITTERS[method](problem, **options)
    if method == "nuts":
        _warn_at_maximum_depth(post, options["max_tree_depth"])
    return post


def _warn_at_maximum_depth(post: Posterior, max_tree_depth: int) -> None:
    """Warn when NUTS trajectories were cut at the largest tree NUTS may build."""
    cut = int(np.sum(post.sample_stats["num_steps"] >= 2**max_tree_depth - 1))
    if cut:
        warnings.warn(
            f"{cut} of {post.sample_stats['num_steps'].size} NUTS draws stopped at the "
            f"maximum tree depth ({max_tree_depth}, {2**max_tree_depth - 1} leapfrog steps) "
            "before their trajectories turned back, so the chains explore slowly (check "
            "ess_bulk in post.summary()). Raise max_tree_depth, run longer, or give the "
            "parameters with the smallest ESS priors that rule out the region the "
            "sampler wanders in.",
            RuntimeWarning,
            stacklevel=3,
        )


@dataclass(frozen=True)
class _Problem:
    """What every fitting method starts from."""

    model: Model
    series: SeriesData
    inputs: ModelInputs
    y: jax.Array
    seed: int
    progress_bar: bool

    def keys(self):
        """The keys of the optimisation (or SVI stage) and of the draws from a guide."""
        return jax.random.split(jax.random.PRNGKey(self.seed))


def _fit_nuts(
    problem: _Problem,
    *,
    num_warmup,
    num_samples,
    num_chains,
    num_steps,
    guide,
    learning_rate,
    target_accept_prob,
    max_tree_depth,
    dense_mass,
) -> Posterior:
    """NUTS; with point-estimated networks, after an SVI stage that trains them."""
    model = problem.model
    if _compiled_once(problem):
        settings = {
            "num_warmup": num_warmup,
            "num_samples": num_samples,
            "target_accept_prob": target_accept_prob,
            "max_tree_depth": max_tree_depth,
            "dense_mass": dense_mass,
            "progress_chains": num_chains if problem.progress_bar else 0,
        }
        return _fit_compiled(problem, "nuts", settings, num_chains)
    network_sites = model.network_param_sites()
    network_params, losses, program = {}, None, model
    if network_sites:
        # Two stages: SVI trains the point-estimated weights, then NUTS samples the
        # structural parameters with the network frozen at them.
        key_fit, _ = problem.keys()
        result = _run_svi(problem, GUIDES[guide](model), num_steps, learning_rate, key_fit)
        network_params = {site: result.params[site] for site in network_sites}
        losses = np.asarray(result.losses)
        program = numpyro.handlers.substitute(model, data=network_params)
    draws, stats = run_nuts(
        program,
        (problem.inputs,),
        {"y": problem.y},
        num_warmup=num_warmup,
        num_samples=num_samples,
        num_chains=num_chains,
        seed=problem.seed,
        progress_bar=problem.progress_bar,
        target_accept_prob=target_accept_prob,
        max_tree_depth=max_tree_depth,
        dense_mass=dense_mass,
    )
    sample_stats, adaptation = _split_nuts_stats(stats)
    return Posterior(
        model,
        problem.series,
        "nuts",
        draws,
        sample_stats,
        problem.seed,
        losses,
        network_params,
        adaptation,
    )


def _fit_svi(problem: _Problem, *, num_samples, num_steps, guide, learning_rate, **_) -> Posterior:
    """Variational inference with an automatic guide; draws taken from the guide."""
    if _compiled_once(problem):
        settings = {
            "num_steps": num_steps,
            "num_samples": num_samples,
            "guide": guide,
            "learning_rate": float(learning_rate),
        }
        return _fit_compiled(problem, "svi", settings, 1)
    return _fit_guide(
        problem, "svi", GUIDES[guide](problem.model), num_samples, num_steps, learning_rate
    )


def _fit_map(problem: _Problem, *, num_steps, learning_rate, **_) -> Posterior:
    """The posterior mode; one draw.

    Without point-estimated networks: BFGS (at most `num_steps` evaluations) from the
    prior median, a compiled program shared with `fit_many`. With them: a point-mass
    guide optimised by Adam alongside the networks' weights.
    """
    if _compiled_once(problem):
        return _fit_compiled(problem, "map", {"num_steps": num_steps}, 1)
    guide = autoguide.AutoDelta(problem.model)
    return _fit_guide(problem, "map", guide, 1, num_steps, learning_rate)


def _fit_guide(problem, method, guide, count, num_steps, learning_rate) -> Posterior:
    model = problem.model
    key_fit, key_draw = problem.keys()
    result = _run_svi(problem, guide, num_steps, learning_rate, key_fit)
    network_params = {site: result.params[site] for site in model.network_param_sites()}
    key_guide, key_model = jax.random.split(key_draw)
    latent = numpyro.infer.Predictive(guide, params=result.params, num_samples=count)(
        key_guide, problem.inputs
    )
    # The model, replayed on the guide's draws, adds its deterministic sites.
    derived = numpyro.infer.Predictive(model, posterior_samples=latent, params=network_params)(
        key_model, problem.inputs
    )
    internal = {"y", *model.penalty_sites()}
    draws = {k: np.asarray(v)[None] for k, v in {**latent, **derived}.items() if k not in internal}
    losses = np.asarray(result.losses)
    return Posterior(model, problem.series, method, draws, {}, problem.seed, losses, network_params)


_FITTERS = {"nuts": _fit_nuts, "svi": _fit_svi, "map": _fit_map}


def _compiled_once(problem: _Problem) -> bool:
    """Whether the fit runs a program compiled once per model structure (`bsts.batch`).

    Point-estimated networks keep their own path. A series with gaps before its end
    runs the compiled programs too: their likelihood finds the gaps at run time
    (`bsts.kalman.segments`), with room for them set by the bucket (`Program.gaps`).
    """
    return not problem.model.network_param_sites()


def program_for(
    method: str, length: int, regular: bool, settings: dict, gaps: int | None = 0
) -> Program:
    """The compiled program of a fitting method for a bucket of series."""
    return Program(method, length, regular, tuple(sorted(settings.items())), gaps)


def series_jobs(method: str, arrays: dict, seed: int, num_chains: int) -> list[tuple]:
    """The program calls of one series, with the keys `fit` gives it for `seed`."""
    if method == "nuts":
        chain_keys = jax.random.split(jax.random.PRNGKey(seed), num_chains)
        split = jax.vmap(jax.random.split)(chain_keys)
        return [(split[c, 0], split[c, 1], arrays) for c in range(num_chains)]
    if method == "map":  # optimised with the first half of the seed's key, as SVI is
        return [(jax.random.split(jax.random.PRNGKey(seed))[0], arrays)]
    return [(jax.random.PRNGKey(seed), arrays)]


def posterior_from_runs(model: Model, series: SeriesData, method: str, runs: list, seed: int):
    """A series' `Posterior` from its program results (one per NUTS chain)."""
    if method == "nuts":
        draws = {name: np.stack([run[0][name] for run in runs]) for name in runs[0][0]}
        stats = {name: np.stack([run[1][name] for run in runs]) for name in runs[0][1]}
        stats, adaptation = _split_nuts_stats(stats)
        losses = None
    else:
        values, losses = runs[0]
        draws = {name: np.asarray(v)[None] for name, v in values.items()}
        if method == "map":
            draws = {name: v[:, None] for name, v in draws.items()}
        stats, adaptation, losses = {}, {}, np.asarray(losses)
    if OBSERVATION_WEIGHTS in draws:
        # Weights of padded steps were drawn from their prior: they belong to no data.
        draws[OBSERVATION_WEIGHTS] = draws[OBSERVATION_WEIGHTS][..., : series.num_timesteps]
    return Posterior(model, series, method, draws, stats, seed, losses, adaptation=adaptation)


def _split_nuts_stats(stats: dict) -> tuple[dict, dict]:
    """NUTS statistics per draw (`sample_stats`) and of the warm-up (`adaptation`)."""
    adaptation = {
        "num_steps": stats["warmup_num_steps"],
        "step_size": stats["step_size"],
    }
    return {"diverging": stats["diverging"], "num_steps": stats["num_steps"]}, adaptation


def _fit_compiled(problem: _Problem, method: str, settings: dict, num_chains: int):
    series = problem.series
    gaps = series.gap_capacity  # a scan of the series: found once
    stepwise = runs_stepwise(series.regular, gaps)
    length = padded_length(problem.model, series.num_timesteps, method, stepwise)
    program = program_for(method, length, series.regular, settings, gaps)
    arrays = padded_arrays(series, problem.inputs, length)
    jobs = series_jobs(method, arrays, problem.seed, num_chains)
    runs = run_series(compiled(problem.model, program, *jobs[0]), jobs)
    return posterior_from_runs(problem.model, series, method, runs, problem.seed)


def _run_svi(problem: _Problem, guide, num_steps, learning_rate, key):
    """Optimise the ELBO; neural components may use their training layout meanwhile."""
    svi = SVI(problem.model, guide, numpyro.optim.Adam(learning_rate), Trace_ELBO())
    training = dataclasses.replace(problem.inputs, training=True)
    return svi.run(key, num_steps, training, y=problem.y, progress_bar=problem.progress_bar)
