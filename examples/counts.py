"""Tutorial: the rate of British coal-mining disasters, 1851-1962, as a Poisson series.

`bsts.datasets.load("coal")` counts the disasters (ten or more killed) in each year, from
R's `boot::coal`. A local level on the log rate with Poisson counts
(`Model([LocalLevel()], observation="poisson")`) follows the famous fall in the rate
around 1890 without being told where or whether it happened; NUTS samples the level's
scale on the Laplace-approximated likelihood (the yearly log rates are integrated out).

    python examples/counts.py --out counts-output          # the analysis
    python examples/counts.py --quick --out /tmp/counts    # a smoke test

Writes summary.csv, rate.csv, forecast.csv, change_points.csv and rate.png to --out.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def parse_args(argv=None) -> argparse.Namespace:
    """The command line: `--quick` and `--out`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short chain (a smoke test)")
    parser.add_argument("--out", default="counts-output", help="folder for outputs")
    return parser.parse_args(argv)


def main(argv=None) -> None:
    """Run the tutorial."""
    args = parse_args(argv)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    import bsts

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    coal = bsts.datasets.load("coal")
    print(f"{len(coal)} years, {int(coal['disasters'].sum())} disasters")

    model = bsts.Model([bsts.LocalLevel()], observation="poisson")
    draws = 100 if args.quick else 1000
    post = bsts.fit(model, coal, "disasters", num_warmup=draws, num_samples=draws, seed=0)
    summary = post.summary()
    summary.to_csv(out / "summary.csv")
    print(summary.round(3).to_string())

    parts = bsts.decompose(post, num_samples=None).to_pandas(interval=0.9)
    rate = parts["rate"]  # disasters per year; parts["level"] is its log
    rate.to_csv(out / "rate.csv")
    print("\nRate (disasters per year), every 20 years:")
    print(rate.iloc[::20].round(2).to_string())
    early, late = rate.loc[:"1880", "mean"].mean(), rate.loc["1900":, "mean"].mean()
    print(f"mean rate 1851-1880: {early:.2f} a year; 1900-1962: {late:.2f} a year")

    prediction = bsts.forecast(post, horizon=5).to_pandas(interval=0.9)
    prediction.to_csv(out / "forecast.csv")
    print("\nForecast (integer counts):")
    print(prediction.to_string())

    # Where did the rate change? A horseshoe-shrunk level on the log rate
    # (bsts.analysis.change_points); a shift's probability spreads over the years that the
    # counts cannot tell apart, so sum it by decade.
    changes = bsts.analysis.change_points(
        coal, "disasters", observation="poisson", num_warmup=draws, num_samples=draws, seed=0
    )
    changes.to_csv(out / "change_points.csv", index=False)
    threshold = changes.attrs["min_shift"]
    print(f"\nChange points (a shift of the log rate above {threshold:.2f}):")
    top = changes.nlargest(3, "probability").set_index("time")[["probability", "shift"]]
    print(top.round(3).to_string())
    decades = changes.groupby(changes["time"].dt.year // 10 * 10)[["probability", "shift"]]
    print(decades.sum().round(2).to_string())

    fig, ax = plt.subplots(figsize=(8, 3.2))
    years = coal.index.year
    ax.bar(years, coal["disasters"], color="0.75", label="disasters per year")
    ax.fill_between(years, rate["lower"], rate["upper"], alpha=0.3, label="rate, 90% band")
    ax.plot(years, rate["mean"], label="rate (posterior mean)")
    ax.set_xlabel("year")
    ax.set_ylabel("disasters")
    ax.legend(frameon=False)
    fig.tight_layout()
    fig.savefig(out / "rate.png", dpi=120)
    print(f"\nwrote {out}/summary.csv, rate.csv, forecast.csv, change_points.csv, rate.png")


if __name__ == "__main__":
    main()
