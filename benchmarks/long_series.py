"""NUTS on long series: wall time, ESS, tree depths and peak memory.

Each case runs `bsts.fit` with NUTS 1 chain x (300 + 300) and default settings, in a fresh
Python process with JAX's defaults (float32, nothing configured), so that the peak resident
memory of the process (`ru_maxrss`) is the fit's own. Cases:

- `hourly`: a simulated hourly series (random-walk level, a fixed daily cycle, noise),
  LocalLevel + FourierSeasonal(24, harmonics=3), at each `--lengths` value;
- `hourly-gaps`: the same series with 24 of its hours dropped at random (seeded), as a
  real sensor series misses a few readings: `bsts` puts them back on the hourly grid as
  missing values, so the likelihood runs across 24 gaps;
- `electricity-hourly-gaps`: a real hourly series with gaps: the bundled half-hourly
  electricity demand averaged by hour (its last `--electricity-hourly-length` hours) with
  24 hours dropped at random (seeded), LocalLevel + FourierSeasonal(24, harmonics=3);
- `electricity`: the bundled half-hourly electricity demand (`electricity_halfhourly`,
  its last `--electricity-length` points), LocalLevel + FourierSeasonal(48, 3) +
  FourierSeasonal(336, 3) (daily and weekly cycles).

Prints one row per case: wall time of the fit (compilation included), that time per
leapfrog step of warm-up and sampling (which, unlike the wall time, does not depend on
how long the chain's trajectories happened to be), the smallest bulk ESS over the
parameters, the mean tree depth (log2 of leapfrog steps + 1) in warm-up and
in sampling, the adapted step size, divergences, and the peak RSS.

With `--compile-memory`, instead: what compiling the value and gradient of the model's
potential costs, with XLA's default options and with the options bsts compiles its own
programs with (`bsts._compile`), each in a fresh process: compile seconds, the growth of
the process's resident memory while compiling (its peak, reset before the compile), and
the milliseconds per evaluation of the compiled program.

With `--gradients`, instead: the cost of one value and gradient of the model's potential
(the function NUTS differentiates) at the MAP point, and on the hourly series also with its
seasonal scale set to each of 1e-3 ... 1e-8 (standardised units), where a nearly
deterministic seasonal sends the sampler.

Usage:
    python benchmarks/long_series.py
    python benchmarks/long_series.py --gradients --lengths 10000
    python benchmarks/long_series.py --gradients --cases electricity
    python benchmarks/long_series.py --compile-memory --cases hourly hourly-gaps --lengths 10000
    python benchmarks/long_series.py --cases hourly --lengths 10000
    python benchmarks/long_series.py --cases hourly-gaps --lengths 10000
    python benchmarks/long_series.py --cases electricity-hourly-gaps
    python benchmarks/long_series.py --num-warmup 100 --num-samples 100
    python benchmarks/long_series.py --dense-mass
    python benchmarks/long_series.py --cases electricity-hourly-gaps --folded-observation-scale
    python benchmarks/long_series.py --cases electricity-hourly-gaps --seed 1
    python benchmarks/long_series.py --cases electricity-hourly-gaps --xla-defaults
    python benchmarks/long_series.py --cases hourly --lengths 10000 --mode-start-length 1
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

HOURLY_SEED = 0
GAPS = 24


def simulate_hourly(length: int):
    """Random-walk level (sd 0.02 per hour), a fixed daily cycle and noise (sd 0.3)."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(HOURLY_SEED)
    hours = np.arange(length)
    level = 10.0 + np.cumsum(rng.normal(0.0, 0.02, length))
    cycle = np.sin(2 * np.pi * hours / 24) + 0.5 * np.cos(4 * np.pi * hours / 24 + 0.3)
    y = level + cycle + rng.normal(0.0, 0.3, length)
    index = pd.date_range("2020-01-01", periods=length, freq="h")
    return pd.DataFrame({"y": y}, index=index)


def _drop_hours(data):
    """`data` without `GAPS` of its interior rows, drawn at random (seeded)."""
    import numpy as np

    rng = np.random.default_rng(HOURLY_SEED + 1)
    dropped = rng.choice(np.arange(1, len(data) - 1), size=GAPS, replace=False)
    return data.drop(data.index[dropped])


