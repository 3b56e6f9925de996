"""Smets & Wouters (2007) from a ``.mod`` file: first-order Kalman log-likelihood and its
gradient with respect to every estimated parameter (36, incl. 7 shock standard deviations) on
the 230 quarters of ``models/mod/data/usmodel.csv``.

Measures (float64, CPU unless JAX picks an accelerator): the time to read the file, the first
call of the jitted value+grad (trace + compile + run), and the median of repeated calls.
No peer runs in this process (Dynare is MATLAB/Octave; none is installed here).

    python benchmarks/dynare.py              # 10 repeats
    python benchmarks/dynare.py --quick      # 3 repeats
    python benchmarks/dynare.py --breakdown  # also: the solve and the Kalman filter apart
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpyro_statespace as nss  # noqa: E402

MOD = ROOT / "models" / "mod"


def load_sw07():
    """``(DynareFile, data (230, 7) in varobs order, p0)``: p0 = the file's calibration of the
    estimated parameters and shock standard deviations."""
    d = nss.dynare.load(MOD / "sw07.mod")
    raw = np.genfromtxt(MOD / "data" / "usmodel.csv", delimiter=",", names=True)
    y = d.data({name.strip(): raw[name] for name in raw.dtype.names})
    cal = d.parameters()
    sd = jnp.sqrt(jnp.diag(d.shock_cov()))
    p0 = {k: (sd[d.shock_names.index(k[len("stderr_"):])] if k.startswith("stderr_")
              else cal[k]) for k in d.priors}
    return d, y, p0


def _median_ms(fn, args, repeats):
    jax.block_until_ready(fn(*args))
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(times)


def breakdown(d, y, p0, repeats):
    """Median ms of value+grad of (a) the solution and steady state alone (a scalar of their
    entries), (b) the Kalman log-likelihood alone, with respect to ``A, B, C``."""
    def solution(p):
        s = d.solve(p)
        return jnp.sum(s.A) + jnp.sum(s.B) + jnp.sum(s.C) + jnp.sum(d.observable_steady_state(p))

    sol = d.solve(p0)
    y_dev = y - d.observable_steady_state(p0)

    def kalman(A, B, C):
        return nss.KalmanLGSS(A, B, C, jnp.zeros((y.shape[1],) * 2), jnp.zeros(A.shape[0]),
                              "stationary", y.shape[0]).log_prob(y_dev)

    solve_ms = _median_ms(jax.jit(jax.value_and_grad(solution)), (p0,), repeats)
    kalman_ms = _median_ms(jax.jit(jax.value_and_grad(kalman, argnums=(0, 1, 2))),
                           (sol.A, sol.B, sol.C), repeats)
    print(f"value+grad of the solution alone: {solve_ms:.1f} ms; of the Kalman filter alone "
          f"(w.r.t. A, B, C): {kalman_ms:.1f} ms")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--breakdown", action="store_true")
    args = parser.parse_args(argv)
    repeats = 3 if args.quick else 10

    t0 = time.perf_counter()
    d, y, p0 = load_sw07()
    t_load = time.perf_counter() - t0
    value_and_grad = jax.jit(jax.value_and_grad(lambda p: d.log_likelihood(y, p)))
    t0 = time.perf_counter()
    value, grad = jax.block_until_ready(value_and_grad(p0))
    t_first = time.perf_counter() - t0
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(value_and_grad(p0))
        times.append(time.perf_counter() - t0)
    n_states = d.solve(p0).A.shape[0]
    print(f"SW07 (sw07.mod): {len(d.model_endogenous)} endogenous, {n_states} states, "
          f"{len(d.shock_names)} shocks, {y.shape[0]} x {y.shape[1]} data, "
          f"{len(p0)} parameters differentiated")
    print(f"log-likelihood at the calibration: {float(value):.6f}; "
          f"|grad| = {float(jnp.linalg.norm(jnp.stack(list(grad.values())))):.4g}")
    print(f"read the .mod file: {t_load:.2f} s; first value+grad (trace+compile+run): "
          f"{t_first:.1f} s; value+grad median of {repeats}: {1e3 * statistics.median(times):.1f}"
          f" ms  [{platform.machine()}, {jax.devices()[0].platform}, jax {jax.__version__}]")
    if args.breakdown:
        breakdown(d, y, p0, repeats)
    return value, grad


if __name__ == "__main__":
    main()
