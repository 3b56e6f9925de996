"""Kalman log-likelihood: numpyro_statespace vs dynamax, TFP (JAX substrate), statsmodels and a
plain ``lax.scan`` filter, side by side in one process, on the same model in the same convention.

Three measurements per implementation (float64, CPU unless JAX picks an accelerator):

* ``value``: the jitted log-likelihood called from Python (includes dispatch);
* ``value+grad``: the jitted value and gradient with respect to all of ``A, B, C, R`` called
  from Python;
* ``in-graph``: value and gradient evaluated ``n`` times inside one jitted ``fori_loop``
  (what NUTS pays per leapfrog step), per evaluation.

Medians over repeats; ratios are peer time / our time (> 1 means we are faster). Prints a
table and writes ``benchmarks/results/kalman.json``. Peers that are not installed are skipped.

    python benchmarks/kalman.py                 # the DifferenceEquations.jl sizes
    python benchmarks/kalman.py --quick         # small repeat counts (smoke test)
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from jax import lax  # noqa: E402

# the checkout's package, not an installed copy that may be older
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import numpyro_statespace as nss  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"

#: (N, M, K, T): DifferenceEquations.jl's benchmark/enzyme_kalman.jl sizes, and a long series;
#: a fifth entry "full R" is issue 25's model (full R, spectral radius 0.5: :func:`random_model`)
SIZES = [(5, 2, 2, 10), (30, 10, 10, 100), (5, 2, 2, 10_000), (30, 10, 10, 100, "full R")]


# -- the model ----------------------------------------------------------------------------------
def random_model(N, M, K, T, seed=0, variant=None):
    """A stable random model (spectral radius 0.95), diagonal R, and data simulated from it.
    ``variant="full R"``: spectral radius 0.5, unscaled ``B`` and ``C``, a full ``R`` (its
    covariance converges within about 40 steps; the tests' ``model`` in test_steady_state.py)."""
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(N, N))
    A *= (0.5 if variant else 0.95) / np.max(np.abs(np.linalg.eigvals(A)))
    if variant == "full R":
        B, C = rng.normal(size=(N, K)), rng.normal(size=(M, N))
        G = rng.normal(size=(M, M))
        R = G @ G.T / M + 0.1 * np.eye(M)
    else:
        B = 0.5 * rng.normal(size=(N, K))
        C = rng.normal(size=(M, N)) / np.sqrt(N)
        R = np.diag(rng.uniform(0.05, 0.2, size=M))
    m0, P0 = np.zeros(N), np.eye(N)
    prob = nss.LinearStateSpaceProblem(A, B, m0, T, C=C, observables_noise=R)
    y = np.asarray(nss.solve(prob, key=jax.random.key(seed)).z[1:])
    return dict(A=A, B=B, C=C, R=R, m0=m0, P0=P0), y


# -- implementations: loglik(params, y) with params = dict(A, B, C, R, m0, P0) -----------------
def ours(p, y):
    # R is diagonal here, so a user passes its variances (as the peers get the same matrix,
    # their gradient covers its off-diagonal zeros too; ours only the variances).
    return nss.kernels.kalman_loglik(p["A"], p["B"], p["C"], jnp.diagonal(p["R"]), p["m0"],
                                     p["P0"], y)


def ours_no_steady_state(p, y):
    """Ours with the steady-state switch off (the full filter at every step)."""
    return nss.kernels.kalman_loglik(p["A"], p["B"], p["C"], jnp.diagonal(p["R"]), p["m0"],
                                     p["P0"], y, steady_state=False)


def ours_full_R(p, y):
    return nss.kernels.kalman_loglik(p["A"], p["B"], p["C"], p["R"], p["m0"], p["P0"], y)


def plain_scan(p, y):
    """What a user writes by hand: predict, update with a linear solve, one lax.scan."""
    A, B, C, R = p["A"], p["B"], p["C"], p["R"]
    Q = B @ B.T

    def step(carry, y_t):
        m, P, ll = carry
        m, P = A @ m, A @ P @ A.T + Q
        v = y_t - C @ m
        S = C @ P @ C.T + R
        K = jnp.linalg.solve(S, C @ P).T
        ll = ll - 0.5 * (v @ jnp.linalg.solve(S, v) + jnp.linalg.slogdet(S)[1]
                         + v.shape[0] * jnp.log(2 * jnp.pi))
        return (m + K @ v, P - K @ S @ K.T, ll), None

    (_, _, ll), _ = lax.scan(step, (p["m0"], p["P0"], 0.0), y)
    return ll


def _first_state_prior(p):
    # Our u_0 ~ N(m0, P0) precedes the first transition; the peers' first state is our u_1.
    A, B = p["A"], p["B"]
    return A @ p["m0"], A @ p["P0"] @ A.T + B @ B.T