def _folded_half_normal(scale: float):
    r"""HalfNormal(scale) whose draws NUTS takes as $\sigma = |u|$, $u$ real, not $\log\sigma$.

    The same prior and posterior (each $\sigma$ has the two preimages $\pm u$, of equal
    density, and the map has no Jacobian term), but a scale whose likelihood is flat
    towards zero is then a flat stretch around $u = 0$, not a long tail towards
    $\log\sigma = -\infty$. An experiment for `--folded-observation-scale`.
    """
    import jax.numpy as jnp
    import numpyro.distributions as dist
    from numpyro.distributions import constraints
    from numpyro.distributions.transforms import Transform, biject_to

    class Folded(constraints._GreaterThan):
        pass

    folded = Folded(0.0)

    class Absolute(Transform):
        domain = constraints.real
        codomain = folded

        def __call__(self, x):
            return jnp.abs(x)

        def _inverse(self, y):
            return y

        def log_abs_det_jacobian(self, x, y, intermediates=None):
            return jnp.zeros_like(x)

        def tree_flatten(self):
            return (), ((), {})

        def __eq__(self, other):
            return isinstance(other, Absolute)

    biject_to.register(Folded, lambda constraint: Absolute())

    class FoldedHalfNormal(dist.HalfNormal):
        support = folded

    return FoldedHalfNormal(scale)


def _case(name: str, length: int, folded_observation_scale: bool = False):
    case = _default_case(name, length)
    if not folded_observation_scale:
        return case
    import bsts

    data, target, model = case
    # The library's default observation prior, HalfNormal(1), sampled folded.
    folded = bsts.Model(list(model.components), observation_scale_prior=_folded_half_normal(1.0))
    return data, target, folded


def _default_case(name: str, length: int):
    import bsts

    if name in ("hourly", "hourly-gaps"):
        data = simulate_hourly(length)
        if name == "hourly-gaps":
            data = _drop_hours(data)
        model = bsts.LocalLevel() + bsts.FourierSeasonal(24, harmonics=3)
        return data, "y", model
    if name == "electricity-hourly-gaps":
        demand = bsts.datasets.load("electricity_halfhourly")["demand"]
        data = _drop_hours(demand.resample("h").mean().iloc[-length:].to_frame("demand"))
        return data, "demand", bsts.LocalLevel() + bsts.FourierSeasonal(24, harmonics=3)
    frame = bsts.datasets.load("electricity_halfhourly")[["demand"]].iloc[-length:]
    model = (
        bsts.LocalLevel()
        + bsts.FourierSeasonal(48, harmonics=3, name="daily")
        + bsts.FourierSeasonal(336, harmonics=3, name="weekly")
    )
    return frame, "demand", model


def run_one(
    name: str,
    length: int,
    num_warmup: int,
    num_samples: int,
    dense_mass: bool = False,
    seed: int = 0,
    folded_observation_scale: bool = False,
) -> dict:
    """One fit, in this process; the figures of one row."""
    import numpy as np

    import bsts
    from bsts import _arviz

    data, target, model = _case(name, length, folded_observation_scale)
    start = time.perf_counter()
    post = bsts.fit(
        model,
        data,
        target=target,
        num_warmup=num_warmup,
        num_samples=num_samples,
        num_chains=1,
        dense_mass=dense_mass,
        seed=seed,
        progress_bar=False,
    )
    wall = time.perf_counter() - start
    leapfrog_steps = int(post.adaptation["num_steps"].sum() + post.sample_stats["num_steps"].sum())
    summary = _arviz.summary(post.to_arviz())
    warm = np.log2(post.adaptation["num_steps"] + 1.0)
    sampling = np.log2(post.sample_stats["num_steps"] + 1.0)
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "case": name,
        "length": length,
        "wall_s": wall,
        "ms_per_step": 1e3 * wall / leapfrog_steps,
        "min_ess_bulk": float(summary["ess_bulk"].min()),
        "worst": str(summary["ess_bulk"].idxmin()),
        "depth_warmup": float(warm.mean()),
        "depth_sampling": float(sampling.mean()),
        "max_depth_hits_warmup": int((post.adaptation["num_steps"] >= 1023).sum()),
        "step_size": float(post.adaptation["step_size"].mean()),
        "divergences": int(post.sample_stats["diverging"].sum()),
        "peak_gb": peak_kib / 2**20,
    }


