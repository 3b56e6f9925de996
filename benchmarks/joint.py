"""Joint log-likelihoods given the noise on FVGQ20 (14 states, 6 shocks, 6 observables,
T = 232): numpyro_statespace vs a plain ``lax.scan`` a user would write, linear and pruned
quadratic, value and value+grad (with respect to the model matrices and the whole noise
sequence), per call and in-graph (``n`` evaluations inside one jitted ``fori_loop``).

    python benchmarks/joint.py [--quick]

Prints medians and ratios (plain time / our time) and writes ``benchmarks/results/joint.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
from jax import lax  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the checkout's package, not an installed copy that may be older
sys.path.insert(0, str(ROOT / "benchmarks"))
import numpyro_statespace as nss  # noqa: E402
from kalman import time_function  # noqa: E402
from models import reference_data  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"


def ours_linear(p, y):
    return nss.JointLGSS(p["A_1"], p["B"], p["C_1"], p["R"], p["u0"], p["noise"]).log_prob(y)


def ours_pruned(p, y):
    return nss.JointQuadraticSS(p["A_0"], p["A_1"], p["A_2"], p["B"], p["C_0"], p["C_1"],
                                p["C_2"], p["R"], p["u0"], p["noise"], pruned=True).log_prob(y)


def _gaussian_sum(residuals, R):
    L = jnp.linalg.cholesky(R)
    white = jax.scipy.linalg.solve_triangular(L, residuals.T, lower=True)
    T, M = residuals.shape
    return -0.5 * (jnp.sum(white**2) + T * (2 * jnp.sum(jnp.log(jnp.diag(L)))
                                            + M * jnp.log(2 * jnp.pi)))


def plain_linear(p, y):
    """Everything inside the scan, as in a first implementation."""
    A, B, C = p["A_1"], p["B"], p["C_1"]

    def step(u, w):
        u = A @ u + B @ w
        return u, C @ u

    _, z = lax.scan(step, p["u0"], p["noise"])
    return _gaussian_sum(y - z, p["R"])


def plain_pruned(p, y):
    A_0, A_1, A_2, B, C_0, C_1, C_2 = (p[k] for k in ("A_0", "A_1", "A_2", "B", "C_0", "C_1",
                                                       "C_2"))

    def step(carry, w):
        u, uf = carry
        u_next = A_0 + A_1 @ u + jnp.einsum("ijk,j,k->i", A_2, uf, uf) + B @ w
        uf_next = A_1 @ uf + B @ w
        z = C_0 + C_1 @ u_next + jnp.einsum("ijk,j,k->i", C_2, uf_next, uf_next)
        return (u_next, uf_next), z

    _, z = lax.scan(step, (p["u0"], p["u0"]), p["noise"])
    return _gaussian_sum(y - z, p["R"])


CASES = {"linear": (ours_linear, plain_linear, ("A_1", "B", "C_1", "noise")),
         "pruned quadratic": (ours_pruned, plain_pruned,
                              ("A_0", "A_1", "A_2", "B", "C_0", "C_1", "C_2", "noise"))}


def time_case(fn, params, y, wrt, repeats, evals):
    fixed = {k: v for k, v in params.items() if k not in wrt}

    def f(theta):
        return fn({**fixed, **theta}, y)

    return time_function(f, {k: params[k] for k in wrt}, repeats, evals)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    repeats, evals = (2, 5) if args.quick else (7, 50)
    ref = reference_data.fvgq20()
    params = {k: jnp.asarray(ref[k]) for k in ("A_0", "A_1", "A_2", "B", "C_0", "C_1", "C_2",
                                                "R", "u0", "noise")}
    y = jnp.asarray(ref["observables"])
    print(f"JAX {jax.__version__} on {jax.devices()[0].platform}; FVGQ20, T = {y.shape[0]}; "
          f"medians of {repeats}; ratio = plain time / our time")
    rows = []
    for case, (ours, plain, wrt) in CASES.items():
        r_ours = time_case(ours, params, y, wrt, repeats, evals)
        r_plain = time_case(plain, params, y, wrt, repeats, evals)
        rows.append({"case": case, "numpyro_statespace": r_ours, "plain lax.scan": r_plain})
        print(f"\n{case}: loglik {r_ours['loglik']:.6e} (plain {r_plain['loglik']:.6e})")
        for k in ("value", "value+grad", "in-graph"):
            print(f"  {k:11s} ours {r_ours[k] * 1e3:8.3f} ms   plain {r_plain[k] * 1e3:8.3f} ms"
                  f"   ratio {r_plain[k] / r_ours[k]:.2f}x", flush=True)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "joint.json").write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