def dynamax_params(p):
    """dynamax's ``ParamsLGSSM`` for our model (its first state is our ``u_1``)."""
    from dynamax.linear_gaussian_ssm.inference import ParamsLGSSM, ParamsLGSSMDynamics, \
        ParamsLGSSMEmissions, ParamsLGSSMInitial

    N, M = p["A"].shape[0], p["C"].shape[0]
    mean1, cov1 = _first_state_prior(p)
    # empty input weights rather than None: dynamax's parallel filter indexes them
    return ParamsLGSSM(
        initial=ParamsLGSSMInitial(mean=mean1, cov=cov1),
        dynamics=ParamsLGSSMDynamics(weights=p["A"], bias=jnp.zeros(N),
                                     input_weights=jnp.zeros((N, 0)), cov=p["B"] @ p["B"].T),
        emissions=ParamsLGSSMEmissions(weights=p["C"], bias=jnp.zeros(M),
                                       input_weights=jnp.zeros((M, 0)), cov=p["R"]),
    )


def dynamax_filter(p, y):
    from dynamax.linear_gaussian_ssm import lgssm_filter

    return lgssm_filter(dynamax_params(p), y).marginal_loglik


def tfp_filter(p, y):
    import tensorflow_probability.substrates.jax as tfp

    tfd = tfp.distributions
    lin = tfp.tf2jax.linalg
    N = p["A"].shape[0]
    mean1, cov1 = _first_state_prior(p)
    # A K < N shock loading padded to a square (singular) scale: covariance B B'.
    B_sq = jnp.zeros((N, N)).at[:, : p["B"].shape[1]].set(p["B"])
    model = tfd.LinearGaussianStateSpaceModel(
        num_timesteps=y.shape[0],
        transition_matrix=lin.LinearOperatorFullMatrix(p["A"]),
        transition_noise=tfd.MultivariateNormalLinearOperator(
            loc=jnp.zeros(N), scale=lin.LinearOperatorFullMatrix(B_sq)),
        observation_matrix=lin.LinearOperatorFullMatrix(p["C"]),
        observation_noise=tfd.MultivariateNormalTriL(
            loc=jnp.zeros(p["C"].shape[0]), scale_tril=jnp.linalg.cholesky(p["R"])),
        initial_state_prior=tfd.MultivariateNormalTriL(
            loc=mean1, scale_tril=jnp.linalg.cholesky(cov1)),
    )
    return model.log_prob(y)


def statsmodels_loglik(p, y):
    """A callable computing statsmodels' (Cython) log-likelihood of ``y``; value only."""
    from statsmodels.tsa.statespace.kalman_filter import KalmanFilter

    A, B, C, R = (np.asarray(p[k]) for k in ("A", "B", "C", "R"))
    kf = KalmanFilter(k_endog=C.shape[0], k_states=A.shape[0], k_posdef=B.shape[1], design=C,
                      transition=A, selection=B, state_cov=np.eye(B.shape[1]), obs_cov=R)
    kf.initialize_known(*(np.asarray(x) for x in _first_state_prior(p)))
    kf.bind(np.asarray(y))
    return kf.loglike


def ours_full_R_no_steady_state(p, y):
    return nss.kernels.kalman_loglik(p["A"], p["B"], p["C"], p["R"], p["m0"], p["P0"], y,
                                     steady_state=False)


PEERS = {"numpyro_statespace": ours, "ours, full R": ours_full_R,
         "ours, no steady state": ours_no_steady_state, "plain lax.scan": plain_scan,
         "dynamax": dynamax_filter, "TFP": tfp_filter}
#: for a full R: ours takes the matrix
PEERS_FULL_R = {"numpyro_statespace": ours_full_R,
                "ours, no steady state": ours_full_R_no_steady_state,
                **{k: v for k, v in PEERS.items() if k in ("plain lax.scan", "dynamax", "TFP")}}


def switch_step(params, y, full_R):
    """After how many steps our filter switches to the steady state (``T``: never)."""
    p = {k: jnp.asarray(v) for k, v in params.items()}
    R = p["R"] if full_R else jnp.diagonal(p["R"])
    return int(jax.jit(nss.kernels.likelihood.steady_state_switch_step)(
        p["A"], p["B"], p["C"], R, p["m0"], p["P0"], jnp.asarray(y)))


# -- timing ---------------------------------------------------------------------------------
def _median_time(fn, repeats, number):
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(number):
            out = fn()
        jax.block_until_ready(out)
        times.append((time.perf_counter() - t0) / number)
    return float(np.median(times))


def _number_for(fn, target=0.2):
    """Calls per repeat so that one repeat takes about ``target`` seconds."""
    t0 = time.perf_counter()
    jax.block_until_ready(fn())
    dt = max(time.perf_counter() - t0, 1e-6)
    return int(max(1, min(10_000, target / dt)))


def differentiable(params):
    return {k: jnp.asarray(params[k]) for k in ("A", "B", "C", "R")}


def time_implementation(loglik, params, y, repeats, in_graph_evals):
    fixed = {k: jnp.asarray(params[k]) for k in ("m0", "P0")}
    y = jnp.asarray(y)

    def f(theta):
        return loglik({**theta, **fixed}, y)

    return time_function(f, differentiable(params), repeats, in_graph_evals)


