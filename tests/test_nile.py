"""The Nile local level model (Durbin & Koopman 2012, ch. 2) with the exact diffuse
initialisation: statsmodels' exact diffuse log-likelihood and smoothed level to 1e-8,
Durbin & Koopman's maximum likelihood variances (15099 and 1469.1) by ``jax.grad`` and
L-BFGS, and NUTS centred on them.

The data are statsmodels' bundled ``nile`` data set (no download).
"""

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest
import statsmodels.api as sm
from scipy.optimize import minimize

import numpyro_statespace as nss

Y = sm.datasets.nile.load_pandas().data["volume"].to_numpy(float)[:, None]
DK_VARIANCES = (15099.0, 1469.1)  # Durbin & Koopman (2012), sec. 2.10: sigma2_eps, sigma2_eta


def local_level(var_eps, var_eta, T=len(Y)):
    """``u_t = u_{t-1} + eta_t``, ``y_t = u_t + eps_t``, the level at ``t = 1`` diffuse."""
    return nss.KalmanLGSS(jnp.ones((1, 1)), jnp.sqrt(var_eta) * jnp.ones((1, 1)),
                          jnp.ones((1, 1)), jnp.reshape(var_eps, (1,)), jnp.zeros(1),
                          "diffuse", T, prior_of="u1")


def test_exact_diffuse_loglik_and_smoothed_level_match_statsmodels():
    mod = sm.tsa.UnobservedComponents(Y[:, 0], "llevel", use_exact_diffuse=True)
    mod.ssm.tolerance = 0.0  # statsmodels' steady-state switch off
    res = mod.smooth(np.array(DK_VARIANCES))
    d = local_level(*DK_VARIANCES)
    np.testing.assert_allclose(d.log_prob(Y), res.llf, rtol=1e-8)
    s = d.smooth(Y)
    np.testing.assert_allclose(s.smoothed_means[1:, 0], res.smoothed_state[0], rtol=1e-8)
    np.testing.assert_allclose(s.smoothed_covs[1:, 0, 0], res.smoothed_state_cov[0, 0],
                               rtol=1e-8)
    fc, ours = res.get_forecast(5), d.forecast(Y, 5)
    np.testing.assert_allclose(ours.obs_means[:, 0], fc.predicted_mean, rtol=1e-8)
    np.testing.assert_allclose(ours.obs_covs[:, 0, 0], fc.var_pred_mean, rtol=1e-8)


def _significant(x, digits=3):
    return float(f"{x:.{digits - 1}e}")


def test_maximum_likelihood_recovers_durbin_koopman():
    """L-BFGS on the log variances with ``jax.grad``: a stationary point (gradient ~0) at D&K's
    estimates to 3 significant digits. Not ``fit.success``: at ``ftol=1e-14`` the line search's
    last step may end ``ABNORMAL`` on round-off alone (it does with XLA's -O3 build) after
    reaching the optimum."""
    nll = jax.jit(lambda z: -local_level(jnp.exp(z[0]), jnp.exp(z[1])).log_prob(Y))
    grad = jax.jit(jax.grad(lambda z: -local_level(jnp.exp(z[0]), jnp.exp(z[1])).log_prob(Y)))
    fit = minimize(lambda z: float(nll(z)), np.log([1000.0, 1000.0]),
                   jac=lambda z: np.asarray(grad(z)), method="L-BFGS-B",
                   options=dict(gtol=1e-8, ftol=1e-14))
    assert np.max(np.abs(np.asarray(grad(fit.x)))) < 1e-4, fit
    estimates = np.exp(fit.x)
    assert [_significant(v) for v in estimates] == [_significant(v) for v in DK_VARIANCES]


def _model(y=None):
    log_eps = numpyro.sample("log_var_eps", dist.Normal(9.0, 3.0))
    log_eta = numpyro.sample("log_var_eta", dist.Normal(7.0, 3.0))
    numpyro.sample("y", local_level(jnp.exp(log_eps), jnp.exp(log_eta)), obs=y)


def _nuts(num_warmup, num_samples, seed=0):
    mcmc = numpyro.infer.MCMC(numpyro.infer.NUTS(_model), num_warmup=num_warmup,
                              num_samples=num_samples, progress_bar=False)
    mcmc.run(jax.random.key(seed), Y)
    return {k: np.asarray(v) for k, v in mcmc.get_samples().items()}


def _check_centred(samples):
    """The posterior median of each log variance within one posterior standard deviation of
    the log of D&K's estimate (the likelihood dominates these wide priors)."""
    for name, target in zip(("log_var_eps", "log_var_eta"), DK_VARIANCES):
        x = samples[name]
        assert abs(np.median(x) - np.log(target)) < np.std(x), (name, np.median(x), np.std(x))


def test_nuts_centres_near_durbin_koopman():
    _check_centred(_nuts(150, 150))


@pytest.mark.slow
def test_nuts_centres_near_durbin_koopman_long():
    _check_centred(_nuts(1000, 2000, seed=1))
