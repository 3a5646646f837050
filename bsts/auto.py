r"""Automatic structure: candidate structures weighted by leave-future-out stacking.

`Auto` names a small set of candidate structures; `bsts.fit(auto, data)` and
`bsts.fit_many(auto, frame)` weight them per series and return `Ensemble`s, whose
forecasts are the weighted mixtures of the candidates' exact predictives.

**Candidates.** A trend (local level; local linear trend; damped, i.e. semi-local linear
trend) times a season (none; for a whole period of at most 24 steps both the dummy
seasonal and the trigonometric one with every harmonic; otherwise a Fourier seasonal with
three harmonics) times a scale (the original one; $\log y$ for a positive series). A
series rules candidates out: no season with fewer than two cycles and a half of data, no
log scale unless every value is positive. A series whose leading candidate's one-step
residuals show an outlier (the largest of $n$ beyond $\Phi^{-1}(1 - 0.025 / n)$) also
gets Student-t variants of its two leading candidates, scored with the noise weight
integrated out.

**Weights.** Leave-future-out (Bürkner, Gabry & Vehtari, 2020) with exact refits: at up to
three origins $o$ (the last `horizon` steps, the `horizon` before them, ...), every
candidate is fitted by MAP to the data before $o$, and its plug-in predictive of the next
`horizon` steps scores the values held out,

$$
\ell_{(o, j), k} = \log p_k(y_{o + j} \mid y_{< o}, \hat\theta_{k, o}), \qquad
j = 0, \dots, \text{horizon} - 1,
$$

the multi-step marginal predictive a forecast of that horizon uses. A log-scale
candidate's density is that of $\log y$ with the Jacobian, $p(y) = p(\log y) / y$, so all
candidates are compared on the scale of $y$. The matrix $\ell$ gives stacking weights (or
pseudo-BMA+, or the best candidate: `bsts.stacking`). Candidates with at least
`min_weight` are then fitted to the whole series with the requested method (NUTS by
default) and their weights renormalised. MAP refits keep the validation affordable:
every candidate and origin of every series runs through the batched programs of
`bsts.many`, one compilation per structure and bucket; the posterior uncertainty of the
parameters enters the final fits, not the weights.

Every MAP fit here (the refits, and the final fits when `method="map"`) is the mode of the
unconstrained parameters, Jacobian included: for a scale $\sigma$ with a half-Normal
prior, the mode of $p(\log\sigma \mid y)$ rather than of $p(\sigma \mid y)$. The latter
sits at $\sigma = 0$ whenever the likelihood is flat enough near zero, and a variance
fixed at zero makes a plug-in predictive too sure of itself, in the weights and in the
forecast.
"""

from __future__ import annotations

import math
import sys
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import special

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
    run_series,
)
from bsts.components import (
    UNIT_SCALE,
    FourierSeasonal,
    LocalLevel,
    LocalLinearTrend,
    Seasonal,
    SemiLocalLinearTrend,
)
from bsts.data import SeriesData, prepare_series
from bsts.ensemble_forecast import EnsembleForecast, MixturePart
from bsts.forecast import decompose as decompose_one
from bsts.inference import as_model, checked_options, nest_parameters
from bsts.many import Fits, ManyForecast, SeriesCollection, fit_groups
from bsts.model import Model
from bsts.observation import Gaussian, Observation, observation_params
from bsts.panel import prepare_panel
from bsts.savefile import Saveable
from bsts.stacking import WEIGHTINGS, pseudo_bma_weights, stacking_weights
from bsts.stacking import best_weights as best_single_weights

__all__ = [
    "Auto",
    "Candidate",
    "Ensemble",
    "Ensembles",
    "default_candidates",
    "infer_season",
    "log_predictive_density",
]

# Offsets and periods by pandas frequency prefix; a period of 1 means no season.
_PERIODS = {
    "M": 12,
    "MS": 12,
    "ME": 12,
    "BM": 12,
    "BMS": 12,
    "Q": 4,
    "QS": 4,
    "QE": 4,
    "BQ": 4,
    "W": 52.18,
    "D": 7,
    "B": 5,
    "H": 24,
    "h": 24,
    "A": 1,
    "Y": 1,
    "AS": 1,
    "YS": 1,
    "YE": 1,
}
_LONGEST_DUMMY = 24
_FOURIER_HARMONICS = 3
_MIN_ORIGIN = 8  # the fewest steps a validation fit starts from (without a season)
_STUDENT_T_VARIANTS = 2  # Student-t variants of this many leading candidates, on outliers


