"""State and observation offsets (intercepts, regressors) and a time-varying ``C``.

References: statsmodels' state-space filter and smoother (``state_intercept``,
``obs_intercept``, time-varying ``design``) to 1e-8, NumPy loops, and central finite
differences for the gradients.

Timing (statsmodels' ``state_intercept[:, t]`` enters ``alpha_{t+1}``, our ``c_t`` enters
``u_t``): ``_reference.statsmodels_filter``.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import numpyro_statespace as nss
from _reference import (assert_close, central_difference, np_conditional, np_linear, spd,
                        stable_matrix, statsmodels_filter)

FD_RTOL = 1e-6


def _model(seed, N=3, K=2, M=2, T=30):
    rng = np.random.default_rng(seed)
    return dict(A=stable_matrix(rng, N, 0.8), B=rng.standard_normal((N, K)),
                C=rng.standard_normal((M, N)), R=spd(rng, M, 0.3), m0=rng.standard_normal(N),
                P0=spd(rng, N), c=rng.standard_normal((T, N)), d=rng.standard_normal((T, M)),
                Ct=rng.standard_normal((T, M, N)), y=rng.standard_normal((T, M)) * 3, T=T)


def statsmodels_smoother(m, y, c=None, d=None, C=None, first_state=False):
    """statsmodels' smoother of our model with offsets ``c``, ``d`` and design ``C``."""
    return statsmodels_filter(m["A"], m["B"], m["C"] if C is None else C, m["R"], m["m0"],
                              m["P0"], y, prior_of="u1" if first_state else "u0", smooth=True,
                              state_offset=c, obs_offset=d)


def _ours(m, **kw):
    C = kw.pop("C", m["C"])
    return nss.KalmanLGSS(m["A"], m["B"], C, m["R"], m["m0"], m["P0"], m["T"], **kw)


@pytest.mark.parametrize("case", [
    pytest.param("constant", marks=pytest.mark.slow), "time_varying",
    pytest.param("obs_only", marks=pytest.mark.slow),
    pytest.param("first_state", marks=pytest.mark.slow)])
def test_offsets_match_statsmodels(case):
    m = _model(0)
    y = m["y"].copy()
    y[3, 0] = np.nan  # a missing entry stays missing after the shift
    c, d = m["c"], m["d"]
    if case == "constant":
        c, d = c[0], d[0]
    kw = dict(state_offset=None if case == "obs_only" else c, obs_offset=d)
    first = case == "first_state"
    if first:
        kw["prior_of"] = "u1"
    res = statsmodels_smoother(m, y, c=kw["state_offset"], d=d, first_state=first)
    dist = _ours(m, **kw)
    assert_close(dist.log_prob(y), res.llf)
    f = dist.filter(y)
    assert_close(f.log_likelihood, res.llf)
    assert_close(f.filtered_means[1:], res.filtered_state.T)
    assert_close(f.filtered_covs[1:], np.moveaxis(res.filtered_state_cov, -1, 0))
    assert_close(f.predicted_obs[1:], res.forecasts.T)
    s = dist.smooth(y)
    assert_close(s.smoothed_means[1:], res.smoothed_state.T)
    assert_close(s.smoothed_covs[1:], np.moveaxis(res.smoothed_state_cov, -1, 0))


def test_time_varying_design_matches_statsmodels():
    """Dynamic regression: ``C (T, M, N)``, with offsets and a missing entry."""
    m = _model(1)
    y = m["y"].copy()
    y[5, 1] = np.nan
    res = statsmodels_smoother(m, y, c=m["c"], d=m["d"], C=m["Ct"])
    dist = _ours(m, C=m["Ct"], time_varying_C=True, state_offset=m["c"], obs_offset=m["d"])
    assert_close(dist.log_prob(y), res.llf)
    s = dist.smooth(y)
    assert_close(s.smoothed_means[1:], res.smoothed_state.T)
    assert_close(s.smoothed_covs[1:], np.moveaxis(res.smoothed_state_cov, -1, 0))
    assert_close(dist.filter(y).predicted_obs[1:], res.forecasts.T)
    # impulse responses: u_1 = B e_k, u_t = A u_{t-1}, observed through C_t (no offsets)
    irf = dist.impulse_response(4, 1)
    u = m["B"][:, 1]
    for t in range(4):
        assert_close(irf.states[t], u)
        assert_close(irf.observables[t], m["Ct"][t] @ u)
        u = m["A"] @ u


