"""Simulation-based calibration (Talts et al., 2018) of the Kalman likelihood + NUTS.

Each replicate draws parameters from the model's prior and a series from the model given
them (NumPyro `Predictive` on the `bsts` program with fixed inputs, so the prior does not
depend on the data), then runs NUTS on that series and records the rank of the true value
among thinned posterior draws. If the likelihood and the sampler are right, the ranks are
uniform. A chi-square test on binned ranks must not reject at the 0.1% level (the seeds are
fixed, so the outcome is deterministic; the level guards the family of parameters checked).

The CI version uses few replicates (it catches gross errors: a wrong likelihood scale or a
missing Jacobian shifts the ranks to one end); the `slow` version is the full run whose
result is recorded in docs/benchmarks.md.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
from numpyro.infer import Predictive
from numpyro.infer.hmc import hmc
from numpyro.infer.util import initialize_model
from scipy import stats

import bsts
from bsts.data import prepare_series

WARMUP, DRAWS, THIN = 200, 200, 4


def _inputs(model, T):
    index = pd.date_range("2000-01-01", periods=T, freq="MS")
    placeholder = pd.Series(np.sin(np.arange(T)), index=index)
    return model.inputs(prepare_series(placeholder, None, []))


def sbc_ranks(model, T: int, replicates: int, seed: int) -> dict[str, np.ndarray]:
    """Ranks (0..DRAWS/THIN) of each prior draw among its posterior draws, per parameter."""
    inputs = _inputs(model, T)
    key_prior, key_fit = jax.random.split(jax.random.PRNGKey(seed))
    prior = Predictive(model, num_samples=replicates)(key_prior, inputs)
    sites = [name for name in model.units() if name in prior and prior[name].ndim == 1]
    info = initialize_model(
        key_fit, model, model_args=(inputs,), model_kwargs={"y": prior["y"][0]}, dynamic_args=True
    )

    @jax.jit
    def posterior_draws(key, y):
        potential = info.potential_fn(inputs, y=y)
        init_kernel, sample_kernel = hmc(potential, algo="NUTS")
        state = init_kernel(info.param_info.z, num_warmup=WARMUP, rng_key=key)
        state = jax.lax.fori_loop(0, WARMUP, lambda _, s: sample_kernel(s), state)
        _, z = jax.lax.scan(lambda s, _: (sample_kernel(s),) * 2, state, None, length=DRAWS)
        constrained = jax.vmap(info.postprocess_fn(inputs, y=y))(z.z)
        return {name: constrained[name][::THIN] for name in sites}

    ranks = {name: [] for name in sites}
    for i, key in enumerate(jax.random.split(key_fit, replicates)):
        draws = posterior_draws(key, prior["y"][i])
        for name in sites:
            ranks[name].append(int(jnp.sum(draws[name] < prior[name][i])))
    return {name: np.array(values) for name, values in ranks.items()}


def _uniformity_p_value(ranks: np.ndarray, bins: int) -> float:
    counts = np.histogram(ranks, bins=bins, range=(0, DRAWS // THIN + 1))[0]
    return float(stats.chisquare(counts).pvalue)


def _check(model, T, replicates, bins, seed):
    ranks = sbc_ranks(model, T, replicates, seed)
    p_values = {name: _uniformity_p_value(r, bins) for name, r in ranks.items()}
    assert min(p_values.values()) > 1e-3, f"ranks not uniform: p-values {p_values}"
    return ranks, p_values


RICHER = bsts.LocalLinearTrend() + bsts.Seasonal(4)


def test_sbc_local_level_small():
    _check(bsts.Model([bsts.LocalLevel()]), T=40, replicates=40, bins=4, seed=0)


# A second SBC of a richer model; the local-level SBC stays in the default run.
@pytest.mark.slow
def test_sbc_trend_seasonal_small():
    _check(RICHER, T=40, replicates=24, bins=3, seed=1)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "model", "replicates"),
    [("local level", bsts.Model([bsts.LocalLevel()]), 400), ("LLT + seasonal(4)", RICHER, 200)],
)
def test_sbc_full(name, model, replicates):
    ranks, p_values = _check(model, T=60, replicates=replicates, bins=10, seed=2)
    for site, values in ranks.items():
        counts = np.histogram(values, bins=10, range=(0, DRAWS // THIN + 1))[0]
        print(f"{name} {site}: p = {p_values[site]:.3f}, rank counts {counts.tolist()}")