def time_function(f, theta, repeats, in_graph_evals):
    """Median seconds of ``f(theta)``, of its value and gradient, and of the value and gradient
    in-graph (per evaluation of ``in_graph_evals`` inside one jitted ``fori_loop``)."""
    value = jax.jit(f)
    value_and_grad = jax.jit(jax.value_and_grad(f))

    @jax.jit
    def in_graph(theta):
        def body(i, acc):
            # Perturb the parameters so that nothing is hoisted out of the loop.
            th = jax.tree.map(lambda x: x * (1.0 + 1e-12 * i), theta)
            v, g = jax.value_and_grad(f)(th)
            return acc + v + sum(jnp.sum(x) for x in jax.tree.leaves(g))

        return lax.fori_loop(0, in_graph_evals, body, 0.0)

    result = {"loglik": float(value(theta))}
    for name, fn in (("value", lambda: value(theta)), ("value+grad", lambda: value_and_grad(theta)),
                     ("in-graph", lambda: in_graph(theta))):
        jax.block_until_ready(fn())  # compile
        number = _number_for(fn)
        t = _median_time(fn, repeats, number)
        result[name] = t / in_graph_evals if name == "in-graph" else t
    return result


def run(sizes, repeats, in_graph_evals, peers):
    """``peers``: names of :data:`PEERS` (for a full ``R`` those of :data:`PEERS_FULL_R`)."""
    rows = []
    for (N, M, K, T, *variant) in sizes:
        variant = variant[0] if variant else None
        params, y = random_model(N, M, K, T, variant=variant)
        size = f"N={N}, M={M}, K={K}, T={T}" + (f", {variant}" if variant else "")
        entry = {"size": size, "results": {},
                 "steady_state_switch_step": switch_step(params, y, variant == "full R")}
        table = PEERS_FULL_R if variant == "full R" else PEERS
        for name, fn in ((k, table[k]) for k in table if k in peers):
            try:
                evals = max(1, in_graph_evals // max(1, T // 100))
                entry["results"][name] = time_implementation(fn, params, y, repeats, evals)
            except ImportError as err:
                entry["results"][name] = {"skipped": f"not installed ({err.name})"}
        try:
            sm = statsmodels_loglik(params, y)
            entry["results"]["statsmodels"] = {
                "loglik": float(sm()), "value": _median_time(sm, repeats, _number_for(sm))}
        except ImportError:
            entry["results"]["statsmodels"] = {"skipped": "not installed"}
        rows.append(entry)
        print_row(entry, flush=True)
    return rows


def _fmt(t):
    return "—" if t is None else (f"{t * 1e6:8.1f} µs" if t < 1e-3 else f"{t * 1e3:8.2f} ms")


def print_row(entry, flush=False):
    res = entry["results"]
    ours_res = res["numpyro_statespace"]
    print(f"\n{entry['size']}   (loglik {ours_res['loglik']:.6f}; steady-state switch after "
          f"{entry['steady_state_switch_step']} steps)", flush=flush)
    print(f"{'implementation':22s} {'value':>12s} {'value+grad':>12s} {'in-graph':>12s}   "
          f"{'ratio value':>11s} {'ratio v+g':>10s} {'ratio in-graph':>14s}   loglik diff")
    for name, r in res.items():
        if "skipped" in r:
            print(f"{name:22s} skipped: {r['skipped']}")
            continue
        ratios = [r.get(k) / ours_res[k] if r.get(k) else None
                  for k in ("value", "value+grad", "in-graph")]
        print(f"{name:22s} {_fmt(r.get('value')):>12s} {_fmt(r.get('value+grad')):>12s} "
              f"{_fmt(r.get('in-graph')):>12s}   "
              + " ".join(f"{'—' if q is None else f'{q:.2f}x':>{w}s}"
                         for q, w in zip(ratios, (11, 10, 14)))
              + f"   {abs(r['loglik'] - ours_res['loglik']):.1e}", flush=flush)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few repeats (smoke test)")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--in-graph-evals", type=int, default=200)
    parser.add_argument("--sizes", default=None,
                        help="semicolon-separated N,M,K,T tuples, e.g. '5,2,2,10;5,2,2,1000', "
                             "a fifth entry 'full R' for issue 25's model: '30,10,10,100,full R'")
    parser.add_argument("--peers", default=None,
                        help="semicolon-separated implementations (default: all), e.g. "
                             "'numpyro_statespace;ours, no steady state;dynamax'")
    args = parser.parse_args()
    sizes = SIZES if args.sizes is None else [
        tuple(int(v) if v.strip().isdigit() else v.strip() for v in s.split(","))
        for s in args.sizes.split(";")]
    repeats = 2 if args.quick else args.repeats
    evals = 10 if args.quick else args.in_graph_evals
    cpu = platform.processor() or platform.machine()
    print(f"JAX {jax.__version__} on {jax.devices()[0].platform} ({cpu}), "
          f"float64; medians of {repeats} repeats; ratio = peer time / numpyro_statespace time")
    peers = args.peers.split(";") if args.peers else list(PEERS)
    rows = run(sizes, repeats, evals, peers)
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "kalman.json"
    out.write_text(json.dumps({"jax": jax.__version__, "device": str(jax.devices()[0]),
                               "rows": rows}, indent=2))
    print(f"\nwritten {out}")


if __name__ == "__main__":
    main()
