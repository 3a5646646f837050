"""Many series at once: `fit_many` and the `Fits` collection it returns.

`fit_many` splits a long frame into series (`bsts.panel`), pads each to a bucket length,
and runs one compiled program per model structure and bucket over all of them
(`bsts.batch`), on the local cores or on a Dask cluster. Each series is fitted exactly as
`bsts.fit` with the same seed fits it alone: the same keys, the same program, so the
result does not depend on the batch, the bucket or the backend.
"""

from __future__ import annotations

import math
import sys
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from bsts import _arviz
from bsts.batch import (
    Program,
    compile_all,
    compile_cost,
    compiled,
    is_compiled,
    merged_lengths,
    padded_arrays,
    padded_draws,
    padded_length,
    run_calls,
    run_series,
    runs_stepwise,
)
from bsts.data import SeriesData
from bsts.forecast import assemble_forecast, forecast_draws
from bsts.inference import (
    as_model,
    checked_options,
    nest_parameters,
    posterior_from_runs,
    program_for,
    series_jobs,
)
from bsts.model import OBSERVATION_WEIGHTS, Model
from bsts.panel import prepare_panel
from bsts.savefile import Saveable

__all__ = [
    "BACKENDS",
    "Fits",
    "ManyForecast",
    "SeriesCollection",
    "fit_groups",
    "fit_many",
    "fit_prepared",
]

BACKENDS = ("local", "dask")


class SeriesCollection(Mapping):
    """Results by series id, in the frame's order: the base of `Fits` and its kin.

    A subclass names the dict that holds them in `_by_id`.
    """

    _by_id: ClassVar[str]
    _missing: ClassVar[str] = "no fitted series"

    def __getitem__(self, key):
        try:
            return getattr(self, self._by_id)[key]
        except KeyError:
            raise KeyError(f"{self._missing} {key!r}") from None

    def __iter__(self) -> Iterator:
        return iter(getattr(self, self._by_id))

    def __len__(self) -> int:
        return len(getattr(self, self._by_id))

    @property
    def ids(self) -> list:
        """The series' ids."""
        return list(getattr(self, self._by_id))


