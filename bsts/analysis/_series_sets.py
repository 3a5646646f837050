r"""A set of series for classification: input checks, one time unit, class templates.

The input of `Classifier` is a 2-D array (one series per row, NaN for missing), or a list
of 1-D arrays or pandas Series whose lengths, and time stamps, may differ. Every series is
prepared as `bsts.fit` prepares one (`bsts.data`), then put on one time unit shared by
the whole set, the median spacing of the training series, so that a fitted time scale
(an Ornstein–Uhlenbeck decay, a level's variance per unit time) means the same for every
series, and standardised by one location and scale, those of all the training values.
Times are relative to each series' first time stamp.

A class *template* is the mean standardised series of a class's training members as a
function of that relative time, on a grid of the shared unit: the class's typical shape,
which a model of the class carries as a regression offset (`Classifier(template=True)`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pandas as pd

from bsts.data import SeriesData, prepare_series

__all__ = [
    "TEMPLATE",
    "SharedUnits",
    "Templates",
    "as_series_list",
    "grid_times",
    "prepared",
    "shared_units",
    "with_template",
]

TEMPLATE = "template"
# Grids longer than this (a very long span at a fine spacing) are coarsened: a template
# is a mean shape, not a series to reproduce point by point.
_MAX_GRID = 4096


def as_series_list(X, what: str = "X") -> list[pd.Series]:
    """The series of a classifier's input, as float pandas Series (copies).

    Args:
        X: a 2-D array or DataFrame `(n_series, T)` (NaN: missing), a 3-D array
            `(n_series, 1, T)` (aeon's layout for univariate series), or a list of 1-D
            arrays or pandas Series (their index is the time: a DatetimeIndex or numbers).
        what: the argument's name, for errors.

    Raises:
        ValueError: an empty input or series, the wrong number of dimensions, several
            channels, non-numeric values or time stamps, a bad series (too few observed
            values, constant, infinite, unsorted: named by its position), or a mixture of
            time-stamp kinds.
    """
    if isinstance(X, (list, tuple)):
        out = [_one_series(item, i, what) for i, item in enumerate(X)]
    else:
        try:
            array = np.asarray(X, dtype=float)
        except (TypeError, ValueError) as error:
            raise ValueError(
                f"{what} must be numeric: a 2-D array (n_series, T) or a list of series"
            ) from error
        if array.ndim == 3:
            if array.shape[1] != 1:
                raise ValueError(
                    f"{what} has {array.shape[1]} channels (shape {array.shape}); the "
                    "Classifier takes univariate series: pass one channel, X[:, k, :]"
                )
            array = array[:, 0, :]
        if array.ndim != 2:
            raise ValueError(
                f"{what} must be a 2-D array (n_series, T) or a list of 1-D series, got "
                f"shape {array.shape}; for a single series pass X[None, :]"
            )
        out = [pd.Series(row.copy()) for row in array]
    if not out:
        raise ValueError(f"{what} holds no series")
    for i, series in enumerate(out):
        _check_series(series, i, what)
    kinds = {isinstance(s.index, pd.DatetimeIndex) for s in out}
    if len(kinds) > 1:
        raise ValueError(
            f"{what} mixes series indexed by dates with series indexed by numbers; give "
            "every series the same kind of time stamps"
        )
    return out


def _check_series(series: pd.Series, i: int, what: str) -> None:
    """The checks of `bsts.fit` on one series, with its position in the error."""
    if len(series) == 0:
        raise ValueError(f"{what}[{i}] is empty")
    index = series.index
    if not (isinstance(index, pd.DatetimeIndex) or pd.api.types.is_numeric_dtype(index)):
        raise ValueError(
            f"{what}[{i}] is indexed by {index.dtype} values; time stamps must be dates "
            "(a DatetimeIndex) or numbers"
        )
    try:
        prepare_series(series, None, [])
    except ValueError as error:
        raise ValueError(f"{what}[{i}]: {error}") from None


def _one_series(item, i: int, what: str) -> pd.Series:
    if isinstance(item, pd.Series):
        try:
            values = item.to_numpy(dtype=float)
        except (TypeError, ValueError) as error:
            raise ValueError(f"{what}[{i}] is not numeric") from error
        return pd.Series(values, index=item.index.copy())
    try:
        values = np.asarray(item, dtype=float)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{what}[{i}] is not numeric") from error
    if values.ndim != 1:
        raise ValueError(f"{what}[{i}] must be 1-D, got shape {values.shape}")
    return pd.Series(values.copy())


def _relative_times(index: pd.Index) -> np.ndarray:
    """Time since the first stamp: nanoseconds for dates, else the index's own unit."""
    if isinstance(index, pd.DatetimeIndex):
        stamps = index.as_unit("ns").asi8.astype(float)
    else:
        stamps = np.asarray(index, dtype=float)
    return stamps - stamps[0]


@dataclass(frozen=True)
class SharedUnits:
    """The units a set of series is measured in: one time step and one value scale.

    Attributes:
        step: the time unit, in the index's units (nanoseconds for dates).
        regular: every training series has every step equal to the unit.
        dates: the series are indexed by dates.
        location: the mean of every training value.
        scale: their standard deviation.
    """

    step: float
    regular: bool
    dates: bool
    location: float
    scale: float


def shared_units(series: list[pd.Series]) -> SharedUnits:
    """The median spacing of the series, whether all are spaced by it, and the values' scale.

    One value scale for the whole set, not one per series: a series' amplitude and level
    are part of what tells classes apart, and hyperparameters shared by a class's series
    mean the same for each only in common units.
    """
    gaps = np.concatenate([np.diff(_relative_times(s.index)) for s in series])
    positive = gaps[gaps > 0]
    step = float(np.median(positive)) if positive.size else 1.0
    regular = bool(np.allclose(gaps, step, rtol=1e-9, atol=0.0)) if gaps.size else True
    values = np.concatenate([s.to_numpy(dtype=float) for s in series])
    location, scale = float(np.nanmean(values)), float(np.nanstd(values))
    return SharedUnits(
        step, regular, isinstance(series[0].index, pd.DatetimeIndex), location, scale or 1.0
    )


def prepared(series: pd.Series, unit: SharedUnits, i: int, what: str = "X") -> SeriesData:
    """One series (checked by `as_series_list`) prepared in the set's shared units.

    Raises:
        ValueError: the series, named by its position, has time stamps of the other kind
            than the training series, or is unevenly spaced where they were evenly spaced.
    """
    if isinstance(series.index, pd.DatetimeIndex) != unit.dates:
        raise ValueError(
            f"{what}[{i}] is indexed by {'dates' if not unit.dates else 'numbers'}, but the "
            f"training series were indexed by {'dates' if unit.dates else 'numbers'}"
        )
    data = prepare_series(series, None, [])
    steps = np.diff(_relative_times(series.index)) / unit.step
    dt = np.concatenate([[1.0], steps])
    spaced = bool(np.allclose(steps, 1.0, rtol=1e-9, atol=0.0))
    if unit.regular and not spaced:
        raise ValueError(
            f"{what}[{i}] is not evenly spaced in the training series' step; the classifier "
            "was trained on evenly spaced series. Train it on unevenly sampled series (or "
            "put this one on the training grid, with NaN where values are missing)"
        )
    return dataclasses.replace(
        data,
        y=(series.to_numpy(dtype=float) - unit.location) / unit.scale,
        location=unit.location,
        scale=unit.scale,
        dt=np.ones_like(dt) if unit.regular else dt,
        regular=unit.regular,
        step=unit.step,
    )


def grid_times(series: pd.Series, unit: SharedUnits) -> np.ndarray:
    """A series' times since its start, in the shared unit."""
    return _relative_times(series.index) / unit.step


class Templates:
    """Each class's mean standardised series as a function of time since the start.

    Members are interpolated onto a grid of the shared time unit within their own span
    (linearly across missing values); the template at a grid point is the mean of the
    members that cover it. A member can be left out of its class's template, as a
    leave-one-out fit of that member needs.

    Args:
        times: each training series' times in the shared unit (`grid_times`).
        values: their standardised values (`SeriesData.y`), NaN where missing.
        labels: their class indices.
        num_classes: the number of classes.
    """

    def __init__(
        self, times: list[np.ndarray], values: list[np.ndarray], labels: np.ndarray, num_classes
    ):
        span = max(float(t[-1]) for t in times)
        self.grid = np.linspace(0.0, span, min(_MAX_GRID, int(np.floor(span)) + 1))
        self.labels = np.asarray(labels)
        self._members = np.stack([self._on_grid(t, v) for t, v in zip(times, values, strict=True)])
        covered = ~np.isnan(self._members)
        filled = np.where(covered, self._members, 0.0)
        self._sums = np.stack([filled[self.labels == c].sum(0) for c in range(num_classes)])
        self._counts = np.stack([covered[self.labels == c].sum(0) for c in range(num_classes)])

    def _on_grid(self, times: np.ndarray, values: np.ndarray) -> np.ndarray:
        observed = ~np.isnan(values)
        t, v = times[observed], values[observed]
        inside = (self.grid >= t[0]) & (self.grid <= t[-1])
        return np.where(inside, np.interp(self.grid, t, v), np.nan)

    def at(self, label: int, times: np.ndarray, leave_out: int | None = None) -> np.ndarray:
        """Class `label`'s template at the given times, without member `leave_out`.

        Grid points no member covers take the nearest covered value; a class with no
        member left gives zeros.
        """
        sums, counts = self._sums[label].copy(), self._counts[label].astype(float)
        if leave_out is not None:
            member = self._members[leave_out]
            covered = ~np.isnan(member)
            sums[covered] -= member[covered]
            counts[covered] -= 1.0
        defined = counts > 0
        if not defined.any():
            return np.zeros_like(times, dtype=float)
        mean = sums[defined] / counts[defined]
        return np.interp(times, self.grid[defined], mean)

    def nearest(self, member: int, skip: int | None = None) -> int:
        """The other member of a member's class closest to it; itself if it is alone.

        The distance is the mean squared difference over the grid points both cover.
        `skip` leaves one more member out (the second nearest is `nearest(i,
        skip=nearest(i))`).
        """
        same = np.flatnonzero(self.labels == self.labels[member])
        same = same[(same != member) & (same != skip)]
        if same.size == 0:
            return member
        differences = self._members[same] - self._members[member]
        covered = ~np.isnan(differences)
        squared = np.where(covered, differences, 0.0) ** 2
        distance = squared.sum(1) / np.maximum(covered.sum(1), 1)
        distance[covered.sum(1) == 0] = np.inf
        return int(same[np.argmin(distance)])

    def member_at(self, member: int, times: np.ndarray) -> np.ndarray:
        """One training member's own standardised values at the given times."""
        values = self._members[member]
        defined = ~np.isnan(values)
        return np.interp(times, self.grid[defined], values[defined])


def with_template(data: SeriesData, template: np.ndarray) -> SeriesData:
    """The series with a template as its one covariate, standardised over observed steps.

    Over the observed steps only, so that a series padded with missing values carries
    the same offset as the series itself.
    """
    observed = ~np.isnan(data.y)
    location = float(np.mean(template[observed]))
    spread = float(np.std(template[observed]))
    spread = spread if spread > 0 else 1.0
    return dataclasses.replace(
        data,
        covariates={TEMPLATE: (template - location) / spread},
        covariate_locations={TEMPLATE: location},
        covariate_scales={TEMPLATE: spread},
    )
