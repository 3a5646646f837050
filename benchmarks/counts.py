"""Count models: the Laplace-approximated bsts fit against an all-states gold standard.

The gold standard is the same model with every latent state sampled by NUTS (non-centred:
the standardised innovations are the sampled variables, the states are built from them by
the model's own transition), which is exact as the chains grow. For each data set:

- **posterior of the hyperparameters**: mean, sd and the 5% / 95% quantiles, bsts
  (NUTS on the Laplace marginal likelihood, and on its importance-sampling correction
  with `--importance` draws, which also resamples the state paths) against a long
  gold-standard run;
- **smoothed rate path**: the posterior mean of the rate (or probability) per step; the
  largest and the mean absolute difference, each over the gold standard's posterior sd
  at that step;
- **forecast distribution**: the mean and the 5% / 95% quantiles of the count draws at
  each of the next steps (the gold standard's future states are sampled with the rest);
- **speed**: with the same NUTS settings for both (chains, warm-up, draws, seed), the wall
  time from the call to the last draw (compilation included), the minimum bulk ESS over
  the hyperparameters and the ESS per second; and bsts's time to a first result (a MAP
  fit and its forecast in a process that has not compiled them).

Data: the yearly British coal-mining disasters (`bsts.datasets.load("coal")`, local level,
Poisson), and simulated series: Poisson with a local level and a seasonal(4) part,
negative binomial with a local level, Bernoulli with a local level, and binomial successes
out of 5 to 40 trials a step (a trials column) with a local level.

Usage:
    python benchmarks/counts.py           # 2 chains x (500 + 500); gold 2 x (1000 + 4000)
    python benchmarks/counts.py --importance 64   # the importance-sampling variant's draws
    python benchmarks/counts.py --quick   # a smoke run
    python benchmarks/counts.py --length 200 --data seasonal   # one data set, T = 200
"""

from __future__ import annotations

import argparse
import copy
import os
import platform
import time

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pandas as pd
from numpyro.diagnostics import effective_sample_size

import bsts
from bsts._nuts import run_nuts
from bsts.data import prepare_series
from bsts.kalman.laplace import step_axes
from bsts.observation import OBSERVATION

HORIZON = 5


def all_states_model(model: bsts.Model, inputs, y, T: int):
    """The model with every state sampled (non-centred), for the first `T` steps of y."""
    params = model.sample_parameters(inputs)
    ssm = model.state_space(params, inputs)
    steps, dim = inputs.num_timesteps, ssm.state_dim
    z = numpyro.sample("z", dist.Normal(0.0, 1.0).expand([steps, dim]).to_event(2))

    F = ssm.transition_matrix
    # The benchmark's components (local level, dummy seasonal) have diagonal innovation
    # covariances, some entries zero: their root is elementwise (an eigendecomposition's
    # gradient is not finite at repeated eigenvalues). P0 is positive definite.
    noise_sd = jnp.sqrt(jnp.diag(ssm.transition_cov))
    x0 = ssm.initial_mean + jnp.linalg.cholesky(ssm.initial_cov) @ z[0]

    def step(x, shock):
        x_next = F @ x + noise_sd * shock
        return x_next, x_next

    _, rest = jax.lax.scan(step, x0, z[1:])
    states = jnp.concatenate([x0[None], rest])
    signal = states @ ssm.observation_matrix + ssm.observation_offset
    numpyro.deterministic("signal", signal)
    family = model.observation
    observed = ~jnp.isnan(y)
    # Per-step parameters (a binomial's trials) over the data's steps, mapped with them.
    given = jax.tree_util.tree_map(
        lambda v: v[: y.shape[0]] if jnp.ndim(v) else v,
        family.with_steps(params[OBSERVATION], ssm),
    )
    log_p = jax.vmap(family.log_density, in_axes=(0, 0, step_axes(given)))(
        jnp.where(observed, y, 0.0), signal[: y.shape[0]], given
    )
    numpyro.factor("y", jnp.sum(jnp.where(observed, log_p, 0.0)))


