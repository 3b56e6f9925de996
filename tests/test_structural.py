"""Structural components against statsmodels' UnobservedComponents (matrices, likelihood,
smoothed states) and against closed forms (AR partial autocorrelations)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from statsmodels.tsa.statespace.structural import UnobservedComponents
from statsmodels.tsa.statespace.tools import constrain_stationary_univariate

import numpyro_statespace as nss
from numpyro_statespace import structural as st
from numpyro_statespace.residuals import pointwise_log_likelihood, standardized_residuals
from _reference import central_difference


def _uc_matrices(uc, params):
    """statsmodels' system at ``params`` (its parameter vector) as (T, R Q^1/2, Z, H)."""
    uc.update(np.asarray(params, float))
    ssm = uc.ssm
    Q = ssm["state_cov"]
    B = ssm["selection"] @ np.sqrt(Q)  # Q is diagonal in UnobservedComponents
    return ssm["transition"], B, ssm["design"], ssm["obs_cov"]


def _rng_data(T, seed=0, missing=0.1):
    rng = np.random.default_rng(seed)
    y = np.cumsum(rng.normal(size=T)) + np.sin(np.arange(T) * np.pi / 2) + rng.normal(size=T)
    y[rng.random(T) < missing] = np.nan
    return y


# every component but regression, in UnobservedComponents' state order
SIG = {"trend_level_sigma": 0.7, "trend_slope_sigma": 0.2, "seasonal_sigma": 0.3,
       "freq_seasonal_sigma": 0.15, "cycle_sigma": 0.4, "cycle_damping": 0.85,
       "cycle_frequency": 0.5, "ar_coeffs": np.array([0.5, -0.3]), "ar_sigma": 0.6,
       "irregular_sigma": 0.9}


def _full_model():
    return (st.LocalLinearTrend() + st.Seasonal(4) + st.TrigSeasonal(12, 2) + st.Cycle()
            + st.Autoregressive(2) + st.MeasurementError())


def _full_uc(y):
    uc = UnobservedComponents(y, level=True, trend=True, stochastic_level=True,
                              stochastic_trend=True, seasonal=4, use_exact_diffuse=True,
                              freq_seasonal=[{"period": 12, "harmonics": 2}], cycle=True,
                              stochastic_cycle=True, damped_cycle=True, autoregressive=2,
                              irregular=True)
    sm_params = [SIG["irregular_sigma"] ** 2, SIG["trend_level_sigma"] ** 2,
                 SIG["trend_slope_sigma"] ** 2, SIG["seasonal_sigma"] ** 2,
                 SIG["freq_seasonal_sigma"] ** 2, SIG["cycle_sigma"] ** 2, SIG["ar_sigma"] ** 2,
                 SIG["cycle_frequency"], SIG["cycle_damping"], *SIG["ar_coeffs"]]
    assert uc.param_names == ["sigma2.irregular", "sigma2.level", "sigma2.trend",
                              "sigma2.seasonal", "sigma2.freq_seasonal_12(2)", "sigma2.cycle",
                              "sigma2.ar", "frequency.cycle", "damping.cycle", "ar.L1", "ar.L2"]
    return uc, sm_params


def test_matrices_equal_unobserved_components():
    y = _rng_data(40)
    model = _full_model()
    s = model.system(SIG, 40)
    uc, sm_params = _full_uc(y)
    A, B, C, R = _uc_matrices(uc, sm_params)
    np.testing.assert_allclose(s.A, A, atol=1e-14)
    np.testing.assert_allclose(s.B @ s.B.T, B @ B.T, atol=1e-14)
    np.testing.assert_allclose(s.C, C, atol=1e-14)
    np.testing.assert_allclose(s.R, R, atol=1e-14)
    assert s.A.shape == (15 - 2, 15 - 2) and len(model.state_names) == 13
    # statsmodels' default initialisation: all diffuse but the AR block (stationary); the
    # damped cycle is stationary here (statsmodels starts it diffuse)
    expected = np.ones(13, bool)
    expected[9:13] = False
    np.testing.assert_array_equal(s.diffuse, expected)
    assert bool(s.ok)