@dataclass(frozen=True)
class Fits(SeriesCollection, Saveable):
    """The posteriors of a collection of series, by id.

    `fits[id]` is an ordinary `Posterior`. `bsts.forecast(fits, horizon=...)` forecasts
    every series.

    Attributes:
        model: the model every series was fitted with.
        method: "nuts", "svi" or "map".
        posteriors: id to `Posterior`, in the order of the frame.
        skipped: series left out with `errors="skip"`: `unique_id` and `reason`.
        seed: the seed of the fit.
        id_col: the id column of the frame (future frames use it too).
        time_col: its time column (None: the index).
    """

    model: Model
    method: str
    posteriors: dict
    skipped: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=["unique_id"]))
    seed: int = 0
    id_col: str = "unique_id"
    time_col: str | None = "ds"

    _by_id = "posteriors"

    def __repr__(self) -> str:
        return f"Fits({len(self)} series, method={self.method!r}, model={self.model!r})"

    def summary(self, hdi_prob: float = 0.9) -> pd.DataFrame:
        """One row per series and scalar parameter, in original units (long format).

        Columns: `unique_id`, `parameter`, `mean`, `sd`, the HDI bounds, `ess_bulk`, `r_hat`
        (ArviZ's, computed for all series at once), and the series' `divergences` and
        `converged` flag (see `diagnostics`). With one chain, ESS and R-hat treat its two
        halves as two chains. A MAP fit has only the mode, as `mean`. Per-step parameters
        (Student-t mixing weights) are left out; `fits[id].summary()` has them.
        """
        draws = self._stacked_samples()
        if self.method == "map":
            return self._modes(draws)
        frames = []
        for name, values in draws.items():
            table = _arviz.summary(_arviz.to_inference_data({name: values}), hdi_prob=hdi_prob)
            per_series = len(table) // len(self)
            table.insert(0, "parameter", _parameter_labels(name, table.index, per_series))
            table.insert(0, "unique_id", np.repeat(np.asarray(self.ids, dtype=object), per_series))
            frames.append(table.reset_index(drop=True))
        out = pd.concat(frames, ignore_index=True)
        if self.method == "svi":
            out = out.drop(columns=["ess_bulk", "r_hat"])
        flags = self.diagnostics(summary=out) if self.method == "nuts" else None
        if flags is not None:
            out = out.merge(
                flags[["divergences", "converged"]],
                left_on="unique_id",
                right_index=True,
                how="left",
            )
        order = {key: i for i, key in enumerate(self.ids)}
        out = out.sort_values("unique_id", key=lambda c: c.map(order), kind="stable")
        return out.reset_index(drop=True)

    def forecast(
        self,
        horizon: int | None = None,
        future: pd.DataFrame | None = None,
        seed: int = 0,
        num_samples: int | None = None,
    ) -> ManyForecast:
        """Forecast every series; `bsts.forecast(fits, ...)` calls this.

        Each series' forecast equals `bsts.forecast(fits[id], ...)` with the same seed;
        the per-draw predictive is compiled once per bucket of extended lengths.

        Args:
            horizon: future steps per series.
            future: a long frame of future covariates (id and time columns as in the
                fit, one row per series and future step); required with covariates.
            seed: random seed.
            num_samples: posterior draws to use per series (default all).

        Returns:
            A `ManyForecast`.

        Raises:
            ValueError: bad horizon, or a series without its future rows.
        """
        futures = self._future_frames(future)
        prepared = {}
        for key in self.ids:
            post = self[key]
            try:
                prepared[key] = post.series.extend(horizon, futures.get(key))
            except ValueError as error:
                raise ValueError(f"series {key!r}: {error}") from error
        key_states, key_noise = jax.random.split(jax.random.PRNGKey(seed))
        buckets = self._forecast_buckets(prepared, key_states, num_samples)
        plans = []
        for (length, regular, steps), members in buckets.items():
            program = Program("forecast", length, regular, (("horizon", steps),))
            jobs = [
                (key_states, *self._forecast_arguments(key, prepared[key], length, num_samples))
                for key in members
            ]
            plans.append((program, jobs, members))
        compile_all([(self.model, program, jobs[0]) for program, jobs, _ in plans])
        forecasts = {}
        for program, jobs, members in plans:
            function = compiled(self.model, program, *jobs[0])
            # One series at a time: two executions of this program from different threads
            # have deadlocked XLA's CPU runtime (its LAPACK calls), and a forecast is cheap.
            outputs = run_series(function, jobs, workers=1)
            for key, (signal, means, variances) in zip(members, outputs, strict=True):
                forecasts[key] = assemble_forecast(
                    self[key],
                    prepared[key],
                    key_noise,
                    signal,
                    means,
                    variances,
                    forecast_draws(self[key], num_samples),
                )
        return ManyForecast({key: forecasts[key] for key in self.ids})

    def _forecast_buckets(self, prepared: dict, key_states, num_samples) -> dict[tuple, list]:
        """Series by `(bucket, regular, future steps)`: one forecast program each."""
        by_steps: dict[int, list] = {}
        for key, extended in prepared.items():
            steps = extended.num_timesteps - self[key].series.num_timesteps
            by_steps.setdefault(steps, []).append(key)
        buckets: dict[tuple, list] = {}
        for steps, keys in by_steps.items():
            draws = max(forecast_draws(self[k], num_samples).size for k in keys)
            options = (("horizon", steps),)

            def ready(i, length, keys=keys, options=options):
                key = keys[i]
                program = Program("forecast", length, prepared[key].regular, options)
                arguments = self._forecast_arguments(key, prepared[key], length, num_samples)
                return is_compiled(self.model, program, key_states, *arguments)

            lengths = merged_lengths(
                self.model,
                [
                    (padded_length(self.model, prepared[k].num_timesteps), prepared[k].regular)
                    for k in keys
                ],
                compile_cost("forecast", draws),
                ready,
            )
            for key, length in zip(keys, lengths, strict=True):
                buckets.setdefault((length, prepared[key].regular, steps), []).append(key)
        return buckets

    def _future_frames(self, future) -> dict:
        if future is None:
            return {}
        if not isinstance(future, pd.DataFrame) or self.id_col not in future.columns:
            raise ValueError(
                f"future must be a long DataFrame with the id column {self.id_col!r}, one row "
                "per series and future step"
            )
        out = {}
        for key, rows in future.groupby(self.id_col, sort=False):
            rows = rows.drop(columns=self.id_col)
            out[key] = rows.set_index(self.time_col) if self.time_col is not None else rows
        missing = [key for key in self.ids if key not in out]
        if missing:
            raise ValueError(f"future has no rows for series {missing[:5]}")
        return out

    def _forecast_arguments(self, key, extended: SeriesData, length: int, num_samples):
        """The draws (nested, standardised) and padded arrays of one series' forecast."""
        post = self[key]
        draw_index = forecast_draws(post, num_samples)
        flat = {name: value[draw_index] for name, value in post.flat_draws().items()}
        flat = padded_draws(flat, length)
        params = nest_parameters(self.model, flat)
        arrays = padded_arrays(extended, self.model.inputs(extended), length)
        arrays["length"] = jnp.asarray(post.series.num_timesteps, jnp.int32)
        return params, arrays

    def diagnostics(
        self,
        max_r_hat: float = 1.05,
        min_ess: float = 100.0,
        summary: pd.DataFrame | None = None,
    ) -> pd.DataFrame:
        """Per series: divergences, the worst R-hat and ESS, and whether it converged.

        A NUTS fit counts as converged when it has no divergent transition, every R-hat
        is at most `max_r_hat` and every bulk ESS at least `min_ess`. Series that did not
        converge are listed, never dropped: refit them with more warm-up or a higher
        `target_accept_prob`.

        Returns:
            A DataFrame indexed by series id: `divergences`, `max_r_hat`, `min_ess_bulk`,
            `converged`.

        Raises:
            ValueError: the fit is not NUTS (SVI and MAP have no such diagnostics).
        """
        if self.method != "nuts":
            raise ValueError(f"diagnostics need NUTS draws; this fit used {self.method!r}")
        table = self.summary() if summary is None else summary
        grouped = table.groupby("unique_id", sort=False)
        out = pd.DataFrame(
            {
                "divergences": [int(self[key].sample_stats["diverging"].sum()) for key in self.ids],
                "max_r_hat": grouped["r_hat"].max().reindex(self.ids).to_numpy(),
                "min_ess_bulk": grouped["ess_bulk"].min().reindex(self.ids).to_numpy(),
            },
            index=pd.Index(self.ids, name="unique_id"),
        )
        out["converged"] = (
            (out["divergences"] == 0)
            & (out["max_r_hat"] <= max_r_hat)
            & (out["min_ess_bulk"] >= min_ess)
        )
        return out

    def _modes(self, draws: dict[str, np.ndarray]) -> pd.DataFrame:
        """The MAP table: one mode per series and scalar parameter."""
        frames = []
        for name, values in draws.items():
            modes = values[0, 0].reshape(len(self), -1)
            per_series = modes.shape[1]
            frames.append(
                pd.DataFrame(
                    {
                        "unique_id": np.repeat(np.asarray(self.ids, dtype=object), per_series),
                        "parameter": _parameter_labels(name, range(modes.size), per_series),
                        "mean": modes.ravel(),
                        "order": np.repeat(np.arange(len(self)), per_series),
                    }
                )
            )
        out = pd.concat(frames, ignore_index=True).sort_values("order", kind="stable")
        return out.drop(columns="order").reset_index(drop=True)

    def _stacked_samples(self) -> dict[str, np.ndarray]:
        """Each parameter's draws for all series: `(chains', draws', series, ...)`."""
        per_series = [self[key].samples for key in self.ids]
        out = {}
        for name in per_series[0]:
            if name == OBSERVATION_WEIGHTS:
                continue
            values = np.stack([samples[name] for samples in per_series], axis=2)
            chains, draws = values.shape[:2]
            if chains == 1 and self.method != "map" and draws >= 8:
                half = draws // 2
                values = values[:, : 2 * half].reshape(2, half, *values.shape[2:])
            out[name] = values
        return out


