"""The ETS peer: statsforecast `AutoETS(season_length=12)` on a long table of series.

Reads a long CSV (`unique_id`, `ds`, `y`: the training part of every series), fits
`AutoETS` (statsforecast's port of R's `forecast::ets`: model selection by AICc over the
error / trend / seasonal forms, default options) to each series, forecasts `--horizon` steps
and writes one row per series and step: `unique_id`, `ds`, `mean`, and `lower_L` / `upper_L`
for every requested central interval level L (percent), plus the selected model per series
and the timings in a JSON file next to it (`--timing`). `benchmarks/many_series.py` runs it
and scores its forecasts next to the other methods.

The timed part is `StatsForecast.fit` + `predict` over all series in one process
(`n_jobs=1`, so that it uses one core as statsmodels does). Before it, a warm-up fit of the
first series alone pays the one-off import and first-call costs; its time is reported
separately (`warmup_seconds`) and not counted.

statsforecast pulls in its own numpy / pandas / statsmodels pins, so this script runs in its
own environment and does not import bsts:

    python3 -m venv /work/venv-sf && /work/venv-sf/bin/pip install statsforecast pandas
    /work/venv-sf/bin/python benchmarks/statsforecast_peer.py train.csv forecasts.csv \
        --horizon 18 --levels 50 80 95

Prediction intervals: for the error / trend / seasonal forms with an analytic forecast
variance (R's classes 1 to 3, which include every additive-error model without
multiplicative seasonality) statsforecast returns `mean ± z · sd`, so the interval is that of
a Normal centred on the mean; for the others it takes quantiles of 5,000 simulated paths.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import statsforecast
from statsforecast import StatsForecast
from statsforecast.models import AutoETS


def run(train: pd.DataFrame, horizon: int, levels: list[int], freq: str, season: int = 12):
    """Fit and forecast every series: `(forecasts, selected models, seconds)`."""
    sf = StatsForecast(models=[AutoETS(season_length=season)], freq=freq, n_jobs=1)
    start = time.perf_counter()
    sf.fit(train)
    raw = sf.predict(h=horizon, level=levels)
    seconds = time.perf_counter() - start
    raw = raw.reset_index() if "unique_id" not in raw.columns else raw
    forecasts = pd.DataFrame(
        {"unique_id": raw["unique_id"], "ds": raw["ds"], "mean": raw["AutoETS"]}
    )
    for level in levels:
        forecasts[f"lower_{level}"] = raw[f"AutoETS-lo-{level}"]
        forecasts[f"upper_{level}"] = raw[f"AutoETS-hi-{level}"]
    ids = sf.uids if hasattr(sf, "uids") else sorted(train["unique_id"].unique())
    selected = {
        str(uid): str(fitted.model_["method"])
        for uid, fitted in zip(ids, sf.fitted_[:, 0], strict=True)
    }
    return forecasts, selected, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("train", help="long CSV with columns unique_id, ds, y")
    parser.add_argument("output", help="forecasts CSV to write")
    parser.add_argument("--horizon", type=int, default=18)
    parser.add_argument("--levels", type=int, nargs="+", default=[50, 80, 95])
    parser.add_argument("--freq", default="MS", help="pandas frequency of ds (default MS)")
    parser.add_argument("--season", type=int, default=12, help="AutoETS season_length")
    parser.add_argument("--timing", help="JSON file for timings (default: OUTPUT.json)")
    args = parser.parse_args()

    train = pd.read_csv(args.train, parse_dates=["ds"], dtype={"unique_id": str})
    train = train[["unique_id", "ds", "y"]].sort_values(["unique_id", "ds"])
    num_series = train["unique_id"].nunique()

    first = train[train["unique_id"] == train["unique_id"].iloc[0]]
    start = time.perf_counter()
    run(first, args.horizon, args.levels, args.freq, args.season)
    warmup = time.perf_counter() - start

    forecasts, selected, seconds = run(train, args.horizon, args.levels, args.freq, args.season)
    forecasts.to_csv(args.output, index=False)
    timing = {
        "seconds": seconds,
        "seconds_per_series": seconds / num_series,
        "warmup_seconds": warmup,
        "num_series": num_series,
        "horizon": args.horizon,
        "levels": args.levels,
        "statsforecast": statsforecast.__version__,
        "numpy": np.__version__,
        "models": selected,
    }
    timing_path = Path(args.timing) if args.timing else Path(args.output).with_suffix(".json")
    timing_path.write_text(json.dumps(timing, indent=1))
    print(
        f"AutoETS: {num_series} series in {seconds:.2f} s ({seconds / num_series:.4f} s/series), "
        f"warm-up {warmup:.2f} s"
    )


if __name__ == "__main__":
    main()