def test_likelihood_and_smoother_equal_statsmodels_with_a_known_prior():
    """Same initial distribution on both sides (a proper prior), 10 % of y missing."""
    T = 60
    y = _rng_data(T, seed=1)
    model = _full_model()
    s = model.system(SIG, T)
    N = s.A.shape[0]
    P0 = np.asarray(s.u0_cov) + np.diag(np.where(s.diffuse, 4.0, 0.0))
    m0 = np.linspace(-1, 1, N)
    d = nss.KalmanLGSS(s.A, s.B, s.C, s.R, m0, P0, T)
    uc, sm_params = _full_uc(y)
    uc.update(np.asarray(sm_params, float))
    A, B = np.asarray(s.A), np.asarray(s.B)
    uc.ssm.initialize_known(A @ m0, A @ P0 @ A.T + B @ B.T)
    res = uc.ssm.smooth()
    np.testing.assert_allclose(d.log_prob(y[:, None]), res.llf, rtol=1e-10)
    sm = d.smooth(y[:, None])
    np.testing.assert_allclose(sm.smoothed_means[1:], res.smoothed_state.T, rtol=1e-8, atol=1e-8)
    parts = model.components_of(sm.smoothed_means[1:])
    np.testing.assert_allclose(parts["trend"], res.smoothed_state[0], atol=1e-8)
    np.testing.assert_allclose(parts["freq_seasonal"],
                               res.smoothed_state[5] + res.smoothed_state[7], atol=1e-8)
    assert set(parts) == {"trend", "seasonal", "freq_seasonal", "cycle", "ar"}


def test_pacf_to_ar_matches_statsmodels_constraint():
    x = np.array([0.8, -1.7, 0.4, 2.5])
    # statsmodels (Monahan 1984) maps x to r = x / sqrt(1 + x^2) and runs Durbin-Levinson on
    # -r: the partial autocorrelations (the last coefficient of each order) are -r
    pacf = -x / np.sqrt(1 + x ** 2)
    np.testing.assert_allclose(st.pacf_to_ar(pacf), constrain_stationary_univariate(x),
                               rtol=1e-12)
    np.testing.assert_allclose(st.pacf_to_ar(pacf)[-1], pacf[-1])
    roots = np.roots(np.r_[1, -np.asarray(st.pacf_to_ar(pacf))])
    assert np.all(np.abs(roots) < 1)


def test_unstable_ar_and_dummy_seasonal_rows():
    s = st.StructuralModel((st.Autoregressive(2),)).system({"ar_coeffs": jnp.array([1.2, 0.1]), "ar_sigma": 1.0}, 5)
    assert not bool(s.ok)
    A = st.StructuralModel((st.Seasonal(5, stochastic=False),)).system({}, 3).A
    np.testing.assert_array_equal(A[0], -np.ones(4))
    np.testing.assert_array_equal(A[1:], np.eye(4)[:-1])


def test_gradient_through_system_matches_finite_differences():
    T = 30
    y = _rng_data(T, seed=2)[:, None]
    model = st.SmoothTrend() + st.Cycle() + st.MeasurementError()

    def loglik(theta):
        p = {"trend_slope_sigma": theta[0], "cycle_sigma": theta[1], "cycle_damping": theta[2],
             "cycle_frequency": theta[3], "irregular_sigma": theta[4]}
        s = model.system(p, T)
        P0 = s.u0_cov + jnp.diag(jnp.where(jnp.asarray(s.diffuse), 10.0, 0.0))
        return nss.KalmanLGSS(s.A, s.B, s.C, s.R, s.u0_mean, P0, T).log_prob(y)

    loglik = jax.jit(loglik)
    theta = jnp.array([0.3, 0.5, 0.8, 0.7, 1.1])
    g = jax.grad(loglik)(theta)
    fd = central_difference(loglik, theta)
    np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("make, message", [
    (lambda: st.Seasonal(1), "period must be at least 2"),
    (lambda: st.Level() + st.Level(), "component names must be unique"),
    (lambda: st.Level() + 3, "unsupported operand"),
    (lambda: st.Regression(np.ones((4, 2, 2))), r"X must be \(T, k\)"),
    (lambda: st.Regression(np.array([1.0, np.nan])), "X must be finite"),
    (lambda: st.Cycle(damped=True, stochastic=False), "damped cycle without shocks"),
    (lambda: st.Autoregressive(0), "order must be a positive int"),
    (lambda: st.StructuralModel((st.Level(),)).system({}, 3), "parameter 'level_sigma'"),
    (lambda: st.StructuralModel((st.Level(),)).system({"level_sigma": jnp.ones(2)}, 3),
     r"must have shape \(\)"),
    (lambda: st.StructuralModel((st.Regression(np.ones((4, 1))),)).system({"beta": jnp.ones(1)}, 5),
     "has 4 rows; the model has num_timesteps = 5"),
])
def test_bad_input_is_refused_by_name(make, message):
    with pytest.raises((ValueError, TypeError), match=message):
        make()


