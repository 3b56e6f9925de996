"""The model zoo: time-series staples against statsmodels, the second-order RBC and FVGQ20 against
DifferenceEquations.jl's reference likelihoods, and the NumPyro models' wiring.

Initialisation conventions: our ``u_0 ~ N(m0, P0)`` is the state *before* the first transition,
statsmodels' ``a_1, P_1`` the state *at* the first observation, so a known prior maps to
``initialize_known(A m0, A P0 A' + B B')``; a stationary prior is the same in both.
"""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import pytest
import statsmodels.api as sm
from numpyro.infer import Predictive

import numpyro_statespace as nss
from models import fvgq20, rbc, rbc_second_order, reference_data, timeseries as ts
from _reference import central_difference, statsmodels_loglik

RTOL = 1e-6


@jax.jit
def _kalman_known(A, B, C, R, m0, P0, y):
    return nss.KalmanLGSS(A, B, C, R, m0, P0, y.shape[0]).log_prob(y)


@jax.jit
def _kalman_stationary(A, B, C, R, y):
    return nss.KalmanLGSS(A, B, C, R, jnp.zeros(A.shape[0]), "stationary", y.shape[0]).log_prob(y)


def _kalman(m, y, m0, P0):
    """Our Kalman log-likelihood (jitted: one compilation per shape)."""
    y = jnp.asarray(y)
    if isinstance(P0, str):
        return float(_kalman_stationary(m.A, m.B, m.C, m.R, y))
    return float(_kalman_known(m.A, m.B, m.C, m.R, jnp.asarray(m0), jnp.asarray(P0), y))


def _statsmodels_loglik(mod, params):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return mod.loglike(np.asarray(params))


def _known_init(mod, m, m0, P0):
    A, B = np.asarray(m.A), np.asarray(m.B)
    mod.ssm.initialize_known(A @ m0, A @ P0 @ A.T + B @ B.T)
    mod.ssm.loglikelihood_burn = 0  # UnobservedComponents sets a burn-in for its diffuse start


@pytest.fixture(scope="module")
def series():
    rng = np.random.default_rng(11)
    trend = np.cumsum(0.3 * rng.standard_normal(100) + 0.05)
    return {"univariate": (trend + rng.standard_normal(100))[:, None],
            "stationary": rng.standard_normal((100, 1)),
            "panel": rng.standard_normal((100, 4)) + 0.5 * rng.standard_normal((100, 1))}


# -- time-series staples vs statsmodels ------------------------------------------------------
def test_local_level_matches_unobserved_components(series):
    y = series["univariate"]
    s_level, s_obs, m0, P0 = 0.4, 0.9, np.array([0.3]), np.array([[2.0]])
    m = ts.local_level(s_level, s_obs)
    mod = sm.tsa.UnobservedComponents(y[:, 0], level="local level")
    _known_init(mod, m, m0, P0)
    expected = _statsmodels_loglik(mod, [s_obs**2, s_level**2])  # sigma2.irregular, .level
    np.testing.assert_allclose(_kalman(m, y, m0, P0), expected, rtol=RTOL)


def test_local_linear_trend_matches_unobserved_components(series):
    y = series["univariate"]
    s_level, s_slope, s_obs = 0.35, 0.08, 0.9
    m0, P0 = np.array([0.1, 0.05]), np.diag([2.0, 0.5])
    m = ts.local_linear_trend(s_level, s_slope, s_obs)
    mod = sm.tsa.UnobservedComponents(y[:, 0], level="local linear trend")
    _known_init(mod, m, m0, P0)
    expected = _statsmodels_loglik(mod, [s_obs**2, s_level**2, s_slope**2])
    np.testing.assert_allclose(_kalman(m, y, m0, P0), expected, rtol=RTOL)


