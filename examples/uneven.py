"""Tutorial: an unevenly sampled series, the MACHO light curve of a variable star.

The blue-band magnitude is observed at irregular times (minutes to weeks apart). The model
is a local level + a Fourier seasonal with a real-valued period of 14.9 days, expressed in
median time steps; every transition uses the actual gap. The last 120 days of observations
are held out and forecast at their own timestamps.

    python examples/uneven.py --out uneven-output          # the analysis
    python examples/uneven.py --quick --out /tmp/uneven    # tiny settings, a smoke test

Writes forecast.png, components.png, phase.png, forecast.csv and summary.csv to --out.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

PERIOD_DAYS = 14.9  # dominant Lomb-Scargle period of the blue band (bsts.datasets.describe)
HOLDOUT_DAYS = 120
MAX_ERROR = 0.5  # magnitudes: drop the few points with unusable photometry


def parse_args(argv=None) -> argparse.Namespace:
    """The command line: `--quick` and `--out`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny settings (a smoke test)")
    parser.add_argument("--out", default="uneven-output", help="folder for figures and tables")
    return parser.parse_args(argv)


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

    raw = bsts.datasets.load("lightcurve")
    data = raw.loc[raw["err_b"] <= MAX_ERROR, ["mag_b"]]  # also drops rows without mag_b
    if args.quick:
        data = data.iloc[-300:]
    cut = data.index[-1] - pd.Timedelta(days=HOLDOUT_DAYS)
    train, test = data.loc[data.index <= cut], data.loc[data.index > cut]

    gaps_days = np.diff(train.index.asi8) / 86400e9
    step_days = float(np.median(gaps_days))
    print(
        f"{len(train)} training points; gaps from {gaps_days.min() * 24 * 60:.0f} minutes to "
        f"{gaps_days.max():.0f} days, median {step_days:.3f} days"
    )

    # Dummy seasonality counts seasons in steps, which means nothing when steps differ.
    try:
        bsts.fit(bsts.LocalLevel() + bsts.Seasonal(15), train, target="mag_b", method="map")
    except ValueError as error:
        print(f"Seasonal refuses: {error}")

    period = PERIOD_DAYS / step_days  # the period in median steps
    model = bsts.LocalLevel() + bsts.FourierSeasonal(period, harmonics=2)
    if args.quick:
        post = bsts.fit(
            model, train, target="mag_b", method="svi", num_steps=100,
            learning_rate=0.05, num_samples=50,
        )  # fmt: skip
    else:
        post = bsts.fit(model, train, target="mag_b", num_warmup=500, num_samples=500, num_chains=2)
    summary = post.summary()
    summary.to_csv(out / "summary.csv")
    print(f"FourierSeasonal period: {period:.3f} median steps = {PERIOD_DAYS} days")
    print(summary.round(4).to_string())

    # Future timestamps are simply the index of a DataFrame with no columns.
    prediction = bsts.forecast(post, future=pd.DataFrame(index=test.index), seed=1)
    table = prediction.to_pandas(interval=0.9)
    actual = test["mag_b"].to_numpy()
    table["actual"] = actual
    table.to_csv(out / "forecast.csv")
    crps = prediction.crps(actual).mean()
    covered = bsts.metrics.coverage(table["lower"], table["upper"], actual)
    # Reference: a constant forecast at the last training value (CRPS = absolute error).
    persistence = np.abs(actual - train["mag_b"].iloc[-1]).mean()
    print(
        f"held-out {len(test)} points over {HOLDOUT_DAYS} days: CRPS {crps:.4f} mag "
        f"(last value carried forward {persistence:.4f} mag), 90% coverage {covered:.0%}"
    )

    ax = bsts.plot.plot_forecast(post, prediction, actual=test["mag_b"], history=150)
    ax.set_ylabel("blue magnitude (brighter is lower)")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.08), ncols=5, frameon=False)
    ax.figure.savefig(out / "forecast.png", dpi=110, bbox_inches="tight")
    parts = bsts.decompose(post)
    figure = bsts.plot.plot_components(parts, observed=train["mag_b"])
    figure.savefig(out / "components.png", dpi=110, bbox_inches="tight")

    # Folded at the period, the seasonal component shows the shape of one cycle.
    days = (train.index - train.index[0]) / pd.Timedelta(days=1)
    phase = np.mod(days, PERIOD_DAYS) / PERIOD_DAYS
    means = parts.to_pandas()
    fig, ax = plt.subplots(figsize=(7, 3.5))
    detrended = train["mag_b"].to_numpy() - means["level"]["mean"].to_numpy()
    ax.plot(phase, detrended, ".", color="0.6", ms=3, label="observed - level")
    ax.plot(phase, means["fourier"]["mean"], ".", color="C0", ms=3, label="fourier (mean)")
    ax.invert_yaxis()  # astronomers' convention: brighter up
    ax.set_xlabel(f"phase (period {PERIOD_DAYS} days)")
    ax.set_ylabel("magnitude")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.18), ncols=2, frameon=False)
    fig.savefig(out / "phase.png", dpi=110, bbox_inches="tight")
    plt.close("all")
    print(f"wrote figures and tables to {out.resolve()}")


if __name__ == "__main__":
    main()
