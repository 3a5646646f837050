"""NUTS chains that share one compilation.

NumPyro's `MCMC` compiles its sampling loop again for every chain it runs one after the
other (the loop's collection function is a new closure per chain), and vectorised chains
would evaluate both branches of every `lax.cond` in the likelihood's fast-path switch. This
module drives NumPyro's own functional NUTS kernel (`numpyro.infer.hmc.hmc`): one compiled
program initialises, adapts and samples a chain. With a device per chain
(`numpyro.set_host_device_count`) the chains run under `pmap`; otherwise the one compiled
program is started from a thread per chain, and XLA runs those executions side by side
on a multi-core host.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree
from numpyro.infer import init_to_median
from numpyro.infer.hmc import hmc
from numpyro.infer.util import ParamInfo, initialize_model
from numpyro.util import progress_bar_factory

from bsts._compile import compile_lowered
from bsts.bfgs import minimize_bfgs

__all__ = ["MODE_START_LENGTH", "STEPWISE_MODE_START_LENGTH", "nuts_chain", "run_nuts"]

# From this many steps on (after padding), a chain starts near a posterior mode found by
# BFGS, with the inverse mass matrix set from the curvature there (see `_start_at_mode`).
# The posterior's width shrinks as 1/sqrt(T) while a random start's potential grows as T,
# so on long series warm-up otherwise spends its first adaptation window (about 100
# iterations, unit mass matrix) on long trajectories. Measured with
# `benchmarks/long_series.py --mode-start-length 1` (NUTS 1 x (300 + 300), float32), the
# mode start was faster on every case from 2,000 steps up: hourly 2,000 13.7 -> 11.5 s,
# 5,000 19.6 -> 14.4 s, 10^4 37.1 -> 22.1 s; the real hourly series with gaps (8,760)
# 63.3 / 63.3 / 58.3 -> 33.7 / 43.4 / 34.7 s over three seeds (warm-up leapfrog steps
# about 8,000 -> 2,000). At 10^5 the random start ran for more than 22 minutes.
MODE_START_LENGTH = 2_048
# The same for a likelihood that runs a filter step per step (uneven series, or more gaps
# than the closed form makes room for): each gradient costs several times as much per
# step, so the leapfrog steps the mode start saves in warm-up outweigh its search and
# second compiled copy of the potential on far shorter series. Measured with
# `benchmarks/lightcurve_nuts.py --points N [--mode-start-length 1000000]` (the light
# curve's first N points, NUTS 2 x (500 + 500)): 300 points 13.1 -> 10.9 s, 600 17.9 ->
# 14.8 s, 1,201 33.9 -> 28.6 s (warm-up leapfrog steps per chain about 5,000-8,000 ->
# 3,000).
STEPWISE_MODE_START_LENGTH = 256
# The mode search keeps a dense inverse Hessian and the curvature costs two gradients per
# parameter: models with more unconstrained parameters than this (per-step change-point
# scales) keep the plain start.
_MODE_START_MAX_PARAMETERS = 64
_MODE_START_EVALUATIONS = 200
# In unconstrained units (mostly log scales): wide enough that float32 round-off of the
# gradient does not swamp the difference, narrow next to any posterior the start helps.
_CURVATURE_STEP = 1e-2


def run_nuts(
    model,
    model_args: tuple,
    model_kwargs: dict,
    *,
    num_warmup: int,
    num_samples: int,
    num_chains: int,
    seed: int,
    progress_bar: bool,
    target_accept_prob: float = 0.8,
    max_tree_depth: int = 10,
    dense_mass: bool = False,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Run NUTS chains with windowed step-size and mass-matrix adaptation.

    Args:
        model: a NumPyro model.
        model_args: its positional arguments.
        model_kwargs: its keyword arguments (the observed series).
        num_warmup: adaptation iterations per chain (discarded).
        num_samples: draws kept per chain.
        num_chains: number of chains.
        seed: random seed.
        progress_bar: show a progress bar per chain.
        target_accept_prob: NUTS's target acceptance probability.
        max_tree_depth: the largest trajectory has `2**max_tree_depth` steps.
        dense_mass: adapt a dense mass matrix (else diagonal).

    Returns:
        `(draws, stats)`: every sample site (constrained, plus deterministic sites), and
        the statistics of `nuts_chain`, each with a leading `num_chains` axis.
    """
    chain_keys = jax.random.split(jax.random.PRNGKey(seed), num_chains)
    split = jax.vmap(jax.random.split)(chain_keys)
    init_keys, run_keys = split[:, 0], split[:, 1]
    total = num_warmup + num_samples
    device_per_chain = num_chains > 1 and jax.local_device_count() >= num_chains
    decorate = (
        progress_bar_factory(total, num_chains, max(1, total // 20)) if progress_bar else None
    )

    chain = nuts_chain(
        model,
        num_warmup=num_warmup,
        num_samples=num_samples,
        decorate=decorate,
        target_accept_prob=target_accept_prob,
        max_tree_depth=max_tree_depth,
        dense_mass=dense_mass,
    )

    def run_chain(init_key, run_key):
        # The data are closed over, so they stay concrete while tracing (the likelihood's
        # gap pattern is then static, see `bsts.kalman.marginal`).
        return chain(init_key, run_key, model_args, model_kwargs)

    if device_per_chain:
        constrained, stats = jax.pmap(run_chain)(init_keys, run_keys)
    else:
        # Compiled once; every chain reuses it. XLA runs executions started from different
        # threads at the same time, so on a multi-core host the chains overlap even on a
        # single device.
        run = compile_lowered(jax.jit(run_chain).lower(init_keys[0], run_keys[0]))
        with ThreadPoolExecutor(max_workers=min(num_chains, os.cpu_count() or 1)) as pool:
            runs = list(
                pool.map(
                    lambda i: jax.block_until_ready(run(init_keys[i], run_keys[i])),
                    range(num_chains),
                )
            )
        constrained, stats = jax.tree_util.tree_map(lambda *a: jnp.stack(a), *runs)

    draws = {name: np.asarray(value) for name, value in constrained.items()}
    return draws, {name: np.asarray(value) for name, value in stats.items()}


def nuts_chain(
    model,
    *,
    num_warmup: int,
    num_samples: int,
    decorate=None,
    target_accept_prob: float = 0.8,
    max_tree_depth: int = 10,
    dense_mass: bool = False,
    stepwise: bool = False,
):
    """One NUTS chain as a pure function of its keys and the model's arguments.

    The data enter as arguments, so one compilation serves every series of the same shape
    (`bsts.many` traces it once per structure and length, and maps it over series).

    Args:
        model: a NumPyro model.
        num_warmup: adaptation iterations (discarded).
        num_samples: draws kept.
        decorate: wraps the loop body (a progress bar); None for none.
        target_accept_prob: NUTS's target acceptance probability.
        max_tree_depth: the largest trajectory has `2**max_tree_depth` steps.
        dense_mass: adapt a dense mass matrix (else diagonal).
        stepwise: whether the likelihood runs a filter step per step
            (`bsts.batch.runs_stepwise`); chains then start at the mode from
            `STEPWISE_MODE_START_LENGTH` steps, not `MODE_START_LENGTH`.

    Returns:
        `chain(init_key, run_key, model_args, model_kwargs)` returning
        `(constrained draws, stats)`. The draws have a leading `num_samples` axis; `stats`
        holds `diverging` and `num_steps` (leapfrog steps) per draw, `warmup_num_steps` per
        warm-up iteration, and the adapted `step_size`.
    """
    total = num_warmup + num_samples
    if decorate is None:

        def decorate(body):
            return lambda i, vals: (body(i, vals[0]), vals[1])

    def chain(init_key, run_key, model_args, model_kwargs):
        """Initialise, adapt and sample one chain: a single compiled program.

        The search for valid initial values runs inside it too (NumPyro would otherwise
        evaluate the model eagerly, compiling the likelihood separately).
        """
        info = initialize_model(init_key, model, model_args=model_args, model_kwargs=model_kwargs)
        # The ParamInfo carries the potential and gradient found at the initial point, so
        # init_kernel does not differentiate the model again (one copy less to compile).
        param_info, inverse_mass = info.param_info, None
        length = jnp.shape(model_kwargs.get("y", jnp.zeros(0)))[-1]
        size = ravel_pytree(param_info.z)[0].size
        mode_start_length = STEPWISE_MODE_START_LENGTH if stepwise else MODE_START_LENGTH
        if length >= mode_start_length and size <= _MODE_START_MAX_PARAMETERS:
            search_key, jitter_key = jax.random.split(init_key)
            # From the prior medians, as the MAP fit starts: from a random start the search
            # found the degenerate mode of a long hourly series (noise scale near zero, the
            # level absorbing the noise) as often as not.
            info = initialize_model(
                search_key,
                model,
                model_args=model_args,
                model_kwargs=model_kwargs,
                init_strategy=init_to_median,
            )
            param_info, inverse_mass = _start_at_mode(
                info.potential_fn, info.param_info, jitter_key
            )
        init_kernel, sample_kernel = hmc(info.potential_fn, algo="NUTS")
        state = init_kernel(
            param_info,
            num_warmup=num_warmup,
            target_accept_prob=target_accept_prob,
            max_tree_depth=max_tree_depth,
            dense_mass=dense_mass,
            inverse_mass_matrix=inverse_mass,
            rng_key=run_key,
        )
        kept = jax.tree_util.tree_map(
            lambda v: jnp.zeros((num_samples, *jnp.shape(v)), jnp.result_type(v)), _kept(state)
        )
        # Warm-up trajectory lengths too: on hard geometry most leapfrog steps are taken
        # while the step size and mass matrix adapt, and these show where the time went.
        warmup_steps = jnp.zeros(max(num_warmup, 1), jnp.result_type(state.num_steps))

        def body(i, carry):
            state, kept, warmup_steps = carry
            state = sample_kernel(state)
            slot = jnp.clip(i - num_warmup, 0, num_samples - 1)
            keep = i >= num_warmup
            kept = jax.tree_util.tree_map(
                lambda buf, v: buf.at[slot].set(jnp.where(keep, v, buf[slot])), kept, _kept(state)
            )
            warm = jnp.minimum(i, warmup_steps.shape[0] - 1)
            warmup_steps = warmup_steps.at[warm].set(
                jnp.where(keep, warmup_steps[warm], state.num_steps)
            )
            return state, kept, warmup_steps

        # The progress decorator threads a chain id (-1: assign the next free bar).
        (state, (z, diverging, num_steps), warmup_steps), _ = jax.lax.fori_loop(
            0, total, decorate(body), ((state, kept, warmup_steps), -1)
        )
        stats = {
            "diverging": diverging,
            "num_steps": num_steps,
            "warmup_num_steps": warmup_steps[:num_warmup],
            "step_size": state.adapt_state.step_size,
        }
        return jax.vmap(info.postprocess_fn)(z), stats

    return chain


def _start_at_mode(potential_fn, start_info: ParamInfo, key):
    """A start near the posterior mode of the unconstrained parameters, and a mass there.

    BFGS (`bsts.bfgs`) from `start_info` on NumPyro's potential (the negative log density
    of the unconstrained parameters, Jacobians included, so a scale whose posterior piles
    up at zero still has a finite mode). The inverse mass matrix is the reciprocal of the
    potential's curvature along each coordinate, from central differences of the gradient
    (the likelihood's gradients are reverse-mode only, so no Hessian by autodiff), or 1,
    NumPyro's own start, where that curvature is not positive; warm-up adapts it from
    there as usual. Each chain starts from the mode plus a normal jitter with those
    variances (its own `key`), so that chains do not all start at one point; where the
    jitter lands on a non-finite potential, at the mode.

    Every potential evaluation after the search (the differences, then the jittered
    start) runs in one loop, so that the compiled chain holds two copies of the model's
    value and gradient for the start (the search's and the loop's), not one per use:
    each copy is seconds of compilation on a long series.

    Returns:
        `(ParamInfo at the start, flat inverse mass matrix)`.
    """
    start, unravel = ravel_pytree(start_info.z)

    def flat_potential(x):
        return potential_fn(unravel(x))

    value_and_grad = jax.value_and_grad(flat_potential)
    found = minimize_bfgs(flat_potential, start, max_evaluations=_MODE_START_EVALUATIONS)
    searched = jnp.isfinite(found.fun) & jnp.all(jnp.isfinite(found.gradient))
    mode = jnp.where(searched, found.x, start)
    n = mode.size
    offsets = _CURVATURE_STEP * jnp.concatenate([jnp.eye(n, dtype=mode.dtype)] * 2)
    offsets = offsets.at[n:].multiply(-1.0)
    noise = jax.random.normal(key, mode.shape, mode.dtype)

    def inverse_mass_of(gradients):
        curvature = jnp.diagonal(gradients[:n] - gradients[n:]) / (2 * _CURVATURE_STEP)
        usable = jnp.isfinite(curvature) & (curvature > 0)
        return jnp.where(usable, 1.0 / jnp.where(usable, curvature, 1.0), 1.0)

    def evaluate(i, carry):
        # Steps 0 .. 2n-1: the differences; step 2n: the jittered start they give.
        gradients = carry[0]
        slot = jnp.minimum(i, 2 * n - 1)
        jittered = mode + jnp.sqrt(inverse_mass_of(gradients)) * noise
        point = jnp.where(i < 2 * n, mode + offsets[slot], jittered)
        energy, gradient = value_and_grad(point)
        gradients = gradients.at[slot].set(jnp.where(i < 2 * n, gradient, gradients[slot]))
        return gradients, point, energy, gradient

    initial = (jnp.zeros((2 * n, n), mode.dtype), mode, jnp.zeros((), mode.dtype), mode)
    gradients, jittered, energy, gradient = jax.lax.fori_loop(0, 2 * n + 1, evaluate, initial)
    inverse_mass = inverse_mass_of(gradients)
    fine = jnp.isfinite(energy) & jnp.all(jnp.isfinite(gradient))
    mode_energy = jnp.where(searched, found.fun, start_info.potential_energy)
    mode_gradient = jnp.where(searched, found.gradient, ravel_pytree(start_info.z_grad)[0])
    point = jnp.where(fine, jittered, mode)
    energy = jnp.where(fine, energy, mode_energy)
    gradient = jnp.where(fine, gradient, mode_gradient)
    return ParamInfo(unravel(point), energy, unravel(gradient)), inverse_mass


def _kept(state):
    """What each kept draw records."""
    return state.z, state.diverging, state.num_steps
