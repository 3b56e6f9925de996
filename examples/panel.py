"""A panel of 50 series with partially pooled persistence and volatility (hierarchical NUTS).

Run from the repository root: ``python examples/panel.py`` (``NSS_SHORT=1`` for a quick run;
``--chain-method parallel`` for one chain per CPU core, ``--route whitened`` for the latent-shock
route, ``--centered data`` for a per-series centredness of the volatilities chosen from the data
and a dense mass matrix for the pooled parameters). The model (``models/panel.py``) puts the series in a ``numpyro.plate``; each series has
its own persistence and volatility drawn around pooled values, its own start date and its own
missing entries (NaN), and the Kalman likelihood is vectorised over the plate::

    with numpyro.plate("series", P):
        z_rho = numpyro.sample("z_rho", dist.Normal(0, 1))          # non-centred pooling
        rho = jax.nn.sigmoid(mu_rho + tau_rho * z_rho)
        ...
        numpyro.sample("y", nss.KalmanLGSS(A, B, C, R, u0, P0, num_timesteps=T), obs=y)

The script simulates a panel (fixed seed), runs NUTS, prints the pooled parameters' posterior
against the truth with r_hat, ESS and divergences, and, with ``--route both``, the same
posterior through the whitened joint route (the shocks of every series a latent site).
"""

import argparse
import time

import _common  # noqa: F401  (float64, repository root on the path)
import jax
import numpy as np
from numpyro.diagnostics import summary
from numpyro.infer import MCMC, NUTS

P, T = (6, 100) if _common.SHORT else (50, 100)
NUM_WARMUP, NUM_SAMPLES = (40, 40) if _common.SHORT else (1000, 1000)
NUM_CHAINS = 2


def fit(y, route="kalman", seed=0, chain_method="vectorized", num_warmup=NUM_WARMUP,
        num_samples=NUM_SAMPLES, num_chains=NUM_CHAINS, centered=1.0, dense_pooled=False):
    """NUTS on the hierarchical panel model; returns the ``MCMC``. ``centered``: the model's
    centredness of the log-volatilities (``"data"``: ``models.panel.centredness``, one per
    series); ``dense_pooled``: a dense mass matrix for the five pooled parameters (they are
    correlated a posteriori: the measurement noise trades off against the volatilities)."""
    from models import panel

    if isinstance(centered, str) and centered == "data":
        centered = panel.centredness(y, seed=seed)
    dense = [tuple(panel.HYPER)] if dense_pooled else False
    mcmc = MCMC(NUTS(panel.model, target_accept_prob=0.9, dense_mass=dense),
                num_warmup=num_warmup, num_samples=num_samples, num_chains=num_chains,
                chain_method=chain_method, progress_bar=False)
    mcmc.run(jax.random.key(seed), y, route=route, centered=centered,
             extra_fields=("diverging",))
    return mcmc


def pooled_summary(mcmc, truth, prob=0.9):
    """``{name: (mean, lower, upper, r_hat, ess, covered)}`` for the pooled parameters (central
    ``prob`` intervals), the largest r_hat over every latent site, and the divergences."""
    from models import panel

    draws = mcmc.get_samples(group_by_chain=True)
    stats = summary(draws, prob=prob)
    lo, hi = (f"{100 * q:.1f}%" for q in ((1 - prob) / 2, (1 + prob) / 2))
    table = {}
    for k in panel.HYPER:
        s = stats[k]
        table[k] = (float(s["mean"]), float(s[lo]), float(s[hi]), float(s["r_hat"]),
                    float(s["n_eff"]), bool(s[lo] <= truth[k] <= s[hi]))
    # deterministic sites out (log_sigma is one when decentred: its decentred site is in)
    latent = [k for k in draws if k not in ("rho", "sigma", "w")
              and not (k == "log_sigma" and "log_sigma_decentered" in draws)]
    r_hat = max(float(np.max(stats[k]["r_hat"])) for k in latent)
    divergences = int(mcmc.get_extra_fields()["diverging"].sum())
    return table, r_hat, divergences


def report(name, mcmc, truth, seconds):
    table, r_hat, divergences = pooled_summary(mcmc, truth)
    print(f"\n{name}: {seconds:.0f} s, max r_hat {r_hat:.4f} (all latent sites), "
          f"{divergences} divergences")
    print(f"{'':10s} {'truth':>8s} {'mean':>8s} {'90% interval':>20s} {'r_hat':>7s} {'ESS':>6s}")
    for k, (mean, lo, hi, rh, ess, covered) in table.items():
        print(f"{k:10s} {truth[k]:8.3f} {mean:8.3f} {f'[{lo:.3f}, {hi:.3f}]':>20s} {rh:7.3f} "
              f"{ess:6.0f}{'' if covered else '  (not covered)'}")
    return table, r_hat, divergences


def main(route="kalman", chain_method="vectorized", centered=1.0):
    from models import panel

    data = panel.simulate(0, P, T)
    observed = np.mean(~np.isnan(data["y"]))
    print(f"panel: {P} series x {T} steps, {100 * observed:.0f}% of the entries observed")
    results = {}
    for r in (("kalman", "whitened") if route == "both" else (route,)):
        start = time.perf_counter()
        mcmc = fit(data["y"], r, chain_method=chain_method, centered=centered,
                   dense_pooled=centered == "data")
        results[r] = report(r, mcmc, data, time.perf_counter() - start)
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--route", choices=("kalman", "whitened", "both"), default="kalman")
    parser.add_argument("--chain-method", choices=("vectorized", "parallel", "sequential"),
                        default="vectorized")
    parser.add_argument("--centered", choices=("1", "data"), default="1",
                        help="the volatilities' centredness: 1 (centred) or chosen per series "
                             "from the data (models.panel.centredness)")
    args = parser.parse_args()
    if args.chain_method == "parallel":  # one CPU device per chain, before JAX starts
        import numpyro

        numpyro.set_host_device_count(NUM_CHAINS)
    main(args.route, args.chain_method, 1.0 if args.centered == "1" else "data")