@dataclass(frozen=True)
class ManyForecast(SeriesCollection):
    """The forecasts of a collection of series, by id; `fc[id]` is a `Forecast`."""

    forecasts: dict

    _by_id = "forecasts"
    _missing = "no forecast for series"

    def to_pandas(self, interval: float = 0.9) -> pd.DataFrame:
        """Long format: `unique_id`, `time`, `mean`, `median`, `lower`, `upper`."""
        frames = []
        for key, prediction in self.forecasts.items():
            table = prediction.to_pandas(interval=interval)
            table.index.name = "time"
            table = table.reset_index()
            table.insert(0, "unique_id", key)
            frames.append(table)
        return pd.concat(frames, ignore_index=True)


def _parameter_labels(name: str, labels, per_series: int) -> list[str]:
    """`name` for a scalar parameter, `name[k]` for the elements of a vector one."""
    if per_series == 1:
        return [name] * len(labels)
    return [f"{name}[{k}]" for _ in range(len(labels) // per_series) for k in range(per_series)]


def _progress(total: int, enabled: bool):
    if not enabled:
        return None, lambda: None
    from tqdm.auto import tqdm

    bar = tqdm(total=total, unit="series")
    return bar.update, bar.close


def fit_many(
    model,
    frame: pd.DataFrame,
    *,
    id_col: str = "unique_id",
    time_col: str | None = "ds",
    target: str = "y",
    method: str = "nuts",
    num_warmup: int = 500,
    num_samples: int = 500,
    num_chains: int = 2,
    num_steps: int = 2000,
    guide: str = "normal",
    learning_rate: float = 0.01,
    target_accept_prob: float = 0.8,
    max_tree_depth: int = 10,
    dense_mass: bool = False,
    seed: int = 0,
    errors: str = "raise",
    backend: str = "local",
    workers: int | None = None,
    progress_bar: bool | None = None,
) -> Fits:
    """Fit one structural model to every series of a long frame.

    Each series is fitted as `bsts.fit(model, series, method=..., seed=seed)` would fit
    it, but the programs are compiled once per model structure and bucket of lengths, not
    once per series, and the series run side by side.

    Args:
        model: a `Model`, a single component, or a `bsts.Auto` (then the result is an
            `bsts.auto.Ensembles`, one `Ensemble` per series).
        frame: long format: one row per (series, time), e.g. columns `unique_id, ds, y`,
            plus the covariate columns the model's components name. NaN targets (or
            missing rows of a regular calendar) are missing data.
        id_col: the column naming the series.
        time_col: the time column; None means the frame's index is the time.
        target: the target column.
        method: "nuts", "svi" or "map" (the posterior mode, by BFGS).
        num_warmup: NUTS warm-up iterations per chain.
        num_samples: NUTS draws per chain, or draws from the SVI guide.
        num_chains: NUTS chains per series.
        num_steps: SVI steps, or the most objective evaluations of BFGS for MAP.
        guide: SVI guide: "normal", "multivariate_normal" or "low_rank".
        learning_rate: Adam step size for SVI.
        target_accept_prob: NUTS's target acceptance probability.
        max_tree_depth: NUTS's largest tree is `2**max_tree_depth` steps.
        dense_mass: adapt a dense mass matrix (NUTS).
        seed: random seed; each series gets the keys `bsts.fit` would give it.
        errors: "raise" (default): a bad series raises an error naming it; "skip": bad
            series are left out and listed, with the reason, in `Fits.skipped`.
        backend: "local" (the machine's cores) or "dask" (the current
            `dask.distributed` Client, else a new LocalCluster; `pip install "bsts[dask]"`).
        workers: local threads (default: one per core).
        progress_bar: a bar over series; default: only when writing to a terminal.

    Returns:
        The `Fits`.

    Raises:
        ValueError: bad options, a bad frame, or (with `errors="raise"`) a bad series.
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
    selector = getattr(model, "__bsts_fit_many__", None)
    if selector is not None:
        # A structure chooser (`bsts.Auto`) sits above this module and fits itself.
        run = {"seed": seed, "backend": backend, "workers": workers, "progress_bar": progress_bar}
        return selector(frame, id_col, time_col, target, method, errors=errors, **run, **given)
    model = as_model(model)
    options = checked_options(method=method, **given)
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if model.network_param_sites():
        raise ValueError(
            "fit_many does not fit point-estimated networks (their SVI stage is per series); "
            "use bayesian=True networks, or bsts.fit for each series"
        )
    if progress_bar is None:
        progress_bar = sys.stderr.isatty()

    panel = prepare_panel(
        frame,
        id_col=id_col,
        time_col=time_col,
        target=target,
        covariates=model.covariate_columns,
        errors=errors,
        check=model.inputs,
        standardise=model.observation.standardise,
        check_values=model.observation.check_values,
        raw=model.observation.columns,
    )
    posteriors = fit_prepared(
        model,
        dict(zip(panel.ids, panel.series, strict=True)),
        method,
        options,
        seed=seed,
        backend=backend,
        workers=workers,
        progress_bar=progress_bar,
    )
    fits = Fits(model, method, posteriors, panel.skipped, seed, id_col, time_col)
    if method == "nuts":
        _warn_at_maximum_depth(posteriors, options["max_tree_depth"])
    if len(panel.skipped):
        warnings.warn(
            f"{len(panel.skipped)} series skipped (see fits.skipped for why): "
            f"{list(panel.skipped['unique_id'][:5])}",
            stacklevel=2,
        )
    return fits


def _warn_at_maximum_depth(posteriors: dict, max_tree_depth: int) -> None:
    """Warn, naming them, when series had NUTS draws cut at the largest tree allowed."""
    limit = 2**max_tree_depth - 1
    cut = [
        key for key, post in posteriors.items() if np.any(post.sample_stats["num_steps"] >= limit)
    ]
    if cut:
        warnings.warn(
            f"{len(cut)} of {len(posteriors)} series had NUTS draws stopped at the maximum "
            f"tree depth ({max_tree_depth}, {limit} leapfrog steps) before their trajectories "
            f"turned back, so their chains explore slowly: {cut[:5]}. Check their ESS in "
            "fits.diagnostics(); raise max_tree_depth, or run longer.",
            RuntimeWarning,
            stacklevel=3,
        )


def fit_prepared(
    model: Model,
    series: dict,
    method: str,
    options: dict,
    *,
    seed: int = 0,
    backend: str = "local",
    workers: int | None = None,
    progress_bar: bool = False,
) -> dict:
    """Fit prepared series (id to `SeriesData`): the engine of `fit_many`.

    Args:
        model: the model.
        series: id to the series' standardised data.
        method: "nuts", "svi" or "map".
        options: the checked fitting options (`bsts.inference.checked_options`).
        seed: random seed; each series gets the keys `bsts.fit` would give it.
        backend: "local" or "dask".
        workers: local threads (default: one per core).
        progress_bar: show a bar over series.

    Returns:
        id to `Posterior`, in the order given.
    """
    run = {"seed": seed, "backend": backend, "workers": workers, "progress_bar": progress_bar}
    return fit_groups([(model, series)], method, options, **run)[0]


def fit_groups(
    groups: list[tuple[Model, dict]],
    method: str,
    options: dict,
    *,
    seed: int = 0,
    backend: str = "local",
    workers: int | None = None,
    progress_bar: bool = False,
) -> list[dict]:
    """`fit_prepared` for several models at once, their programs compiled side by side.

    Args:
        groups: `(model, {id: SeriesData})` pairs.
        method: "nuts", "svi" or "map".
        options: the checked fitting options; with `jacobian` true a MAP fit takes the
            mode of the unconstrained parameters (`bsts.batch`).
        seed: random seed.
        backend: "local" or "dask".
        workers: local threads.
        progress_bar: show a bar over series.

    Returns:
        One `{id: Posterior}` per group, in order.
    """
    wanted = {
        "nuts": ("num_warmup", "num_samples", "target_accept_prob", "max_tree_depth", "dense_mass"),
        "map": ("num_steps",),
        "svi": ("num_steps", "num_samples", "guide", "learning_rate"),
    }[method]
    settings = {name: options[name] for name in wanted}
    if method == "map" and options.get("jacobian"):
        settings["jacobian"] = True  # the mode of the unconstrained parameters (`bsts.batch`)
    if method == "nuts":
        settings["progress_chains"] = 0  # fit_many's bar counts series, not iterations
    num_chains = options["num_chains"] if method == "nuts" else 1
    plans = [
        _plan_group(model, list(series.values()), method, settings, seed, num_chains)
        for model, series in groups
    ]
    if backend == "local":
        # Compiling is single-threaded: the programs of every model and bucket compile
        # side by side.
        compile_all(
            [
                (model, program, jobs[0])
                for (model, _), plan in zip(groups, plans, strict=True)
                for program, jobs, _ in plan
            ],
            workers,
        )

    total = sum(len(series) for _, series in groups) * num_chains
    update, close = _progress(total, progress_bar)
    try:
        if backend == "local":
            outputs = _run_local(groups, plans, workers, update)
        else:
            outputs = [
                [_run_dask(model, program, jobs, update) for program, jobs, _ in plan]
                for (model, _), plan in zip(groups, plans, strict=True)
            ]
    finally:
        close()
    out = []
    for (model, series), plan, runs in zip(groups, plans, outputs, strict=True):
        results: dict[int, list] = {}
        for (_, _, owners), program_outputs in zip(plan, runs, strict=True):
            for i, output in zip(owners, program_outputs, strict=True):
                results.setdefault(i, []).append(output)
        out.append(
            {
                key: posterior_from_runs(model, one, method, results[i], seed)
                for i, (key, one) in enumerate(series.items())
            }
        )
    return out


def _plan_group(model: Model, series_list: list, method: str, settings: dict, seed, chains):
    """Per bucket of one model's series: the program, its calls, and whose each call is."""

    def program(length, group):
        regular, gaps = group
        return program_for(method, length, regular, settings, gaps)

    def job(i, length):
        one = series_list[i]
        return series_jobs(method, padded_arrays(one, model.inputs(one), length), seed, chains)

    groups = [(one.regular, one.gap_capacity) for one in series_list]
    lengths = merged_lengths(
        model,
        [
            (padded_length(model, one.num_timesteps, method, runs_stepwise(*group)), group)
            for one, group in zip(series_list, groups, strict=True)
        ],
        compile_cost(method),
        lambda i, length: is_compiled(model, program(length, groups[i]), *job(i, length)[0]),
    )
    buckets: dict[tuple[int, tuple], list[int]] = {}
    for i, group in enumerate(groups):
        buckets.setdefault((lengths[i], group), []).append(i)
    plan = []
    for (length, group), members in buckets.items():
        jobs, owners = [], []
        for i in members:
            for call in job(i, length):
                jobs.append(call)
                owners.append(i)
        plan.append((program(length, group), jobs, owners))
    return plan


def _run_local(groups: list, plans: list, workers, update) -> list[list[list]]:
    """Every call of every program from one pool of threads, the longest buckets first.

    Returns:
        Per group, per program of its plan, the outputs in the order of its jobs.
    """
    calls, places = [], []
    for g, ((model, _), plan) in enumerate(zip(groups, plans, strict=True)):
        for p, (program, jobs, _) in enumerate(plan):
            function = compiled(model, program, *jobs[0])
            for j, arguments in enumerate(jobs):
                calls.append((function, arguments))
                places.append((g, p, j, program.length))
    # Longest first: the bucket length stands in for a call's cost, and the short calls
    # left for last fill the threads' ends.
    order = sorted(range(len(calls)), key=lambda c: -places[c][3])
    finished = run_calls([calls[c] for c in order], workers=workers, progress=update)
    outputs = [[[None] * len(jobs) for _, jobs, _ in plan] for plan in plans]
    for c, output in zip(order, finished, strict=True):
        g, p, j, _ = places[c]
        outputs[g][p][j] = output
    return outputs


def _run_shard(model: Model, program: Program, jobs: list, x64: bool) -> list:
    """On a Dask worker: compile once (cached in the worker), then run the shard.

    The worker takes the client's float precision, so that its results equal local ones.
    """
    with jax.enable_x64(x64):
        function = compiled(model, program, *jobs[0])
        return run_series(function, jobs)


def _run_dask(model: Model, program: Program, jobs: list, update) -> list:
    try:
        from distributed import Client, LocalCluster, as_completed, get_client
    except ImportError as error:
        raise ValueError(
            'backend="dask" needs dask.distributed: pip install "bsts[dask]"'
        ) from error
    try:
        client = get_client()
    except ValueError:
        client = Client(LocalCluster(processes=True))
    workers = max(1, len(client.scheduler_info()["workers"]))
    size = max(1, math.ceil(len(jobs) / (4 * workers)))
    shards = [jobs[start : start + size] for start in range(0, len(jobs), size)]
    shipped = [jax.tree_util.tree_map(np.asarray, shard) for shard in shards]
    model_future = client.scatter(model, broadcast=True)
    x64 = bool(jax.config.jax_enable_x64)
    futures = [
        client.submit(_run_shard, model_future, program, shard, x64, pure=False)
        for shard in shipped
    ]
    done = {}
    for future in as_completed(futures):
        done[future] = future.result()
        if update is not None:
            update(len(done[future]))
    return [item for future in futures for item in done[future]]
