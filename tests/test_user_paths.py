"""The paths a user takes, in a fresh interpreter with JAX's defaults (float32, x64 off).

The rest of the suite switches x64 on (`conftest.py`) for tight comparisons with dense and
statsmodels references; a user who sets nothing runs float32, where the library once gave
wrong answers that no test saw (change points at every year of the Nile). One subprocess
runs each analysis function on its documented real data set, a `fit_many` and the
README's quick start, and reports what the tests below check against the
documented answers; `bsts demo` runs as the command line, in a process of its own.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = r"""
import json, re, sys, time, warnings
import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import bsts
from bsts import analysis

out = {"x64": bool(jax.config.jax_enable_x64), "dtype": str(jnp.zeros(()).dtype)}
seconds, clock = {}, [time.perf_counter()]


def lap(name):
    now = time.perf_counter()
    seconds[name] = round(now - clock[0], 1)
    clock[0] = now

nile = bsts.datasets.load("nile")

# Trend (docs/analysis.md): the Nile's level fell over 1871-1970.
post = bsts.fit(bsts.LocalLevel(), nile, "volume", num_warmup=300, num_samples=300,
                num_chains=1, progress_bar=False)
table = analysis.trend(post)
out["trend_change"] = float(table.loc["change", "mean"])
out["trend_prob_positive"] = float(table.loc["change", "prob_positive"])
lap("trend")

# Change points: one shift, in 1899 (the Aswan dam).
found = analysis.change_points(nile, "volume")
top = found.sort_values("probability", ascending=False).iloc[0]
out["change_year"] = int(pd.Timestamp(top["time"]).year)
out["change_probability"] = float(top["probability"])
out["change_count_above_half"] = int((found["probability"] > 0.5).sum())
lap("change_points")

# Anomalies: the Nile has no injected spikes; a calibrated fit flags about 1% at 0.01.
flagged = analysis.anomalies(post, 0.01)
out["nile_anomalies"] = int(len(flagged))
lap("anomalies")

# Periodicity: the light curve's period, 0.93700 d, against two neighbours.
curve = bsts.datasets.load("lightcurve")
periods = [pd.Timedelta(days=d) for d in (0.9300, 0.93700, 0.9440)]
scan = analysis.period_scan(curve, periods, "mag_b")
best = scan["period"].iloc[int(np.argmax(scan["score"]))]
out["best_period_days"] = best.total_seconds() / 86400
out["period_delta"] = float(scan["delta"].max())
lap("period_scan")

# Causal impact: the 1983 seat-belt law on log(drivers), seasonal model as documented.
data = bsts.datasets.load("seatbelts")
data = data.assign(log_drivers=np.log(data["drivers"]), log_kms=np.log(data["kms"]))
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    impact = analysis.causal_impact(
    data, "log_drivers", ("1969-01-01", "1983-01-01"), ("1983-02-01", "1984-12-01"),
    ["petrol_price", "log_kms"], season=12, num_warmup=300, num_samples=300, num_chains=1,
    )
out["causal_season_warning"] = any("season=" in str(w.message) for w in caught)
average = impact.summary().loc["average"]
out["causal_effect"] = float(average["effect"])
out["causal_upper"] = float(average["effect_upper"])
lap("causal_impact")

# Many series: fit_many equals a loop of fit, and forecasts are finite.
rng = np.random.default_rng(0)
frames = []
for key, n in {"a": 40, "b": 47, "c": 52}.items():
    t = np.arange(n)
    y = 100 + np.cumsum(rng.normal(size=n)) + 5 * np.sin(2 * np.pi * t / 12)
    ds = pd.date_range("2001-01", periods=n, freq="MS")
    frames.append(pd.DataFrame({"unique_id": key, "ds": ds, "y": y}))
frame = pd.concat(frames, ignore_index=True)
model = bsts.LocalLevel() + bsts.Seasonal(12)
fits = bsts.fit_many(model, frame, method="map", progress_bar=False)
alone = bsts.fit(model, frame[frame["unique_id"] == "b"].set_index("ds")["y"], method="map")
# In float32 the two optima agree in what the data determine: the likelihood and the
# forecast. Scales at the zero boundary (the MAP drives a flat direction there) differ in
# the last digits of the padded and unpadded round-off, by up to 25% of a near-zero value.
out["many_loglik_gap"] = float(abs(
    fits["b"].pointwise_log_likelihood().sum() - alone.pointwise_log_likelihood().sum()
))
mine, theirs = bsts.forecast(fits["b"], horizon=6), bsts.forecast(alone, horizon=6)
out["many_forecast_gap"] = float(max(
    np.max(np.abs(mine.mean() - theirs.mean()) / theirs.sd()),
    np.max(np.abs(mine.sd() / theirs.sd() - 1.0)),
))
long = bsts.forecast(fits, horizon=6).to_pandas()
out["many_forecast_finite"] = bool(np.isfinite(long[["mean", "lower", "upper"]].to_numpy()).all())
lap("fit_many")