def infer_season(index: pd.Index) -> float | None:
    """The seasonal period implied by a time index's frequency, or None.

    Monthly 12, quarterly 4, weekly 52.18 (a year of weeks), daily 7, business-daily 5,
    hourly 24; yearly, unknown or not a time index: None.
    """
    if not isinstance(index, pd.DatetimeIndex) or len(index) < 3:
        return None
    if index.freq is None:
        try:
            index = pd.DatetimeIndex(index, freq="infer")
        except ValueError:
            return None
    if index.freq is None:
        return None
    code = index.freqstr
    base = code.split("-")[0].lstrip("0123456789")
    period = _PERIODS.get(base)
    return None if period in (None, 1) else period


@dataclass(frozen=True)
class Candidate:
    r"""One candidate structure of an `Auto`.

    Attributes:
        name: its label in weights and summaries.
        model: the structural model.
        log: fitted to $\log y$ (positive series only); its forecasts are log-Normal
            mixtures on the original scale.
    """

    name: str
    model: Model
    log: bool = False

    def allowed(self, values: np.ndarray, period: float | None) -> bool:
        """Whether a series' (observed) values leave this candidate in play."""
        observed = values[np.isfinite(values)]
        if self.log and not np.all(observed > 0):
            return False
        seasonal = any(isinstance(c, (Seasonal, FourierSeasonal)) for c in self.model.components)
        if seasonal and period is not None and observed.size < 2.5 * period:
            return False
        return True