@pytest.mark.parametrize("phi, theta", [
    ([0.5], []), ([0.5, -0.3, 0.1], []), ([0.6], [0.4]), ([0.3, 0.2], [0.4, -0.2, 0.1]),
    ([], [0.5]),
])
def test_arma_matches_sarimax_with_stationary_start(series, phi, theta):
    y, sigma = series["stationary"], 0.7
    m = ts.arma(jnp.asarray(phi), jnp.asarray(theta), sigma)
    mod = sm.tsa.SARIMAX(y[:, 0], order=(len(phi), 0, len(theta)), trend="n")
    expected = _statsmodels_loglik(mod, np.r_[phi, theta, sigma**2])
    np.testing.assert_allclose(_kalman(m, y, np.zeros(m.A.shape[0]), "stationary"), expected,
                               rtol=RTOL)


@pytest.mark.parametrize("order", [1, 2])
def test_dynamic_factor_matches_statsmodels(series, order):
    y = series["panel"]
    L = np.array([[0.9], [0.5], [-0.4], [0.3]])
    phi = np.array([0.6, -0.2])[:order]
    s_obs = np.array([0.5, 0.7, 0.9, 0.4])
    m = ts.dynamic_factor(L, phi, s_obs)
    mod = sm.tsa.DynamicFactor(y, k_factors=1, factor_order=order)
    # loadings, idiosyncratic variances, factor AR coefficients
    expected = _statsmodels_loglik(mod, np.r_[L[:, 0], s_obs**2, phi])
    np.testing.assert_allclose(_kalman(m, y, np.zeros(order), "stationary"), expected, rtol=RTOL)


def test_pacf_map_gives_stationary_coefficients():
    rng = np.random.default_rng(2)
    for p in (1, 2, 3, 5):
        for _ in range(20):
            phi = np.asarray(ts.pacf_to_coefficients(jnp.asarray(rng.uniform(-0.99, 0.99, p))))
            roots = np.roots(np.r_[-phi[::-1], 1.0])  # 1 - phi_1 z - ... - phi_p z^p
            assert np.all(np.abs(roots) > 1.0)
    np.testing.assert_allclose(np.asarray(ts.pacf_to_coefficients(jnp.array([0.5]))), [0.5])


def _site_log_prob(model, params, y, **kwargs):
    """``(log p(y | params), deterministic sites)`` of a model, in one jitted call."""
    @jax.jit
    def run(params, y):
        tr = numpyro.handlers.trace(numpyro.handlers.substitute(
            numpyro.handlers.seed(model, 0), data=params)).get_trace(y, **kwargs)
        dets = {k: v["value"] for k, v in tr.items() if v["type"] == "deterministic"}
        return tr["y"]["fn"].log_prob(tr["y"]["value"]), dets

    return run(params, y)


def test_numpyro_models_use_the_checked_matrices(series):
    """The ``y`` site of each NumPyro model is the likelihood checked above."""
    y = series["univariate"]
    ll, _ = _site_log_prob(ts.local_level_model, {"sigma_level": 0.4, "sigma_obs": 0.9},
                           jnp.asarray(y), u0_var=2.0)
    mod = sm.tsa.UnobservedComponents(y[:, 0], level="local level")
    _known_init(mod, ts.local_level(0.4, 0.9), np.zeros(1), np.array([[2.0]]))
    np.testing.assert_allclose(float(ll), _statsmodels_loglik(mod, [0.81, 0.16]), rtol=RTOL)

    ll, _ = _site_log_prob(ts.local_linear_trend_model,
                           {"sigma_level": 0.4, "sigma_slope": 0.1, "sigma_obs": 0.9},
                           jnp.asarray(y), u0_mean=(0.5, 0.0), u0_var=2.0)
    mod = sm.tsa.UnobservedComponents(y[:, 0], level="local linear trend")
    _known_init(mod, ts.local_linear_trend(0.4, 0.1, 0.9), np.array([0.5, 0.0]), 2.0 * np.eye(2))
    np.testing.assert_allclose(float(ll), _statsmodels_loglik(mod, [0.81, 0.16, 0.01]),
                               rtol=RTOL)

    y = series["stationary"]
    ll, dets = _site_log_prob(ts.arma_model, {"ar_pacf": jnp.array([0.5, -0.3]),
                                              "ma_pacf": jnp.array([0.4]), "sigma": 0.7},
                              jnp.asarray(y), p=2, q=1)
    phi, theta = np.asarray(dets["phi"]), np.asarray(dets["theta"])
    assert abs(theta[0]) < 1  # invertible
    mod = sm.tsa.SARIMAX(y[:, 0], order=(2, 0, 1), trend="n")
    np.testing.assert_allclose(float(ll), _statsmodels_loglik(mod, np.r_[phi, theta, 0.49]),
                               rtol=RTOL)

    y = series["panel"]
    ll, _ = _site_log_prob(ts.dynamic_factor_model,
                           {"loading_first": 0.9, "loading_rest": jnp.array([0.5, -0.4, 0.3]),
                            "factor_pacf": jnp.array([0.6]),
                            "sigma_obs": jnp.array([0.5, 0.7, 0.9, 0.4])}, jnp.asarray(y))
    mod = sm.tsa.DynamicFactor(y, k_factors=1, factor_order=1)
    expected = _statsmodels_loglik(mod, [0.9, 0.5, -0.4, 0.3, 0.25, 0.49, 0.81, 0.16, 0.6])
    np.testing.assert_allclose(float(ll), expected, rtol=RTOL)


