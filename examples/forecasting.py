"""Missing data, smoothing and forecasting with the Kalman likelihood.

Run from the repository root: ``python examples/forecasting.py`` (``NSS_SHORT=1`` for a quick
run). Starting from the quickstart's data, it

1. hides observations: consumption ``c`` for five years in the middle of the sample and capital
   every fourth quarter throughout (NaN entries of ``y`` are missing observations for
   ``nss.KalmanLGSS``: nothing else changes in the model), and holds out the last
   ``HORIZON`` quarters;
2. samples the posterior with NUTS;
3. smooths the latent states through the gaps (one simulation-smoother path per posterior
   draw) and forecasts ``HORIZON`` quarters ahead (one simulated future per posterior draw);
4. saves ``examples/figures/forecasting_fit.png`` (data with gaps against the fit) and
   ``examples/figures/forecasting_fan.png`` (a fan chart with the held-out data on top).
"""

import time

import _common
import arviz as az
import jax
import matplotlib.pyplot as plt
import numpy as np
from models import rbc_reduced_form as rbc
from numpyro.infer import MCMC, NUTS
from quickstart import NAMES, PARAMS, load_data

from numpyro_statespace import arviz as nss_az
from numpyro_statespace import plots

HORIZON = 12
NUM_WARMUP, NUM_SAMPLES = (40, 40) if _common.SHORT else (400, 400)
GAP = slice("1995-01-01", "1999-10-01")  # c missing for these five years


def make_data():
    """``(observed, held_out)`` DataFrames: the data with gaps, and the last HORIZON quarters."""
    data = load_data()
    observed, held_out = data.iloc[:-HORIZON].copy(), data.iloc[-HORIZON:]
    observed.loc[GAP, "c"] = np.nan
    observed.iloc[::4, observed.columns.get_loc("k_obs")] = np.nan
    return observed, held_out


def fit(observed, seed=3):
    mcmc = MCMC(NUTS(rbc.kalman_model), num_warmup=NUM_WARMUP, num_samples=NUM_SAMPLES,
                num_chains=2, chain_method="vectorized", progress_bar=False)
    mcmc.run(jax.random.key(seed), observed.to_numpy())      # NaN = missing
    idata = nss_az.to_inference_data(mcmc, y=observed, **NAMES)
    k_states, k_forecast = jax.random.split(jax.random.key(seed + 1))
    nss_az.add_states(idata, mcmc, key=k_states)
    nss_az.add_forecast(idata, mcmc, HORIZON, key=k_forecast)
    return mcmc, idata


def fan_chart(idata, held_out):
    """The last 12 years, the forecast fan (50/80/95% bands) and the held-out data."""
    fig, axes = plt.subplots(2, 1, figsize=(8, 5.5), sharex=True, layout="constrained")
    plots.plot_forecast(idata, history=48, axes=axes)   # plots draw into the caller's axes
    for ax, name in zip(axes, held_out.columns):
        ax.plot(held_out.index, held_out[name], color="k", ls="--", lw=0.9, marker="x", ms=4,
                label="held out")
    axes[0].legend(loc="upper left", fontsize="x-small", ncols=3)
    fig.suptitle(f"{HORIZON}-quarter forecast from the posterior, held-out data on top")
    return fig


def main():
    start = time.perf_counter()
    observed, held_out = make_data()
    print(f"{int(observed.isna().sum().sum())} of {observed.size} observations missing")
    mcmc, idata = fit(observed)
    print(az.summary(idata, var_names=PARAMS).to_string())
    forecast = idata.predictions["y"]
    inside = ((forecast.quantile(0.05, ("chain", "draw")) <= held_out.to_numpy())
              & (held_out.to_numpy() <= forecast.quantile(0.95, ("chain", "draw"))))
    print(f"held-out observations inside the 90% forecast band: {int(inside.sum())} of "
          f"{held_out.size}")
    _common.save_figure(plots.plot_observed_fitted(idata), "forecasting_fit.png")
    _common.save_figure(fan_chart(idata, held_out), "forecasting_fan.png")
    print(f"forecasting finished in {time.perf_counter() - start:.0f} s")
    return idata


if __name__ == "__main__":
    main()
