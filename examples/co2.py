"""Tutorial: decompose and forecast Mauna Loa CO2 (local linear trend + monthly seasonality).

The last 24 months are held out: the model is fitted to the rest with NUTS, forecasts
them, and the forecast is scored against what was observed. The fit is then decomposed
into its trend and seasonal parts.

    python examples/co2.py --out co2-output            # the analysis (1.5 minutes on 2 cores)
    python examples/co2.py --quick --out /tmp/co2      # tiny settings, a smoke test

Writes forecast.png, components.png, residuals.png, summary.csv and forecast.csv to --out.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

HOLDOUT = 24  # months


def parse_args(argv=None) -> argparse.Namespace:
    """The command line: `--quick` and `--out`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny settings (a smoke test)")
    parser.add_argument("--out", default="co2-output", help="folder for figures and tables")
    return parser.parse_args(argv)


def main(argv=None) -> None:
    """Run the tutorial."""
    args = parse_args(argv)
    # Two NUTS chains side by side need two JAX devices, set before JAX starts.
    import numpyro

    numpyro.set_host_device_count(min(2, os.cpu_count() or 1))
    import jax

    jax.config.update("jax_enable_x64", True)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    import bsts

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    data = bsts.datasets.load("co2")
    if args.quick:
        data = data.loc["1985":]
    train, test = data.iloc[:-HOLDOUT], data.iloc[-HOLDOUT:]

    model = bsts.LocalLinearTrend() + bsts.Seasonal(12)
    if args.quick:
        post = bsts.fit(
            model,
            train,
            target="co2",
            method="svi",
            num_steps=100,
            learning_rate=0.05,
            num_samples=50,
        )
    else:
        post = bsts.fit(model, train, target="co2", num_warmup=500, num_samples=500, num_chains=2)

    summary = post.summary()
    summary.to_csv(out / "summary.csv")
    print(summary.round(4).to_string())

    prediction = bsts.forecast(post, horizon=HOLDOUT, seed=1)
    table = prediction.to_pandas(interval=0.9)
    table["actual"] = test["co2"].to_numpy()
    table.to_csv(out / "forecast.csv")
    actual = test["co2"].to_numpy()
    crps = prediction.crps(actual).mean()
    covered = bsts.metrics.coverage(table["lower"], table["upper"], actual)
    mae = (table["median"] - table["actual"]).abs().mean()
    print(
        f"held-out {HOLDOUT} months: CRPS {crps:.3f} ppm, MAE of the median {mae:.3f} ppm, "
        f"90% interval coverage {covered:.0%}"
    )

    ax = bsts.plot.plot_forecast(post, prediction, actual=test["co2"], history=120)
    ax.set_ylabel("CO2 (ppm)")
    ax.figure.savefig(out / "forecast.png", dpi=110, bbox_inches="tight")

    parts = bsts.decompose(post)
    figure = bsts.plot.plot_components(parts, observed=train["co2"])
    figure.savefig(out / "components.png", dpi=110, bbox_inches="tight")
    seasonal = parts.to_pandas()["seasonal"]["mean"]
    amplitude = seasonal.groupby(seasonal.index.year).agg(lambda s: s.max() - s.min())
    print(
        "seasonal peak-to-trough (ppm): "
        f"{amplitude.index[1]} {amplitude.iloc[1]:.2f}, {amplitude.index[-1]} "
        f"{amplitude.iloc[-1]:.2f}"
    )

    ax = bsts.plot.plot_residuals(post)
    ax.figure.savefig(out / "residuals.png", dpi=110, bbox_inches="tight")
    plt.close("all")
    print(f"wrote figures and tables to {out.resolve()}")


if __name__ == "__main__":
    main()
