"""Variational inference (SVI with an AutoNormal guide) on the quickstart's RBC model.

Run from the repository root: ``python examples/svi.py`` (``NSS_SHORT=1`` for a quick run).
The same model and data as ``quickstart.py``, fitted by maximising the ELBO with Adam instead
of sampling: much cheaper than NUTS, at the price of a Gaussian (mean-field, in the
unconstrained space) approximation. The guide's draws go through the same ArviZ conversion
(``to_inference_data`` accepts a dict of draws) and the same state smoother. Prints the
approximate posterior and saves ``examples/figures/svi.png`` (the ELBO trace and the latent
states with 90% bands).
"""

import time

import _common
import arviz as az
import jax
import matplotlib.pyplot as plt
import numpy as np
from models import rbc_reduced_form as rbc
from numpyro import optim
from numpyro.infer import SVI, Predictive, Trace_ELBO
from numpyro.infer.autoguide import AutoNormal
from quickstart import NAMES, PARAMS, load_data

from numpyro_statespace import arviz as nss_az
from numpyro_statespace import plots

NUM_STEPS = 300 if _common.SHORT else 3000
NUM_DRAWS = 50 if _common.SHORT else 1000


def fit(data, seed=0):
    """SVI on ``data``; returns ``(svi_result, guide, InferenceData)``."""
    y = data.to_numpy()
    guide = AutoNormal(rbc.kalman_model)
    # Adam with the step size decaying from 0.05 to 0.0025 over the run
    optimizer = optim.Adam(step_size=lambda i: 0.05 * 0.05 ** (i / NUM_STEPS))
    svi = SVI(rbc.kalman_model, guide, optimizer, Trace_ELBO())
    result = svi.run(jax.random.key(seed), NUM_STEPS, y, progress_bar=False)
    draws = Predictive(guide, params=result.params, num_samples=NUM_DRAWS)(
        jax.random.key(seed + 1), y)
    # A dict of draws is one chain; the model and its arguments come along explicitly.
    idata = nss_az.to_inference_data(draws, model=rbc.kalman_model, model_args=(y,), y=data,
                                     **NAMES)
    nss_az.add_states(idata, draws, model=rbc.kalman_model, model_args=(y,),
                      key=jax.random.key(seed + 2))
    return result, guide, idata


def figure(result, idata):
    fig, axes = plt.subplots(3, 1, figsize=(8, 7), layout="constrained")
    losses = np.asarray(result.losses)
    axes[0].plot(np.arange(1, len(losses) + 1), losses - losses.min() + 1.0, lw=0.8)
    axes[0].set_yscale("log")
    axes[0].set_xlabel("SVI step")
    axes[0].set_ylabel("negative ELBO - min + 1")
    plots.plot_states(idata, axes=axes[1:])
    fig.suptitle("RBC model, SVI (AutoNormal): ELBO and latent states (90% bands)")
    return fig


def main():
    start = time.perf_counter()
    data = load_data()
    result, guide, idata = fit(data)
    print(f"final negative ELBO: {float(result.losses[-1]):.2f}")
    print(az.summary(idata, var_names=PARAMS, kind="stats").to_string())
    print("true values:", rbc.TRUTH)
    _common.save_figure(figure(result, idata), "svi.png")
    print(f"svi finished in {time.perf_counter() - start:.0f} s")
    return idata


if __name__ == "__main__":
    main()
