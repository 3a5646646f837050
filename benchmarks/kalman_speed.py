"""Kalman log-likelihood speed against statsmodels, measured in one run.

Model: local linear trend + dummy seasonal(12), state dimension 13, data simulated from the
model. For each T, times (median of repeats, after compilation):

- statsmodels `UnobservedComponents.loglike` (forward only; Cython, steady-state aware);
- `bsts.kalman.marginal_log_likelihood` (the fitting hot path), also with the series closed
  over instead of passed in ("series fixed": its missing steps are then known when it is
  traced, as inside a NumPyro model), with the series passed in and `max_gaps` set to its
  gap capacity (what a fitting program runs for a series with gaps before its end: the
  closed form carried across the gaps by `bsts.kalman.segments`), with `max_gaps=None`
  (the exact filter, differentiated by the hand-written adjoint of
  `bsts.kalman.exact_block`), and the per-step
  `bsts.kalman.log_likelihood`: value, and `value_and_grad` with respect to the four
  log-variances;
- the exact sequential `kalman_filter`: value and `value_and_grad`, for reference.

Ratios are bsts time / statsmodels loglike time in the same run. Compile times are the
`jit(...).lower(...).compile()` wall times.

With `--uneven`: an OU process plus white noise on irregular times (time-varying F and Q;
state size 1), value and `value_and_grad` of `marginal_log_likelihood` (the adjoint of
`bsts.kalman.adjoint`) and autodiff of `kalman_filter`, against celerite2's forward
log-likelihood of the same GP (`celerite2_peer.py`, run in its own venv given by
`--celerite2-python`; the values must agree to 1e-6); then LLT + FourierSeasonal(2
harmonics) on irregular times at T = 10^4, autodiff against the adjoint.

Usage:
    python benchmarks/kalman_speed.py                 # T = 1e3, 1e4, 1e5
    python benchmarks/kalman_speed.py --uneven        # OU vs celerite2, T = 1e3, 1e4, 1e5
    python benchmarks/kalman_speed.py --lengths 1000 --missing 0.1
    python benchmarks/kalman_speed.py --lengths --parallel-lengths 100000 1000000   # GPU
    python benchmarks/kalman_speed.py --uneven-parallel 100000 1000000               # GPU
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import tempfile
import time

import jax
import jax.numpy as jnp
import numpy as np
import statsmodels.api as sm

from bsts.kalman import StateSpace, kalman_filter, log_likelihood, marginal_log_likelihood
from bsts.kalman.marginal import gap_capacity, interior_gaps

jax.config.update("jax_enable_x64", True)

PERIOD = 12
STATE_DIM = 2 + PERIOD - 1
INITIAL_VAR = 1e4


def structure() -> tuple[np.ndarray, np.ndarray]:
    """Transition and observation matrices in statsmodels' state order."""
    F = np.zeros((STATE_DIM, STATE_DIM))
    F[0, 0] = F[0, 1] = F[1, 1] = 1.0
    F[2, 2:] = -1.0
    F[3:, 2:-1] = np.eye(PERIOD - 2)
    H = np.zeros(STATE_DIM)
    H[0] = H[2] = 1.0
    return F, H


def state_space(log_variances) -> StateSpace:
    """obs, level, slope, seasonal variances (statsmodels' parameter order)."""
    F, H = structure()
    variances = jnp.exp(log_variances)
    Q = jnp.zeros((STATE_DIM, STATE_DIM)).at[(0, 1, 2), (0, 1, 2)].set(variances[1:])
    return StateSpace(
        F, Q, H, 0.0, variances[0], jnp.zeros(STATE_DIM), INITIAL_VAR * jnp.eye(STATE_DIM)
    )


