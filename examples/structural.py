"""A structural time-series model of US consumption: trend + seasonal + regression.

Run from the repository root: ``python examples/structural.py`` (``NSS_SHORT=1`` for a quick
run). On statsmodels' bundled macrodata (quarterly, 1959-2009; no download) it

1. models ``100 log(real consumption)`` as a local linear trend, a quarterly seasonal, a
   regression on unemployment and inflation and measurement error, with 10% of the
   quarters hidden (NaN: missing observations);
2. samples the variances and coefficients with NUTS (the structural model's default priors,
   exact diffuse initialisation of the trend and seasonal states);
3. prints the ArviZ summary and the leave-one-out estimate from the per-step log-likelihoods;
4. saves ``examples/figures/structural_components.png`` (each component's contribution with
   90% bands) and ``examples/figures/structural_diagnostics.png`` (standardised one-step
   residuals at the posterior medians).
"""

import time
import warnings

import _common
import arviz as az
import jax
import numpy as np
import pandas as pd
from numpyro.infer import MCMC, NUTS, init_to_median
from statsmodels.datasets import macrodata

import numpyro_statespace as nss
from numpyro_statespace import arviz as nss_az
from numpyro_statespace import plots
from numpyro_statespace import structural as st

NUM_WARMUP, NUM_SAMPLES = (20, 20) if _common.SHORT else (500, 500)
MAX_TREE_DEPTH = 5 if _common.SHORT else 10  # short mode: a smoke test of the pipeline


def load_data(missing=0.1, seed=24):
    """``(y, X)``: a DataFrame of 100 log consumption (NaN: hidden quarters) and the
    regressors, both with a quarterly PeriodIndex."""
    df = macrodata.load_pandas().data
    index = pd.period_range("1959Q1", periods=len(df), freq="Q")
    y = pd.DataFrame({"consumption": 100 * np.log(df["realcons"].to_numpy())}, index=index)
    rng = np.random.default_rng(seed)
    y.iloc[rng.choice(len(y), size=int(missing * len(y)), replace=False), 0] = np.nan
    X = pd.DataFrame(df[["unemp", "infl"]].to_numpy(), index=index, columns=["unemp", "infl"])
    return y, X


def main():
    y, X = load_data()
    model = (st.LocalLinearTrend() + st.Seasonal(4) + st.Regression(X)
             + st.MeasurementError())
    print(model)

    def numpyro_model(y):
        model.sample(y)

    kernel = NUTS(numpyro_model, init_strategy=init_to_median, max_tree_depth=MAX_TREE_DEPTH)
    mcmc = MCMC(kernel, num_warmup=NUM_WARMUP,
                num_samples=NUM_SAMPLES, num_chains=2, chain_method="vectorized",
                progress_bar=not _common.SHORT)
    start = time.perf_counter()
    mcmc.run(jax.random.key(0), y.to_numpy())
    print(f"NUTS: {time.perf_counter() - start:.1f} s")

    start = time.perf_counter()
    idata = nss_az.to_inference_data(mcmc, y=y, syms=model.state_names)
    nss_az.add_states(idata, mcmc, key=jax.random.key(1))
    print(f"ArviZ conversion, per-step log-likelihoods, states: "
          f"{time.perf_counter() - start:.1f} s")
    print(az.summary(idata, var_names=[q.name for q in model.params]))
    with warnings.catch_warnings():
        # ArviZ warns when a Pareto k is large; the table printed with the estimate says so
        warnings.filterwarnings("ignore", message="Estimated shape parameter of Pareto")
        loo = az.loo(idata, pointwise=True)
    print(loo)

    _common.save_figure(plots.plot_components(idata, model), "structural_components.png")
    median = {k: np.median(v, axis=0) for k, v in mcmc.get_samples().items()}
    d = model.distribution(median, len(y))
    residuals = nss.residuals.standardized_residuals(d, y.to_numpy())
    frame = pd.DataFrame(np.asarray(residuals), index=y.index, columns=y.columns)
    _common.save_figure(plots.plot_diagnostics(frame), "structural_diagnostics.png")


if __name__ == "__main__":
    main()
