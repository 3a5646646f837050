#!/usr/bin/env bash
# The accelerator checks the issues ask for, as one script for a GPU machine: a smoke test
# of the user path on the GPU (float32, JAX defaults), the exact filter's sequential and
# parallel forms at T = 10^5 and 10^6 (forward, constant dynamics), and the time-varying
# filter's sequential form with its adjoint against the parallel form with autodiff.
# Writes each part's output to $OUT (or ./gpu-out). Usage: bash benchmarks/gpu_checks.sh
set -uo pipefail
out="${OUT:-gpu-out}"
mkdir -p "$out"
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1 | tee "$out/gpu.txt"
python3 - <<'PY' 2>&1 | tee "$out/smoke.txt"
import time
import jax
import numpy as np
import bsts
from bsts import _compile
print("jax", jax.__version__, "backend", jax.default_backend(), jax.devices())
print("bsts compiler options on this backend:", _compile.compiler_options())
data = bsts.datasets.load("airline")
model = bsts.LocalLinearTrend() + bsts.Seasonal(12)
start = time.perf_counter()
post = bsts.fit(model, np.log(data["passengers"]), method="map")
fc = bsts.forecast(post, horizon=12)
print("MAP fit + forecast on", jax.default_backend(), f"{time.perf_counter() - start:.1f} s")
print(fc.to_pandas().head(3))
PY
timeout 200 python3 benchmarks/kalman_speed.py --lengths --parallel-lengths 100000 1000000 2>&1 | tee "$out/parallel_forward.txt"
timeout 280 python3 benchmarks/kalman_speed.py --uneven-parallel 100000 1000000 2>&1 | tee "$out/uneven_parallel.txt"
