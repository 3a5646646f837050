r"""pandas at the edge: turn the user's series into arrays, time steps and scales.

This is the only module that reads pandas objects. It checks the input, never modifies it,
and returns a `SeriesData` whose arrays the model layer uses directly:

- the target, standardised: $\tilde y_t = (y_t - \text{location}) / \text{scale}$, with NaN
  kept as missing; priors are then set on the unit scale and results reported back in the
  original units;
- covariates, each centred and scaled the same way (`covariate_scales` keeps the factors);
- the time step into each observation, in units of the typical step: all ones for a regular
  series, the actual gaps for an irregular one.

`SeriesData.extend` continues a prepared series over a forecast horizon (future timestamps,
time steps and standardised future covariates), so forecasting needs no pandas of its own.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from bsts.kalman.marginal import gap_capacity, interior_gaps

__all__ = ["SeriesData", "prepare_series", "time_steps"]

MIN_OBSERVATIONS = 3


@dataclass(frozen=True)
class SeriesData:
    """A validated, standardised series and its covariates.

    Attributes:
        index: the time index of the observations (a copy of the user's).
        y: standardised target, NaN where missing, shape `(T,)`.
        location: the target's mean, in original units.
        scale: the target's standard deviation, in original units.
        covariates: standardised covariate columns, each `(T,)` (the observation model's
            own columns, such as a binomial's trials, as given).
        covariate_locations: the covariates' means.
        covariate_scales: the covariates' standard deviations.
        dt: time step into each observation (`dt[0]` is 1), in units of `step`.
        step: the typical step (a `pd.Timedelta` for time indexes, else a float).
        regular: whether every step equals `step`.
        target: the target's name.
    """

    index: pd.Index
    y: np.ndarray
    location: float
    scale: float
    covariates: dict[str, np.ndarray]
    covariate_locations: dict[str, float]
    covariate_scales: dict[str, float]
    dt: np.ndarray
    step: object
    regular: bool
    target: str
    frequency: str | None = field(default=None)

    @property
    def num_timesteps(self) -> int:
        """T, the number of time steps."""
        return self.y.shape[0]

    @property
    def gapped(self) -> bool:
        """Whether a step before the last observed one is missing (padding is not a gap)."""
        observed = np.flatnonzero(~np.isnan(self.y))
        return bool(observed.size and observed[-1] + 1 > observed.size)

    @property
    def gap_capacity(self) -> int | None:
        """The room its likelihood makes for its gaps (`bsts.kalman.marginal.gap_capacity`)."""
        return gap_capacity(interior_gaps(self.y), self.num_timesteps)

    def to_original(self, standardised: np.ndarray) -> np.ndarray:
        """Map values of the standardised target back to original units."""
        return self.location + self.scale * np.asarray(standardised)

    def extend(self, horizon: int | None = None, future: pd.DataFrame | None = None) -> SeriesData:
        """The series continued by future steps, whose target is missing.

        Give `horizon` to continue the index at the data's frequency (a series without
        covariates), or `future`, a DataFrame with one row per future step: its index gives
        the future timestamps and its columns the covariates this series carries. The
        standardisation factors, step and regularity stay those of the data.

        Args:
            horizon: the number of future steps (must match `len(future)` when both given).
            future: future covariates, indexed by the future timestamps.

        Returns:
            A `SeriesData` of `num_timesteps + horizon` steps, NaN in the future target.

        Raises:
            ValueError: a non-positive horizon, neither horizon nor future, covariates
                without `future`, a future frame that is not a DataFrame, disagrees with
                `horizon`, lacks a covariate or has NaN in one, or future timestamps that
                do not follow the data.
        """
        columns = list(self.covariates)
        if horizon is not None:
            horizon = _positive_horizon(horizon)
        if future is None:
            if columns:
                raise ValueError(
                    f"the model uses covariates {columns}: pass their future values as "
                    "future=<DataFrame with those columns, one row per future step>"
                )
            if horizon is None:
                raise ValueError("give horizon=<steps> or future=<DataFrame>")
            index = self._future_index(horizon)
            future_covariates = {}
        else:
            if not isinstance(future, pd.DataFrame):
                raise ValueError(f"future must be a pandas DataFrame, got {type(future).__name__}")
            if horizon is not None and horizon != len(future):
                raise ValueError(
                    f"horizon={horizon} but future has {len(future)} rows: they must agree"
                )
            horizon = _positive_horizon(len(future))
            index = future.index
            for name in columns:
                if name not in future.columns:
                    raise ValueError(f"future is missing covariate column {name!r}")
                if future[name].isna().any():
                    raise ValueError(f"future covariate column {name!r} has NaN values")
            future_covariates = self.standardise_covariates(future, columns)
        return dataclasses.replace(
            self,
            index=self.index.append(index),
            y=np.concatenate([self.y, np.full(horizon, np.nan)]),
            covariates={
                name: np.concatenate([self.covariates[name], future_covariates[name]])
                for name in columns
            },
            dt=np.concatenate([self.dt, self._future_steps(index)]),
        )

    def _future_index(self, horizon: int) -> pd.Index:
        index = self.index
        if isinstance(index, pd.DatetimeIndex):
            step = pd.tseries.frequencies.to_offset(self.frequency) if self.frequency else self.step
            return pd.DatetimeIndex(
                [index[-1] + step * (i + 1) for i in range(horizon)], name=index.name
            )
        step = float(self.step)
        return pd.Index(
            np.asarray(index, dtype=float)[-1] + step * np.arange(1, horizon + 1),
            name=index.name,
        )

    def _future_steps(self, index: pd.Index) -> np.ndarray:
        """Time steps into the future steps, in units of the data's typical step."""
        horizon = len(index)
        if self.regular:
            return np.ones(horizon)
        joined = pd.Index(list(self.index) + list(index))
        if not joined.is_monotonic_increasing or joined.has_duplicates:
            raise ValueError("future timestamps must come after the data, without duplicates")
        step = self.step.value if isinstance(self.step, pd.Timedelta) else float(self.step)
        return _gaps(joined)[-horizon:] / step

    def standardise_covariates(self, frame: pd.DataFrame, columns: list[str]) -> dict:
        """Standardise future covariate columns with the training data's factors."""
        return {
            name: (_numeric_column(frame, name, "covariate") - self.covariate_locations[name])
            / self.covariate_scales[name]
            for name in columns
        }


def _numeric_column(frame: pd.DataFrame, name: str, role: str) -> np.ndarray:
    if name not in frame.columns:
        raise ValueError(
            f"{role} column {name!r} is not in the data; available columns: "
            f"{', '.join(map(str, frame.columns))}"
        )
    column = frame[name]
    if not (pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column)):
        raise ValueError(
            f"{role} column {name!r} must be numeric, got dtype {column.dtype}; convert it "
            "with pd.to_numeric first"
        )
    values = column.to_numpy(dtype=float, na_value=np.nan)
    if np.isinf(values).any():
        rows = list(frame.index[np.isinf(values)][:5])
        raise ValueError(f"{role} column {name!r} has infinite values at {rows}")
    return values