def test_regressors_as_obs_offset_match_statsmodels_exog():
    """``X beta`` as an observation offset against SARIMAX's ``exog`` (an AR(1) with a
    regression), ``mle_regression``: beta a parameter of the likelihood."""
    import statsmodels.api as sm

    rng = np.random.default_rng(3)
    T = 60
    X = rng.standard_normal((T, 2))
    beta = np.array([1.5, -0.7])
    y = X @ beta + np.cumsum(rng.standard_normal(T)) * 0.3
    phi, s2 = 0.6, 0.4
    mod = sm.tsa.SARIMAX(y, exog=X, order=(1, 0, 0))
    llf = mod.loglike(np.r_[beta, phi, s2])
    dist = nss.KalmanLGSS(jnp.array([[phi]]), jnp.array([[np.sqrt(s2)]]), jnp.eye(1),
                          jnp.zeros(1), jnp.zeros(1), "stationary", T,
                          obs_offset=(X @ beta)[:, None])
    assert_close(dist.log_prob(y[:, None]), llf)


@pytest.mark.slow
def test_routes_agree_with_offsets():
    """The fast route (hand-written adjoint and steady-state tail: N = 8, T = 300), the
    parallel route and the general route (a time-varying ``C``) on the same model."""
    m = _model(2, N=8, K=3, M=2, T=70)
    y = np.asarray(_ours(m, state_offset=m["c"], obs_offset=m["d"]).sample(jax.random.key(0)))
    kw = dict(state_offset=m["c"], obs_offset=m["d"])
    seq = _ours(m, method="sequential", **kw).log_prob(y)
    par = _ours(m, method="parallel", **kw).log_prob(y)
    gen = _ours(m, C=np.broadcast_to(m["C"], (70, 2, 8)), time_varying_C=True, **kw).log_prob(y)
    assert_close(seq, gen, rtol=1e-9)
    assert_close(par, gen, rtol=1e-9)
    assert_close(seq, statsmodels_smoother(m, y, c=m["c"], d=m["d"]).llf)


@pytest.mark.parametrize("route", ["fast", pytest.param("general", marks=pytest.mark.slow)])
def test_offset_gradients_match_finite_differences(route):
    """Gradients in the regression coefficients and the state intercept (and ``A``)."""
    m = _model(4, N=2, K=2, M=2, T=25)
    X = np.random.default_rng(5).standard_normal((25, 2, 3))
    y = m["y"]
    kw = {} if route == "fast" else dict(C=np.broadcast_to(m["C"], (25, 2, 2)),
                                         time_varying_C=True)

    def ll(beta, c, A):
        C = kw.get("C", m["C"])
        dist = nss.KalmanLGSS(A, m["B"], C, m["R"], m["m0"], m["P0"], 25,
                              state_offset=c, obs_offset=jnp.einsum("tmk,k->tm", X, beta),
                              time_varying_C=bool(kw))
        return dist.log_prob(y)

    beta, c = np.array([0.3, -1.0, 2.0]), np.array([0.5, -0.2])
    g = jax.grad(ll, argnums=(0, 1, 2))(beta, c, m["A"])
    np.testing.assert_allclose(g[0], central_difference(lambda b: ll(b, c, m["A"]), beta),
                               rtol=FD_RTOL, atol=1e-7)
    np.testing.assert_allclose(g[1], central_difference(lambda x: ll(beta, x, m["A"]), c),
                               rtol=FD_RTOL, atol=1e-7)
    np.testing.assert_allclose(g[2], central_difference(lambda a: ll(beta, c, a), m["A"]),
                               rtol=FD_RTOL, atol=1e-6)


