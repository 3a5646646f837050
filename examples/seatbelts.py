"""Tutorial: the effect of the 1983 UK seat-belt law on drivers killed or seriously injured.

The model of log(drivers) is a local level + monthly seasonality + a static regression on
the law (0 before February 1983, 1 after), log petrol price and log distance driven. The
law's coefficient is a change in log(drivers), so 100 (exp(beta) - 1) is its % effect.

    python examples/seatbelts.py --out seatbelts-output          # the analysis
    python examples/seatbelts.py --quick --out /tmp/seatbelts    # tiny settings, a smoke test

Writes components.png, law_effect.png, coefficients.csv and summary.csv to --out.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

COVARIATES = ["law", "log_petrol_price", "log_kms"]


def parse_args(argv=None) -> argparse.Namespace:
    """The command line: `--quick` and `--out`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny settings (a smoke test)")
    parser.add_argument("--out", default="seatbelts-output", help="folder for figures and tables")
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

    raw = bsts.datasets.load("seatbelts")
    data = pd.DataFrame(
        {
            "log_drivers": np.log(raw["drivers"]),
            "law": raw["law"].astype(float),
            "log_petrol_price": np.log(raw["petrol_price"]),
            "log_kms": np.log(raw["kms"]),
        },
        index=raw.index,
    )

    model = bsts.LocalLevel() + bsts.Seasonal(12) + bsts.Regression(COVARIATES)
    if args.quick:
        post = bsts.fit(
            model, data, target="log_drivers", method="svi", num_steps=100,
            learning_rate=0.05, num_samples=50,
        )  # fmt: skip
    else:
        post = bsts.fit(
            model, data, target="log_drivers", num_warmup=1000, num_samples=1000, num_chains=2
        )

    summary = post.summary()
    summary.to_csv(out / "summary.csv")
    print(summary.round(4).to_string())
    if post.method == "nuts":
        divergences = int(post.sample_stats["diverging"].sum())
        print(f"divergent transitions: {divergences}")

    # Draws in original units: change in log(drivers) per unit of each covariate.
    beta = post.samples["regression.coefficients"].reshape(-1, len(COVARIATES))
    rows = {}
    for k, name in enumerate(COVARIATES):
        draws = beta[:, k]
        rows[name] = {
            "mean": draws.mean(),
            "lower_90": np.percentile(draws, 5),
            "upper_90": np.percentile(draws, 95),
            "prob_negative": np.mean(draws < 0),
        }
    coefficients = pd.DataFrame(rows).T
    coefficients.to_csv(out / "coefficients.csv")
    print(coefficients.round(4).to_string())

    effect = 100 * np.expm1(beta[:, 0])
    low, mid, high = np.percentile(effect, [5, 50, 95])
    print(
        f"law effect on drivers killed or seriously injured: {mid:.1f}% "
        f"(90% interval {low:.1f}% to {high:.1f}%), P(effect < 0) = {np.mean(effect < 0):.3f}"
    )

    figure = bsts.plot.plot_components(bsts.decompose(post), observed=data["log_drivers"])
    figure.savefig(out / "components.png", dpi=110, bbox_inches="tight")

    fig, ax = plt.subplots(figsize=(6, 3))
    ax.hist(effect, bins=40, color="C0", alpha=0.7)
    for value in (low, high):
        ax.axvline(value, color="C3", ls="--", lw=1)
    ax.axvline(mid, color="C3", lw=1.5)
    ax.set_xlabel("effect of the law on drivers KSI (%)")
    ax.set_ylabel("posterior draws")
    ax.set_title("Seat-belt law: median and 90% interval")
    fig.savefig(out / "law_effect.png", dpi=110, bbox_inches="tight")
    plt.close("all")
    print(f"wrote figures and tables to {out.resolve()}")


if __name__ == "__main__":
    main()
