"""Kalman log-likelihood value+grad on an accelerator: parallel-in-time filters (dynamax, TFP)
against the sequential ones (ours, dynamax, TFP, a plain ``lax.scan``), per call, float64.

Run by ``benchmarks/gpu.sh`` on the device machine (one call, under 8 minutes); prints each row
as soon as it is measured, then writes ``benchmarks/results/gpu.json``. Sequential filters pay
~0.3 ms per step on a GPU, so they run only up to ``--max-sequential-T``. A row that would not
finish before ``--deadline`` seconds is skipped. ``numpyro_statespace`` has no parallel filter
yet (issue 6): its sequential rows are the baseline the parallel one must beat.

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
    plain_scan, random_model, tfp_filter  # noqa: E402


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
PARALLEL = {"dynamax (parallel)": dynamax_parallel, "TFP (parallel)": tfp_parallel}


def time_value_and_grad(loglik, params, y, repeats):
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
    return dict(loglik=float(value), seconds=float(np.median(times)), compile_s=compile_s,
                finite=finite)


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