def simulate(T: int, variances: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    F, H = structure()
    x = np.zeros(STATE_DIM)
    x[2:] = rng.normal(size=STATE_DIM - 2)
    y = np.empty(T)
    scales = np.sqrt(variances)
    for t in range(T):
        y[t] = H @ x + scales[0] * rng.normal()
        x = F @ x
        x[:3] += scales[1:] * rng.normal(size=3)
    return y


def median_time(fn, *args, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def compiled(fn, *args):
    start = time.perf_counter()
    exe = jax.jit(fn).lower(*args).compile()
    return exe, time.perf_counter() - start


def gap_mask(T: int, missing: float, block: int, rng) -> np.ndarray:
    """Missing steps: a fraction `missing` of T, in runs of `block` consecutive steps."""
    starts = rng.random(-(-T // block)) < missing
    return np.repeat(starts, block)[:T]


def run(T: int, variances: np.ndarray, missing: float, seed: int, block: int = 1) -> dict:
    rng = np.random.default_rng(seed)
    y = simulate(T, variances, rng)
    if missing > 0:
        y[gap_mask(T, missing, block, rng)] = np.nan
    repeats = max(3, min(30, int(3e5 / T)))

    model = sm.tsa.UnobservedComponents(y, level="local linear trend", seasonal=PERIOD)
    model.ssm.initialize_known(np.zeros(STATE_DIM), INITIAL_VAR * np.eye(STATE_DIM))
    model.loglikelihood_burn = 0
    reference = model.loglike(variances)
    sm_time = median_time(model.loglike, variances, repeats=repeats)

    params = jnp.log(jnp.asarray(variances))
    y_jax = jnp.asarray(y)

    def marginal(p, data):
        return marginal_log_likelihood(state_space(p), data)

    def marginal_fixed_series(p, data):
        # The series closed over, as inside a NumPyro model: its gaps are known at trace
        # time, so up to MAX_CLOSED_FORM_GAPS of them keep the closed form.
        del data
        return marginal_log_likelihood(state_space(p), y)

    capacity = gap_capacity(interior_gaps(y), T)

    def marginal_traced(p, data):
        # What a fitting program runs for a series with gaps before its end: room for
        # its gaps (`SeriesData.gap_capacity`), their positions found at run time.
        return marginal_log_likelihood(state_space(p), data, max_gaps=capacity)

    def marginal_exact(p, data):
        # The exact filter as one block, differentiated by its hand-written adjoint.
        return marginal_log_likelihood(state_space(p), data, max_gaps=None)

    def pointwise(p, data):
        return log_likelihood(state_space(p), data).sum()

    def exact(p, data):
        return kalman_filter(state_space(p), data).log_likelihood.sum()

    row = {"T": T, "statsmodels_ms": 1e3 * sm_time}
    paths = (
        ("marginal", marginal),
        ("fixed", marginal_fixed_series),
        ("traced", marginal_traced),
        ("adjoint", marginal_exact),
        ("pointwise", pointwise),
        ("exact", exact),
    )
    for name, fn in paths:
        for kind, target in (("value", fn), ("grad", jax.value_and_grad(fn))):
            exe, compile_s = compiled(target, params, y_jax)
            out = exe(params, y_jax)
            value = out if kind == "value" else out[0]
            rel = abs(float(value) - reference) / abs(reference)
            assert rel < 1e-8, f"{name} {kind}: log-likelihood off by {rel:.1e} relative"
            elapsed = median_time(exe, params, y_jax, repeats=repeats)
            row[f"{name}_{kind}_ms"] = 1e3 * elapsed
            row[f"{name}_{kind}_ratio"] = elapsed / sm_time
            row[f"{name}_{kind}_compile_s"] = compile_s
    return row


def parallel_vs_sequential(T: int, variances: np.ndarray, seed: int) -> tuple[float, ...]:
    """Forward times (s) of the exact filter, sequential and parallel, with compile times."""
    y = jnp.asarray(simulate(T, variances, np.random.default_rng(seed)))
    params = jnp.log(jnp.asarray(variances))
    results = []
    for parallel in (False, True):

        def total(p, data, parallel=parallel):
            return kalman_filter(state_space(p), data, parallel=parallel).log_likelihood.sum()

        exe, compile_s = compiled(total, params, y)
        results += [median_time(exe, params, y, repeats=_repeats(exe, params, y)), compile_s]
    return tuple(results)


def _repeats(exe, *args) -> int:
    """5 repeats, or 2 where one call takes over half a second (a long scan on a GPU)."""
    start = time.perf_counter()
    jax.block_until_ready(exe(*args))
    return 2 if time.perf_counter() - start > 0.5 else 5


def uneven_parallel(T: int, seed: int) -> dict:
    """The time-varying filter's sequential form (with its adjoint) against the parallel form.

    On the OU + noise series on irregular times (state size 1): value and value_and_grad of
    `marginal_log_likelihood` (the sequential filter; its gradient the hand-written adjoint
    of `bsts.kalman.adjoint`) and of the parallel filter's total (`kalman_filter(...,
    parallel=True)`; its gradient by automatic differentiation of the associative scan).
    """
    t, y = ou_series(T, np.random.default_rng(seed))
    dt = jnp.asarray(np.diff(t, append=t[-1] + 1.0))
    params = jnp.log(jnp.asarray([OU_SIGMA2, OU_TAU, OU_NOISE_VAR]))
    y_jax = jnp.asarray(y)
    paths = {
        "sequential": lambda p, data: marginal_log_likelihood(ou_state_space(p, dt), data),
        "parallel": lambda p, data: kalman_filter(
            ou_state_space(p, dt), data, parallel=True
        ).log_likelihood.sum(),
    }
    row = {"T": T}
    for name, fn in paths.items():
        for kind, target in (("value", fn), ("grad", jax.value_and_grad(fn))):
            exe, compile_s = compiled(target, params, y_jax)
            out = exe(params, y_jax)
            row[f"{name}_{kind}_result"] = float(out if kind == "value" else out[0])
            repeats = _repeats(exe, params, y_jax)
            row[f"{name}_{kind}_ms"] = 1e3 * median_time(exe, params, y_jax, repeats=repeats)
            row[f"{name}_{kind}_compile_s"] = compile_s
    return row


def uneven_parallel_table(lengths, seed: int) -> None:
    print(
        f"\n# OU + noise on irregular times, sequential (adjoint) vs parallel (autodiff), "
        f"{jax.default_backend()}, float64"
    )
    print(
        "| T | sequential value (ms) | sequential value_and_grad (ms) | parallel value (ms) "
        "| parallel value_and_grad (ms) | parallel / sequential, value_and_grad "
        "| compile, value_and_grad: sequential / parallel (s) |"
    )
    print("|---|---|---|---|---|---|---|")
    for T in lengths:
        r = uneven_parallel(T, seed)
        reference = r["sequential_value_result"]
        for key in ("sequential_grad_result", "parallel_value_result", "parallel_grad_result"):
            assert abs(r[key] - reference) < 1e-8 * abs(reference), (key, r[key], reference)
        print(
            f"| {T:,} | {r['sequential_value_ms']:.2f} | {r['sequential_grad_ms']:.2f} "
            f"| {r['parallel_value_ms']:.2f} | {r['parallel_grad_ms']:.2f} "
            f"| {r['parallel_grad_ms'] / r['sequential_grad_ms']:.2f}x "
            f"| {r['sequential_grad_compile_s']:.1f} / {r['parallel_grad_compile_s']:.1f} |",
            flush=True,
        )


OU_SIGMA2, OU_TAU, OU_NOISE_VAR = 1.0, 5.0, 0.1
DEFAULT_CELERITE2_PYTHON = os.environ.get("BSTS_CELERITE2_PYTHON", "/work/venv-cel/bin/python")


def ou_state_space(log_params, dt) -> StateSpace:
    """OU (variance sigma2, time scale tau) plus white noise on gaps dt: time-varying F, Q."""
    sigma2, tau, noise_var = jnp.exp(log_params)
    decay = jnp.exp(-dt / tau)
    F = decay[:, None, None]
    Q = (sigma2 * (1.0 - decay**2))[:, None, None]
    return StateSpace(F, Q, jnp.ones(1), 0.0, noise_var, jnp.zeros(1), sigma2 * jnp.eye(1))


def ou_series(T: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Irregular times (exponential gaps, mean 1) and an exact OU draw plus noise."""
    t = np.cumsum(rng.exponential(1.0, size=T))
    x = np.empty(T)
    x[0] = np.sqrt(OU_SIGMA2) * rng.normal()
    for i in range(1, T):
        a = np.exp(-(t[i] - t[i - 1]) / OU_TAU)
        x[i] = a * x[i - 1] + np.sqrt(OU_SIGMA2 * (1 - a * a)) * rng.normal()
    return t, x + np.sqrt(OU_NOISE_VAR) * rng.normal(size=T)


def celerite2_time(python: str, t, y, repeats: int) -> dict | None:
    """celerite2's value and forward time, run by `celerite2_peer.py` in its own venv."""
    if not os.path.exists(python):
        return None
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "ou.npz")
        np.savez(
            path, t=t, y=y, sigma2=OU_SIGMA2, tau=OU_TAU, noise_var=OU_NOISE_VAR, repeats=repeats
        )
        peer = os.path.join(os.path.dirname(os.path.abspath(__file__)), "celerite2_peer.py")
        out = subprocess.run([python, peer, path], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def run_uneven(T: int, seed: int, python: str) -> dict:
    """OU + noise on irregular times: bsts value and value_and_grad against celerite2."""
    t, y = ou_series(T, np.random.default_rng(seed))
    # F_t and Q_t carry step t to step t + 1 (the filter updates, then predicts).
    dt = jnp.asarray(np.diff(t, append=t[-1] + 1.0))
    params = jnp.log(jnp.asarray([OU_SIGMA2, OU_TAU, OU_NOISE_VAR]))
    y_jax = jnp.asarray(y)
    repeats = max(3, min(30, int(3e5 / T)))
    row = {"T": T}
    peer = celerite2_time(python, t, y, repeats)

    def marginal(p, data):
        return marginal_log_likelihood(ou_state_space(p, dt), data)

    def exact(p, data):
        return kalman_filter(ou_state_space(p, dt), data).log_likelihood.sum()

    for name, fn in (("marginal", marginal), ("autodiff", exact)):
        for kind, target in (("value", fn), ("grad", jax.value_and_grad(fn))):
            exe, _ = compiled(target, params, y_jax)
            out = exe(params, y_jax)
            value = float(out if kind == "value" else out[0])
            if peer is not None:
                rel = abs(value - peer["value"]) / abs(peer["value"])
                assert rel < 1e-6, f"{name} {kind}: off celerite2 by {rel:.1e} relative"
            row[f"{name}_{kind}_ms"] = 1e3 * median_time(exe, params, y_jax, repeats=repeats)
    row["celerite2_ms"] = None if peer is None else 1e3 * peer["seconds"]
    return row


def run_uneven_structural(T: int, seed: int) -> dict:
    """LLT + FourierSeasonal(2 harmonics) on irregular times: autodiff vs the adjoint."""
    import pandas as pd
    from numpyro import handlers

    import bsts
    from bsts.data import prepare_series

    rng = np.random.default_rng(seed)
    t, noise = ou_series(T, rng)
    index = pd.Timestamp("2000-01-01") + pd.to_timedelta(t, unit="D")
    values = np.sin(2 * np.pi * t / 7.0) + 0.01 * t + noise
    model = bsts.LocalLinearTrend() + bsts.FourierSeasonal(7.0, harmonics=2)
    series = prepare_series(pd.Series(values, index=index), None, [])
    inputs = model.inputs(series)
    with handlers.seed(rng_seed=0):
        params = model.sample_parameters(inputs)
    y = jnp.asarray(series.y)
    row = {"T": T, "state_dim": int(model.state_space(params, inputs).state_dim)}
    paths = {
        "autodiff": lambda p: kalman_filter(model.state_space(p, inputs), y).log_likelihood.sum(),
        "adjoint": lambda p: marginal_log_likelihood(model.state_space(p, inputs), y),
    }
    for name, fn in paths.items():
        exe, _ = compiled(jax.value_and_grad(fn), params)
        row[f"{name}_grad_ms"] = 1e3 * median_time(exe, params, repeats=5)
        row[f"{name}_value"] = float(exe(params)[0])
    return row


def uneven_tables(lengths, seed: int, python: str) -> None:
    print("\n# OU + white noise on irregular times (time-varying F, Q), float64")
    print(
        "| T | celerite2 forward (ms) | bsts value (ms, ratio) | bsts value_and_grad "
        "(ms, ratio) | autodiff value_and_grad (ms, ratio) |"
    )
    print("|---|---|---|---|---|")
    for T in lengths:
        r = run_uneven(T, seed, python)
        base = r["celerite2_ms"]

        def cell(ms, base=base):
            return f"{ms:.2f}" + ("" if base is None else f" ({ms / base:.2f}x)")

        print(
            f"| {T:,} | {'-' if base is None else f'{base:.2f}'} | {cell(r['marginal_value_ms'])}"
            f" | {cell(r['marginal_grad_ms'])} | {cell(r['autodiff_grad_ms'])} |",
            flush=True,
        )
    r = run_uneven_structural(10_000, seed)
    print(f"\n# LLT + FourierSeasonal(7, 2 harmonics), irregular, T = 10,000, d = {r['state_dim']}")
    print("| value_and_grad: autodiff of the filter (ms) | the adjoint (ms) | speed-up |")
    print("|---|---|---|")
    assert abs(r["adjoint_value"] - r["autodiff_value"]) < 1e-8 * abs(r["autodiff_value"])
    print(
        f"| {r['autodiff_grad_ms']:.2f} | {r['adjoint_grad_ms']:.2f} | "
        f"{r['autodiff_grad_ms'] / r['adjoint_grad_ms']:.1f}x |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", type=int, nargs="*", default=[1000, 10_000, 100_000])
    parser.add_argument(
        "--variances",
        type=float,
        nargs=4,
        default=[1.0, 0.1, 1e-4, 0.01],
        metavar=("OBS", "LEVEL", "SLOPE", "SEASONAL"),
    )
    parser.add_argument("--missing", type=float, default=0.0, help="fraction of NaN in y")
    parser.add_argument(
        "--gap-block", type=int, default=1, help="missing steps come in runs of this length"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--parallel-lengths",
        type=int,
        nargs="*",
        default=[],
        help="also time the exact filter's sequential vs parallel forms at these lengths",
    )
    parser.add_argument(
        "--uneven",
        type=int,
        nargs="*",
        default=None,
        help="instead: OU + noise on irregular times at these lengths (default 1e3 1e4 1e5) "
        "against celerite2, and LLT + FourierSeasonal on irregular times",
    )
    parser.add_argument(
        "--uneven-parallel",
        type=int,
        nargs="+",
        default=None,
        help="instead: the time-varying filter's sequential form (adjoint) against its "
        "parallel form (autodiff) on the OU series at these lengths (a GPU's check)",
    )
    parser.add_argument("--celerite2-python", default=DEFAULT_CELERITE2_PYTHON)
    args = parser.parse_args()
    variances = np.asarray(args.variances)
    if args.uneven_parallel:
        print(f"# {platform.processor() or platform.machine()}, jax {jax.__version__}")
        uneven_parallel_table(args.uneven_parallel, args.seed)
        return
    if args.uneven is not None:
        print(f"# {platform.processor() or platform.machine()}, jax {jax.__version__}")
        uneven_tables(args.uneven or [1000, 10_000, 100_000], args.seed, args.celerite2_python)
        return

    print(
        f"# {platform.processor() or platform.machine()}, jax {jax.__version__} "
        f"({jax.default_backend()}), statsmodels {sm.__version__}, float64"
    )
    print(
        f"# variances {variances.tolist()}, missing fraction {args.missing} "
        f"in runs of {args.gap_block}"
    )
    names = {
        "marginal": "marginal",
        "fixed": "marginal, series fixed",
        "traced": "marginal, room for the gaps",
        "adjoint": "marginal, max_gaps=None",
        "pointwise": "per-step",
        "exact": "exact filter",
    }
    header = ["T", "statsmodels loglike (ms)"]
    for name in names.values():
        header += [f"{name} value (ms, ratio)", f"{name} value_and_grad (ms, ratio)"]
    header += ["compile marginal value / grad (s)"]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for T in args.lengths:
        r = run(T, variances, args.missing, args.seed, args.gap_block)
        cells = [f"{T:,}", f"{r['statsmodels_ms']:.2f}"]
        cells += [
            f"{r[f'{n}_{k}_ms']:.2f} ({r[f'{n}_{k}_ratio']:.2f}x)"
            for n in names
            for k in ("value", "grad")
        ]
        cells.append(f"{r['marginal_value_compile_s']:.1f} / {r['marginal_grad_compile_s']:.1f}")
        print("| " + " | ".join(cells) + " |", flush=True)

    if args.parallel_lengths:
        print(f"\n# exact filter forward pass on {jax.default_backend()}")
        print("| T | sequential (ms) | parallel (ms) | parallel / sequential | compile (s) |")
        print("|---|---|---|---|---|")
        for T in args.parallel_lengths:
            seq, seq_c, par, par_c = parallel_vs_sequential(T, variances, args.seed)
            print(
                f"| {T:,} | {1e3 * seq:.2f} | {1e3 * par:.2f} | {par / seq:.2f}x "
                f"| {seq_c:.1f} / {par_c:.1f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
