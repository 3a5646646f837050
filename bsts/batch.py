r"""One compiled program per model structure, applied to many series.

A series enters a compiled program as arrays, not as constants baked into it: its target
padded with NaN to a *bucket* length, its time steps (padded with 0), its covariates
(padded with 0) and the prior mean of its level. Every series of a bucket then runs the
same executable, and a later fit of the same structure finds it in a cache.

Padding is exact. Missing steps after the last observation add nothing to the marginal
likelihood, and the closed-form likelihood sums only up to the last observation
(`bsts.kalman.marginal`), so a padded series keeps the fast path; each series starts at
its own first observation, where the initial-state prior applies; a padded step has
$\Delta t = 0$, so priors scaled by the span of the record (`LocalLinearTrend`'s slope)
see the series' own span.

The programs are the NUTS chain (`bsts._nuts.nuts_chain`), the posterior mode
(quasi-Newton BFGS on the log joint density in the unconstrained space), SVI, and the
per-draw predictive of a forecast. On a CPU, series run one after the other through the
compiled program, from a thread per core; `docs/architecture.md` records why this beats
`vmap` across series here.
"""

from __future__ import annotations

import dataclasses
import os
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
from jax.flatten_util import ravel_pytree
from numpyro import handlers
from numpyro.distributions.transforms import biject_to
from numpyro.infer import SVI, Trace_ELBO, autoguide, init_to_median
from numpyro.infer.util import constrain_fn, log_density, potential_energy
from numpyro.util import progress_bar_factory

from bsts._compile import compile_lowered
from bsts._nuts import nuts_chain
from bsts.bfgs import minimize_bfgs
from bsts.components import ModelInputs
from bsts.data import SeriesData
from bsts.kalman import kalman_filter
from bsts.model import OBSERVATION_WEIGHTS, Model
from bsts.observation import observation_params
from bsts.predictive import program_prng

__all__ = [
    "GUIDES",
    "Program",
    "bucket_length",
    "compile_all",
    "compile_cost",
    "compiled",
    "is_compiled",
    "merged_lengths",
    "padded_arrays",
    "padded_draws",
    "padded_length",
    "plan_buckets",
    "run_calls",
    "run_series",
    "trace_counts",
]

GUIDES = {
    "normal": autoguide.AutoNormal,
    "multivariate_normal": autoguide.AutoMultivariateNormal,
    "low_rank": autoguide.AutoLowRankMultivariateNormal,
}

SMALLEST_BUCKET = 16

# How often each program was traced, by kind: one per structure and bucket is the point
# of this module, and tests count them.
trace_counts: Counter = Counter()

_CACHE: dict = {}
# Bounded by memory mappings, not memory: XLA's CPU executables hold about 800 mappings
# each (a MAP or NUTS program of LocalLinearTrend + Seasonal(12)), and Linux allows 65,530
# per process; at 256 a `bsts.Auto` benchmark ran out ("LLVM compilation error: Cannot
# allocate memory"). Past this size the oldest program is dropped and compiled again when
# next needed.
_CACHE_SIZE = 48


def bucket_length(length: int, per_doubling: int = 2) -> int:
    """The padded length of a series: the next rung of a ladder of lengths.

    With two rungs per doubling the ladder is 16, 24, 32, 48, 64, 96, ...: the padding
    stays under half the length, and a handful of compilations cover series of 30 to 300
    steps. With one it is 16, 32, 64, ...: half the compilations, for programs whose
    buckets are never merged (`compile_cost` 0). The closed-form likelihood hardly costs
    more at the coarser rung: its FFT has the same size at 48 and 64 steps, at 96 and 128,
    and so on (the next power of two above twice the length). With four (16, 20, 24, 28,
    32, 40, ...) the padding stays under a quarter, for likelihoods that pay for every
    padded step (`padded_length`).

    Args:
        length: the series' number of steps.
        per_doubling: rungs per doubling, 1, 2 or 4.
    """
    rungs = {1: (1,), 2: (1, 3 / 2), 4: (1, 5 / 4, 3 / 2, 7 / 4)}[per_doubling]
    size = SMALLEST_BUCKET
    while True:
        for rung in rungs:
            if int(size * rung) >= length:
                return int(size * rung)
        size *= 2


