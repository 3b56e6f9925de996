"""FS2000 (Schorfheide 2000) estimated at second order with NUTS, from its equations.

Run from the repository root: ``python examples/fs2000.py`` (``NSS_SHORT=1`` for a quick run).
The model is written in Dynare timing (``models/fs2000.py``), solved by pruned second-order
perturbation at every parameter draw, and its likelihood is the inversion filter's (as many
shocks as observables, no measurement error: each quarter's shocks are recovered exactly from
the data). The script runs NUTS on the 192 quarters of output growth and inflation, prints the
ArviZ summary beside MacroModelling.jl's first-order posterior means, and saves
``examples/figures/fs2000_irf.png``: the posterior impulse responses of the two observables to
the two shocks, first against second order, computed from the same posterior draws.
"""

import time

import _common
import arviz as az
import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
from models import fs2000
from numpyro.infer import MCMC, NUTS, init_to_value

from numpyro_statespace import kernels

NUM_WARMUP, NUM_SAMPLES = (15, 15) if _common.SHORT else (500, 500)
NUM_CHAINS = 2
STEPS = 20
IRF_DRAWS = 4 if _common.SHORT else 100


def fit(y, seed=0):
    """NUTS on the pruned second-order inversion-filter likelihood, from the calibration,
    warm-up's first mass matrix on the prior's scales (``fs2000.prior_inverse_mass``)."""
    init = {k: jnp.asarray(v) for k, v in fs2000.CALIBRATION.items()}
    kernel = NUTS(fs2000.inversion_model, init_strategy=init_to_value(values=init),
                  inverse_mass_matrix=fs2000.prior_inverse_mass())
    mcmc = MCMC(kernel, num_warmup=NUM_WARMUP, num_samples=NUM_SAMPLES, num_chains=NUM_CHAINS,
                chain_method="vectorized", progress_bar=False)
    mcmc.run(jax.random.key(seed), jnp.asarray(y))
    return mcmc


@jax.jit
def responses(theta):
    """Responses ``(2 orders, K shocks, STEPS, M)`` of the observables to a one-s.d. shock at
    ``theta`` (the nine parameters in ``PARAMETERS`` order)."""
    p = dict(zip(fs2000.PARAMETERS, theta))
    sol = fs2000.MODEL.solve(p, order=2)
    first = kernels.impulse_response(sol.A_1, sol.B, sol.C_1, STEPS).observables
    second = kernels.impulse_response_pruned(sol.A_0, sol.A_1, sol.A_2, sol.B, sol.C_0, sol.C_1,
                                             sol.C_2, STEPS).observables
    return jnp.stack([first, second])


def figure(irfs):
    """``irfs (draws, 2, K, STEPS, M)``: medians and 90% bands, first vs second order."""
    fig, axes = plt.subplots(2, 2, figsize=(9, 6), sharex=True, layout="constrained")
    t = np.arange(1, STEPS + 1)
    for k, shock in enumerate(fs2000.EXOGENOUS):
        for m, obs in enumerate(fs2000.OBSERVABLES):
            ax = axes[m, k]
            for order, color in ((0, "C0"), (1, "C3")):
                x = 100 * irfs[:, order, k, :, m]
                lo, med, hi = np.percentile(x, [5, 50, 95], axis=0)
                ax.fill_between(t, lo, hi, color=color, alpha=0.2)
                ax.plot(t, med, color=color, label=f"order {order + 1}")
            ax.axhline(0, color="k", lw=0.5)
            ax.set_title(f"{obs} to {shock} (percent)")
    axes[0, 0].legend()
    axes[1, 0].set_xlabel("quarters")
    axes[1, 1].set_xlabel("quarters")
    fig.suptitle("FS2000: posterior impulse responses, first vs pruned second order")
    return fig


def main():
    start = time.perf_counter()
    y = fs2000.load_data()
    mcmc = fit(y)
    idata = az.from_numpyro(mcmc)
    summary = az.summary(idata, var_names=list(fs2000.PARAMETERS))
    summary["MacroModelling.jl (order 1)"] = fs2000.MACROMODELLING_POSTERIOR_MEAN
    print(summary.to_string())
    print("divergences:", int(idata.sample_stats["diverging"].sum()))
    draws = mcmc.get_samples()
    theta = np.stack([np.asarray(draws[k]) for k in fs2000.PARAMETERS], axis=1)
    pick = np.random.default_rng(0).choice(len(theta), IRF_DRAWS, replace=False)
    irfs = np.stack([np.asarray(responses(jnp.asarray(theta[i]))) for i in pick])
    _common.save_figure(figure(irfs), "fs2000_irf.png")
    print(f"fs2000 finished in {time.perf_counter() - start:.0f} s")
    return mcmc, irfs


if __name__ == "__main__":
    main()