@pytest.mark.slow
def test_sample_and_posterior_draws_follow_offsets():
    """Without noise the path is the offsets' deterministic path, a NumPy loop."""
    m = _model(6, T=12)
    A, C, c, d = m["A"], m["C"], m["c"], m["d"]
    path = np_linear(A, np.eye(3), None, m["m0"], c, 12)[0][1:]  # u_t = A u_{t-1} + c_t
    y_expected = path @ C.T + d
    dist = nss.KalmanLGSS(A, None, C, np.zeros((2, 2)), m["m0"], np.zeros((3, 3)), 12,
                          state_offset=c, obs_offset=d)
    assert_close(dist.sample(jax.random.key(1)), y_expected, rtol=1e-12)
    # the prior on u_1: u_1 = m0, then c_t + A u_{t-1}; c_1 does not enter
    first = nss.KalmanLGSS(A, None, C, np.zeros((2, 2)), m["m0"], np.zeros((3, 3)), 12,
                           state_offset=c, obs_offset=d, prior_of="u1")
    path1 = np_linear(A, np.eye(3), None, m["m0"], c[1:], 11)[0]
    assert_close(first.sample(jax.random.key(1)), path1 @ C.T + d, rtol=1e-12)
    # posterior draws with a tiny observation noise sit on the path
    noisy = nss.KalmanLGSS(A, None, C, 1e-4 * np.eye(2), m["m0"], np.zeros((3, 3)), 12,
                           state_offset=c, obs_offset=d)
    draws = noisy.posterior_sample(jax.random.key(2), y_expected, 3)
    assert_close(draws[:, 1:], np.broadcast_to(path, (3, 12, 3)), rtol=1e-10)


def test_forecast_with_future_offsets():
    """Forecast means against a NumPy loop from the last filtered state."""
    m = _model(7, T=20)
    A, C = m["A"], m["C"]
    dist = _ours(m, state_offset=m["c"], obs_offset=m["d"])
    y = m["y"]
    c_f, d_f = np.ones((4, 3)), -np.ones((4, 2))
    fc = dist.forecast(y, 4, state_offset=c_f, obs_offset=d_f)
    f = dist.filter(y)
    u, P = np.asarray(f.filtered_means[-1]), np.asarray(f.filtered_covs[-1])
    Q = m["B"] @ m["B"].T
    for h in range(4):
        u, P = c_f[h] + A @ u, A @ P @ A.T + Q
        assert_close(fc.state_means[h], u)
        assert_close(fc.state_covs[h], P)
        assert_close(fc.obs_means[h], C @ u + d_f[h])
    with pytest.raises(ValueError, match="state_offset"):
        dist.forecast(y, 4)  # time-varying: the future offsets are needed


def test_conditional_ss_offsets_match_numpy():
    rng = np.random.default_rng(8)
    N, T = 2, 15
    A, B, C = stable_matrix(rng, N, 0.7), rng.standard_normal((N, N)), rng.standard_normal((N, N))
    R = spd(rng, N, 0.2)
    u0, y = rng.standard_normal(N), rng.standard_normal((T, N))
    c, d = rng.standard_normal((T, N)), rng.standard_normal(N)
    S = C @ B @ B.T @ C.T + R
    expected = np_conditional(lambda x, w, t: d + C @ (c[t] + A @ x), u0, y, None, S)[1]
    dist = nss.ConditionalSS(A, B, R, u0, C, num_timesteps=T, state_offset=c, obs_offset=d)
    assert_close(dist.log_prob(y), expected)
    x = dist.sample(jax.random.key(0), (2,))
    assert x.shape == (2, T, N) and np.all(np.isfinite(x))


def test_bad_offsets_refused_by_name():
    m = _model(9, T=10)
    with pytest.raises(ValueError, match=r"state_offset must have shape \(N,\)"):
        _ours(m, state_offset=np.zeros(4))
    with pytest.raises(ValueError, match=r"obs_offset must have shape.*\(\.\.\., 10, 2\)"):
        _ours(m, obs_offset=np.zeros((9, 2)))
    with pytest.raises(ValueError, match="time_varying_C"):
        _ours(m, C=np.zeros((9, 2, 3)), time_varying_C=True)
    with pytest.raises(ValueError, match="time_varying_C"):
        _ours(m, C=np.zeros((2, 3)), time_varying_C=True)
    with pytest.raises(ValueError, match="method='parallel'"):
        _ours(m, C=np.zeros((10, 2, 3)), time_varying_C=True, method="parallel")
    tv = _ours(m, C=np.zeros((10, 2, 3)), time_varying_C=True, state_offset=np.ones(3))
    with pytest.raises(ValueError, match=r"future design matrices: C of shape \(steps, M, N\)"):
        tv.forecast(m["y"][:10], 2)
    with pytest.raises(ValueError,
                       match=r"state_offset must have shape \(\.\.\., steps, N\) = \(\.\.\., 2, 3\)"):
        tv.forecast(m["y"][:10], 2, state_offset=np.ones((3, 3)), C=np.zeros((2, 2, 3)))
    with pytest.raises(ValueError, match="obs_offset"):
        nss.ConditionalSS(m["A"], None, np.eye(3), m["m0"], num_timesteps=10,
                          obs_offset=np.zeros(2))
