"""Tutorial: daily electricity demand in Victoria, driven by temperature.

Demand rises on hot days (air conditioning) and on cold ones (heating), so temperature
enters through degree features built with pandas: cooling degrees above 24 °C (daily
maximum) and their square, heating degrees below 16 °C (daily mean), plus the public-holiday
flag. The model is a local level + day-of-week seasonality + that regression + an AR(1)
term for deviations that last a few days. The last 8 weeks are held out and forecast with
their observed temperatures as future covariates, then scored with the CRPS against a
seasonal-naive forecast (demand a week earlier).

    python examples/electricity.py --out electricity-output          # the analysis
    python examples/electricity.py --quick --out /tmp/electricity    # tiny settings

Writes forecast.png, components.png, forecast.csv, coefficients.csv and summary.csv to
--out.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

HOLDOUT = 56  # days
COVARIATES = ["cooling", "cooling_squared", "heating", "holiday"]


def parse_args(argv=None) -> argparse.Namespace:
    """The command line: `--quick` and `--out`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny settings (a smoke test)")
    parser.add_argument("--out", default="electricity-output", help="folder for figures and tables")
    return parser.parse_args(argv)


def features(frame):
    """Degree-day covariates from the daily temperatures (a new DataFrame)."""
    import pandas as pd

    cooling = (frame["temperature"] - 24.0).clip(lower=0.0)
    return pd.DataFrame(
        {
            "demand": frame["demand"],
            "cooling": cooling,
            "cooling_squared": cooling**2,
            "heating": (16.0 - frame["temperature_mean"]).clip(lower=0.0),
            "holiday": frame["holiday"].astype(float),
        },
        index=frame.index,
    )


def main(argv=None) -> None:
    """Run the tutorial."""
    args = parse_args(argv)
    import numpyro

    numpyro.set_host_device_count(min(2, os.cpu_count() or 1))
    import jax

    jax.config.update("jax_enable_x64", True)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    import pandas as pd

    import bsts

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    data = features(bsts.datasets.load("electricity"))
    if args.quick:
        data = data.iloc[-200:]
    train, test = data.iloc[:-HOLDOUT], data.iloc[-HOLDOUT:]

    # The AR(1) term carries weather-driven deviations that persist for a few days and then
    # fade, which a random-walk level alone would carry forward forever.
    model = (
        bsts.LocalLevel() + bsts.Seasonal(7) + bsts.Regression(COVARIATES) + bsts.Autoregressive(1)
    )
    if args.quick:
        post = bsts.fit(
            model, train, target="demand", method="svi", num_steps=100,
            learning_rate=0.05, num_samples=50,
        )  # fmt: skip
    else:
        post = bsts.fit(
            model, train, target="demand", num_warmup=500, num_samples=500, num_chains=2
        )

    summary = post.summary()
    summary.to_csv(out / "summary.csv")
    print(summary.round(3).to_string())
    beta = post.samples["regression.coefficients"].reshape(-1, len(COVARIATES))
    coefficients = pd.DataFrame(
        {
            "mean": beta.mean(axis=0),
            "lower_90": np.percentile(beta, 5, axis=0),
            "upper_90": np.percentile(beta, 95, axis=0),
        },
        index=COVARIATES,
    )
    coefficients.to_csv(out / "coefficients.csv")
    print("coefficients (MW per unit of each covariate):")
    print(coefficients.round(2).to_string())

    # The future covariates are the temperatures actually observed in the held-out weeks.
    prediction = bsts.forecast(post, future=test[COVARIATES], seed=1)
    table = prediction.to_pandas(interval=0.9)
    actual = test["demand"].to_numpy()
    table["actual"] = actual
    table.to_csv(out / "forecast.csv")
    crps = prediction.crps(actual).mean()
    covered = bsts.metrics.coverage(table["lower"], table["upper"], actual)
    # A point forecast's CRPS is its absolute error, so the two scores compare directly.
    naive = data["demand"].shift(7).iloc[-HOLDOUT:].to_numpy()
    naive_crps = np.abs(naive - actual).mean()
    print(
        f"held-out {HOLDOUT} days: CRPS {crps:.1f} MW (seasonal naive {naive_crps:.1f} MW), "
        f"90% interval coverage {covered:.0%}"
    )

    ax = bsts.plot.plot_forecast(post, prediction, actual=test["demand"], history=4 * HOLDOUT)
    ax.set_ylabel("demand (MW)")
    ax.figure.savefig(out / "forecast.png", dpi=110, bbox_inches="tight")

    parts = bsts.decompose(post)
    figure = bsts.plot.plot_components(parts, observed=train["demand"])
    figure.savefig(out / "components.png", dpi=110, bbox_inches="tight")
    plt.close("all")
    print(f"wrote figures and tables to {out.resolve()}")


if __name__ == "__main__":
    main()