def padded_length(model: Model, length: int, kind: str = "map", stepwise: bool = False) -> int:
    """The length a series runs at: its bucket, or its own length if the model cannot pad.

    Args:
        model: the model.
        length: the series' number of steps.
        kind: the program kind; NUTS and SVI, whose buckets are never merged, take the
            coarser ladder, or the finer one when `stepwise`.
        stepwise: whether the series' likelihood runs a filter step per padded step (an
            uneven series, or one with more gaps than the closed form makes room for).
            A NUTS or SVI program evaluates it thousands of times, paying for each
            padded step every time, against one compilation per rung: the light curve's
            1,201 steps ran at 2,048 on the coarse ladder, at 1,280 on the fine one.
    """
    if not model.paddable:
        return length
    if compile_cost(kind) != 0:
        return bucket_length(length, per_doubling=2)
    return bucket_length(length, per_doubling=4 if stepwise else 1)


def runs_stepwise(regular: bool, gaps: int | None) -> bool:
    """Whether a likelihood runs a filter step per step (see `padded_length`).

    Args:
        regular: whether the series is on an evenly spaced grid.
        gaps: the room its closed form makes for gaps (`SeriesData.gap_capacity`; None
            where the exact filter runs instead).
    """
    return not regular or gaps is None


# What one compilation costs, in padded steps of one series run by the compiled program:
# its compile time over the extra run time of one more padded step (wall times on a 2-core
# CPU, LocalLinearTrend + Seasonal(12), float32). Measured: MAP 3.4 s / 0.056 ms; a
# forecast 0.9 s / 2.8 us per draw and step (300 draws, buckets of 64 to 256 steps; one
# draw: 0.8 s / 2.4 us); predictive moments of one draw 1 s / 0.011 ms. The ratio, not
# the seconds, decides, and it varies less across machines and models than either does.
# Only programs whose results move by round-off when a series is padded further are
# merged: NUTS and SVI amplify round-off into different draws, and a series' draws must
# not depend on which other series share the call.
_COMPILE_IN_SERIES_STEPS = {
    "map": 60_000.0,
    "forecast": 300_000.0,
    "moments": 90_000.0,
    # Not measured on its own: the same filter as "moments", vmapped over parameter sets
    # (pass their number as `draws`).
    "log_likelihood": 90_000.0,
}


def compile_cost(kind: str, draws: int = 1) -> float:
    """One compilation of a program kind, in padded series-steps of running it.

    Args:
        kind: the program kind ("nuts", "map", "svi", "forecast", "moments" or
            "log_likelihood").
        draws: posterior draws per series (a forecast runs the filter once per draw).

    Returns:
        The cost in series-steps; 0 for NUTS and SVI, whose buckets are never merged.
    """
    return _COMPILE_IN_SERIES_STEPS.get(kind, 0.0) / max(1, draws)


def plan_buckets(
    lengths: Sequence[int],
    cost: float,
    ready: Callable[[int], bool] = lambda length: False,
) -> dict[int, int]:
    r"""Which bucket each bucket of series runs at: a few large buckets beat many small ones.

    Every bucket is one compilation, so a small collection is faster padded into fewer,
    longer buckets, and a large one with more. With $n_b$ jobs in ladder bucket $b$
    (`bucket_length`), this picks the set $S$ of buckets to compile (always the longest)
    and runs each job at the shortest bucket of $S$ not shorter than its own, minimising

    $$
    \sum_{s \in S} c_s + \sum_b n_b \, s(b), \qquad
    c_s = \begin{cases} 0 & \text{compiled already} \\ c & \text{otherwise,} \end{cases}
    $$

    by dynamic programming over the sorted buckets. Padding is exact, so the plan changes
    the cost of a fit and its results only by round-off (`compile_cost` keeps it away
    from the programs that amplify round-off).

    Args:
        lengths: each job's ladder bucket length.
        cost: one compilation in series-steps (`compile_cost`).
        ready: whether a bucket's program is compiled already.

    Returns:
        `{ladder bucket: bucket it runs at}` for every length given.
    """
    counts = Counter(lengths)
    sizes = sorted(counts)
    best, start = [0.0], [0]
    for j, top in enumerate(sizes):
        opening = 0.0 if ready(top) else cost
        options = []
        moved = 0.0
        for i in range(j, -1, -1):  # buckets i..j all run at `top`
            moved += counts[sizes[i]] * top
            options.append((best[i] + opening + moved, i))
        total, first = min(options)
        best.append(total)
        start.append(first)
    plan, j = {}, len(sizes)
    while j > 0:
        first = start[j]
        for size in sizes[first:j]:
            plan[size] = sizes[j - 1]
        j = first
    return plan


