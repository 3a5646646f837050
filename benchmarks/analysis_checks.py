"""The five analysis questions on real and simulated data: figures and numbers for the docs.

Run from the repository root:

    python benchmarks/analysis_checks.py            # all checks, figures to docs/images/
    python benchmarks/analysis_checks.py --only nile --replicates 0

It prints every number that docs/analysis.md quotes and writes the figures
docs/images/analysis_{trend,period,anomalies,change_points,causal}.png.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

import matplotlib  # noqa: E402

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from scipy.signal import lombscargle  # noqa: E402

import bsts  # noqa: E402
from bsts import analysis  # noqa: E402

IMAGES = Path(__file__).resolve().parents[1] / "docs" / "images"
NUTS = {"num_warmup": 500, "num_samples": 500, "num_chains": 2}


def _save(figure, name: str) -> None:
    IMAGES.mkdir(parents=True, exist_ok=True)
    figure.savefig(IMAGES / f"analysis_{name}.png", dpi=90, bbox_inches="tight")
    print(f"  figure: docs/images/analysis_{name}.png")


def check_trend() -> None:
    print("== trend: Nile, local level, NUTS 2x500")
    nile = bsts.datasets.load("nile")
    post = bsts.fit(bsts.LocalLevel(), nile, "volume", seed=0, **NUTS)
    print(analysis.trend(post).round(3).to_string())
    print(analysis.trend(post, "1900", "1970").round(3).to_string())
    _save(analysis.plot_trend(post, "1900", "1970").figure, "trend")


def check_period() -> None:
    print("== period: MACHO light curve (blue magnitude), 1235 uneven points")
    data = bsts.datasets.load("lightcurve")
    observed = data.dropna(subset=["mag_b"])
    t, y = observed["mjd"].to_numpy(), observed["mag_b"].to_numpy()
    fine = np.linspace(0.5, 2.0, 60000)
    power = lombscargle(t, y - y.mean(), 2 * np.pi / fine, normalize=True)
    print(f"  Lomb-Scargle peak on a fine grid (0.5-2 d): {fine[np.argmax(power)]:.5f} d")
    days = np.linspace(0.930, 0.944, 57)
    start = time.perf_counter()
    scan = analysis.period_scan(data, [pd.Timedelta(days=d) for d in days], "mag_b")
    elapsed = time.perf_counter() - start
    best = scan.loc[scan["delta"].idxmax()]
    print(
        f"  scan of {len(days)} periods in {elapsed:.1f} s (one compilation): best "
        f"{days[scan['delta'].idxmax()]:.5f} d, delta {best['delta']:.1f} nats; "
        f"Lomb-Scargle best on the same grid {days[scan['lombscargle'].idxmax()]:.5f} d"
    )
    start = time.perf_counter()
    analysis.period_scan(data, [pd.Timedelta(days=d + 1e-4) for d in days], "mag_b")
    print(f"  the same scan again (compiled): {time.perf_counter() - start:.1f} s")
    _save(analysis.plot_period_scan(scan).figure, "period")


def _anomaly_series(seed: int):
    rng = np.random.default_rng(seed)
    T = 200
    level = np.cumsum(rng.normal(0.0, 0.1, T))
    values = level + rng.normal(0.0, 0.5, T)
    positions = np.sort(rng.choice(np.arange(5, T), 8, replace=False))
    values[positions] += rng.choice([-1, 1], 8) * rng.uniform(2.5, 5.0, 8)  # 5-10 noise sds
    index = pd.date_range("2020-01-01", periods=T, freq="D")
    return pd.Series(values, index=index, name="y"), set(positions.tolist())


def check_anomalies() -> None:
    print("== anomalies: 200 points, 8 injected (5-10 noise sds), NUTS 2x500")
    series, truth = _anomaly_series(2)
    for kind in ("gaussian", "student_t"):
        post = bsts.fit(bsts.Model([bsts.LocalLevel()], observation=kind), series, **NUTS)
        scores = ("predictive", "core") if kind == "student_t" else ("predictive",)
        for score in scores:
            for threshold in (0.01, 0.001):
                table = analysis.anomalies(post, threshold, score=score)
                flagged = set(series.index.get_indexer(table["time"]).tolist())
                hits = len(flagged & truth)
                print(
                    f"  {kind:9s} {score:10s} threshold {threshold:g}: flagged {len(flagged)}, "
                    f"precision {hits / max(len(flagged), 1):.2f}, recall {hits / len(truth):.2f}"
                )
        scale = np.median(post.samples["observation.scale"])
        print(f"  {kind:9s} posterior median observation scale {scale:.3f} (truth 0.5)")
        if kind == "student_t":
            print(f"  posterior median df {np.median(post.samples['observation.df']):.2f}")
        score = "core" if kind == "student_t" else "predictive"
        _save(analysis.plot_anomalies(post, 0.01, score=score).figure, f"anomalies_{kind}")


def check_change_points() -> None:
    print("== change points: Nile, ChangePointTrend, NUTS 2x500")
    nile = bsts.datasets.load("nile")
    post = bsts.fit(bsts.Model([analysis.ChangePointTrend()]), nile, "volume", seed=0, **NUTS)
    table = analysis.change_points(post)
    years = table["time"].dt.year
    top = table.sort_values("probability", ascending=False).head(4)
    for _, row in top.iterrows():
        print(
            f"  {row['time'].year}: P(shift) {row['probability']:.2f}, mean shift "
            f"{row['shift']:.0f}"
        )
    near = table.loc[years.between(1897, 1901), "probability"].sum()
    far = table.loc[~years.between(1895, 1903), "probability"].max()
    print(f"  sum over 1897-1901 {near:.2f}; largest elsewhere {far:.2f}")
    divergent = int(post.sample_stats["diverging"].sum())
    print(f"  divergent transitions {divergent}")
    _save(analysis.plot_change_points(post), "change_points")


def check_causal(replicates: int) -> None:
    print("== causal impact: Seatbelts, log(drivers), 1983 law, NUTS 2x500")
    data = bsts.datasets.load("seatbelts")
    data = data.assign(log_drivers=np.log(data["drivers"]), log_kms=np.log(data["kms"]))
    impact = analysis.causal_impact(
        data,
        "log_drivers",
        ("1969-01-01", "1983-01-01"),
        ("1983-02-01", "1984-12-01"),
        ["petrol_price", "log_kms"],
        season=12,
        seed=0,
        **NUTS,
    )
    print(impact.summary().round(4).to_string())
    print(f"  probability of an effect {impact.probability:.4f}")
    effect = impact.summary().loc["average"]
    print(
        f"  as a ratio of deaths: exp(effect) = {np.exp(effect['effect']):.3f} "
        f"[{np.exp(effect['effect_lower']):.3f}, {np.exp(effect['effect_upper']):.3f}]"
    )
    print(impact.report())
    _save(impact.plot(), "causal")
    if replicates:
        covered = 0
        for seed in range(replicates):
            rng = np.random.default_rng(1000 + seed)
            T = 100
            x = np.cumsum(rng.normal(0.0, 1.0, T)) + 10.0
            y = 1.5 * x + np.cumsum(rng.normal(0.0, 0.1, T)) + rng.normal(0.0, 0.5, T)
            y[70:] += 2.0
            index = pd.date_range("2020-01-01", periods=T, freq="D")
            frame = pd.DataFrame({"y": y, "x": x}, index=index)
            summary = analysis.causal_impact(
                frame, "y", (index[0], index[69]), (index[70], index[-1]), ["x"], seed=seed,
                num_warmup=300, num_samples=300, num_chains=1,
            ).summary()  # fmt: skip
            row = summary.loc["average"]
            covered += bool(row["effect_lower"] < 2.0 < row["effect_upper"])
        print(f"  simulated effect 2.0: 95% interval covered it in {covered}/{replicates}")


CHECKS = {
    "trend": check_trend,
    "period": check_period,
    "anomalies": check_anomalies,
    "nile": check_change_points,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=[*CHECKS, "causal"], default=None)
    parser.add_argument("--replicates", type=int, default=20, help="causal coverage runs")
    args = parser.parse_args()
    for name, check in CHECKS.items():
        if args.only in (None, name):
            check()
    if args.only in (None, "causal"):
        check_causal(args.replicates)


if __name__ == "__main__":
    main()
