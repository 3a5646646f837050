"""Where the time to a first result goes: import, compilation, gradient cost, NUTS steps.

Same set-up as the time-to-first-result figure of `benchmarks/nuts_vs_naive.py`: the first
500 CO2 months, LLT + Seasonal(12), `bsts.fit` with its defaults (2 chains x (500 + 500)).
Run it in a fresh process; it prints

- the import time of jax + numpyro + bsts;
- the compile time and the per-call time (min over repeats) of the model's
  `value_and_grad` potential, and of the Riccati fixed point (value and gradient) inside it;
- the wall time of the fit and the mean leapfrog steps per kept NUTS draw.

Usage:
    python benchmarks/first_result_profile.py
"""

from __future__ import annotations

import time

START = time.perf_counter()

import jax  # noqa: E402
import numpy as np  # noqa: E402

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
from numpyro.infer.util import initialize_model  # noqa: E402

import bsts  # noqa: E402
from bsts.data import prepare_series  # noqa: E402
from bsts.inference import nest_parameters  # noqa: E402
from bsts.kalman.riccati import riccati_fixed_point  # noqa: E402

IMPORTED = time.perf_counter()


def per_call_ms(function, *args, repeats: int = 200) -> float:
    jax.block_until_ready(function(*args))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(function(*args))
        times.append(time.perf_counter() - start)
    return 1e3 * min(times)


def main() -> None:
    data = bsts.datasets.load("co2").iloc[:500]
    model = bsts.LocalLinearTrend() + bsts.Seasonal(12)

    start = time.perf_counter()
    post = bsts.fit(model, data, target="co2", num_chains=2, seed=0, progress_bar=False)
    fit_wall = time.perf_counter() - start

    series = prepare_series(data, "co2", [])
    inputs = model.inputs(series)
    info = initialize_model(
        jax.random.PRNGKey(0), model, model_args=(inputs,), model_kwargs={"y": series.y}
    )
    z = info.param_info.z
    gradient = jax.jit(jax.value_and_grad(info.potential_fn))
    start = time.perf_counter()
    gradient = gradient.lower(z).compile()
    compile_s = time.perf_counter() - start
    gradient_ms = per_call_ms(gradient, z)

    params = nest_parameters(model, {k: float(np.exp(v)) for k, v in z.items()})
    ssm = model.state_space(params, inputs)
    F, Q, H, r = (
        ssm.transition_matrix,
        ssm.transition_cov,
        ssm.observation_matrix,
        ssm.observation_var,
    )
    riccati = jax.jit(jax.value_and_grad(lambda Q: jnp.sum(riccati_fixed_point(F, Q, H, r))))
    riccati_ms = per_call_ms(riccati, Q)

    steps = post.sample_stats["num_steps"]
    print(f"import jax + numpyro + bsts: {IMPORTED - START:.1f} s")
    print(f"fit (2 chains x (500 + 500), defaults): {fit_wall:.1f} s")
    print(f"  mean leapfrog steps per kept draw: {steps.mean():.1f}")
    print(f"model value_and_grad: compile {compile_s:.1f} s, {gradient_ms:.3f} ms per call")
    print(f"  Riccati fixed point, value and gradient: {riccati_ms:.3f} ms per call")


if __name__ == "__main__":
    main()