def merged_lengths(
    model: Model, buckets: list[tuple[int, bool]], cost: float, ready: Callable[[int, int], bool]
) -> list[int]:
    """The length each job runs at: its ladder bucket, merged upward by `plan_buckets`.

    Args:
        model: the model (one that cannot pad keeps every length).
        buckets: each job's `(ladder bucket, group)`; jobs of different groups (regular
            or not, room for gaps) never share a program.
        cost: one compilation, in series-steps.
        ready: whether job i's program at a length is compiled already, `(i, length)`.
    """
    if not model.paddable:
        return [length for length, _ in buckets]
    out = [length for length, _ in buckets]
    for group in dict.fromkeys(group for _, group in buckets):
        members = [i for i, (_, g) in enumerate(buckets) if g == group]
        # A bucket's program is the same whichever of its series it is checked with.
        representative = {}
        for i in reversed(members):
            representative[buckets[i][0]] = i
        plan = plan_buckets(
            [buckets[i][0] for i in members],
            cost,
            lambda length, representative=representative: ready(representative[length], length),
        )
        for i in members:
            out[i] = plan[buckets[i][0]]
    return out


def padded_draws(draws: dict, length: int) -> dict:
    """Flat draws (`Posterior.flat_draws`) for a program at a bucket length.

    A Student-t fit keeps a weight per step of its series; the padded steps (and a
    forecast's future ones) get weight 1, which only sets the unused variance of missing
    steps.
    """
    if OBSERVATION_WEIGHTS not in draws:
        return draws
    weights = np.asarray(draws[OBSERVATION_WEIGHTS])
    fill = np.ones((*weights.shape[:-1], length - weights.shape[-1]), weights.dtype)
    return {**draws, OBSERVATION_WEIGHTS: np.concatenate([weights, fill], axis=-1)}


def padded_arrays(series: SeriesData, inputs: ModelInputs, length: int) -> dict:
    """A series' arrays at a bucket length, for a compiled program.

    Args:
        series: the prepared series (a forecast's is extended by its future steps).
        inputs: its model inputs (`Model.inputs(series)`).
        length: the bucket length, at least the series' length.

    Returns:
        `{"y", "dt", "covariates", "initial_level", "length"}`, in JAX's default float type.
    """

    def pad(values, fill):
        return np.concatenate([values, np.full(length - values.shape[0], fill)])

    float_type = jnp.zeros(()).dtype
    return {
        "y": jnp.asarray(pad(series.y, np.nan), float_type),
        "dt": jnp.asarray(pad(inputs.dt, 0.0), float_type),
        "covariates": {
            k: jnp.asarray(pad(v, 0.0), float_type) for k, v in inputs.covariates.items()
        },
        "initial_level": jnp.asarray(inputs.initial_level, float_type),
        "length": jnp.asarray(series.num_timesteps, jnp.int32),
    }


def _inputs(arrays: dict, program: Program) -> ModelInputs:
    return ModelInputs(
        dt=arrays["dt"],
        regular=program.regular,
        covariates=arrays["covariates"],
        initial_level=arrays["initial_level"],
        num_timesteps=program.length,
        gaps=program.gaps,
    )


@dataclasses.dataclass(frozen=True)
class Program:
    """What to compile: the kind of program and its static settings.

    Attributes:
        kind: "nuts", "map", "svi", "forecast", "moments", "log_likelihood" or
            "pooled_map".
        length: the bucket length.
        regular: whether the series are on an evenly spaced grid.
        options: the kind's settings, as sorted `(name, value)` pairs.
        gaps: the room the likelihood makes for missing steps before the series' last
            observation (`SeriesData.gap_capacity`; fitting programs only).
    """

    kind: str
    length: int
    regular: bool
    options: tuple
    gaps: int | None = 0

    def option(self, name):
        """One of the settings."""
        return dict(self.options)[name]


