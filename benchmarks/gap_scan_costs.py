"""What the closed form's scan across gaps costs per step, on XLA's CPU runtime.

Times, in one process (float64, state size 13, 513 scan steps, as for 5% of 10^4 steps
missing at random):

- the gap recursion alone (`bsts.kalman.segments._excess_recursion`): its value, and its
  value and gradient (the hand-written reverse pass);
- scans whose step is one piece of that recursion: a trivial step, one fused 13 x 13
  product, an LU factorisation, the LU and the inverse from it, `jnp.linalg.inv`;
- batched forms of the same pieces over 256 matrices (what a pairwise combination of
  segments would run instead of sequential steps).

Usage:
    python benchmarks/gap_scan_costs.py
"""

from __future__ import annotations

import time

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from bsts.kalman import segments  # noqa: E402
from bsts.kalman.steps import matmul  # noqa: E402

STEPS, DIM = 513, 13


def median_ms(fn, *args, repeats: int = 50) -> float:
    compiled = jax.jit(fn).lower(*args).compile()
    jax.block_until_ready(compiled(*args))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(compiled(*args))
        times.append(time.perf_counter() - start)
    return 1e3 * float(np.median(times))


def recursion_inputs(rng):
    """Segment information and moves of the size and kind `gap_terms` passes."""
    A = rng.normal(size=(STEPS, DIM, DIM)) * 0.1
    J = A @ A.transpose(0, 2, 1)
    moves = np.eye(DIM) * 0.9 + 0.01 * rng.normal(size=(STEPS, DIM, DIM))
    jumps = np.broadcast_to(np.eye(DIM) * 0.1, (STEPS, DIM, DIM))
    vectors = rng.normal(size=(2, STEPS, DIM))
    return tuple(jnp.asarray(a) for a in (np.eye(DIM), moves, J, vectors[0], vectors[1], jumps))


def scan_of(step):
    """A scan of `STEPS` steps carrying a d x d matrix through `step(carry, J_k)`."""

    def run(J):
        carry, out = jax.lax.scan(lambda c, J_k: (step(c, J_k), c[0, 0]), jnp.eye(DIM), J)
        return jnp.sum(carry) + jnp.sum(out)

    return run


def shifted(E, J_k):
    return jnp.eye(DIM) + 0.01 * J_k + 0.001 * E


def lu_inverse(E, J_k):
    lu_and_pivots = jax.scipy.linalg.lu_factor(shifted(E, J_k))
    return jax.scipy.linalg.lu_solve(lu_and_pivots, jnp.eye(DIM))


STEP_KINDS = {
    "trivial step": lambda E, J_k: 0.99 * E + J_k,
    "one fused 13 x 13 product": lambda E, J_k: 0.1 * matmul(E, J_k),
    "LU factorisation": lambda E, J_k: jax.scipy.linalg.lu_factor(shifted(E, J_k))[0],
    "LU and the inverse from it": lu_inverse,
    "jnp.linalg.inv": lambda E, J_k: jnp.linalg.inv(shifted(E, J_k)),
}


def main() -> None:
    rng = np.random.default_rng(0)
    args = recursion_inputs(rng)

    def total(*a):
        return jnp.sum(segments._excess_recursion(*a))

    grad = jax.value_and_grad(total, argnums=tuple(range(6)))
    print(f"# jax {jax.__version__} ({jax.default_backend()}), float64, d = {DIM}")
    print(f"\n| gap recursion, {STEPS} steps | ms | us per step |\n|---|---|---|")
    for name, fn in (("value", total), ("value and gradient", grad)):
        ms = median_ms(fn, *args)
        print(f"| {name} | {ms:.2f} | {1e3 * ms / STEPS:.1f} |")

    J = args[2]
    print(f"\n| scan of {STEPS} steps, each | ms | us per step |\n|---|---|---|")
    for name, step in STEP_KINDS.items():
        ms = median_ms(scan_of(step), J)
        print(f"| {name} | {ms:.2f} | {1e3 * ms / STEPS:.2f} |")

    batch = J[:256] + 10 * jnp.eye(DIM)
    print("\n| batched over 256 matrices | ms |\n|---|---|")
    print(f"| LU factorisation | {median_ms(jax.scipy.linalg.lu_factor, batch):.3f} |")
    print(f"| 13 x 13 product | {median_ms(lambda a: a @ a, batch):.3f} |")


if __name__ == "__main__":
    main()
