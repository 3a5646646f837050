"""Round-off of the closed-form marginal log-likelihood against the exact filter.

The closed form (`bsts.kalman.marginal`) whitens the series by one FFT convolution, whose
round-off is relative to the whole series' norm rather than to each term. This script
measures the relative difference from the exact sequential filter, in float64, for the
local linear trend + seasonal(12) model of `kalman_speed.py` on long series and on series
far from zero (scaled by 1000 and shifted by 5000).

Usage:
    python benchmarks/marginal_precision.py
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from kalman_speed import simulate, state_space

from bsts.kalman import kalman_filter, marginal_log_likelihood

jax.config.update("jax_enable_x64", True)

CASES = [  # (T, scale, variances: obs, level, slope, seasonal)
    (1_000, 1.0, (0.5, 0.1, 1e-3, 0.01)),
    (10_000, 1.0, (0.5, 0.1, 1e-3, 0.01)),
    (10_000, 1000.0, (0.5, 0.1, 1e-3, 0.01)),
    (100_000, 1000.0, (0.5, 0.1, 1e-3, 0.01)),
    (10_000, 1.0, (1.0, 1e-4, 1e-8, 1e-6)),
]


def main() -> None:
    rng = np.random.default_rng(1)
    print("| T | scale | variances | closed form | exact filter | relative difference |")
    print("|---|---|---|---|---|---|")
    for T, scale, variances in CASES:
        y = simulate(T, np.array(variances), rng) * scale + (5000.0 if scale > 1 else 0.0)
        ssm = state_space(jnp.log(jnp.asarray(variances) * scale**2))
        ssm = ssm.replace(initial_cov=ssm.initial_cov * scale**2 * 1e4)
        closed = float(marginal_log_likelihood(ssm, jnp.asarray(y)))
        exact = float(kalman_filter(ssm, jnp.asarray(y)).log_likelihood.sum())
        print(
            f"| {T:,} | {scale:g} | {variances} | {closed:.10g} | {exact:.10g} "
            f"| {abs(closed - exact) / abs(exact):.1e} |"
        )


if __name__ == "__main__":
    main()