def gold_standard(model, series, settings: dict, seed: int, future=None):
    """All-states NUTS over the data and the forecast horizon (future values missing)."""
    extended = series.extend(None if future is not None else HORIZON, future)
    inputs = model.inputs(extended)
    y = jnp.asarray(series.y)
    start = time.perf_counter()
    draws, stats = run_nuts(
        all_states_model,
        (model, inputs, y, series.num_timesteps),
        {},
        seed=seed,
        progress_bar=False,
        **settings,
    )
    wall = time.perf_counter() - start
    signal = draws["signal"].reshape(-1, extended.num_timesteps)
    family = model.observation
    T = series.num_timesteps
    hyper = {k: v for k, v in draws.items() if k not in ("z", "signal")}
    params = {
        k[len(OBSERVATION) + 1 :]: v.reshape(-1)
        for k, v in hyper.items()
        if k.startswith(f"{OBSERVATION}.")
    }
    ahead = {name: extended.covariates[name][T:] for name in family.columns}
    params = {**params, **family.future_params(ahead)}
    future = family.sample_observations(jax.random.PRNGKey(seed + 1), params, signal[:, T:])
    rate = np.asarray(family.mean_response(signal[:, :T]))
    return {
        "hyper": hyper,
        "rate": rate,
        "forecast": np.asarray(future),
        "wall": wall,
        "diverging": int(np.sum(stats["diverging"])),
    }


def bsts_fit(model, data, target, settings: dict, seed: int, future=None):
    """`bsts.fit` (NUTS on the Laplace likelihood), its rate path and its forecast.

    Also the time to a first result: a MAP fit and its forecast, in a process that has not
    compiled them yet.
    """
    start = time.perf_counter()
    horizon = None if future is not None else HORIZON
    bsts.forecast(bsts.fit(model, data, target, method="map", seed=seed), horizon, future)
    first = time.perf_counter() - start
    start = time.perf_counter()
    post = bsts.fit(model, data, target, progress_bar=False, seed=seed, **settings)
    wall = time.perf_counter() - start
    hyper = {k: v for k, v in post.samples.items()}
    rate = bsts.decompose(post, num_samples=None).rate
    draws = bsts.forecast(post, horizon, future, seed=seed + 1).draws
    return {
        "hyper": hyper,
        "rate": rate,
        "forecast": draws,
        "wall": wall,
        "first": first,
        "diverging": int(np.sum(post.sample_stats["diverging"])),
    }


def min_ess(hyper: dict) -> float:
    """The smallest bulk ESS over the hyperparameters' elements."""
    values = []
    for value in hyper.values():
        flat = np.asarray(value).reshape(value.shape[0], value.shape[1], -1)
        values += [float(effective_sample_size(flat[:, :, k])) for k in range(flat.shape[2])]
    return min(values)


