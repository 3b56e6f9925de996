"""Kalman log-likelihood value+grad on an accelerator: parallel-in-time filters (dynamax, TFP)
against the sequential ones (ours, dynamax, TFP, a plain ``lax.scan``), per call, float64.

Run by ``benchmarks/gpu.sh`` on the device machine (one call, under 8 minutes); prints each row
as soon as it is measured, then writes ``benchmarks/results/gpu.json``. Sequential filters pay
~0.3 ms per step on a GPU, so they run only up to ``--max-sequential-T``. A row that would not
finish before ``--deadline`` seconds is skipped. First it checks, on the device, that our
parallel filter's value and gradient equal the sequential filter's on a singular DSGE-style
model (one shock, three states, R = 0) and what the peers' parallel filters return there, and
which filter ``KalmanLGSS(method="auto")`` picks.

    python benchmarks/gpu.py                      # T = 1e3, 1e5, 1e6 (parallel), 1e3, 1e4 (seq.)
    python benchmarks/gpu.py --sizes 100,1000 --max-sequential-T 1000   # a CPU smoke test
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from kalman import RESULTS, _first_state_prior, dynamax_filter, dynamax_params, ours, \
    ours_full_R, plain_scan, random_model, tfp_filter  # noqa: E402

import numpyro_statespace as nss  # noqa: E402  (the checkout: kalman.py put it first)


def ours_parallel(p, y):
    return nss.kernels.parallel_loglik(p["A"], p["B"], p["C"], p["R"], p["m0"], p["P0"], y)


def dynamax_parallel(p, y):
    from dynamax.linear_gaussian_ssm.parallel_inference import lgssm_filter

    return lgssm_filter(dynamax_params(p), y).marginal_loglik


def tfp_parallel(p, y):
    from tensorflow_probability.substrates.jax.experimental.parallel_filter import kalman_filter

    T, (N, M) = y.shape[0], (p["A"].shape[0], p["C"].shape[0])
    mean1, cov1 = _first_state_prior(p)

    def over_time(x):
        return jnp.broadcast_to(x, (T,) + x.shape)

    lls = kalman_filter(over_time(p["A"]), jnp.zeros((T, N)), over_time(p["B"] @ p["B"].T),
                        over_time(p["C"]), jnp.zeros((T, M)), over_time(p["R"]), mean1, cov1,
                        y, jnp.zeros(T, dtype=bool))[0]
    return jnp.sum(lls)


SEQUENTIAL = {"numpyro_statespace (sequential)": ours, "plain lax.scan": plain_scan,
              "dynamax (sequential)": dynamax_filter, "TFP (sequential)": tfp_filter}
PARALLEL = {"numpyro_statespace (parallel)": ours_parallel, "dynamax (parallel)": dynamax_parallel,
            "TFP (parallel)": tfp_parallel}


def singular_model(T, seed=8):
    """One shock, three states, one exact observable (R = 0), stationary prior; seed 8 has
    stable zero dynamics, so our associative scan runs (tests/test_parallel.py)."""
    from scipy.linalg import solve_discrete_lyapunov

    rng = np.random.default_rng(seed)
    A = rng.standard_normal((3, 3))
    A *= 0.9 / np.max(np.abs(np.linalg.eigvals(A)))
    B, C = rng.standard_normal((3, 1)), rng.standard_normal((1, 3))
    P0 = solve_discrete_lyapunov(A, B @ B.T)
    u, y = rng.multivariate_normal(np.zeros(3), P0), np.empty((T, 1))
    for t in range(T):
        u = A @ u + B @ rng.standard_normal(1)
        y[t] = C @ u
    return dict(A=A, B=B, C=C, R=np.zeros((1, 1)), m0=np.zeros(3), P0=P0), y


def singular_check(T=1000):
    """Value and gradient of every parallel filter against our sequential one, singular model."""
    params, y = singular_model(T)
    ref = time_value_and_grad(ours_full_R, params, y, 1, keep_grad=True)
    for name, fn in PARALLEL.items():
        try:
            r = time_value_and_grad(fn, params, y, 1, keep_grad=True)
        except Exception as err:  # noqa: BLE001 (a peer's failure is the result)
            print(f"singular T={T} {name:34s} failed: {type(err).__name__}: {err}"[:300],
                  flush=True)
            continue
        err = max(float(np.max(np.abs(r["grad"][k] - ref["grad"][k])))
                  / max(float(np.max(np.abs(ref["grad"][k]))), 1e-300) for k in ref["grad"])
        print(f"singular T={T} {name:34s} loglik {r['loglik']:.10f} (sequential "
              f"{ref['loglik']:.10f}), gradient max rel. error {err:.2e}", flush=True)
    p = {k: jnp.asarray(v) for k, v in params.items()}
    A, B, C, R, m0, P0 = (p[k] for k in ("A", "B", "C", "R", "m0", "P0"))
    observed = jnp.ones(y.shape, bool)
    ok = nss.kernels.parallel._parallel_pass(A, B @ B.T, C, R, m0, P0, jnp.asarray(y), observed)[1]
    print(f"singular T={T}: our associative scan used (not the sequential fallback): {bool(ok)}; "
          f"JAX default backend {jax.default_backend()!r}: KalmanLGSS(method='auto') runs the "
          f"{'parallel' if jax.default_backend() != 'cpu' else 'sequential'} filter", flush=True)


def time_value_and_grad(loglik, params, y, repeats, keep_grad=False):
    fixed = {k: jnp.asarray(params[k]) for k in ("m0", "P0")}
    theta = {k: jnp.asarray(params[k]) for k in ("A", "B", "C", "R")}
    y = jnp.asarray(y)
    f = jax.jit(jax.value_and_grad(lambda th: loglik({**th, **fixed}, y)))
    t0 = time.perf_counter()
    value, grad = jax.block_until_ready(f(theta))
    compile_s = time.perf_counter() - t0
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(f(theta))
        times.append(time.perf_counter() - t0)
    finite = bool(np.isfinite(value) and all(np.all(np.isfinite(g)) for g in grad.values()))
    out = dict(loglik=float(value), seconds=float(np.median(times)), compile_s=compile_s,
               finite=finite)
    if keep_grad:
        out["grad"] = {k: np.asarray(g) for k, g in grad.items()}
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,100000,1000000", help="T for the parallel rows")
    parser.add_argument("--max-sequential-T", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--deadline", type=float, default=420.0, help="seconds for all rows")
    args = parser.parse_args()
    start = time.perf_counter()
    dev = jax.devices()[0]
    print(f"JAX {jax.__version__} on {dev.platform} ({dev.device_kind}), float64, N=5 M=2 K=2; "
          f"value+grad per call, median of {args.repeats}", flush=True)
    singular_check()
    rows = []
    sizes = [int(s) for s in args.sizes.split(",")]
    seq_sizes = sorted({T for T in sizes + [1000, 10_000] if T <= args.max_sequential_T})
    plan = [(T, name, fn) for T in seq_sizes for name, fn in SEQUENTIAL.items()]
    plan += [(T, name, fn) for T in sizes for name, fn in PARALLEL.items()]
    for T, name, fn in plan:
        if time.perf_counter() - start > args.deadline:
            print(f"T={T:>9d} {name:34s} skipped: past the {args.deadline:.0f} s deadline",
                  flush=True)
            continue
        with jax.default_device(jax.devices("cpu")[0]):  # a sequential simulation: on the host
            params, y = random_model(5, 2, 2, T)
        try:
            r = time_value_and_grad(fn, params, y, args.repeats)
        except ImportError as err:
            print(f"T={T:>9d} {name:34s} skipped: {err}", flush=True)
            continue
        except Exception as err:  # an out-of-memory or a peer's failure is a result too
            print(f"T={T:>9d} {name:34s} failed: {type(err).__name__}: {err}"[:300], flush=True)
            continue
        rows.append(dict(T=T, implementation=name, **r))
        print(f"T={T:>9d} {name:34s} {r['seconds'] * 1e3:10.2f} ms  "
              f"(compile {r['compile_s']:.1f} s)  loglik {r['loglik']:.6f}  finite: {r['finite']}",
              flush=True)
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "gpu.json"
    out.write_text(json.dumps({"jax": jax.__version__, "device": str(dev), "rows": rows}, indent=2))
    print(f"written {out}", flush=True)


if __name__ == "__main__":
    main()