# -- the must-show: trend + seasonal + regression on macrodata, 10 % missing, exact diffuse --
def _macro():
    from statsmodels.datasets import macrodata  # bundled with statsmodels: no download
    df = macrodata.load_pandas().data
    y = 100 * np.log(df["realcons"].to_numpy())
    X = df[["unemp", "infl"]].to_numpy()
    rng = np.random.default_rng(24)
    y[rng.choice(len(y), size=len(y) // 10, replace=False)] = np.nan
    return y, X


MACRO = {"trend_level_sigma": 0.6, "trend_slope_sigma": 0.05, "seasonal_sigma": 0.1,
         "beta": np.array([-0.4, 0.05]), "irregular_sigma": 0.3}


def _macro_uc(y, X, time_varying):
    """Our parameters, statsmodels' model and its parameter vector for the macrodata model."""
    params = dict(MACRO)
    uc = UnobservedComponents(y, level=True, trend=True, stochastic_level=True,
                              stochastic_trend=True, seasonal=4, exog=X, irregular=True,
                              use_exact_diffuse=True, mle_regression=not time_varying)
    sm_params = [MACRO["irregular_sigma"] ** 2, MACRO["trend_level_sigma"] ** 2,
                 MACRO["trend_slope_sigma"] ** 2, MACRO["seasonal_sigma"] ** 2]
    if time_varying:  # statsmodels' regression states are constant: our sigma = 0
        params = {k: v for k, v in params.items() if k != "beta"}
        params["beta_sigma"] = np.zeros(2)
    else:
        sm_params += list(MACRO["beta"])
    return params, uc, sm_params


@pytest.mark.parametrize("time_varying", [False, True])
def test_macrodata_trend_seasonal_regression_equals_unobserved_components(time_varying):
    y, X = _macro()
    T = len(y)
    reg = st.Regression(X, time_varying=time_varying, names=("unemp", "infl"))
    model = st.LocalLinearTrend() + st.Seasonal(4) + reg + st.MeasurementError()
    params, uc, sm_params = _macro_uc(y, X, time_varying)
    res = uc.smooth(sm_params)
    d = model.distribution(params, T)
    np.testing.assert_allclose(d.log_prob(y[:, None]), res.llf, rtol=1e-10)
    smoothed = d.smooth(y[:, None]).smoothed_means[1:]
    np.testing.assert_allclose(smoothed, res.smoothed_state.T, rtol=1e-8, atol=1e-8)
    parts = model.components_of(smoothed, params)
    np.testing.assert_allclose(parts["trend"], res.level.smoothed, rtol=1e-8)
    np.testing.assert_allclose(parts["seasonal"], res.seasonal.smoothed, rtol=1e-8, atol=1e-8)
    if not time_varying:
        np.testing.assert_allclose(parts["beta"], X @ MACRO["beta"], rtol=1e-12)
    # per-step terms (ArviZ' log_likelihood group): statsmodels' llf_obs, diffuse steps too;
    # with a burn-in the burned steps are 0 and the terms add up to log_prob
    terms = np.asarray(pointwise_log_likelihood(d, y[:, None]))
    # with the regression as 2 more diffuse states (7 in all, coefficients barely identified
    # in the first years) the two diffuse filters' per-step terms differ by up to 8e-8 (their
    # sum by 2e-8): round-off of statsmodels' Koopman-Durbin collapse against the augmented form
    np.testing.assert_allclose(terms, res.llf_obs, rtol=0, atol=2e-7 if time_varying else 1e-8)
    burned = model.distribution(params, T, loglikelihood_burn=8)
    terms = np.asarray(pointwise_log_likelihood(burned, y[:, None]))
    assert not np.any(terms[:8])
    # two routes of ours (the per-step terms summed, the filter's running sum): with the 7
    # diffuse states the optimised build (-O3) puts them 2.3e-8 apart (1.1e-10 relative), the
    # size of the diffuse steps' round-off above
    np.testing.assert_allclose(terms.sum(), burned.log_prob(y[:, None]),
                               rtol=1e-9 if time_varying else 1e-10)
    # standardised residuals: statsmodels' after its diffuse steps, NaN during them
    e = np.asarray(standardized_residuals(d, y[:, None]))[:, 0]
    want = res.filter_results.standardized_forecasts_error[0]
    assert np.all(np.isnan(e[:res.nobs_diffuse]))
    np.testing.assert_array_equal(np.isnan(e[res.nobs_diffuse:]), np.isnan(y[res.nobs_diffuse:]))
    ok = np.isfinite(e)
    np.testing.assert_allclose(e[ok], want[ok], rtol=1e-8, atol=1e-10)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:Estimated shape parameter of Pareto")  # 20 draws
def test_nuts_and_loo_on_the_macrodata_model():
    """The NumPyro helper (default priors) under NUTS, then ArviZ: per-step terms that sum to
    the likelihood at a draw and az.loo. (The default run does the same through
    examples/structural.py in short mode, test_workflow.)"""
    import arviz as az
    import numpyro
    from numpyro.infer import MCMC, NUTS
    from numpyro_statespace import arviz as nss_az

    y, X = _macro()
    model = (st.LocalLinearTrend() + st.Seasonal(4) + st.Regression(X, names=("unemp", "infl"))
             + st.MeasurementError())

    def numpyro_model(y):
        model.sample(y)

    mcmc = MCMC(NUTS(numpyro_model, init_strategy=numpyro.infer.init_to_median),
                num_warmup=40, num_samples=20, progress_bar=False)
    mcmc.run(jax.random.key(0), y)
    idata = nss_az.to_inference_data(mcmc, y=y[:, None], syms=model.state_names)
    ll = idata.log_likelihood["y"].values
    assert ll.shape == (1, 20, len(y))
    draw = {k: v[0, 7] for k, v in mcmc.get_samples(group_by_chain=True).items()}
    d = model.distribution(draw, len(y))
    np.testing.assert_allclose(ll[0, 7].sum(), d.log_prob(y[:, None]), rtol=1e-9)
    loo = az.loo(idata)
    assert np.isfinite(loo.elpd_loo) and loo.n_data_points == len(y)
    assert list(idata.observed_data["state"].values) == list(model.state_names)


@pytest.mark.parametrize("time_varying", [False, True])
def test_forecast_with_future_regressors_equals_statsmodels(time_varying):
    y, X = _macro()
    y, X, X_future = y[:-8], X[:-8], X[-8:]
    model = (st.LocalLinearTrend() + st.Seasonal(4) + st.Regression(X, time_varying=time_varying)
             + st.MeasurementError())
    params, uc, sm_params = _macro_uc(y, X, time_varying)
    want = uc.filter(sm_params).get_forecast(8, exog=X_future)
    f = model.forecast(params, y, 8, X=X_future)
    np.testing.assert_allclose(f.obs_means[:, 0], want.predicted_mean, rtol=1e-9)
    np.testing.assert_allclose(f.obs_covs[:, 0, 0], want.var_pred_mean, rtol=1e-7)
    with pytest.raises(ValueError, match="forecast needs the future regressors"):
        model.forecast(params, y, 8)
    with pytest.raises(ValueError, match=r"must have shape \(steps, k\) = \(8, 2\)"):
        model.forecast(params, y, 8, X=X_future[:3])
