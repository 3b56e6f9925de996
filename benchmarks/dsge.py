"""FS2000 (Schorfheide 2000, ``models/fs2000.py``) estimated with NUTS, and the cost of its
second-order solution with its gradient.

``first-order``: the Kalman route (two shocks, two observables, no measurement error,
stationary initial covariance), 4 chains x 1,000 warm-up + 1,000 draws: wall time, r_hat,
divergences, min ESS, posterior means (beside MacroModelling.jl's, from its
``test/test_estimation.jl``).

``second-order``: the pruned second-order model by two routes, the inversion filter (shocks
recovered exactly, no measurement error) and the joint likelihood with the shocks a whitened
latent site (measurement error s.d. ``fs2000.JOINT_MEASUREMENT_SD``); posterior means and
s.d., min ESS over the nine parameters, ESS/s, and the difference of the two routes' means in
units of its Monte Carlo standard error.

``gradient``: the second-order solution plus the reverse-mode gradient of a scalar of it with
respect to all nine parameters, in-graph (``lax.fori_loop`` of ``--repeats`` evaluations in one
jitted program, so dispatch is not counted): median per evaluation.

Chains are vectorized (one compiled loop for all chains, NumPyro 0.22 compiles per run;
``--chain-method parallel``: one XLA host device per chain, so each chain's tree is built on its
own without waiting for the deepest of the others, and the cores are shared among them) and
start at MacroModelling.jl's calibration. ``--warmup`` and ``--samples`` are per chain. Writes
``benchmarks/results/dsge_<command>.json``.

    python benchmarks/dsge.py first-order [--chains 4] [--warmup 1000] [--samples 1000]
    python benchmarks/dsge.py second-order [--routes inversion,joint] [--chains 4] ...
    python benchmarks/dsge.py second-order --routes inversion   # each route on its own, then
    python benchmarks/dsge.py second-order --routes joint       # ... their difference:
    python benchmarks/dsge.py compare
    python benchmarks/dsge.py second-order --routes inversion --chains 2 \
        --chain-method parallel --warmup 400 --samples 500         # the 15-minute target
    python benchmarks/dsge.py gradient [--repeats 50]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

# --chain-method parallel: one XLA host device per chain, set before JAX starts its backend.
_argv = " ".join(sys.argv[1:]).replace("=", " ")
if "--chain-method parallel" in _argv:
    import numpyro

    _chains = re.search(r"--chains (\d+)", _argv)
    numpyro.set_host_device_count(int(_chains.group(1)) if _chains else 4)

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from numpyro.diagnostics import summary  # noqa: E402
from numpyro.infer import MCMC, NUTS, init_to_value  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from models import fs2000  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"


def run_nuts(model, y, chains, warmup, samples, seed=0, chain_method="vectorized",
             initial_mass="identity", **kwargs):
    """NUTS from the calibration; returns (wall seconds, samples by site, summary, divergences).
    ``initial_mass``: warm-up's first inverse mass matrix, NumPyro's identity or the prior's
    variances (``fs2000.prior_inverse_mass``)."""
    init = {k: jnp.asarray(v) for k, v in fs2000.CALIBRATION.items()}
    if initial_mass == "prior":
        kwargs["inverse_mass_matrix"] = fs2000.prior_inverse_mass()
    kernel = NUTS(model, init_strategy=init_to_value(values=init), **kwargs)
    mcmc = MCMC(kernel, num_warmup=warmup, num_samples=samples, num_chains=chains,
                chain_method=chain_method, progress_bar=False)
    start = time.perf_counter()
    mcmc.run(jax.random.key(seed), jnp.asarray(y))
    jax.block_until_ready(mcmc.get_samples())
    wall = time.perf_counter() - start
    draws = mcmc.get_samples(group_by_chain=True)
    params = {k: np.asarray(draws[k]) for k in fs2000.PARAMETERS}
    stats = summary(params, group_by_chain=True)
    divergences = int(np.sum(np.asarray(mcmc.get_extra_fields()["diverging"])))
    return wall, params, stats, divergences


def _table(stats):
    return {k: {"mean": float(s["mean"]), "sd": float(s["std"]), "n_eff": float(s["n_eff"]),
                "r_hat": float(s["r_hat"])} for k, s in stats.items()}


def _report(name, wall, stats, divergences):
    ess = min(s["n_eff"] for s in stats.values())
    rhat = max(s["r_hat"] for s in stats.values())
    print(f"{name}: wall {wall:.1f} s, min ESS {ess:.0f}, ESS/s {ess / wall:.3f}, "
          f"max r_hat {rhat:.4f}, divergences {divergences}")
    for k in fs2000.PARAMETERS:
        s = stats[k]
        print(f"  {k:6s} mean {float(s['mean']):.6f} sd {float(s['std']):.6f} "
              f"ESS {float(s['n_eff']):.0f} r_hat {float(s['r_hat']):.4f}")
    return {"wall_s": wall, "min_ess": float(ess), "ess_per_s": float(ess / wall),
            "max_r_hat": float(rhat), "divergences": divergences, "params": _table(stats)}


def first_order(args):
    y = fs2000.load_data()
    wall, _, stats, div = run_nuts(fs2000.kalman_model, y, args.chains, args.warmup,
                                   args.samples, args.seed, args.chain_method,
                                   args.initial_mass)
    out = _report("FS2000 first order, Kalman", wall, stats, div)
    out["macromodelling_mean"] = dict(zip(fs2000.PARAMETERS,
                                          fs2000.MACROMODELLING_POSTERIOR_MEAN))
    for k, ref in out["macromodelling_mean"].items():
        print(f"  {k:6s} MacroModelling.jl {ref:.6f}")
    return out


def second_order(args):
    y = fs2000.load_data()
    models = {"inversion": fs2000.inversion_model, "joint": fs2000.joint_model}
    out = {}
    for route in args.routes.split(","):
        wall, _, stats, div = run_nuts(models[route], y, args.chains, args.warmup,
                                       args.samples, args.seed, args.chain_method,
                                       args.initial_mass)
        out[route] = _report(f"FS2000 pruned second order, {route}", wall, stats, div)
    if len(out) == 2:
        out["z_difference"] = _compare(*(out[r]["params"] for r in out))
    return out


def _compare(a, b):
    """Difference of two routes' posterior means in units of its Monte Carlo standard error."""
    print("difference of means / Monte Carlo s.e. of the difference:")
    z = {}
    for k in fs2000.PARAMETERS:
        se = np.hypot(a[k]["sd"] / np.sqrt(a[k]["n_eff"]), b[k]["sd"] / np.sqrt(b[k]["n_eff"]))
        z[k] = float((a[k]["mean"] - b[k]["mean"]) / se)
        print(f"  {k:6s} {z[k]:+.2f}")
    return z


