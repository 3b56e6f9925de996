"""The hierarchical panel (models/panel.py, examples/panel.py): likelihood against a NumPy
filter and finite differences, the two routes' posteriors, padding, bad input, calibration."""

import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats
from numpyro.infer.util import log_density

from _reference import central_difference, numpy_kalman_loglik
from models import panel

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))


def _numpy_panel_loglik(rho, sigma, obs_sd, y, n_states):
    """Sum over series of a plain NumPy Kalman filter (matrices written out here)."""
    decay = np.linspace(1.0, 0.5, n_states) if n_states > 1 else np.ones(1)
    total = 0.0
    for i in range(y.shape[0]):
        A = rho[i] * np.diag(decay)
        B = sigma[i] * np.eye(n_states)
        total += numpy_kalman_loglik(A, B, np.ones((1, n_states)), np.array([[obs_sd**2]]),
                                     np.zeros(n_states), np.zeros((n_states, n_states)), y[i])
    return total


def test_panel_loglik_matches_numpy_and_finite_differences(n_states=3):
    """Per-series start dates and missing entries; value against a NumPy filter, gradient in
    every per-series parameter against central differences (float64, h = 1e-6: truncation and
    round-off both ~1e-9 relative here)."""
    data = panel.simulate(3, 6, 50, n_states=n_states, missing=0.2)
    y, rho, sigma, s = data["y"], data["rho"], data["sigma"], data["obs_sd"]
    assert np.isnan(y[:, 0]).any() and not np.isnan(y).all(axis=(1, 2)).any()
    value, grads = jax.value_and_grad(panel.loglik, argnums=(0, 1, 2))(
        rho, sigma, s, y, n_states)
    np.testing.assert_allclose(value, _numpy_panel_loglik(rho, sigma, s, y, n_states),
                               rtol=1e-12)

    def f(rho_, sigma_, s_):
        return _numpy_panel_loglik(rho_, sigma_, s_, y, n_states)

    for i in (0, 4):
        e = np.eye(len(rho))[i]
        for k, fd in ((0, central_difference(lambda h, e=e: f(rho + h * e, sigma, s), 0.0)),
                      (1, central_difference(lambda h, e=e: f(rho, sigma + h * e, s), 0.0))):
            np.testing.assert_allclose(grads[k][i], fd, rtol=1e-6)
    np.testing.assert_allclose(grads[2], central_difference(lambda x: f(rho, sigma, x), s),
                               rtol=1e-6)


def test_padding_with_empty_series_changes_nothing():
    data = panel.simulate(4, 5, 30)
    rho, sigma, y = panel.pad_series(4, data["rho"], data["sigma"], data["y"])
    assert y.shape == (8, 30, 1) and np.isnan(y[5:]).all()
    f = jax.value_and_grad(panel.loglik, argnums=(0, 1, 2))
    v, g = f(data["rho"], data["sigma"], data["obs_sd"], data["y"])
    vp, gp = f(rho, sigma, data["obs_sd"], y)
    np.testing.assert_allclose(vp, v, rtol=1e-14)
    np.testing.assert_allclose(gp[0][:5], g[0], rtol=1e-13)
    np.testing.assert_array_equal(gp[0][5:], 0.0)
    np.testing.assert_allclose(gp[2], g[2], rtol=1e-13)


def test_rounds_of_series_equal_all_at_once():
    """``chunk``: the series in sequential rounds (lax.map) give the vectorised value and
    gradient (the same per-series arithmetic, summed in another order)."""
    data = panel.simulate(6, 8, 30, n_states=2)
    args = (data["rho"], data["sigma"], data["obs_sd"], data["y"], 2)
    f = jax.value_and_grad(panel.loglik, argnums=(0, 1, 2))
    v, g = f(*args)
    vc, gc = f(*args, chunk=4)
    np.testing.assert_allclose(vc, v, rtol=1e-13)
    for a, b in zip(gc, g):
        np.testing.assert_allclose(a, b, rtol=1e-12)
    with pytest.raises(ValueError, match=r"chunk must divide.*\(8, 30, 1\).*chunk=3"):
        panel.loglik(*args, chunk=3)


def _params(P, seed=0):
    rng = np.random.default_rng(seed)
    return {"mu_rho": 0.8, "tau_rho": 0.3, "mu_sigma": -0.6, "tau_sigma": 0.2, "obs_sd": 0.35,
            "z_rho": rng.standard_normal(P), "log_sigma": -0.6 + 0.2 * rng.standard_normal(P)}


def test_whitened_route_has_the_kalman_posterior():
    """For a linear Gaussian model the whitened shocks' posterior is exactly N(0, I):
    log p(theta, eps | y) = log p(theta | y) + log N(eps; 0, I) up to the same constant. So the
    whitened panel's log density minus log N(eps) equals the Kalman panel's at any eps, with
    ragged starts and missing entries, and the Kalman one equals priors + a NumPy filter."""
    data = panel.simulate(5, 4, 35, n_states=2)
    y = data["y"]
    params = _params(4)
    kalman, _ = log_density(panel.model, (y,), {"n_states": 2}, params)
    for seed in (1, 2):
        eps = np.random.default_rng(seed).standard_normal((4, 35, 2))
        white, _ = log_density(panel.model, (y,), {"n_states": 2, "route": "whitened"},
                               {**params, "w_white": eps})
        log_n_eps = -0.5 * np.sum(eps**2) - 0.5 * eps.size * np.log(2 * np.pi)
        np.testing.assert_allclose(float(white) - log_n_eps, float(kalman), rtol=1e-10)
    rho = 1 / (1 + np.exp(-(params["mu_rho"] + params["tau_rho"] * params["z_rho"])))
    sigma = np.exp(params["log_sigma"])
    priors = sum(float(d.log_prob(params[k])) for k, d in panel.pooled_priors().items())
    priors += -0.5 * np.sum(params["z_rho"]**2) - 2 * np.log(2 * np.pi)
    priors += float(np.sum(stats.norm.logpdf(params["log_sigma"], params["mu_sigma"],
                                             params["tau_sigma"])))
    np.testing.assert_allclose(
        float(kalman), priors + _numpy_panel_loglik(rho, sigma, params["obs_sd"], y, 2),
        rtol=1e-12)


