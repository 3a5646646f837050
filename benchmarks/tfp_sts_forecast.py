"""The Bayesian peer: TensorFlow Probability `sts` on the `forecast_accuracy.py` set-up.

Fits TFP's `LocalLinearTrend + Seasonal(num_seasons=12)` (its default, data-scaled priors)
to CO2 and log airline passengers without their last 24 months, with NUTS (2 chains, 500
adaptation + 500 draws, `tfp.experimental.mcmc.windowed_adaptive_nuts`), and writes each
posterior draw's Normal predictive for the 24 held-out months (`tfp.sts.forecast`) to an
`.npz` file. `python benchmarks/forecast_accuracy.py --peer FILE` then scores that mixture
exactly, next to statsmodels, in the bsts environment.

TFP's JAX substrate (0.25) does not import with the JAX that bsts needs, so this script
runs in its own environment and does not import bsts; it reads the shipped CSV files
directly:

    python3.11 -m venv /tmp/tfp && /tmp/tfp/bin/pip install "jax[cpu]==0.4.30" \
        tensorflow-probability==0.25.0 pandas
    /tmp/tfp/bin/python benchmarks/tfp_sts_forecast.py tfp_sts.npz
    python benchmarks/forecast_accuracy.py --peer tfp_sts.npz

TFP's `Seasonal` is not statsmodels' dummy form: by default its effects are constrained to
sum to zero and each season's effect takes its own drift when that season ends.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import jax
import numpy as np
import pandas as pd
from tensorflow_probability.substrates import jax as tfp

jax.config.update("jax_enable_x64", True)

HOLDOUT = 24
DATA = Path(__file__).resolve().parents[1] / "bsts" / "datasets" / "data"


def training_series(name: str) -> np.ndarray:
    """All but the last `HOLDOUT` values: CO2 as is (NaN = missing), airline on the log scale."""
    frame = pd.read_csv(DATA / f"{name}.csv", index_col="time")
    values = frame.iloc[:, 0].to_numpy(float)
    values = np.log(values) if name == "airline" else values
    return values[:-HOLDOUT]


def draw_predictives(name: str, seed: int = 0) -> dict[str, np.ndarray]:
    """Per-draw predictive means and sds `(draws, HOLDOUT)` of TFP's fitted model."""
    y = training_series(name)
    observed = tfp.sts.MaskedTimeSeries(np.nan_to_num(y), np.isnan(y))
    components = [
        tfp.sts.LocalLinearTrend(observed_time_series=observed),
        tfp.sts.Seasonal(num_seasons=12, observed_time_series=observed),
    ]
    model = tfp.sts.Sum(components, observed_time_series=observed)
    start = time.perf_counter()
    draws, trace = tfp.experimental.mcmc.windowed_adaptive_nuts(
        500,
        model.joint_distribution(observed_time_series=observed),
        n_chains=2,
        num_adaptation_steps=500,
        seed=jax.random.PRNGKey(seed),
    )
    chains_pooled = [np.asarray(draws[p.name]).reshape(-1) for p in model.parameters]
    prediction = tfp.sts.forecast(
        model, observed, parameter_samples=chains_pooled, num_steps_forecast=HOLDOUT
    )
    per_draw = prediction.components_distribution
    seconds = time.perf_counter() - start
    print(f"{name}: {seconds:.0f} s, {int(np.sum(trace['diverging']))} divergences")
    for parameter, values in zip(model.parameters, chains_pooled, strict=True):
        print(f"  {parameter.name}: posterior mean {values.mean():.3g}")
    return {
        f"{name}_means": np.asarray(per_draw.mean())[..., 0],
        f"{name}_sds": np.asarray(per_draw.stddev())[..., 0],
    }


def main() -> None:
    if len(sys.argv) != 2:
        raise SystemExit("usage: tfp_sts_forecast.py OUTPUT.npz")
    arrays = {}
    for name in ("co2", "airline"):
        arrays.update(draw_predictives(name))
    np.savez(sys.argv[1], **arrays)


if __name__ == "__main__":
    main()