@pytest.mark.parametrize("model, kwargs, sites", [
    (ts.dynamic_factor_model, {"num_series": 3, "factor_order": 2},
     ("loading_first", "loading_rest", "factor_pacf", "sigma_obs", "phi")),
])
def test_timeseries_models_prior_predictive(model, kwargs, sites):
    T, n = 30, 3
    out = Predictive(model, num_samples=n)(jax.random.key(0), num_timesteps=T, **kwargs)
    M = kwargs.get("num_series", 1)
    assert out["y"].shape == (n, T, M)
    assert np.all(np.isfinite(np.asarray(out["y"])))
    for site in sites:
        assert site in out


# -- RBC -------------------------------------------------------------------------------------
def test_rbc_simulated_data_is_deterministic():
    a, b = rbc.simulated_data(), rbc.simulated_data()
    assert a.shape == (rbc.NUM_TIMESTEPS, 2) and a.dtype == np.float64
    np.testing.assert_array_equal(a, b)
    y = jax.jit(lambda key: rbc.simulate(key, 25, beta=0.97))(jax.random.key(0))
    assert y.shape == (25, 2) and np.all(np.isfinite(np.asarray(y)))


def test_rbc_second_order_reference_likelihood():
    """DifferenceEquations.jl: pruned quadratic RBC, joint, first 5 rows: -690.81094364573."""
    ref = reference_data.rbc()
    prob = rbc_second_order.problem(5)
    logpdf = jax.jit(lambda prob: nss.solve(prob).logpdf)(prob)
    np.testing.assert_allclose(float(logpdf), -690.81094364573, rtol=1e-10)
    d = jax.jit(lambda n: rbc_second_order.joint_distribution(n, R=ref["R"]))(ref["noise"][:5])
    np.testing.assert_allclose(float(jax.jit(d.log_prob)(jnp.asarray(ref["observables"][:5]))),
                               -690.81094364573, rtol=1e-10)
    # sigma rescales B linearly and the constants quadratically
    A_0, A_1, A_2, B, C_0, C_1, C_2 = rbc_second_order.matrices(0.02)
    np.testing.assert_allclose(np.asarray(B), 2 * ref["B"])
    np.testing.assert_allclose(np.asarray(A_0), 4 * ref["A_0"])
    np.testing.assert_allclose(np.asarray(C_0), 4 * ref["C_0"])
    np.testing.assert_array_equal(np.asarray(A_2), ref["A_2"])