def _season_components(period: float) -> dict:
    """The seasonal components a period offers, by candidate suffix.

    A short whole period (2 to 24 steps) gets both forms: the dummy seasonal ("season")
    and the trigonometric one with every harmonic ("fourier"). They evolve differently (a
    random walk in the seasonal sum against independent rotating harmonics), and which
    one forecasts better is up to the series. A long or fractional period gets a Fourier
    seasonal with three harmonics only ("season").
    """
    if float(period).is_integer() and 2 <= period <= _LONGEST_DUMMY:
        return {
            "season": lambda: Seasonal(int(period), name="seasonal"),
            "fourier": lambda: FourierSeasonal(period, harmonics=int(period) // 2, name="seasonal"),
        }
    harmonics = max(1, min(_FOURIER_HARMONICS, int(period // 2)))
    return {"season": lambda: FourierSeasonal(period, harmonics=harmonics, name="seasonal")}


def default_candidates(period: float | None, log: bool = True) -> list[Candidate]:
    """The default candidate set for a seasonal period (None: no season)."""
    trends = {
        "level": lambda: LocalLevel(name="trend"),
        "trend": lambda: LocalLinearTrend(name="trend"),
        "damped": lambda: SemiLocalLinearTrend(name="trend"),
    }
    seasons = {} if period is None else _season_components(period)
    out = []
    for scale in (False, True) if log else (False,):
        prefix = "log " if scale else ""
        for label, make in trends.items():
            out.append(Candidate(prefix + label, Model([make()]), scale))
            for suffix, season in seasons.items():
                model = Model([make(), season()])
                out.append(Candidate(f"{prefix}{label}+{suffix}", model, scale))
    return out


class Auto:
    """Candidate structures, weighted per series by leave-future-out stacking.

    Args:
        season: the seasonal period; None infers it from the index frequency (monthly
            12, quarterly 4, weekly 52.18, daily 7, hourly 24; none otherwise); 0 or 1:
            no season.
        candidates: your own candidates (`Candidate`s, or `Model`s, named by their
            structure), instead of the default set.
        log: add log-scale variants of the default candidates for positive series.
        weighting: "stacking" (default), "pseudo_bma" (pseudo-BMA+) or "best" (the
            single best candidate).
        horizon: steps ahead scored from each validation origin; default the period
            (at least 8, at most 24), or 8 without a season.
        origins: the most validation origins per series.
        min_weight: candidates below this weight are not fitted to the whole series.
        student_t: for a series whose leading candidate's one-step residuals show an
            outlier, add Student-t variants of the two leading candidates (default set
            only).
    """

    def __init__(
        self,
        season: float | None = None,
        candidates: Sequence | None = None,
        *,
        log: bool = True,
        weighting: str = "stacking",
        horizon: int | None = None,
        origins: int = 3,
        min_weight: float = 0.01,
        student_t: bool = True,
    ):
        if season is not None and (not np.isfinite(season) or season < 0):
            raise ValueError(f"season must be a positive period, 0 (none) or None, got {season!r}")
        if weighting not in WEIGHTINGS:
            raise ValueError(f"unknown weighting {weighting!r}; choose one of {WEIGHTINGS}")
        if horizon is not None and int(horizon) < 1:
            raise ValueError(f"horizon must be a positive number of steps, got {horizon!r}")
        if int(origins) < 1:
            raise ValueError(f"origins must be at least 1, got {origins!r}")
        if not 0 <= min_weight < 1:
            raise ValueError(f"min_weight must be in [0, 1), got {min_weight!r}")
        self.season = season
        self.candidates = None if candidates is None else _as_candidates(candidates)
        self.log = bool(log)
        self.weighting = weighting
        self.horizon = None if horizon is None else int(horizon)
        self.origins = int(origins)
        self.min_weight = float(min_weight)
        self.student_t = bool(student_t)

    def __repr__(self) -> str:
        return f"Auto(season={self.season!r}, weighting={self.weighting!r})"

    def period(self, index: pd.Index) -> float | None:
        """The seasonal period used for a series with this index."""
        if self.season is None:
            return infer_season(index)
        return None if self.season in (0, 1) else float(self.season)

    def candidates_for(self, period: float | None) -> list[Candidate]:
        """The candidate set before pruning."""
        if self.candidates is not None:
            return self.candidates
        return default_candidates(period, self.log)

    def validation_horizon(self, period: float | None) -> int:
        """The steps scored after each origin."""
        if self.horizon is not None:
            return self.horizon
        if period is None:
            return 8
        return int(min(max(round(period), 8), 24))

    # Hooks that `bsts.fit` and `bsts.fit_many` call (they sit below this module).
    def __bsts_fit__(self, data, target, method, **options) -> Ensemble:
        frame = _one_series_frame(data, target)
        ensembles = fit_auto(self, frame, "unique_id", "ds", "y", method, **options)
        return ensembles[0]

    def __bsts_fit_many__(self, frame, id_col, time_col, target, method, **options) -> Ensembles:
        return fit_auto(self, frame, id_col, time_col, target, method, **options)


def _as_candidates(candidates) -> list[Candidate]:
    out = []
    for item in candidates:
        if isinstance(item, Candidate):
            out.append(item)
        else:
            model = as_model(item)
            out.append(Candidate("+".join(type(c).__name__ for c in model.components), model))
    names = [c.name for c in out]
    if len(set(names)) != len(names) or not out:
        raise ValueError(f"candidates need distinct names and at least one entry, got {names}")
    for c in out:
        if c.model.covariate_columns:
            raise ValueError(f"candidate {c.name!r} needs covariates; Auto fits the target only")
        if not _has_held_out_density(c.model.observation):
            raise ValueError(
                f"candidate {c.name!r}: Auto scores candidates by their held-out predictive "
                "densities, which only Gaussian and Student-t observations give"
            )
    return out


def _has_held_out_density(observation: Observation) -> bool:
    return type(observation).held_out_log_density is not Observation.held_out_log_density


def _one_series_frame(data, target) -> pd.DataFrame:
    series = prepare_series(data, target, [])  # checks the data, names a bad target
    values = data if isinstance(data, pd.Series) else data[target]
    # The user's values, not standardised ones mapped back: round-off would turn a zero
    # into a tiny positive number, and the log-scale candidates into nonsense.
    return pd.DataFrame({"unique_id": 0, "ds": series.index, "y": np.asarray(values, dtype=float)})


@dataclass
class _Series:
    """One series of the collection and its validation plan."""

    key: object
    data: SeriesData
    values: np.ndarray  # original units, NaN missing
    period: float | None
    candidates: list[Candidate]
    origins: list[int]
    horizon: int


def _raw_targets(frame, id_col: str, time_col: str | None, target: str) -> dict:
    """Each series' target as the user gave it, indexed by time."""
    times = frame.index if time_col is None else frame[time_col]
    values = pd.Series(frame[target].to_numpy(dtype=float), index=pd.Index(times))
    return {
        key: values.iloc[rows] for key, rows in frame.groupby(id_col, sort=False).indices.items()
    }


def _plan(auto: Auto, key, data: SeriesData, raw: pd.Series) -> _Series:
    # The user's values on the series' (regularised) index: standardised values mapped
    # back would carry round-off, which turns a zero into a tiny positive number.
    values = raw.reindex(data.index).to_numpy(dtype=float)
    period = auto.period(data.index)
    candidates = [c for c in auto.candidates_for(period) if c.allowed(values, period)]
    if not candidates:
        raise ValueError(f"series {key!r}: no candidate fits this series")
    horizon = auto.validation_horizon(period)
    n = values.size
    shortest = max(_MIN_ORIGIN, 2 * math.ceil(period) if period else 0)
    origins = [n - k * horizon for k in range(1, auto.origins + 1)]
    origins = [o for o in origins if o >= shortest]
    if not origins:  # too short for a full horizon: hold out what it can spare
        origins = [max(n // 2, n - horizon)]
    return _Series(key, data, values, period, candidates, sorted(origins), horizon)


def _variant(values: np.ndarray, index: pd.Index, log: bool, cut: int | None = None):
    """The series (cut at an origin: NaN from there on) on the candidate's scale."""
    values = values.copy()
    if cut is not None:
        values[cut:] = np.nan
    if log:
        values = np.log(values)
    return prepare_series(pd.Series(values, index=index), None, [])


def _moments(groups: list[tuple[Model, dict, dict]]) -> dict:
    """Each MAP fit's one-step predictive (`_Predictive`), in the series' original units.

    Args:
        groups: `(model, {key: MAP Posterior}, {key: SeriesData})` triples; every model's
            programs compile side by side.
    """
    plans = []
    for model, posteriors, series in groups:
        keys = list(posteriors)

        def job(i, length, model=model, posteriors=posteriors, series=series, keys=keys):
            data = series[keys[i]]
            flat = {name: np.asarray(v)[0] for name, v in posteriors[keys[i]].flat_draws().items()}
            flat = padded_draws(flat, length)
            arrays = padded_arrays(data, model.inputs(data), length)
            program = Program("moments", length, data.regular, ())
            return program, (nest_parameters(model, flat), arrays)

        def ready(i, length, model=model, job=job):
            program, example = job(i, length)
            return is_compiled(model, program, *example)

        ladder = [(padded_length(model, series[k].num_timesteps), series[k].regular) for k in keys]
        lengths = merged_lengths(model, ladder, compile_cost("moments"), ready)
        by_program: dict[Program, list] = {}
        for i, (key, length) in enumerate(zip(keys, lengths, strict=True)):
            program, example = job(i, length)
            by_program.setdefault(program, []).append((key, example))
        plans.append((model, series, by_program))
    compile_all(
        [
            (model, program, items[0][1])
            for model, _, plan in plans
            for program, items in plan.items()
        ]
    )
    out = {}
    for model, series, by_program in plans:
        for program, items in by_program.items():
            function = compiled(model, program, *items[0][1])
            # One at a time, as forecasts run (`bsts.many.Fits.forecast`).
            results = run_series(function, [job for _, job in items], workers=1)
            for (key, example), (mean, signal_var, noise_var) in zip(items, results, strict=True):
                data = series[key]
                n = data.num_timesteps
                out[key] = _Predictive(
                    np.asarray(data.to_original(np.asarray(mean[:n]))),
                    np.asarray(signal_var[:n]) * data.scale**2,
                    np.asarray(noise_var[:n]) * data.scale**2,
                    _observation_in_units(model.observation, example[0], data.scale),
                )
    return out


def _observation_in_units(observation: Observation, params: dict, scale: float) -> dict:
    """A MAP fit's scalar observation parameters, scales in the series' units."""
    units = observation.units
    return {
        name: float(value) * (scale if units.get(name) == UNIT_SCALE else 1.0)
        for name, value in observation_params(params).items()
        if np.ndim(value) == 0
    }


@dataclass(frozen=True)
class _Predictive:
    """One MAP fit's predictive of every step given the steps before, original units.

    Attributes:
        mean: `(T,)` the predictive means.
        signal_var: `(T,)` the signal's predictive variances.
        noise_var: `(T,)` the noise variances of the fitted model (Student-t: at the
            fitted weights; held-out steps have the weight's prior mode).
        params: the observation parameters (`scale` in the series' units, `df`).
    """

    mean: np.ndarray
    signal_var: np.ndarray
    noise_var: np.ndarray
    params: dict

    def one_step_z(self, values: np.ndarray) -> np.ndarray:
        """Standardised one-step residuals of the first `len(values)` steps."""
        n = len(values)
        return (values - self.mean[:n]) / np.sqrt(self.signal_var[:n] + self.noise_var[:n])


def _validate(groups: list[tuple[Model, dict]], options: dict, run: dict) -> dict:
    """MAP fits of `(model, {(series, candidate, origin): data})` groups, and predictives.

    Returns:
        Each fit's one-step predictive (`_Predictive`), by the same keys.
    """
    modes = fit_groups(groups, "map", options, progress_bar=False, **run)
    return _moments(
        [(model, fits, jobs) for (model, jobs), fits in zip(groups, modes, strict=True)]
    )


def _has_outliers(plan: _Series, candidate: Candidate, moments: dict) -> bool:
    r"""Whether the candidate's one-step residuals before the last origin show an outlier.

    With $n$ standardised residuals $z_t$ (after the first period, or 8 steps, whose
    predictives are still diffuse), an outlier is $\max_t |z_t| > \Phi^{-1}(1 -
    0.025 / n)$: a two-sided test at 5% with Bonferroni's correction, so a Gaussian series
    calls for Student-t candidates one time in twenty at most.
    """
    origin = plan.origins[-1]
    fit = moments[(plan.key, candidate.name, origin)]
    values = plan.values[:origin]
    values = np.log(values) if candidate.log else values
    burn = max(_MIN_ORIGIN, math.ceil(plan.period) if plan.period else 0)
    z = fit.one_step_z(values)[burn:]
    z = z[np.isfinite(z)]
    if z.size == 0:
        return False
    return bool(np.max(np.abs(z)) > special.ndtri(1 - 0.025 / z.size))


def _student_t_variant(candidate: Candidate) -> Candidate:
    """The candidate with Student-t noise."""
    model = Model(list(candidate.model.components), observation="student_t")
    return Candidate(f"{candidate.name} (t)", model, candidate.log)


def _pointwise(plan: _Series, candidate: Candidate, moments: dict) -> np.ndarray:
    """The log predictive density of every held-out value, on the scale of y.

    A Student-t candidate's held-out values get a fresh weight each (the forecast's
    predictive), integrated out by quadrature (`StudentT.held_out_log_density`).
    """
    observation = candidate.model.observation
    rows = []
    for origin in plan.origins:
        fit = moments[(plan.key, candidate.name, origin)]
        stop = min(origin + plan.horizon, plan.values.size)
        y = plan.values[origin:stop]
        observed = np.isfinite(y)
        mean, signal_var = fit.mean[origin:stop], fit.signal_var[origin:stop]
        rows.append(
            _density_of_y(
                observation,
                y[observed],
                mean[observed],
                signal_var[observed],
                fit.params,
                candidate.log,
            )
        )
    return np.concatenate(rows)


def log_predictive_density(y, mean, sd, log: bool) -> np.ndarray:
    r"""$\log p(y)$ of a Normal predictive for $y$, or for $\log y$ (then with the Jacobian).

    A candidate fitted to $\log y$ predicts $\log y \sim \mathcal N(\mu, \sigma^2)$, so on
    the scale of $y$ its density is $\phi((\log y - \mu) / \sigma) / (\sigma y)$.
    """
    variance = np.square(np.asarray(sd, dtype=float))
    return _density_of_y(Gaussian(), y, mean, variance, {"scale": 0.0}, log)


def _density_of_y(observation: Observation, y, mean, signal_var, params: dict, log: bool):
    r"""`observation.held_out_log_density` of $y$, or of $\log y$ divided by $y$."""
    y = np.asarray(y, dtype=float)
    lpd = observation.held_out_log_density(np.log(y) if log else y, mean, signal_var, params)
    return lpd - np.log(y) if log else lpd


def _weights_table(plan: _Series, lpd: np.ndarray, names: list[str]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "elpd": lpd.sum(axis=0),
            "stacking": stacking_weights(lpd),
            "pseudo_bma": pseudo_bma_weights(lpd),
            "best": best_single_weights(lpd),
        },
        index=pd.Index(names, name="candidate"),
    )


def fit_auto(
    auto: Auto,
    frame: pd.DataFrame,
    id_col: str,
    time_col: str | None,
    target: str,
    method: str = "nuts",
    *,
    errors: str = "raise",
    seed: int = 0,
    backend: str = "local",
    workers: int | None = None,
    progress_bar: bool | None = None,
    **options,
) -> Ensembles:
    """Weight `auto`'s candidates for every series of a long frame and fit the kept ones.

    `bsts.fit_many(auto, ...)` and `bsts.fit(auto, ...)` call this with their options.

    Args:
        auto: the candidates and the weighting.
        frame: the long frame, as for `fit_many`.
        id_col: its id column.
        time_col: its time column (None: the index).
        target: its target column.
        method: how the kept candidates are fitted to the whole series.
        errors: "raise" or "skip" bad series, as for `fit_many`.
        seed: random seed.
        backend: "local" or "dask".
        workers: local threads.
        progress_bar: a bar over the final fits; default: only in a terminal.
        **options: every option of `bsts.inference.checked_options` but `method`.

    Returns:
        The `Ensembles`, one `Ensemble` per series.
    """
    # Every MAP fit here is the mode of the unconstrained parameters (module docstring).
    options = {**checked_options(method=method, **options), "jacobian": True}
    if progress_bar is None:
        progress_bar = sys.stderr.isatty()
    panel = prepare_panel(
        frame,
        id_col=id_col,
        time_col=time_col,
        target=target,
        covariates=[],
        errors=errors,
        check=None,
    )
    raw = _raw_targets(frame, id_col, time_col, target)
    plans = [
        _plan(auto, key, data, raw[key]) for key, data in zip(panel.ids, panel.series, strict=True)
    ]
    run = {"seed": seed, "backend": backend, "workers": workers}

    # Validation: every (series, candidate, origin), grouped by structure; every structure
    # and bucket compiles once, side by side with the others.
    by_structure: dict[tuple, tuple[Model, dict]] = {}
    for plan in plans:
        for candidate in plan.candidates:
            group = (candidate.name, plan.period)
            _, jobs = by_structure.setdefault(group, (candidate.model, {}))
            for origin in plan.origins:
                variant = _variant(plan.values, plan.data.index, candidate.log, origin)
                jobs[(plan.key, candidate.name, origin)] = variant
    moments = _validate(list(by_structure.values()), options, run)
    scores = {
        plan.key: {c.name: _pointwise(plan, c, moments) for c in plan.candidates} for plan in plans
    }

    if auto.student_t and auto.candidates is None:
        # Outliers: Student-t variants of the leading candidates join, validated alike.
        by_structure = {}
        for plan in plans:
            lpd = np.column_stack(list(scores[plan.key].values()))
            weights = pd.Series(stacking_weights(lpd), index=list(scores[plan.key]))
            leader = next(c for c in plan.candidates if c.name == weights.idxmax())
            if not _has_outliers(plan, leader, moments):
                continue
            leading = weights[weights >= auto.min_weight].sort_values(ascending=False)
            for name in leading.index[:_STUDENT_T_VARIANTS]:
                variant = _student_t_variant(next(c for c in plan.candidates if c.name == name))
                plan.candidates.append(variant)
                _, jobs = by_structure.setdefault((variant.name, plan.period), (variant.model, {}))
                for origin in plan.origins:
                    cut = _variant(plan.values, plan.data.index, variant.log, origin)
                    jobs[(plan.key, variant.name, origin)] = cut
        if by_structure:
            moments.update(_validate(list(by_structure.values()), options, run))
            for plan in plans:
                for c in plan.candidates:
                    if c.name not in scores[plan.key]:
                        scores[plan.key][c.name] = _pointwise(plan, c, moments)

    tables = {}
    for plan in plans:
        names = [c.name for c in plan.candidates]
        lpd = np.column_stack([scores[plan.key][name] for name in names])
        tables[plan.key] = _weights_table(plan, lpd, names)

    # Final fits of the candidates with weight, on the whole series.
    final: dict[tuple, dict] = {}
    kept: dict[object, pd.Series] = {}
    for plan in plans:
        weights = tables[plan.key][auto.weighting]
        chosen = weights[weights >= auto.min_weight]
        if chosen.empty:
            chosen = weights[[weights.idxmax()]]
        kept[plan.key] = chosen / chosen.sum()
        for candidate in plan.candidates:
            if candidate.name in chosen.index:
                variant = _variant(plan.values, plan.data.index, candidate.log)
                final.setdefault((candidate.name, plan.period), {})[plan.key] = variant
    models = {(c.name, plan.period): c for plan in plans for c in plan.candidates}
    fitted = fit_groups(
        [(models[group].model, jobs) for group, jobs in final.items()],
        method,
        options,
        progress_bar=progress_bar,
        **run,
    )
    posteriors = dict(zip(final, fitted, strict=True))

    ensembles = {}
    for plan in plans:
        weights = kept[plan.key]
        ensembles[plan.key] = Ensemble(
            candidates={name: posteriors[(name, plan.period)][plan.key] for name in weights.index},
            weights=weights.rename("weight"),
            scores=tables[plan.key],
            log={name: models[(name, plan.period)].log for name in weights.index},
            weighting=auto.weighting,
            series=plan.data,
            horizon=plan.horizon,
            origins=tuple(plan.origins),
        )
    return Ensembles(ensembles, panel.skipped, id_col, time_col)


@dataclass(frozen=True)
class Ensemble(Saveable):
    r"""Candidate posteriors of one series and their weights.

    Attributes:
        candidates: name to `Posterior`, for the candidates kept (weight at least
            `Auto.min_weight`); a log-scale candidate's posterior is of $\log y$.
        weights: name to weight over the kept candidates (sum 1).
        scores: every candidate's validation `elpd` and its weights under each rule
            (`stacking`, `pseudo_bma`, `best`), before dropping small weights.
        log: name to whether the candidate is on the log scale.
        weighting: the rule that gave `weights`.
        series: the series, standardised, on its original scale.
        horizon: steps scored after each validation origin.
        origins: the validation origins (positions in the series).
    """

    candidates: dict
    weights: pd.Series
    scores: pd.DataFrame
    log: dict
    weighting: str
    series: SeriesData
    horizon: int
    origins: tuple = field(default_factory=tuple)

    @property
    def best(self) -> str:
        """The candidate with the highest weight."""
        return str(self.weights.idxmax())

    def __repr__(self) -> str:
        top = ", ".join(f"{name} {w:.2f}" for name, w in self.weights.sort_values()[::-1].items())
        return f"Ensemble({self.weighting}: {top})"

    def summary(self) -> pd.DataFrame:
        """Every candidate: validation elpd, the weights of each rule, and the weight used."""
        out = self.scores.copy()
        out["weight"] = self.weights.reindex(out.index).fillna(0.0)
        return out.sort_values("weight", ascending=False)

    def forecast(self, horizon=None, future=None, seed: int = 0, num_samples=None):
        """The weighted mixture of the candidates' forecasts (`bsts.forecast` calls this)."""
        if future is not None:
            raise ValueError("an Ensemble has no covariates: forecast it with horizon=")
        # Through a one-series collection: its forecast program is compiled once per
        # structure and bucket and cached, where `bsts.forecast(post)` compiles every call.
        predictions = {
            name: Fits(post.model, post.method, {0: post}).forecast(
                horizon=horizon, seed=seed, num_samples=num_samples
            )[0]
            for name, post in self.candidates.items()
        }
        return _mix(self, predictions, seed)

    def decompose(self, num_samples: int | None = 200, seed: int = 0):
        """The decomposition of the highest-weight candidate (says which in a warning)."""
        name = self.best
        scale = " (on the log scale)" if self.log[name] else ""
        warnings.warn(
            f"decomposing the highest-weight candidate {name!r} ({self.weights[name]:.2f}){scale}",
            stacklevel=2,
        )
        return decompose_one(self.candidates[name], num_samples=num_samples, seed=seed)

    def plot_weights(self, ax=None):
        """A bar chart of the candidates' weights under each rule."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(6, 0.35 * len(self.scores) + 1))
        table = self.summary()[["stacking", "pseudo_bma", "best"]][::-1]
        table.plot.barh(ax=ax)
        ax.set_xlabel("weight")
        ax.set_title(f"candidate weights (used: {self.weighting})")
        return ax


def _mix(ensemble: Ensemble, predictions: dict, seed: int) -> EnsembleForecast:
    parts, draws = [], []
    rng = np.random.default_rng(seed)
    for name, prediction in predictions.items():
        weight = float(ensemble.weights[name])
        log = ensemble.log[name]
        parts.append(MixturePart.of(weight, prediction, log))
        own = np.exp(prediction.draws) if log else prediction.draws
        count = round(weight * own.shape[0] * len(predictions))
        draws.append(own[rng.integers(0, own.shape[0], size=count)])
    first = next(iter(predictions.values()))
    history = pd.Series(ensemble.series.to_original(ensemble.series.y), index=ensemble.series.index)
    return EnsembleForecast(np.concatenate(draws), first.index, history, parts=tuple(parts))


@dataclass(frozen=True)
class Ensembles(SeriesCollection, Saveable):
    """The ensembles of a collection of series, by id (`bsts.fit_many(auto, ...)`).

    Attributes:
        ensembles: id to `Ensemble`.
        skipped: series left out with `errors="skip"`.
        id_col: the frame's id column.
        time_col: its time column.
    """

    ensembles: dict
    skipped: pd.DataFrame
    id_col: str = "unique_id"
    time_col: str | None = "ds"

    _by_id = "ensembles"

    def __repr__(self) -> str:
        return f"Ensembles({len(self)} series)"

    def weights(self) -> pd.DataFrame:
        """Long format: `unique_id`, `candidate`, `weight` (kept candidates)."""
        rows = [
            (key, name, float(w))
            for key, ens in self.ensembles.items()
            for name, w in ens.weights.items()
        ]
        return pd.DataFrame(rows, columns=["unique_id", "candidate", "weight"])

    def summary(self) -> pd.DataFrame:
        """Every series' candidate table (`Ensemble.summary`), long format."""
        frames = []
        for key, ens in self.ensembles.items():
            table = ens.summary().reset_index()
            table.insert(0, "unique_id", key)
            frames.append(table)
        return pd.concat(frames, ignore_index=True)

    def forecast(self, horizon=None, future=None, seed: int = 0, num_samples=None):
        """Every series' mixture forecast (`bsts.forecast(ensembles, ...)` calls this)."""
        if future is not None:
            raise ValueError("ensembles have no covariates: forecast them with horizon=")
        by_candidate: dict[tuple, dict] = {}
        for key, ens in self.ensembles.items():
            for name, post in ens.candidates.items():
                by_candidate.setdefault((name, id(post.model)), {})[key] = post
        predictions: dict[object, dict] = {key: {} for key in self.ensembles}
        for (name, _), posts in by_candidate.items():
            first = next(iter(posts.values()))
            fits = Fits(first.model, first.method, posts, id_col=self.id_col)
            many = fits.forecast(horizon=horizon, seed=seed, num_samples=num_samples)
            for key in posts:
                predictions[key][name] = many[key]
        return ManyForecast(
            {
                key: _mix(ens, {n: predictions[key][n] for n in ens.candidates}, seed)
                for key, ens in self.ensembles.items()
            }
        )
