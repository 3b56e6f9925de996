"""Quickstart: Bayesian estimation of an RBC model with the Kalman likelihood and NUTS.

Run from the repository root: ``python examples/quickstart.py`` (``NSS_SHORT=1`` for a quick
run with a few dozen draws). It

1. loads 200 quarters of consumption ``c`` and capital ``k_obs`` simulated from the RBC model
   of DifferenceEquations.jl's test suite (reduced form, ``models/rbc_reduced_form.py``) with a
   fixed key, so the data are the same on every run, as a DataFrame with a quarterly index;
2. samples the posterior of the persistence of capital ``a``, of technology ``rho`` and the
   shock size ``sigma`` with NUTS; the likelihood is ``nss.KalmanLGSS`` (shocks integrated
   out);
3. converts the run to ArviZ ``InferenceData`` with named dimensions (``time`` from the
   DataFrame's index, ``observable``, ``state``), prints ``az.summary``;
4. adds the posterior of the latent states (simulation smoother, one path per draw) and the
   posterior predictive, and saves ``examples/figures/quickstart.png``: data against the fit,
   and the latent capital and technology with 90% credible bands.

Most of a first run's time is compilation. The script keeps its compiled programs in JAX's
persistent compilation cache, ``~/.cache/numpyro_statespace/jax`` (``JAX_COMPILATION_CACHE_DIR``
chooses another directory), so later runs load them instead of compiling them again.

The model, in full (see ``models/rbc_reduced_form.py``)::

    def kalman_model(y):
        a = numpyro.sample("a", dist.Uniform(0.5, 0.999))
        rho = numpyro.sample("rho", dist.Uniform(0.0, 0.9))
        sigma = numpyro.sample("sigma", dist.HalfNormal(0.05))
        A, B, C = matrices(a, rho, sigma)
        numpyro.sample("y", nss.KalmanLGSS(A, B, C, R, jnp.zeros(2), "stationary", len(y)), obs=y)
"""

import os
import time
from pathlib import Path

# before JAX is imported (by _common), which reads both variables then; jaxlib 0.9.2 logs a
# harmless error line for every program loaded from the cache
# (https://github.com/openxla/xla/issues/44565), hidden here with XLA's C++ log threshold
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR",
                      str(Path.home() / ".cache" / "numpyro_statespace" / "jax"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import _common
import arviz as az
import jax
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from models import rbc_reduced_form as rbc
from numpyro.infer import MCMC, NUTS

from numpyro_statespace import arviz as nss_az
from numpyro_statespace import plots

T = 200
NUM_WARMUP, NUM_SAMPLES = (40, 40) if _common.SHORT else (500, 500)
NUM_CHAINS = 2
PARAMS = list(rbc.TRUTH)  # ["a", "rho", "sigma"]
NAMES = {"syms": rbc.NAMES["state"], "shock_names": rbc.NAMES["shock"]}


def load_data():
    """The example data: a ``(200, 2)`` DataFrame (``c``, ``k_obs``), quarterly from 1975."""
    y = jax.jit(rbc.simulate, static_argnums=1)(jax.random.key(0), T)  # fixed key: same data
    index = pd.date_range("1975-01-01", periods=T, freq="QS")
    return pd.DataFrame(np.asarray(y), index=index, columns=list(rbc.NAMES["observable"]))


def fit(data, seed=1, model=rbc.kalman_model):
    """NUTS on ``data``; returns the ``MCMC`` and its ``InferenceData`` with latent states and
    posterior predictive."""
    mcmc = MCMC(NUTS(model), num_warmup=NUM_WARMUP, num_samples=NUM_SAMPLES,
                num_chains=NUM_CHAINS, chain_method="vectorized",
                progress_bar=not _common.SHORT)  # one bar for the vectorized chains
    # the model sees an array; the extra fields feed ArviZ's sample_stats (energy plot)
    mcmc.run(jax.random.key(seed), data.to_numpy(),
             extra_fields=("energy", "num_steps", "accept_prob"))
    idata = nss_az.to_inference_data(mcmc, y=data, **NAMES)  # the DataFrame names the dims
    key_states, key_pred = jax.random.split(jax.random.key(seed + 1))
    nss_az.add_states(idata, mcmc, key=key_states)
    nss_az.add_posterior_predictive(idata, mcmc, key=key_pred)
    return mcmc, idata


def figure(idata):
    """Data against the fit (top) and the latent states with credible bands (bottom)."""
    fig, axes = plt.subplots(2, 2, figsize=(11, 6), sharex=True, layout="constrained")
    plots.plot_observed_fitted(idata, axes=axes[0])
    plots.plot_states(idata, axes=axes[1])
    handles, labels = [], []
    for ax, prefix in zip(axes[:, 0], ("", "state: ")):  # one legend, below the panels
        h, l = ax.get_legend_handles_labels()
        handles, labels = handles + h, labels + [prefix + x for x in l]
        ax.get_legend().remove()
    fig.legend(handles, labels, loc="outside lower center", ncols=3, fontsize="small",
               frameon=False)
    axes[0, 0].set_title("observables: data and fit")
    axes[1, 0].set_title("latent states")
    fig.suptitle("RBC model, Kalman likelihood, NUTS (90% bands)")
    return fig


def main():
    start = time.perf_counter()
    data = load_data()
    print(f"NUTS: {NUM_CHAINS} chains x ({NUM_WARMUP} warm-up + {NUM_SAMPLES} draws) on "
          f"{len(data)} quarters; the first seconds are compilation", flush=True)
    mcmc, idata = fit(data)
    print(idata)
    print(az.summary(idata, var_names=PARAMS).to_string())
    print("true values:", rbc.TRUTH)
    print("divergences:", int(idata.sample_stats["diverging"].sum()))
    also = [] if _common.SHORT else [_common.ROOT / "docs" / "quickstart.png"]
    _common.save_figure(figure(idata), "quickstart.png", *also)
    print(f"quickstart finished in {time.perf_counter() - start:.0f} s")
    return idata


if __name__ == "__main__":
    main()