def test_decentred_log_volatility_is_the_same_posterior():
    """``centered`` (per series): the decentred site ``d`` maps to ``log_sigma = mu + tau^(1 -
    c) (d - c mu)``, so the decentred log density is the centred one at that ``log_sigma``
    plus the log Jacobian ``sum (1 - c) log tau``; ``log_sigma`` is recorded as deterministic."""
    data = panel.simulate(7, 4, 30)
    params = _params(4)
    del params["log_sigma"]
    c = np.array([0.0, 0.3, 0.8, 1.0])
    mu, tau = params["mu_sigma"], params["tau_sigma"]
    d = np.array([0.4, -1.2, 0.1, -0.5])
    log_sigma = mu + tau ** (1 - c) * (d - c * mu)
    decentred, trace = log_density(panel.model, (data["y"],), {"centered": c},
                                   {**params, "log_sigma_decentered": d})
    centred, _ = log_density(panel.model, (data["y"],), {}, {**params, "log_sigma": log_sigma})
    np.testing.assert_allclose(float(decentred),
                               float(centred) + np.sum((1 - c) * np.log(tau)), rtol=1e-12)
    np.testing.assert_allclose(trace["log_sigma"]["value"], log_sigma, rtol=1e-14)
    with pytest.raises(ValueError, match=r"centered must be a scalar or have shape \(4,\).*"
                                         r"\(3,\)"):
        log_density(panel.model, (data["y"],), {"centered": np.ones(3)},
                    {**params, "log_sigma_decentered": d})


def test_centredness_follows_each_series_information():
    """``centredness``: near 1 for series whose data pin their volatility down, lower for
    series with little information (here: the same panel with ten times the measurement
    noise, and series observed for 10 steps only)."""
    clean = panel.simulate(8, 6, 100, hyper={**panel.HYPER, "obs_sd": 0.05})
    c = panel.centredness(clean["y"], num_steps=300)
    assert c.shape == (6,) and np.all((c >= 0) & (c <= 1))
    short = clean["y"].copy()
    short[3:, 10:] = np.nan
    c_short = panel.centredness(short, num_steps=300)
    assert np.all(c_short[3:] < c[3:]), (c, c_short)


def test_bad_input_is_named():
    with pytest.raises(ValueError, match=r"y must have shape \(P, T, 1\); got \(10, 1\)"):
        log_density(panel.model, (np.zeros((10, 1)),), {}, _params(10))
    with pytest.raises(ValueError, match="route"):
        log_density(panel.model, (np.zeros((2, 10, 1)),), {"route": "joint"}, _params(2))
    with pytest.raises(ValueError, match="num_series and num_timesteps"):
        panel.model()
    with pytest.raises(ValueError, match=r"obs_sd must be a scalar.*\(3,\)"):
        panel.matrices(jnp.ones(3), jnp.ones(3), jnp.ones(3))
    with pytest.raises(ValueError, match=r"series axis \(3\).*pad_series"):
        panel.shard_series(np.zeros((3, 4)), devices=[jax.devices()[0]] * 2)


def _coverage(seeds, P, T, num_draws, prob):
    """For data sets simulated with pooled parameters drawn from their priors, how many of the
    pooled parameters' central ``prob`` intervals contain the truth; plus r_hat, divergences."""
    import panel as example

    covered, total, worst_r_hat, divergences = 0, 0, 0.0, 0
    for seed in seeds:
        data = panel.simulate(seed, P, T, hyper="prior")
        mcmc = example.fit(data["y"], seed=seed, num_warmup=num_draws, num_samples=num_draws)
        table, r_hat, div = example.pooled_summary(mcmc, data, prob)
        covered += sum(row[-1] for row in table.values())
        total += len(table)
        worst_r_hat, divergences = max(worst_r_hat, r_hat), divergences + div
    return covered, total, worst_r_hat, divergences


@pytest.mark.slow
def test_pooled_parameters_are_covered():
    """Simulation-based calibration, small: 4 data sets of 20 series x 100 steps with the pooled
    parameters drawn from their priors, 95% intervals of the 5 pooled parameters. With correct
    inference the number covered is Binomial(20, 0.95): at least 17 with probability 0.98;
    a wrong likelihood scale or a biased route misses far more (benchmarks/panel_calibration.py
    is the full version)."""
    covered, total, r_hat, divergences = _coverage(range(4), 20, 100, 300, 0.95)
    assert total == 20 and covered >= 17, (covered, total)
    assert divergences == 0 and r_hat < 1.05, (divergences, r_hat)