def _potential_at_mode(name: str, length: int):
    """The NUTS potential's value and gradient for a case, as a fit's program builds it.

    Returns:
        `(value_and_grad, point, arrays, mode, padded)`: the uncompiled function of the
        unconstrained point and the padded arrays, the MAP point (log scales), the arrays,
        the MAP fit and the padded length.
    """
    import jax
    import jax.numpy as jnp
    import numpy as np
    from numpyro.infer.util import initialize_model

    import bsts
    from bsts import batch, inference

    data, target, model = _case(name, length)
    mode = bsts.fit(model, data, target=target, method="map")
    series = mode.series
    padded = batch.padded_length(model, series.num_timesteps, "nuts")
    arrays = batch.padded_arrays(series, mode.inputs, padded)
    program = inference.program_for("nuts", padded, series.regular, {}, series.gap_capacity)

    def value_and_grad(z, arrays):
        inputs = batch._inputs(arrays, program)
        info = initialize_model(
            jax.random.PRNGKey(0), model, model_args=(inputs,), model_kwargs={"y": arrays["y"]}
        )
        return jax.value_and_grad(info.potential_fn)(z)

    point = {k: jnp.log(jnp.float32(np.ravel(v)[0])) for k, v in mode.draws.items()}
    return value_and_grad, point, arrays, mode, padded


def time_gradients(
    length: int, name: str = "hourly", scales=(1e-3, 1e-4, 3e-5, 1e-6, 1e-8), repeats: int = 10
):
    """Milliseconds per value and gradient of the NUTS potential.

    At the MAP point, and for the hourly series also with its seasonal scale set to each
    of `scales`.
    """
    import jax
    import jax.numpy as jnp
    import numpy as np

    potential, point, arrays, mode, padded = _potential_at_mode(name, length)
    value_and_grad = jax.jit(potential)
    at_mode = {k: f"{float(np.ravel(v)[0]):.3g}" for k, v in mode.draws.items()}
    print(f"{name}, T = {length:,} (padded to {padded:,}); the MAP (standardised): {at_mode}")
    print("ms per value and gradient of the potential, at the MAP with the seasonal scale:")
    for scale in [None] + (list(scales) if name.startswith("hourly") else []):
        z = dict(point)
        if scale is not None:
            z["fourier.scale"] = jnp.log(jnp.float32(scale))
        jax.block_until_ready(value_and_grad(z, arrays))
        start = time.perf_counter()
        for _ in range(repeats):
            jax.block_until_ready(value_and_grad(z, arrays))
        label = "at the MAP" if scale is None else f"{scale:g}"
        print(f"| {label} | {(time.perf_counter() - start) / repeats * 1e3:.1f} |", flush=True)


def _resident_gb(field: str) -> float:
    """`VmRSS` (now) or `VmHWM` (peak since the last reset) of this process, in GB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field):
                return int(line.split()[1]) / 2**20
    raise RuntimeError(f"{field} not in /proc/self/status")


def compile_memory_one(name: str, length: int, options: str) -> dict:
    """Compile the potential's value and gradient once, with `options` ("bsts" or "xla")."""
    import ctypes

    import jax
    import numpy as np

    from bsts import _compile

    value_and_grad, z, arrays, _, _ = _potential_at_mode(name, length)
    lowered = jax.jit(value_and_grad).lower(z, arrays)
    # Freed memory back to the system, and the peak reset, so that the peak is the compile's.
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    with open("/proc/self/clear_refs", "w") as clear:
        clear.write("5")
    before = _resident_gb("VmRSS")
    start = time.perf_counter()
    compiled = _compile.compile_lowered(lowered) if options == "bsts" else lowered.compile()
    seconds = time.perf_counter() - start
    peak = _resident_gb("VmHWM") - before
    jax.block_until_ready(compiled(z, arrays))
    times = []
    for _ in range(20):
        start = time.perf_counter()
        jax.block_until_ready(compiled(z, arrays))
        times.append(time.perf_counter() - start)
    return {"compile_s": seconds, "peak_gb": peak, "run_ms": 1e3 * float(np.median(times))}


