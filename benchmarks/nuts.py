"""NUTS on the RBC reduced-form model (2 states, 1 shock, 2 observables, T = 200, observation
noise s.d. 0.01; parameters a, rho, sigma): wall time, ESS and ESS per second for each route.

Routes: the Kalman (marginal) likelihood with the joint models' known ``u_0 = 0`` (so all three
linear routes fit the same data with the same model and their posteriors must agree), and the
same model with dynamax's (``dynamax``) and TFP's (``tfp``, JAX substrate) Kalman filters as
the likelihood (peers; not in the default ``--routes``); the joint
likelihood with the 200 shocks as plain ``N(0, 1)`` latents; the same with the shocks whitened
by their posterior (``sample_noise(..., whiten=...)``); and the pruned second-order model, plain
and whitened.
NumPyro's NUTS, 2 chains x 500 warm-up + 500 draws (``--quick``: 100 + 100), sequential chains
(``--chain-method parallel``: one per core; ``vectorized``: both in one vmapped loop),
chains started at the prior median (``--init uniform``: NumPyro's default random start).
``--compilation-cache`` turns on JAX's persistent compilation cache in a fresh, empty temporary
directory: every program is still compiled once, but NumPyro 0.22's second compilation of the
same sampling loop (one per sequential chain, see ``numpyro_recompile.py``) becomes a cache hit.
Prints a table and writes ``benchmarks/results/nuts.json`` (``nuts_uniform.json``; a nonzero
``--seed``, a parallel chain method and the cache add ``_seed<n>``, ``_parallel`` and ``_cache``
to the name).

    python benchmarks/nuts.py [--quick] [--init uniform] [--chain-method parallel]
                              [--routes kalman,joint_whitened] [--seed 1]
                              [--compilation-cache]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

# --chain-method parallel runs the two chains on two XLA host devices, one per core; the device
# count must be set before JAX starts its backend (the models module creates arrays on import).
_argv = " ".join(sys.argv[1:]).replace("=", " ")
if "--chain-method parallel" in _argv:
    import numpyro

    numpyro.set_host_device_count(2)

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpyro  # noqa: E402
from numpyro.diagnostics import summary  # noqa: E402
from numpyro.infer import MCMC, NUTS, init_to_median, init_to_uniform  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from models import rbc_reduced_form as rbc  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"

def _first_state(A, B):
    """The peers' first state is our ``u_1``: with ``u_0 = 0`` known, ``N(0, B B')``."""
    return jnp.zeros(A.shape[0]), B @ B.T


def dynamax_model(y=None, num_timesteps=None):
    """The Kalman route's model (known ``u_0 = 0``) with dynamax's ``lgssm_filter`` as the
    likelihood (a ``numpyro.factor``)."""
    from dynamax.linear_gaussian_ssm import lgssm_filter
    from dynamax.linear_gaussian_ssm.inference import ParamsLGSSM, ParamsLGSSMDynamics, \
        ParamsLGSSMEmissions, ParamsLGSSMInitial

    A, B, C = rbc.matrices(*rbc.priors())
    mean1, cov1 = _first_state(A, B)
    N, M = A.shape[0], C.shape[0]
    params = ParamsLGSSM(
        initial=ParamsLGSSMInitial(mean=mean1, cov=cov1),
        dynamics=ParamsLGSSMDynamics(weights=A, bias=jnp.zeros(N), input_weights=jnp.zeros((N, 0)),
                                     cov=B @ B.T),
        emissions=ParamsLGSSMEmissions(weights=C, bias=jnp.zeros(M),
                                       input_weights=jnp.zeros((M, 0)), cov=jnp.diag(rbc.R)))
    numpyro.factor("y", lgssm_filter(params, y).marginal_loglik)


def tfp_model(y=None, num_timesteps=None):
    """The Kalman route's model (known ``u_0 = 0``) with TFP's (JAX substrate)
    ``LinearGaussianStateSpaceModel`` as the likelihood."""
    import tensorflow_probability.substrates.jax as tfp

    tfd, lin = tfp.distributions, tfp.tf2jax.linalg
    A, B, C = rbc.matrices(*rbc.priors())
    N, M = A.shape[0], C.shape[0]
    # the K < N shock loading padded to a square (singular) scale: covariance B B'
    B_sq = jnp.zeros((N, N)).at[:, :B.shape[1]].set(B)
    model = tfd.LinearGaussianStateSpaceModel(
        num_timesteps=y.shape[0],
        transition_matrix=lin.LinearOperatorFullMatrix(A),
        transition_noise=tfd.MultivariateNormalLinearOperator(
            loc=jnp.zeros(N), scale=lin.LinearOperatorFullMatrix(B_sq)),
        observation_matrix=lin.LinearOperatorFullMatrix(C),
        observation_noise=tfd.MultivariateNormalDiag(loc=jnp.zeros(M),
                                                     scale_diag=jnp.sqrt(rbc.R)),
        initial_state_prior=tfd.MultivariateNormalLinearOperator(
            loc=jnp.zeros(N), scale=lin.LinearOperatorFullMatrix(B_sq)))
    numpyro.factor("y", model.log_prob(y))


# route: (model that simulates the data, model that is fitted); the linear routes share data
ROUTES = {
    "kalman": (rbc.joint_model, partial(rbc.kalman_model, known_u0=True)),
    "dynamax": (rbc.joint_model, dynamax_model),
    "tfp": (rbc.joint_model, tfp_model),
    "joint": (rbc.joint_model, rbc.joint_model),
    "joint_whitened": (rbc.joint_model, partial(rbc.joint_model, whiten=True)),
    "pruned_joint": (rbc.pruned_joint_model, rbc.pruned_joint_model),
    "pruned_joint_whitened": (rbc.pruned_joint_model,
                              partial(rbc.pruned_joint_model, whiten=True)),
}


INIT = {"median": init_to_median, "uniform": init_to_uniform}


def run_route(name, T, num_warmup, num_samples, seed=0, init="median", chain_method="sequential"):
    data_model, model = ROUTES[name]
    y = rbc.simulate(jax.random.key(seed), T, data_model)
    mcmc = MCMC(NUTS(model, init_strategy=INIT[init]), num_warmup=num_warmup,
                num_samples=num_samples, num_chains=2, chain_method=chain_method,
                progress_bar=False)
    t0 = time.perf_counter()
    mcmc.run(jax.random.key(seed + 1), y, extra_fields=("diverging",))
    jax.block_until_ready(mcmc.get_samples())
    wall = time.perf_counter() - t0
    grouped = mcmc.get_samples(group_by_chain=True)
    stats = summary({k: grouped[k] for k in rbc.TRUTH})
    min_ess = min(float(stats[k]["n_eff"]) for k in rbc.TRUTH)
    return {
        "route": name, "T": T, "wall_s": wall, "min_ess": min_ess, "ess_per_s": min_ess / wall,
        "r_hat_max": max(float(stats[k]["r_hat"]) for k in rbc.TRUTH),
        "divergences": int(mcmc.get_extra_fields()["diverging"].sum()),
        "posterior_mean": {k: float(stats[k]["mean"]) for k in rbc.TRUTH},
        "posterior_sd": {k: float(stats[k]["std"]) for k in rbc.TRUTH},
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--routes", default=",".join(k for k in ROUTES
                                                      if k not in ("dynamax", "tfp")))
    parser.add_argument("--T", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0,
                        help="data are simulated with key(seed), chains started from key(seed + 1)")
    parser.add_argument("--init", choices=list(INIT), default="median")
    parser.add_argument("--chain-method", choices=["sequential", "parallel", "vectorized"],
                        default="sequential",
                        help="parallel: one chain per core (one compilation, chains concurrent); "
                             "vectorized: both chains in one vmapped loop (one compilation)")
    parser.add_argument("--compilation-cache", action="store_true",
                        help="JAX's persistent compilation cache in a fresh temporary directory")
    args = parser.parse_args()
    if args.compilation_cache:
        cache = tempfile.mkdtemp(prefix="nuts-jax-cache-")
        jax.config.update("jax_compilation_cache_dir", cache)
    n = 100 if args.quick else 500
    print(f"JAX {jax.__version__} on {jax.devices()[0].platform}; 2 chains x {n} warm-up + {n} "
          f"draws, T = {args.T}, seed {args.seed}, init_to_{args.init}, {args.chain_method} "
          f"chains{', compilation cache' if args.compilation_cache else ''}; truth {rbc.TRUTH}")
    print(f"{'route':24s} {'wall':>8s} {'min ESS':>8s} {'ESS/s':>8s} {'r_hat max':>9s} "
          f"{'div':>4s}   posterior means (a, rho, sigma)")
    rows = []
    for name in args.routes.split(","):
        r = run_route(name, args.T, n, n, seed=args.seed, init=args.init,
                      chain_method=args.chain_method)
        rows.append(r)
        means = ", ".join(f"{r['posterior_mean'][k]:.4f}" for k in rbc.TRUTH)
        print(f"{name:24s} {r['wall_s']:7.1f}s {r['min_ess']:8.0f} {r['ess_per_s']:8.2f} "
              f"{r['r_hat_max']:9.3f} {r['divergences']:4d}   {means}", flush=True)
    RESULTS.mkdir(exist_ok=True)
    name = "nuts.json" if args.init == "median" else f"nuts_{args.init}.json"
    if args.seed:
        name = name.replace(".json", f"_seed{args.seed}.json")
    if args.chain_method != "sequential":
        name = name.replace(".json", f"_{args.chain_method}.json")
    if args.compilation_cache:
        name = name.replace(".json", "_cache.json")
        shutil.rmtree(cache, ignore_errors=True)
    (RESULTS / name).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
