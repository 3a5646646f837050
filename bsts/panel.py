"""pandas at the edge for collections: a long frame split into validated series.

A long-format frame has one row per (series, time), with an id column, a time column (or
the index) and the target, plus any covariate columns. Each series goes through the same
checks as a single series (`bsts.data.prepare_series`); a bad series is reported by its id,
never dropped silently. The user's frame is not modified.

A series whose timestamps sit on a regular calendar grid with rows missing (a month with
no row) is put back on that grid with NaN targets, so that it stays a regular series with
gaps rather than becoming an unevenly sampled one.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import pandas as pd

from bsts.data import SeriesData, prepare_series

__all__ = ["ERRORS", "Panel", "prepare_panel"]

ERRORS = ("raise", "skip")


@dataclass(frozen=True)
class Panel:
    """The validated series of a long frame.

    Attributes:
        ids: the ids of the series kept, in order of first appearance in the frame.
        series: their standardised data, one `SeriesData` each.
        skipped: the series left out with `errors="skip"`: columns `unique_id` and
            `reason` (empty with `errors="raise"`).
    """

    ids: list
    series: list[SeriesData]
    skipped: pd.DataFrame


def _check_frame(frame, id_col: str, time_col: str | None, target: str) -> None:
    if not isinstance(frame, pd.DataFrame):
        raise ValueError(
            f"frame must be a long-format pandas DataFrame (one row per series and time), "
            f"got {type(frame).__name__}"
        )
    needed = [id_col, target] + ([] if time_col is None else [time_col])
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise ValueError(
            f"column(s) {missing} not in the frame; its columns are "
            f"{', '.join(map(str, frame.columns))} (name them with id_col=, time_col=, target=)"
        )
    if frame[id_col].isna().any():
        raise ValueError(f"the id column {id_col!r} has missing values; every row needs an id")
    if len(frame) == 0:
        raise ValueError("the frame is empty")


def _common_frequency(times: dict) -> str | None:
    """The calendar frequency most of the series share, if their timestamps are dates."""
    found = Counter()
    for index in times.values():
        if isinstance(index, pd.DatetimeIndex) and len(index) >= 3:
            try:
                found[pd.DatetimeIndex(index, freq="infer").freqstr] += 1
            except (TypeError, ValueError):
                continue
    found.pop(None, None)
    return found.most_common(1)[0][0] if found else None


def _on_grid(index: pd.Index, frequency: str | None) -> pd.Index:
    """The full calendar grid from the first to the last timestamp, if they lie on it."""
    if frequency is None or not isinstance(index, pd.DatetimeIndex) or index.has_duplicates:
        return index
    try:
        grid = pd.date_range(index.min(), index.max(), freq=frequency, name=index.name)
    except (TypeError, ValueError):
        return index
    if len(grid) == len(index) or not index.isin(grid).all():
        return index
    return grid


def _one_series(
    rows: pd.DataFrame, time_col, target, covariates, frequency, values: dict
) -> SeriesData:
    rows = rows.set_index(time_col) if time_col is not None else rows
    if rows.index.has_duplicates:
        duplicated = list(rows.index[rows.index.duplicated()][:5])
        raise ValueError(f"duplicate timestamps {duplicated}")
    rows = rows.sort_index()
    grid = _on_grid(rows.index, frequency)
    if len(grid) != len(rows):
        rows = rows.reindex(grid)
        for name in covariates:
            if rows[name].isna().any():
                raise ValueError(
                    f"rows missing from the {frequency} grid leave covariate {name!r} "
                    "without values; give those rows (covariates must be complete)"
                )
    return prepare_series(rows[[target, *covariates]], target, covariates, **values)


def prepare_panel(
    frame: pd.DataFrame,
    *,
    id_col: str,
    time_col: str | None,
    target: str,
    covariates: list[str],
    errors: str = "raise",
    check=None,
    standardise: bool = True,
    check_values=None,
    raw: tuple[str, ...] = (),
) -> Panel:
    """Split a long frame into validated, standardised series.

    Args:
        frame: one row per (series, time).
        id_col: the column naming the series.
        time_col: the time column; None means the frame's index is the time.
        target: the target column.
        covariates: the covariate columns the model needs.
        errors: "raise" (default) raises on the first bad series, naming it; "skip" leaves
            bad series out and lists them, with the reason, in `Panel.skipped`.
        check: a further check of each prepared series (for example the model's own),
            raising ValueError; its failures are handled like the data's.
        standardise: standardise each target (False for counts; `prepare_series`).
        check_values: the observation model's check of a target's values
            (`prepare_series`); its failures are handled like the data's.
        raw: covariates kept as given, not standardised (`prepare_series`).

    Returns:
        The `Panel`.

    Raises:
        ValueError: a bad frame, an unknown `errors`, a bad series with `errors="raise"`,
            or no usable series at all.
    """
    if errors not in ERRORS:
        raise ValueError(f"errors must be one of {', '.join(ERRORS)}, got {errors!r}")
    _check_frame(frame, id_col, time_col, target)
    for name in covariates:
        if name not in frame.columns:
            raise ValueError(f"covariate column {name!r} is not in the frame")
    columns = [c for c in dict.fromkeys([target, *covariates, time_col]) if c is not None]
    groups = {key: rows[columns] for key, rows in frame.groupby(id_col, sort=False)}
    times = {
        key: (pd.Index(rows[time_col]) if time_col is not None else rows.index)
        for key, rows in groups.items()
    }
    frequency = _common_frequency(times)

    ids, series, skipped = [], [], []
    for key, rows in groups.items():
        try:
            prepared = _one_series(
                rows,
                time_col,
                target,
                covariates,
                frequency,
                {"standardise": standardise, "check_values": check_values, "raw": raw},
            )
            if check is not None:
                check(prepared)
        except ValueError as error:
            if errors == "raise":
                raise ValueError(f"series {key!r}: {error}") from error
            skipped.append((key, str(error)))
            continue
        series.append(prepared)
        ids.append(key)
    report = pd.DataFrame(skipped, columns=["unique_id", "reason"])
    if not series:
        raise ValueError(f"no usable series in the frame; every one was skipped:\n{report}")
    return Panel(ids, series, report)
