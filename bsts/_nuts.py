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
from numpyro.infer.hmc import hmc
from numpyro.infer.util import initialize_model
from numpyro.util import progress_bar_factory

__all__ = ["nuts_chain", "run_nuts"]


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
        run = jax.jit(run_chain).lower(init_keys[0], run_keys[0]).compile()
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
        init_kernel, sample_kernel = hmc(info.potential_fn, algo="NUTS")
        # The ParamInfo carries the potential and gradient found at the initial point, so
        # init_kernel does not differentiate the model again (one copy less to compile).
        state = init_kernel(
            info.param_info,
            num_warmup=num_warmup,
            target_accept_prob=target_accept_prob,
            max_tree_depth=max_tree_depth,
            dense_mass=dense_mass,
            rng_key=run_key,
        )
        kept = jax.tree_util.tree_map(
            lambda v: jnp.zeros((num_samples, *jnp.shape(v)), jnp.result_type(v)), _kept(state)
        )
        # Warm-up trajectories are where long series spend their time (tree depths near the
        # limit while the scales adapt), so their lengths are kept too.
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


def _kept(state):
    """What each kept draw records."""
    return state.z, state.diverging, state.num_steps
