"""Where a NUTS run's time goes: JAX's tracing, lowering and XLA compilation, attributed to the
code that asked for them (our package and models, NumPyro, other), against the run's wall time.

Runs one route of ``nuts.py`` (same model, data and settings) with a listener on JAX's compile
events (``jax.monitoring``: each carries the compiled function's name; the Python stack at that
moment tells whose code asked). A program is "ours" when the innermost frame outside JAX is in
``numpyro_statespace`` or ``models``, "NumPyro" when it is in NumPyro (its sampling loop, which
contains our likelihood, counts as NumPyro's), and eager single operations are counted apart.
Prints a table and writes ``benchmarks/results/compile_profile_<route>.json``.

    python benchmarks/compile_profile.py [--route kalman] [--quick] [--compilation-cache]
                                         [--chain-method vectorized]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
import traceback
from collections import defaultdict
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

sys.path.insert(0, str(Path(__file__).resolve().parent))
import nuts  # noqa: E402  (the same routes, data and settings)

EVENTS = {"/jax/core/compile/jaxpr_trace_duration": "trace",
          "/jax/core/compile/jaxpr_to_mlir_module_duration": "lower",
          "/jax/core/compile/backend_compile_duration": "compile"}
_OURS = ("numpyro_statespace", "/models/")


def _origin():
    """Whose code asked for the compilation, and where: the innermost frame outside JAX and
    this file (``file:line``)."""
    for frame in reversed(traceback.extract_stack()[:-2]):
        name = frame.filename
        if "/jax/" in name or "/jaxlib/" in name or name == __file__:
            continue
        where = f"{Path(name).name}:{frame.lineno}"
        if any(k in name for k in _OURS):
            return "ours", where
        if "/numpyro/" in name:
            return "NumPyro", where
        return "other", where
    return "other", "?"


def profile(route, T, n, seed=0, init="median", chain_method="sequential"):
    records = []

    def listener(event, duration, fun_name=None, **_):
        if event in EVENTS:
            records.append((EVENTS[event], float(duration), str(fun_name), *_origin()))

    data_model, _ = nuts.ROUTES[route]
    nuts.rbc.simulate(jax.random.key(seed), T, data_model)  # its compilations are not the run's
    jax.monitoring.register_event_duration_secs_listener(listener)
    t0 = time.perf_counter()
    result = nuts.run_route(route, T, n, n, seed=seed, init=init, chain_method=chain_method)
    wall = time.perf_counter() - t0
    jax.monitoring.unregister_event_duration_listener(listener)
    return result, wall, records


def summarise(records):
    """Seconds and counts per (origin, stage), and the costliest programs."""
    by = defaultdict(lambda: [0.0, 0])
    programs = defaultdict(lambda: [0.0, 0])
    for stage, dt, name, origin, where in records:
        by[(origin, stage)][0] += dt
        by[(origin, stage)][1] += stage == "compile"
        p = programs[(origin, f"{name} at {where}")]
        p[0] += dt
        p[1] += stage == "compile"
    top = sorted(((v[0], v[1], k[0], k[1]) for k, v in programs.items()), reverse=True)[:25]
    return by, top


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--route", default="kalman", choices=list(nuts.ROUTES))
    parser.add_argument("--T", type=int, default=200)
    parser.add_argument("--quick", action="store_true", help="100 + 100 draws per chain")
    parser.add_argument("--chain-method", choices=["sequential", "vectorized"],
                        default="sequential",
                        help="vectorized: both chains in one vmapped loop (one compilation)")
    parser.add_argument("--compilation-cache", action="store_true",
                        help="JAX's persistent compilation cache in a fresh temporary directory")
    args = parser.parse_args()
    if args.compilation_cache:
        cache = tempfile.mkdtemp(prefix="compile-profile-cache-")
        jax.config.update("jax_compilation_cache_dir", cache)
        # cache every program, however quick to compile (the default skips those under 1 s)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    n = 100 if args.quick else 500
    result, wall, records = profile(args.route, args.T, n, chain_method=args.chain_method)
    by, top = summarise(records)
    print(f"JAX {jax.__version__}; route {args.route}, 2 {args.chain_method} chains x {n} + {n}, "
          f"T = {args.T}{', compilation cache' if args.compilation_cache else ''}")
    print(f"wall {wall:.1f} s, min ESS {result['min_ess']:.0f}, {result['ess_per_s']:.2f} ESS/s")
    print(f"{'origin':8s} {'stage':8s} {'seconds':>8s} {'programs':>8s}")
    total = 0.0
    for (origin, stage), (dt, count) in sorted(by.items()):
        total += dt
        print(f"{origin:8s} {stage:8s} {dt:8.2f} {count:8d}")
    print(f"{'all':8s} {'':8s} {total:8.2f}   ({100 * total / wall:.0f} % of the wall time)")
    print("\ncostliest (trace + lower + compile seconds, compilations, origin, program at line):")
    for dt, count, origin, name in top:
        print(f"  {dt:7.2f} s {count:4d}  {origin:8s} {name}")
    suffix = "" if args.chain_method == "sequential" else f"_{args.chain_method}"
    out = nuts.RESULTS / f"compile_profile_{args.route}{suffix}.json"
    nuts.RESULTS.mkdir(exist_ok=True)
    out.write_text(json.dumps({
        "route": args.route, "chain_method": args.chain_method, "T": args.T, "draws": n,
        "wall_s": wall, "nuts": result,
        "by_origin_stage": {f"{o}/{s}": v for (o, s), v in by.items()},
        "top": top}, indent=2))
    if args.compilation_cache:
        shutil.rmtree(cache, ignore_errors=True)


if __name__ == "__main__":
    main()