def compare(args):
    """The two routes from separate runs (``--routes inversion`` and ``--routes joint``)."""
    a, b = (json.loads((RESULTS / f"dsge_second_order_{r}.json").read_text())[r]["params"]
            for r in ("inversion", "joint"))
    return {"z_difference": _compare(a, b)}


def gradient(args):
    p0 = jnp.asarray([fs2000.CALIBRATION[k] for k in fs2000.PARAMETERS])

    def scalar(theta):
        sol = fs2000.MODEL.solve(dict(zip(fs2000.PARAMETERS, theta)), order=2)
        return (jnp.sum(sol.A_0) + jnp.sum(sol.A_1) + jnp.sum(sol.A_2) + jnp.sum(sol.C_0)
                + jnp.sum(sol.C_1) + jnp.sum(sol.C_2) + jnp.sum(sol.B))

    value_and_grad = jax.value_and_grad(scalar)

    @jax.jit
    def loop(theta):
        def body(i, acc):
            v, g = value_and_grad(theta + 1e-9 * i)
            return acc + v + jnp.sum(g)
        return jax.lax.fori_loop(0, args.repeats, body, 0.0)

    start = time.perf_counter()
    jax.block_until_ready(loop(p0))
    compile_s = time.perf_counter() - start
    times = []
    for _ in range(5):
        start = time.perf_counter()
        jax.block_until_ready(loop(p0))
        times.append((time.perf_counter() - start) / args.repeats)
    med = float(np.median(times))
    print(f"second-order solution + reverse-mode gradient (9 parameters), in-graph: "
          f"{1e3 * med:.2f} ms per evaluation (median of 5 x {args.repeats}; first call with "
          f"compilation {compile_s:.1f} s)")
    return {"ms_per_eval": 1e3 * med, "compile_s": compile_s, "repeats": args.repeats}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=("first-order", "second-order", "gradient",
                                            "compare"))
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--warmup", type=int, default=1000)
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--routes", default="inversion,joint")
    parser.add_argument("--chain-method", choices=("vectorized", "parallel"),
                        default="vectorized")
    parser.add_argument("--initial-mass", choices=("identity", "prior"), default="prior",
                        help="warm-up's first inverse mass matrix (default: the prior's "
                             "variances, fs2000.prior_inverse_mass)")
    parser.add_argument("--repeats", type=int, default=50)
    args = parser.parse_args(argv)
    run = {"first-order": first_order, "second-order": second_order, "gradient": gradient,
           "compare": compare}
    out = run[args.command](args)
    out["settings"] = vars(args)
    RESULTS.mkdir(parents=True, exist_ok=True)
    name = args.command.replace("-", "_")
    if args.command == "second-order" and args.routes != "inversion,joint":
        name += "_" + args.routes.replace(",", "_")
    (RESULTS / f"dsge_{name}.json").write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