def test_rbc_second_order_model_density_and_gradient():
    y, w = jax.jit(lambda k: rbc_second_order.simulate(k, 40, sigma=0.012))(jax.random.key(1))
    assert y.shape == (40, 2) and w.shape == (40, 1)

    @jax.jit
    def log_density(sigma, w):
        return numpyro.infer.util.log_density(rbc_second_order.joint_model, (y,), {},
                                              {"sigma": sigma, "w": w})[0]

    value, (g_sigma, g_w) = jax.jit(jax.value_and_grad(log_density, argnums=(0, 1)))(0.012, w)
    assert np.isfinite(float(value))
    assert np.isfinite(float(g_sigma)) and g_w.shape == (40, 1)
    fd = central_difference(lambda s: log_density(s, w), 0.012, h=1e-7)
    np.testing.assert_allclose(float(g_sigma), float(fd), rtol=1e-5)


# -- FVGQ20 ----------------------------------------------------------------------------------
def test_fvgq20_reference_likelihoods():
    ref = fvgq20.reference()
    noise, obs = jnp.asarray(ref["noise"]), jnp.asarray(ref["observables"])
    linear = float(jax.jit(lambda n, o: fvgq20.joint_distribution(n).log_prob(o))(noise, obs))
    np.testing.assert_allclose(linear, -1.4613614369686982e6, rtol=1e-10)
    pruned = jax.jit(lambda n, o: fvgq20.pruned_joint_distribution(n).log_prob(o))(noise, obs)
    pruned = float(pruned)
    np.testing.assert_allclose(pruned, -1.4728927648336522e7, rtol=1e-10)
    # the problem constructors carry the same data
    assert fvgq20.linear_problem().num_timesteps == fvgq20.NUM_TIMESTEPS
    assert fvgq20.pruned_problem(10).num_timesteps == 10


def test_fvgq20_kalman_matches_statsmodels():
    ref = fvgq20.reference()
    y = ref["observables"]
    d = fvgq20.kalman_distribution(shock_scale=0.5)
    got = float(jax.jit(lambda y: d.log_prob(y))(jnp.asarray(y)))
    A, B, C = (np.asarray(x) for x in fvgq20.first_order(0.5))
    np.testing.assert_allclose(got, statsmodels_loglik(A, B, C, fvgq20.R_REF, None, None, y,
                                                       prior_of="stationary"), rtol=RTOL)


# The Kalman and linear routes are covered at the distribution level above; their model wiring
# runs with ``-m slow`` only (each costs a compilation).
@pytest.mark.parametrize("model", [pytest.param(fvgq20.kalman_model, marks=pytest.mark.slow),
                                   pytest.param(fvgq20.joint_model, marks=pytest.mark.slow),
                                   fvgq20.pruned_joint_model])
def test_fvgq20_models_log_density_and_gradient(model):
    T = 30
    y = jnp.asarray(fvgq20.reference()["observables"][:T])
    params = {"shock_scale": 0.8, "obs_sd": 0.03}
    if model is not fvgq20.kalman_model:
        params["w"] = jnp.zeros((T, fvgq20.N_SHOCKS))

    def log_density(params):
        return numpyro.infer.util.log_density(model, (y,), {}, params)[0]

    value, grads = jax.jit(jax.value_and_grad(log_density))(params)
    assert np.isfinite(float(value))
    assert all(np.all(np.isfinite(np.asarray(g))) for g in jax.tree.leaves(grads))


@pytest.mark.parametrize("model, params, T, K", [
    (rbc_second_order.joint_model, {"sigma": 0.012}, 20, 1),
    pytest.param(fvgq20.pruned_joint_model, {"shock_scale": 0.8, "obs_sd": 0.03}, 10,
                 fvgq20.N_SHOCKS, marks=pytest.mark.slow),
])
def test_whitened_joint_models_log_density_and_gradient(model, params, T, K):
    if model is rbc_second_order.joint_model:
        y = rbc_second_order.simulate(jax.random.key(2), T)[0]
    else:
        y = jnp.asarray(fvgq20.reference()["observables"][:T])
    params = dict(params, w_white=0.1 * jnp.ones((T, K)))

    def log_density(params):
        return numpyro.infer.util.log_density(model, (y,), {"whiten": True}, params)[0]

    value, grads = jax.jit(jax.value_and_grad(log_density))(params)
    assert np.isfinite(float(value))
    assert all(np.all(np.isfinite(np.asarray(g))) for g in jax.tree.leaves(grads))