def compile_memory(jobs) -> None:
    """One row per `(case, length)` job: XLA's default options against bsts's."""
    print(
        "| case | T | options | compile (s) | resident memory growth while compiling (GB) "
        "| value and gradient (ms) |\n|---|---|---|---|---|---|"
    )
    for name, length in jobs:
        for options in ("xla", "bsts"):
            command = [sys.executable, __file__, "--compile-one", name, str(length), options]
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                print(f"| {name} | {length} | {options} | failed: {done.stderr[-300:]} |")
                continue
            r = json.loads(done.stdout.strip().splitlines()[-1])
            label = "XLA defaults" if options == "xla" else "bsts (`bsts._compile`)"
            print(
                f"| {name} | {length:,} | {label} | {r['compile_s']:.1f} "
                f"| {r['peak_gb']:.2f} | {r['run_ms']:.1f} |",
                flush=True,
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="+", default=["hourly", "electricity"])
    parser.add_argument("--lengths", nargs="+", type=int, default=[10_000, 100_000])
    parser.add_argument("--electricity-length", type=int, default=17_520)
    parser.add_argument("--electricity-hourly-length", type=int, default=8_760)
    parser.add_argument("--num-warmup", type=int, default=300)
    parser.add_argument("--num-samples", type=int, default=300)
    parser.add_argument("--gradients", action="store_true")
    parser.add_argument(
        "--dense-mass", action="store_true", help="adapt a dense mass matrix (not the default)"
    )
    parser.add_argument("--seed", type=int, default=0, help="the fit's seed (the chain's)")
    parser.add_argument(
        "--mode-start-length",
        type=int,
        help="start chains at the mode from this many (padded) steps on, instead of the "
        "library's bsts._nuts.MODE_START_LENGTH",
    )
    parser.add_argument(
        "--xla-defaults",
        action="store_true",
        help="compile with XLA's default options, not bsts's (sets BSTS_XLA_DEFAULTS=1)",
    )
    parser.add_argument("--compile-memory", action="store_true")
    parser.add_argument(
        "--folded-observation-scale",
        action="store_true",
        help="an experiment: NUTS takes the observation scale as |u| (u real), not log",
    )
    parser.add_argument("--one", nargs=2, help=argparse.SUPPRESS)  # child process: case length
    parser.add_argument("--compile-one", nargs=3, help=argparse.SUPPRESS)  # case length options
    args = parser.parse_args()
    if args.xla_defaults:
        os.environ["BSTS_XLA_DEFAULTS"] = "1"  # inherited by the child processes
    if args.compile_one:
        name, length, options = args.compile_one
        print(json.dumps(compile_memory_one(name, int(length), options)))
        return
    if args.gradients:
        for name in ("hourly", "hourly-gaps"):
            if name in args.cases:
                for length in args.lengths:
                    time_gradients(length, name)
        if "electricity" in args.cases:
            time_gradients(args.electricity_length, "electricity", repeats=3)
        return
    if args.one:
        if args.mode_start_length is not None:
            import bsts._nuts

            bsts._nuts.MODE_START_LENGTH = args.mode_start_length
        row = run_one(
            args.one[0],
            int(args.one[1]),
            args.num_warmup,
            args.num_samples,
            args.dense_mass,
            args.seed,
            args.folded_observation_scale,
        )
        print(json.dumps(row))
        return
    jobs = [(c, n) for c in ("hourly", "hourly-gaps") if c in args.cases for n in args.lengths]
    if "electricity-hourly-gaps" in args.cases:
        jobs.append(("electricity-hourly-gaps", args.electricity_hourly_length))
    if "electricity" in args.cases:
        jobs.append(("electricity", args.electricity_length))
    if args.compile_memory:
        compile_memory(jobs)
        return
    print(
        f"NUTS 1 x ({args.num_warmup} + {args.num_samples}), float32, one process per case"
        f"{', dense mass matrix' if args.dense_mass else ''}"
        f"{', observation scale folded' if args.folded_observation_scale else ''}"
        f"{f', mode start from {args.mode_start_length} steps' if args.mode_start_length else ''}"
        f"{', XLA default compiler options' if args.xla_defaults else ''}\n"
        "| case | T | wall (s) | ms per leapfrog step | min bulk ESS (parameter) "
        "| mean tree depth warm-up / sampling | warm-up iterations at depth 10 | step size "
        "| divergences | peak RSS (GB) |\n"
        "|---|---|---|---|---|---|---|---|---|---|"
    )
    for name, length in jobs:
        command = [
            sys.executable,
            __file__,
            "--one",
            name,
            str(length),
            "--num-warmup",
            str(args.num_warmup),
            "--num-samples",
            str(args.num_samples),
            "--seed",
            str(args.seed),
        ] + (["--dense-mass"] if args.dense_mass else [])
        if args.folded_observation_scale:
            command.append("--folded-observation-scale")
        if args.mode_start_length is not None:
            command += ["--mode-start-length", str(args.mode_start_length)]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            print(f"| {name} | {length} | failed: {done.stderr.strip().splitlines()[-1]} |")
            continue
        r = json.loads(done.stdout.strip().splitlines()[-1])
        print(
            f"| {name} | {length:,} | {r['wall_s']:.1f} | {r['ms_per_step']:.2f} "
            f"| {r['min_ess_bulk']:.0f} ({r['worst']}) "
            f"| {r['depth_warmup']:.2f} / {r['depth_sampling']:.2f} "
            f"| {r['max_depth_hits_warmup']} | {r['step_size']:.3g} | {r['divergences']} "
            f"| {r['peak_gb']:.2f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