def _nuts_program(model: Model, program: Program) -> Callable:
    num_warmup, num_samples = program.option("num_warmup"), program.option("num_samples")
    chains = program.option("progress_chains")
    total = num_warmup + num_samples
    chain = nuts_chain(
        model,
        num_warmup=num_warmup,
        num_samples=num_samples,
        decorate=progress_bar_factory(total, chains, max(1, total // 20)) if chains else None,
        target_accept_prob=program.option("target_accept_prob"),
        max_tree_depth=program.option("max_tree_depth"),
        dense_mass=program.option("dense_mass"),
        stepwise=runs_stepwise(program.regular, program.gaps),
    )

    def run(init_key, run_key, arrays):
        trace_counts["nuts"] += 1
        inputs = _inputs(arrays, program)
        return chain(init_key, run_key, (inputs,), {"y": arrays["y"]})

    return run


def _map_program(model: Model, program: Program) -> Callable:
    max_iterations = program.option("num_steps")
    jacobian = dict(program.options).get("jacobian", False)

    def run(key, arrays):
        r"""The posterior mode: BFGS (`bsts.bfgs`) on $-\log p(\theta, y)$, unconstrained $\theta$.

        By default the objective has no Jacobian term, so the mode is that of the density
        of the parameters themselves, as with an `AutoDelta` guide. With the option
        `jacobian` it is NumPyro's potential (the density of the unconstrained parameters,
        e.g. of $\log\sigma$), whose mode never puts a scale at exactly zero. The start
        is the prior median (NumPyro's `init_to_median`).
        """
        trace_counts["map"] += 1
        inputs = _inputs(arrays, program)
        args, kwargs = (inputs,), {"y": arrays["y"]}
        start, unravel = ravel_pytree(_prior_median_start(key, model, args, kwargs))

        def objective(flat):
            if jacobian:
                return potential_energy(model, args, kwargs, unravel(flat))
            params = constrain_fn(model, args, kwargs, unravel(flat))
            return -log_density(model, args, kwargs, params)[0]

        result = minimize_bfgs(objective, start, max_evaluations=max_iterations)
        losses = jnp.stack([result.initial_fun, result.fun])
        mode = constrain_fn(model, args, kwargs, unravel(result.x), return_deterministic=True)
        return mode, losses

    return run


def _pooled_map_program(model: Model, program: Program) -> Callable:
    max_iterations = program.option("num_steps")

    def run(key, stacked):
        r"""One posterior mode shared by a group of series: hyperparameters pooled.

        BFGS on $-\log p(\theta) - \sum_m \log p(y_m \mid \theta)$, the series' exact
        marginal likelihoods vmapped over the group's leading axis. The prior is the one a
        fit of the group's first series would use. A member whose target is all missing
        adds nothing, which pads a group to a common size.
        """
        trace_counts["pooled_map"] += 1
        first = jax.tree_util.tree_map(lambda a: a[0], stacked)

        def pooled():
            params = model.sample_parameters(_inputs(first, program))

            def member(arrays):
                inputs = _inputs(arrays, program)
                ssm = model.state_space(params, inputs)
                likelihood = model.observation.likelihood(ssm, inputs, observation_params(params))
                return likelihood.log_prob(arrays["y"])

            numpyro.factor("members", jnp.sum(jax.vmap(member)(stacked)))

        start, unravel = ravel_pytree(_prior_median_start(key, pooled, (), {}))

        def objective(flat):
            return -log_density(pooled, (), {}, constrain_fn(pooled, (), {}, unravel(flat)))[0]

        result = minimize_bfgs(objective, start, max_evaluations=max_iterations)
        mode = constrain_fn(pooled, (), {}, unravel(result.x), return_deterministic=True)
        return mode, jnp.stack([result.initial_fun, result.fun])

    return run


def _prior_median_start(key, model: Model, args: tuple, kwargs: dict) -> dict:
    """Every latent site at its prior median (NumPyro's `init_to_median`), unconstrained.

    One trace of the model, without its density: NumPyro's `initialize_model` would also
    differentiate the log density at the start, which compiles the objective once more.
    """
    chosen = handlers.substitute(
        handlers.seed(model, key), substitute_fn=init_to_median(num_samples=15)
    )
    trace = handlers.trace(chosen).get_trace(*args, **kwargs)
    return {
        name: biject_to(site["fn"].support).inv(site["value"])
        for name, site in trace.items()
        if site["type"] == "sample" and not site["is_observed"]
    }


def _svi_program(model: Model, program: Program) -> Callable:
    num_steps = program.option("num_steps")
    num_samples = program.option("num_samples")
    guide = GUIDES[program.option("guide")](model)
    svi = SVI(model, guide, numpyro.optim.Adam(program.option("learning_rate")), Trace_ELBO())

    def run(key, arrays):
        trace_counts["svi"] += 1
        inputs = _inputs(arrays, program)
        training = dataclasses.replace(inputs, training=True)
        key_fit, key_draw = jax.random.split(key)
        result = svi.run(key_fit, num_steps, training, y=arrays["y"], progress_bar=False)
        key_guide, key_model = jax.random.split(key_draw)
        latent = numpyro.infer.Predictive(guide, params=result.params, num_samples=num_samples)(
            key_guide, inputs
        )
        derived = numpyro.infer.Predictive(model, posterior_samples=latent)(key_model, inputs)
        draws = {k: v for k, v in {**latent, **derived}.items() if k != "y"}
        return draws, result.losses

    return run


def _forecast_program(model: Model, program: Program) -> Callable:
    horizon = program.option("horizon")

    def run(key, params, arrays):
        trace_counts["forecast"] += 1
        inputs = _inputs(arrays, program)
        keys = jax.random.split(key, jax.tree_util.tree_leaves(params)[0].shape[0])

        def one(k, p):
            ssm = model.state_space(p, inputs)
            return model.observation.draw_future(
                k, ssm, arrays["y"], arrays["length"], horizon, observation_params(p)
            )

        return jax.vmap(one)(keys, params)

    return run


def _moments_program(model: Model, program: Program) -> Callable:
    def run(params, arrays):
        """One draw's predictive mean, signal and noise variance of each step given the past.

        At a missing step the filter's prediction is the multi-step predictive from the
        last observation before it: after a cut-off (NaN from there on) these are the
        forecasts that leave-future-out validation scores (`bsts.auto`).
        """
        trace_counts["moments"] += 1
        ssm = model.state_space(params, _inputs(arrays, program))
        filtered = kalman_filter(ssm, arrays["y"])
        T = program.length
        H = jnp.broadcast_to(ssm.observation_matrix, (T, ssm.state_dim))
        mean = jnp.einsum("ti,ti->t", H, filtered.predicted_mean) + ssm.observation_offset
        signal_var = jnp.einsum("ti,tij,tj->t", H, filtered.predicted_cov, H)
        return mean, signal_var, jnp.broadcast_to(ssm.observation_var, (T,))

    return run


def _log_likelihood_program(model: Model, program: Program) -> Callable:
    def run(params, arrays, set_covariates):
        """The series' marginal log-likelihood under each of a stack of parameter sets.

        The parameter sets need not come from this series' fit: a classifier scores a
        series under the fits of other series (`bsts.scoring`). `set_covariates` holds
        covariates that differ by parameter set (a leading axis like the parameters'),
        added to the series' own.
        """
        trace_counts["log_likelihood"] += 1
        inputs = _inputs(arrays, program)

        def one(p, covariates):
            given = dataclasses.replace(inputs, covariates={**inputs.covariates, **covariates})
            ssm = model.state_space(p, given)
            likelihood = model.observation.likelihood(ssm, given, observation_params(p))
            return likelihood.log_prob(arrays["y"])

        return jax.vmap(one)(params, set_covariates)

    return run


_BUILDERS = {
    "nuts": _nuts_program,
    "map": _map_program,
    "svi": _svi_program,
    "forecast": _forecast_program,
    "moments": _moments_program,
    "log_likelihood": _log_likelihood_program,
    "pooled_map": _pooled_map_program,
}


class _UndescribableError(Exception):
    """A part of the model that `_signature` cannot describe by value."""


def _describe(value):
    if value is None or isinstance(value, (bool, int, float, str, bytes)):
        return value
    if isinstance(value, (np.ndarray, jax.Array, np.generic)):
        array = np.asarray(value)
        return ("array", array.shape, array.dtype.str, array.tobytes())
    if isinstance(value, (list, tuple)):
        return tuple(_describe(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((str(k), _describe(v)) for k, v in value.items()))
    if isinstance(value, numpyro.distributions.Distribution):
        fields = {k: getattr(value, k) for k in value.arg_constraints if hasattr(value, k)}
        if isinstance(value, numpyro.distributions.TransformedDistribution):
            fields["base"] = value.base_dist
            fields["transforms"] = [type(t).__name__ for t in value.transforms]
        return (type(value).__qualname__, _describe(fields))
    if hasattr(value, "__dict__") and type(value).__module__.startswith("bsts."):
        return (type(value).__qualname__, _describe(vars(value)))
    raise _UndescribableError(type(value).__name__)


def _signature(model: Model):
    """A hashable description of a model by value, or None if a part cannot be described.

    Two models with the same components, names, priors and settings share compiled
    programs, even when they are different objects (a model rebuilt in a loop).
    """
    try:
        return _describe(model)
    except _UndescribableError:
        return None


def _cache_key(model: Model, program: Program, example) -> tuple:
    signature = _signature(model)
    shapes = jax.tree_util.tree_map(lambda a: (jnp.shape(a), jnp.result_type(a).str), example)
    return (signature if signature is not None else id(model), program, str(shapes))


def _cached(model: Model, key: tuple) -> Callable | None:
    entry = _CACHE.get(key)
    # Without a value signature the key holds the model's id: check it is the same model.
    if entry is not None and (not isinstance(key[0], int) or entry[0] is model):
        return entry[1]
    return None


def _store(model: Model, key: tuple, function: Callable) -> None:
    if len(_CACHE) >= _CACHE_SIZE:
        _CACHE.pop(next(iter(_CACHE)))
    _CACHE[key] = (model, function)


def _lower(model: Model, program: Program, example):
    # Tracing runs NumPyro's handlers, whose stack is global to the process: never trace
    # from two threads at once.
    with program_prng():
        return jax.jit(_BUILDERS[program.kind](model, program)).lower(*example)


def is_compiled(model: Model, program: Program, *example) -> bool:
    """Whether `compiled` would find the program in the cache."""
    return _cached(model, _cache_key(model, program, example)) is not None


def compiled(model: Model, program: Program, *example) -> Callable:
    """The compiled program for a model structure, from the cache or compiled now.

    Args:
        model: the model.
        program: what to compile.
        *example: arguments of the right shapes and types (one series' arrays).

    Returns:
        A compiled function of the same arguments; it is safe to call from several
        threads at once.
    """
    key = _cache_key(model, program, example)
    function = _cached(model, key)
    if function is None:
        function = compile_lowered(_lower(model, program, example))
        _store(model, key, function)
    return function


def compile_all(requests: Sequence[tuple], workers: int | None = None) -> None:
    """Compile several programs into the cache, side by side.

    Tracing runs one program at a time (NumPyro's handler stack is global), but XLA then
    compiles each on a thread of its own, which is most of the time.

    Args:
        requests: `(model, program, example arguments)` triples, as for `compiled`.
        workers: threads (default: the machine's cores).
    """
    pending = {}
    for model, program, example in requests:
        key = _cache_key(model, program, example)
        if _cached(model, key) is None and key not in pending:
            pending[key] = (model, _lower(model, program, example))
    if not pending:
        return
    workers = max(1, min(len(pending), workers or os.cpu_count() or 1))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        functions = list(pool.map(lambda item: compile_lowered(item[1]), pending.values()))
    for (key, (model, _)), function in zip(pending.items(), functions, strict=True):
        _store(model, key, function)


def clear_cache() -> None:
    """Forget every compiled program (they are compiled again when next needed)."""
    _CACHE.clear()


def run_series(
    function: Callable,
    jobs: Sequence[tuple],
    *,
    workers: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> list:
    """Run a compiled program on every job's arguments, a thread per core.

    XLA runs executions started from different threads side by side, so on a multi-core
    CPU the series overlap although each runs single-threaded.

    Args:
        function: the compiled program.
        jobs: one argument tuple per call.
        workers: threads (default: the machine's cores).
        progress: called with 1 after each finished call.

    Returns:
        The results as NumPy trees, in the order of `jobs`.
    """
    return run_calls(
        [(function, arguments) for arguments in jobs], workers=workers, progress=progress
    )


def run_calls(
    calls: Sequence[tuple[Callable, tuple]],
    *,
    workers: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> list:
    """Run `(compiled program, arguments)` calls from one pool of threads, a thread per core.

    The calls are started in the order given, each as soon as a thread is free, so the
    threads stay busy to the end of the last call whatever program each call runs (a pool
    per program would leave a thread idle while the other finishes that program's last
    series). Put the longest calls first.

    Args:
        calls: `(function, arguments)` pairs.
        workers: threads (default: the machine's cores).
        progress: called with 1 after each finished call.

    Returns:
        The results as NumPy trees, in the order of `calls`.
    """
    workers = max(1, min(len(calls), workers or os.cpu_count() or 1))

    def call(item):
        function, arguments = item
        result = jax.tree_util.tree_map(np.asarray, function(*arguments))
        if progress is not None:
            progress(1)
        return result

    if workers == 1:
        return [call(item) for item in calls]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(call, calls))