def datasets(seed: int, T: int = 120) -> list[tuple]:
    """The coal series and four simulated ones of length `T`.

    Each entry: name, model, data, target, and the future trials' frame (binomial) or None.
    """
    rng = np.random.default_rng(seed)
    coal = bsts.datasets.load("coal")
    index = pd.date_range("1990-01", periods=T, freq="QS")
    level = 1.2 + np.cumsum(rng.normal(0.0, 0.08, T))
    season = np.tile([0.4, -0.1, -0.5, 0.2], T // 4 + 1)[:T]
    poisson = rng.poisson(np.exp(level + season))
    level_nb = 2.0 + np.cumsum(rng.normal(0.0, 0.08, T))
    nb = rng.poisson(rng.gamma(4.0, np.exp(level_nb) / 4.0))
    log_odds = 2.0 * np.sin(2 * np.pi * np.arange(T) / 60)
    binary = (rng.random(T) < 1 / (1 + np.exp(-log_odds))).astype(int)
    trials = rng.integers(5, 41, T)
    log_odds_binomial = -0.5 + np.cumsum(rng.normal(0.0, 0.1, T))
    successes = rng.binomial(trials, 1 / (1 + np.exp(-log_odds_binomial)))
    frame = pd.DataFrame(
        {
            "poisson": poisson,
            "nb": nb,
            "binary": binary,
            "successes": successes,
            "trials": trials,
        },
        index=index,
    )
    after = pd.date_range(index[-1], periods=HORIZON + 1, freq="QS")[1:]
    future_trials = pd.DataFrame({"trials": [20] * HORIZON}, index=after)
    level_model = [bsts.LocalLevel()]
    return [
        (
            "coal (Poisson, local level)",
            bsts.Model(level_model, observation="poisson"),
            coal,
            "disasters",
            None,
        ),
        (
            "simulated Poisson, level + seasonal(4)",
            bsts.Model([bsts.LocalLevel(), bsts.Seasonal(4)], observation="poisson"),
            frame,
            "poisson",
            None,
        ),
        (
            "simulated negative binomial (r = 4), level",
            bsts.Model(level_model, observation="negative_binomial"),
            frame,
            "nb",
            None,
        ),
        (
            "simulated Bernoulli, level",
            bsts.Model(level_model, observation="bernoulli"),
            frame,
            "binary",
            None,
        ),
        (
            "simulated binomial (5 to 40 trials a step), level",
            bsts.Model(level_model, observation=bsts.Binomial(trials="trials")),
            frame[["successes", "trials"]],
            "successes",
            future_trials,
        ),
    ]


def compare(name, model, data, target, future, settings, gold_settings, seed, importance):
    """Print the tables of one data set."""
    series = prepare_series(
        data,
        target,
        model.covariate_columns,
        standardise=False,
        check_values=model.observation.check_values,
        raw=model.observation.columns,
    )
    family = copy.copy(model.observation)
    family.importance_samples = importance
    corrected = bsts.Model(model.components, observation=family)
    fits = {
        "bsts, Laplace": bsts_fit(model, data, target, settings, seed, future),
        f"bsts, importance sampling ({importance})": bsts_fit(
            corrected, data, target, settings, seed, future
        ),
    }
    same = gold_standard(model, series, settings, seed, future)
    long = gold_standard(model, series, gold_settings, seed + 7, future)
    print(f"\n## {name} (T = {series.num_timesteps})\n")
    print("| parameter | method | mean | sd | 5% | 95% |")
    print("|---|---|---|---|---|---|")
    for key in sorted(long["hyper"]):
        for label, run in [*fits.items(), ("gold standard", long)]:
            a = np.ravel(run["hyper"][key])
            q = np.quantile(a, [0.05, 0.95])
            print(f"| {key} | {label} | {a.mean():.4g} | {a.std():.3g} | {q[0]:.3g} | {q[1]:.3g} |")
    gold_sd = long["rate"].std(axis=0)
    print("\n| method | smoothed rate: largest and mean abs. difference from gold, in gold sds |")
    print("|---|---|")
    for label, run in [*fits.items(), ("all states, same settings", same)]:
        z = np.abs(run["rate"].mean(axis=0) - long["rate"].mean(axis=0)) / gold_sd
        print(f"| {label} | {z.max():.2f} / {z.mean():.2f} |")
    print("\n| step | " + " | ".join(f"{label}: mean, 5%-95%" for label in fits) + " | gold |")
    print("|---|" + "---|" * (len(fits) + 1))
    for h in range(HORIZON):
        cells = []
        for run in [*fits.values(), long]:
            a = run["forecast"][:, h]
            q = np.quantile(a, [0.05, 0.95])
            cells.append(f"{a.mean():.3f}, {q[0]:.0f}-{q[1]:.0f}")
        print(f"| {h + 1} | " + " | ".join(cells) + " |")
    print("\n| method | wall s | min bulk ESS | ESS/s | divergences | first result s |")
    print("|---|---|---|---|---|---|")
    for label, run in [*fits.items(), ("all states, same settings", same)]:
        ess = min_ess(run["hyper"])
        first = f"{run['first']:.1f}" if "first" in run else "-"
        print(
            f"| {label} | {run['wall']:.1f} | {ess:.0f} | {ess / run['wall']:.1f} | "
            f"{run['diverging']} | {first} |"
        )


def _mc(run, reference) -> float:
    sd = reference["rate"].std(axis=0)
    return float(np.mean(np.abs(run["rate"].mean(axis=0) - reference["rate"].mean(axis=0)) / sd))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--chains", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=500)
    parser.add_argument("--samples", type=int, default=500)
    parser.add_argument("--gold-warmup", type=int, default=1000)
    parser.add_argument("--gold-samples", type=int, default=4000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--importance", type=int, default=32, help="draws of the IS variant")
    parser.add_argument("--length", type=int, default=120, help="of the simulated series")
    parser.add_argument(
        "--data", default="", help="only the data sets whose name holds this, e.g. seasonal"
    )
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.warmup = args.samples = 100
        args.gold_warmup, args.gold_samples = 100, 200
    settings = {"num_warmup": args.warmup, "num_samples": args.samples, "num_chains": args.chains}
    gold = {
        "num_warmup": args.gold_warmup,
        "num_samples": args.gold_samples,
        "num_chains": args.chains,
    }
    print(
        f"# {platform.machine()}, {os.cpu_count()} cores, jax {jax.__version__}, "
        f"float {'64' if jax.config.jax_enable_x64 else '32'}; NUTS {args.chains} x "
        f"({args.warmup} + {args.samples}) for both, gold standard {args.chains} x "
        f"({args.gold_warmup} + {args.gold_samples}), seed {args.seed}"
    )
    for name, model, data, target, future in datasets(args.seed, args.length):
        if args.data not in name:
            continue
        compare(name, model, data, target, future, settings, gold, args.seed, args.importance)


if __name__ == "__main__":
    main()
