"""How bsts compiles its own programs: XLA options for those programs only.

On the CPU, XLA's newer fusion emitters generate each fusion through MLIR, and while they
run they hold several hundred megabytes for one of bsts's likelihood programs: compiling
the value and gradient of a NUTS potential for an hourly series of 10^4 steps with gaps
took 0.44 GB and 4.4 s with them, and 0.05 GB and 3.6 s with XLA's classic emitters, at
about the same run time (`python benchmarks/long_series.py --compile-memory --cases
hourly-gaps --lengths 10000`; table in docs/benchmarks.md). A program that
samples holds several such copies, so the compiler, not the data, set the peak memory
of a long series' fit.

The options go to bsts's compiled programs alone (`jax.jit(..., compiler_options=...)`
and `Lowered.compile`), never to JAX's global configuration: the user's own programs
compile as they would without bsts. Where an XLA release no longer knows an option, bsts
compiles without it; with the environment variable `BSTS_XLA_DEFAULTS=1`, bsts compiles
everything with XLA's defaults (to compare, or should the options misbehave).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

__all__ = ["CPU_OPTIONS", "compile_lowered", "compiler_options", "jit"]

CPU_OPTIONS: dict[str, Any] = {"xla_cpu_use_fusion_emitters": False}


@functools.cache
def _accepted(backend: str) -> bool:
    """Whether this XLA takes `CPU_OPTIONS` (asked once, on a trivial program)."""
    try:
        jax.jit(jnp.negative).lower(jnp.zeros(1)).compile(compiler_options=CPU_OPTIONS)
    except Exception:
        return False
    return True


def compiler_options() -> dict[str, Any] | None:
    """The options for a bsts program on the default backend (None: XLA's defaults)."""
    if os.environ.get("BSTS_XLA_DEFAULTS", "") not in ("", "0"):
        return None
    backend = jax.default_backend()
    if backend != "cpu" or not _accepted(backend):
        return None
    return dict(CPU_OPTIONS)


def compile_lowered(lowered: jax.stages.Lowered) -> jax.stages.Compiled:
    """`lowered.compile()` with bsts's options."""
    options = compiler_options()
    return lowered.compile() if options is None else lowered.compile(compiler_options=options)


def jit(fun: Callable | None = None, **jit_kwargs) -> Callable:
    """`jax.jit` with bsts's compiler options, chosen at the first call.

    The backend is looked up when the function first runs, not when the module is
    imported, so that importing bsts does not start JAX's backend. Called inside another
    program's trace (traced arguments), it is a plain nested `jax.jit`: JAX takes compiler
    options on top-level programs only, and the outer program's options apply. Usable as
    a decorator, with or without keyword arguments.
    """
    if fun is None:
        return functools.partial(jit, **jit_kwargs)
    nested = jax.jit(fun, **jit_kwargs)
    top_level: list[Callable] = []

    @functools.wraps(fun)
    def call(*args, **kwargs):
        leaves = jax.tree_util.tree_leaves((args, kwargs))
        if any(isinstance(leaf, jax.core.Tracer) for leaf in leaves):
            return nested(*args, **kwargs)
        if not top_level:
            top_level.append(jax.jit(fun, compiler_options=compiler_options(), **jit_kwargs))
        return top_level[0](*args, **kwargs)

    return call