# Counts: successes out of a trials column (docs/counts.md), fitted and forecast in float32.
rng = np.random.default_rng(1)
log_odds = -0.5 + np.cumsum(rng.normal(0.0, 0.1, 100))
tests = rng.integers(5, 41, 100)
ds = pd.date_range("2001-01", periods=100, freq="MS")
counts = pd.DataFrame({"positives": rng.binomial(tests, 1 / (1 + np.exp(-log_odds))),
                       "tests": tests}, index=ds)
model = bsts.Model([bsts.LocalLevel()], observation=bsts.Binomial(trials="tests"))
post = bsts.fit(model, counts, "positives", method="map")
rate = bsts.decompose(post, num_samples=None).to_pandas()["rate"]["mean"].to_numpy()
out["binomial_rate_error"] = float(np.mean(np.abs(rate - 1 / (1 + np.exp(-log_odds)))))
after = pd.date_range(ds[-1], periods=4, freq="MS")[1:]
draws = bsts.forecast(post, future=pd.DataFrame({"tests": [3, 30, 300]}, index=after)).draws
out["binomial_within_trials"] = bool(((draws >= 0) & (draws <= [3, 30, 300])).all())
out["binomial_share"] = float(draws[:, 2].mean() / 300 - 1 / (1 + np.exp(-log_odds[-1])))
lap("binomial")

# The README's quick start, as written, last: its low-level example switches x64 on, and
# everything above must run with JAX's defaults.
out["x64_before_readme"] = bool(jax.config.jax_enable_x64)
readme = open(sys.argv[1]).read()
for block in re.findall(r"```python\n(.*?)```", readme, flags=re.S):
    exec(compile(block, "README.md", "exec"), {})
out["readme"] = True
lap("readme")
out["seconds"] = seconds
print("RESULT " + json.dumps(out))
"""


def _fresh_python(*arguments: str) -> str:
    """Run `python -c ...` without JAX or XLA settings (the suite's own included); stdout."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JAX_", "XLA_"))}
    env["MPLBACKEND"] = "Agg"
    result = subprocess.run(
        [sys.executable, "-c", *arguments],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return result.stdout


@pytest.fixture(scope="module")
def user():
    stdout = _fresh_python(SCRIPT, str(ROOT / "README.md"))
    line = [row for row in stdout.splitlines() if row.startswith("RESULT ")][-1]
    out = json.loads(line[len("RESULT ") :])
    print("user paths, seconds:", out["seconds"])  # shown with -s
    return out


def test_the_interpreter_has_jax_defaults(user):
    assert user["x64"] is False and user["dtype"] == "float32"
    assert user["x64_before_readme"] is False  # every analysis above ran in float32


def test_readme_quick_start_runs(user):
    assert user["readme"]


def test_trend_on_the_nile(user):
    # docs/analysis.md: -327.5, 90% interval [-490.5, -169.3], P(change > 0) = 0.000.
    assert -490 < user["trend_change"] < -170
    assert user["trend_prob_positive"] < 0.05


def test_change_points_on_the_nile(user):
    # With float64 and float32 alike: one shift, 1899, P about 0.7-0.9.
    assert user["change_year"] == 1899
    assert user["change_probability"] > 0.5
    assert user["change_count_above_half"] == 1


def test_anomalies_on_the_nile_are_few(user):
    assert user["nile_anomalies"] <= 4


def test_period_scan_on_the_light_curve(user):
    assert user["best_period_days"] == pytest.approx(0.937)
    assert user["period_delta"] > 100


def test_causal_impact_on_seatbelts(user):
    # docs/analysis.md: -0.198, 95% interval [-0.323, -0.066].
    assert -0.33 < user["causal_effect"] < -0.07
    assert user["causal_upper"] < 0
    assert not user["causal_season_warning"]  # the model has the season the data need


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """`bsts demo` as typed in a shell: its own process (the CLI switches x64 on there)."""
    folder = tmp_path_factory.mktemp("demo")
    command = "import sys; from bsts.cli import main; sys.exit(main(sys.argv[1:]))"
    settings = ["--warmup", "50", "--samples", "50", "--chains", "1"]
    _fresh_python(command, "demo", "--out", str(folder), *settings)
    return pd.read_csv(folder / "forecast.csv", index_col=0, parse_dates=True)


def test_bsts_demo(demo):
    assert len(demo) == 24  # two years of monthly CO2
    assert demo.index[0] == pd.Timestamp("2002-01-01")  # the month after CO2's last
    assert np.isfinite(demo.to_numpy()).all()
    assert (demo["lower"] <= demo["mean"]).all() and (demo["mean"] <= demo["upper"]).all()


def test_binomial_counts_in_float32(user):
    assert user["binomial_rate_error"] < 0.06  # mean |probability - truth|
    assert user["binomial_within_trials"]
    # Successes per trial three months on, against the last true probability: the
    # posterior's sd there is about 0.05 (trials ignored would be some 0.4 off).
    assert abs(user["binomial_share"]) < 0.12


def test_fit_many_equals_fit_and_forecasts(user):
    assert user["many_loglik_gap"] < 1e-3  # nats: the same optimum
    assert user["many_forecast_gap"] < 1e-3  # in predictive sds
    assert user["many_forecast_finite"]