def _positive_horizon(horizon) -> int:
    if isinstance(horizon, bool) or not isinstance(horizon, (int, np.integer)) or horizon < 1:
        raise ValueError(f"horizon must be a positive integer, got {horizon!r}")
    return int(horizon)


def _gaps(index: pd.Index) -> np.ndarray:
    """Differences between consecutive times: nanoseconds for a DatetimeIndex, else floats.

    In nanoseconds whatever the index resolution (pandas 3 defaults to microseconds).
    """
    if isinstance(index, pd.DatetimeIndex):
        return np.diff(index.as_unit("ns").asi8).astype(float)
    return np.diff(np.asarray(index, dtype=float))


def _grid_with_missing_rows(index: pd.Index) -> pd.DatetimeIndex | None:
    """The regular grid of timestamps that has rows missing, or None.

    An hourly sensor series with a few readings missing has no inferable frequency, so it
    would be modelled as unevenly sampled (the exact time-varying filter, many times
    slower). When at least 90% of the steps equal one duration, every step is a whole
    number of them, there are at least 20 rows and the grid is at most 4 times as long as
    the rows, the series is put back on the grid
    with the missing rows as missing values, as `fit_many` does with a calendar. Series
    whose frequency pandas infers, numeric indexes and series with covariates (whose
    values on the missing rows are unknown) are left as they are.
    """
    if not isinstance(index, pd.DatetimeIndex) or len(index) < 20 or index.has_duplicates:
        return None
    if not index.is_monotonic_increasing or index.freqstr is not None:
        return None
    try:
        if pd.DatetimeIndex(index, freq="infer").freqstr is not None:
            return None
    except ValueError:
        pass
    steps = np.diff(index.as_unit("ns").asi8)
    values, counts = np.unique(steps, return_counts=True)
    step = int(values[np.argmax(counts)])
    if step <= 0 or counts.max() < 0.9 * steps.size or np.any(steps % step):
        return None
    length = int(np.sum(steps // step)) + 1
    if length > 4 * len(index):
        return None
    return pd.date_range(
        index[0], periods=length, freq=pd.Timedelta(step, unit="ns"), name=index.name
    )


def time_steps(index: pd.Index) -> tuple[np.ndarray, object, bool, str | None]:
    """Time step into each observation, in units of the typical (median) step.

    Returns:
        `(dt, step, regular, frequency)`: `dt[0]` is 1; `frequency` is the pandas frequency
        string of a regular DatetimeIndex (used to continue the index when forecasting).

    Raises:
        ValueError: duplicate or decreasing timestamps.
    """
    if index.has_duplicates:
        duplicated = list(index[index.duplicated()][:5])
        raise ValueError(f"the time index has duplicate timestamps: {duplicated}")
    if not index.is_monotonic_increasing:
        raise ValueError(
            "the time index must be increasing; sort the data first (data.sort_index())"
        )
    if isinstance(index, pd.DatetimeIndex):
        frequency = index.freqstr
        if frequency is None and len(index) >= 3:
            try:
                frequency = pd.DatetimeIndex(index, freq="infer").freqstr
            except ValueError:
                frequency = None
        if frequency is not None:
            return np.ones(len(index)), pd.tseries.frequencies.to_offset(frequency), True, frequency
        gaps = _gaps(index)
    elif isinstance(index, pd.RangeIndex) or pd.api.types.is_numeric_dtype(index):
        gaps = _gaps(index)
    else:
        raise ValueError(
            f"the index must be a DatetimeIndex or numeric, got {type(index).__name__}; "
            "set a time column as the index (df.set_index('time'))"
        )
    step = float(np.median(gaps))
    dt = np.concatenate([[1.0], gaps / step])
    regular = bool(np.allclose(dt, 1.0, rtol=1e-9, atol=0.0))
    if isinstance(index, pd.DatetimeIndex):
        step = pd.Timedelta(round(step), unit="ns")
    return (np.ones(len(index)) if regular else dt), step, regular, None


def prepare_series(
    data,
    target: str | None,
    covariates: list[str],
    *,
    standardise: bool = True,
    check_values: Callable[..., None] | None = None,
    raw: Sequence[str] = (),
) -> SeriesData:
    """Validate the user's data and standardise it.

    Args:
        data: a pandas Series (the target) or DataFrame.
        target: the target column of a DataFrame (ignored for a Series).
        covariates: covariate columns the model's components need.
        standardise: standardise the target (False keeps it as given: counts, with
            location 0 and scale 1). Covariates are standardised either way, except:
        raw: columns among `covariates` kept as given (location 0, scale 1): the
            observation model's own columns, such as a binomial's trials.
        check_values: a check of the target's values (the observation model's), called
            with the values (NaN missing), the target's name and the `raw` columns'
            values; it raises ValueError.

    Returns:
        The standardised `SeriesData`; the user's object is not modified.

    Raises:
        ValueError: the target or a covariate is missing, not numeric or infinite; the
            target has fewer than three observed values or no variation; a covariate has
            NaN; the index has duplicates or is not increasing.
    """
    if isinstance(data, pd.Series):
        frame = data.to_frame(name=data.name if data.name is not None else "y")
        target = str(frame.columns[0]) if target is None else target
    elif isinstance(data, pd.DataFrame):
        frame = data
        if target is None:
            raise ValueError("data is a DataFrame: name the target column with target=...")
    else:
        raise ValueError(f"data must be a pandas Series or DataFrame, got {type(data).__name__}")
    if len(frame) == 0:
        raise ValueError("the series is empty")
    grid = _grid_with_missing_rows(frame.index) if not covariates else None
    if grid is not None:
        frame = frame.reindex(grid)  # a new frame: the rows missing from the grid are NaN
    y = _numeric_column(frame, target, "target")
    observed = int(np.sum(~np.isnan(y)))
    if observed < MIN_OBSERVATIONS:
        raise ValueError(
            f"the target {target!r} has {observed} observed values; at least "
            f"{MIN_OBSERVATIONS} are needed (NaN counts as missing)"
        )
    standardised, locations, scales = {}, {}, {}
    for name in covariates:
        values = _numeric_column(frame, name, "covariate")
        missing = np.isnan(values)
        if missing.any():
            rows = list(frame.index[missing][:5])
            raise ValueError(
                f"covariate column {name!r} has {int(missing.sum())} NaN values (first at "
                f"{rows}); fill or drop those rows: covariates must be complete"
            )
        spread = float(np.std(values))
        locations[name] = 0.0 if name in raw else float(np.mean(values))
        scales[name] = 1.0 if name in raw or not spread > 0 else spread
        standardised[name] = (values - locations[name]) / scales[name]
    if check_values is not None:
        check_values(y, target, {name: standardised[name] for name in raw})
    dt, step, regular, frequency = time_steps(frame.index)
    if not float(np.nanstd(y)) > 0:
        raise ValueError(f"the target {target!r} is constant: there is nothing to model")
    location, scale = (float(np.nanmean(y)), float(np.nanstd(y))) if standardise else (0.0, 1.0)
    return SeriesData(
        index=frame.index.copy(),
        y=(y - location) / scale,
        location=location,
        scale=scale,
        covariates=standardised,
        covariate_locations=locations,
        covariate_scales=scales,
        dt=dt,
        step=step,
        regular=regular,
        target=target,
        frequency=frequency,
    )
