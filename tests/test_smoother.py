"""Smoother, simulation smoother, forecasts and impulse responses (``kernels/smoother.py``).

References:

* statsmodels' ``KalmanSmoother.smooth()``. Our ``u_0`` is the state *before* the first
  transition and is never observed, so statsmodels is run on ``y`` with a fully missing row
  prepended and initialised with ``(m0, P0)``: its state ``t`` is then our ``u_t`` for
  ``t = 0..T`` (``u_0`` included), and its ``smoothed_state_autocov[..., t]``
  (``Cov(alpha_{t+1}, alpha_t)``) is our ``cross_covs[t]`` (``Cov(u_{t+1}, u_t)``). The other
  setup, ``initialize_known(A m0, A P0 A' + B B')`` on ``y`` itself (statsmodels' state ``t`` is
  our ``u_{t+1}``), is checked too.
* a dense joint Gaussian of ``(u_0..u_T, y_1..y_T)`` conditioned by plain linear algebra;
* NumPy loops for forecasts and impulse responses; central finite differences for gradients.

To keep the suite fast on 2 cores the kernels are jitted once at module level and the tests
share two model shapes (each new shape is a new compilation): a random model with ``K < N < M``
(always called with an explicit mask) and a DSGE-style singular model (``mask=None``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.linalg import solve_discrete_lyapunov

from numpyro_statespace.kernels import smoother as sm
import _reference
from _reference import (central_difference, np_quadratic, simulate, stable_matrix,
                        statsmodels_filter)


_rts = jax.jit(sm.rts_smoother)
_details = jax.jit(sm.filter_details)
_sim = jax.jit(sm.simulation_smoother, static_argnames="num_samples")


def assert_close(actual, expected, **kw):
    """``_reference.assert_close`` (rtol 1e-8, absolute floor 1e-10 of the largest entry for
    entries that cancel to ~0) of a finite ``actual``."""
    assert np.all(np.isfinite(np.asarray(actual)))
    _reference.assert_close(actual, expected, **kw)


# ---------------------------------------------------------------------------------------------
# models
# ---------------------------------------------------------------------------------------------

def random_model(seed, N=3, K=2, M=4, T=40, frac=0.2):
    """Shape shared by every random-model test: K < N < M; NaN at a fraction ``frac`` of the
    entries plus one all-missing step."""
    m = _reference.random_model(seed, N, K, M, T, missing=frac)
    m["y"][T // 2] = np.nan
    return tuple(m.values())


def dsge_model(seed, P0_kind, T=30, frac=0.25):
    """N = 3 states, K = 1 shock, M = 2 observables, the first without measurement error.

    With ``P0 = 0`` (a known initial state) ``P_{t|t-1}`` starts at rank 1 and its rank grows by
    one only when the exact observable is missing: the exact observable is missing at one step
    (where everything is), so every predicted covariance is singular (rank 1 or 2) and a
    smoother that inverts ``P_{t+1|t}`` breaks down. The noisy observable misses ``frac``.
    """
    rng = np.random.default_rng(seed)
    N, K, M = 3, 1, 2
    A = stable_matrix(rng, N, 0.95)
    B = rng.standard_normal((N, K))
    C = rng.standard_normal((M, N))
    R = np.diag([0.0, 0.3])
    m0 = rng.standard_normal(N)
    P0 = np.zeros((N, N)) if P0_kind == "zero" else solve_discrete_lyapunov(A, B @ B.T)
    y = simulate(rng, A, B, C, R, m0, P0, T)
    y[rng.uniform(size=T) < frac, 1] = np.nan
    y[T // 2] = np.nan
    return A, B, C, R, m0, P0, y


# ---------------------------------------------------------------------------------------------
# references
# ---------------------------------------------------------------------------------------------

def statsmodels_smooth(A, B, C, R, m0, P0, y, prepend=True):
    if prepend:  # a fully missing row for u_0, initialised at (m0, P0)
        y = np.vstack([np.full((1, y.shape[1]), np.nan), y])
    res = statsmodels_filter(A, B, C, R, m0, P0, y, prior_of="u1" if prepend else "u0",
                             smooth=True)
    names = dict(means="smoothed_state", covs="smoothed_state_cov",
                 autocovs="smoothed_state_autocov", filt_means="filtered_state",
                 filt_covs="filtered_state_cov", pred_means="predicted_state",
                 pred_covs="predicted_state_cov", innovations="forecasts_error",
                 innovation_covs="forecasts_error_cov", llf_obs="llf_obs")
    # statsmodels' time axis last, ours first
    return {k: np.moveaxis(np.asarray(getattr(res, v)), -1, 0) for k, v in names.items()}


def dense_posterior(A, B, C, R, m0, P0, y):
    """Moments of ``(u_0..u_T) | y`` by conditioning the joint Gaussian directly: means
    ``(T+1, N)``, the diagonal blocks ``Cov(u_t, u_t)`` and the first sub-diagonal blocks
    ``Cov(u_t, u_{t-1})`` of the path covariance."""
    T, M = y.shape
    N, K = B.shape
    # X = mu + G xi with xi = (u_0 - m0, w_1..w_T) ~ N(0, blockdiag(P0, I))
    G = np.zeros(((T + 1) * N, N + T * K))
    mu = np.zeros((T + 1) * N)
    for t in range(T + 1):
        At = np.linalg.matrix_power(A, t)
        G[t * N:(t + 1) * N, :N] = At
        mu[t * N:(t + 1) * N] = At @ m0
        for j in range(1, t + 1):
            G[t * N:(t + 1) * N, N + (j - 1) * K:N + j * K] = np.linalg.matrix_power(A, t - j) @ B
    Xi = np.zeros((N + T * K,) * 2)
    Xi[:N, :N] = P0
    Xi[N:, N:] = np.eye(T * K)
    S_xx = G @ Xi @ G.T
    Cbig = np.kron(np.eye(T), C)                          # y = Cbig X[N:] + v
    S_xy = S_xx[:, N:] @ Cbig.T
    S_yy = Cbig @ S_xx[N:, N:] @ Cbig.T + np.kron(np.eye(T), R)
    obs = ~np.isnan(y.ravel())
    gain = np.linalg.solve(S_yy[np.ix_(obs, obs)], S_xy[:, obs].T).T
    resid = y.ravel()[obs] - (Cbig @ mu[N:])[obs]
    mean = mu + gain @ resid
    c = (S_xx - gain @ S_xy[:, obs].T).reshape(T + 1, N, T + 1, N)
    diag = np.stack([c[t, :, t] for t in range(T + 1)])
    sub = np.stack([c[t, :, t - 1] for t in range(1, T + 1)])
    return mean.reshape(T + 1, N), diag, sub


def compare_statsmodels(model, mask=None):
    A, B, C, R, m0, P0, y = model
    T, N = y.shape[0], A.shape[0]
    ours = _rts(A, B, C, R, m0, P0, y, mask)
    assert bool(ours.ok)
    assert ours.smoothed_means.shape == (T + 1, N)
    assert ours.smoothed_covs.shape == (T + 1, N, N)
    assert ours.cross_covs.shape == (T, N, N)
    ref = statsmodels_smooth(*model)
    assert_close(ours.smoothed_means, ref["means"])
    assert_close(ours.smoothed_covs, ref["covs"])
    assert_close(ours.cross_covs, ref["autocovs"][:T])
    # the setup without the prepended row: statsmodels' state t is our u_{t+1}
    ref2 = statsmodels_smooth(*model, prepend=False)
    assert_close(ours.smoothed_means[1:], ref2["means"])
    assert_close(ours.smoothed_covs[1:], ref2["covs"])
    assert_close(ours.cross_covs[1:], ref2["autocovs"][:T - 1])
    return ours, ref


# ---------------------------------------------------------------------------------------------
# smoother vs statsmodels and vs the dense posterior
# ---------------------------------------------------------------------------------------------

# The random-model tests pass the mask explicitly (NaN entries included): one compilation for
# the shape; the DSGE-style tests cover mask=None.
def with_mask(model):
    return model + (~np.isnan(model[-1]),)


@pytest.mark.parametrize("seed, frac", [(1, 0.15), (2, 0.30), (3, 0.0)])
def test_smoother_matches_statsmodels(seed, frac):
    model = random_model(seed, frac=frac)
    ours, _ = compare_statsmodels(model, mask=~np.isnan(model[-1]))
    # and the dense joint Gaussian
    mean, diag, sub = dense_posterior(*model)
    assert_close(ours.smoothed_means, mean, rtol=1e-9)
    assert_close(ours.smoothed_covs, diag, rtol=1e-9)
    assert_close(ours.cross_covs, sub, rtol=1e-9)


def test_variances_vector_R_equals_the_diagonal_matrix():
    """R as its (M,) variances, as the filter accepts it: the same smoother, draws and
    forecasts as the diagonal matrix (once the vector broadcast along the rows of the
    matrices it was added to, and a wrong smoother came back without an error)."""
    A, B, C, R, m0, P0, y = random_model(5)
    R = np.diag(np.diag(R))
    variances = np.diag(R)
    ref = sm.rts_smoother(A, B, C, R, m0, P0, y)
    ours = sm.rts_smoother(A, B, C, variances, m0, P0, y)
    for a, b in zip(ours, ref):
        assert_close(a, b, rtol=1e-12)
    key = jax.random.key(3)
    assert_close(sm.simulation_smoother(key, A, B, C, variances, m0, P0, y, 2),
                 sm.simulation_smoother(key, A, B, C, R, m0, P0, y, 2), rtol=1e-12)
    m_T, P_T = ref.smoothed_means[-1], ref.smoothed_covs[-1]
    for a, b in zip(sm.forecast(A, B, C, variances, m_T, P_T, 3),
                    sm.forecast(A, B, C, R, m_T, P_T, 3)):
        assert_close(a, b, rtol=1e-12)


@pytest.mark.parametrize("P0_kind", ["zero", "stationary"])
def test_singular_dsge_model(P0_kind):
    model = dsge_model(7, P0_kind)
    A, B, C, R, m0, P0, y = model
    T, N = y.shape[0], A.shape[0]
    ours, ref = compare_statsmodels(model)
    ranks = [np.linalg.matrix_rank(P, tol=1e-9 * np.max(np.abs(P)))
             for P in ref["pred_covs"][1:T + 1]]        # P_{t|t-1}, t = 1..T
    if P0_kind == "zero":
        # the case a plain RTS gain P_t A' P_{t+1|t}^{-1} cannot handle
        assert max(ranks) < N
    # and the dense posterior agrees too (it inverts only Cov(y_obs))
    mean, diag, sub = dense_posterior(*model)
    assert_close(ours.smoothed_means, mean, rtol=1e-7, atol_rel=1e-9)
    assert_close(ours.smoothed_covs, diag, rtol=1e-6, atol_rel=1e-9)
    assert_close(ours.cross_covs, sub, rtol=1e-6, atol_rel=1e-9)
    # the observable without measurement error is reproduced exactly where observed
    obs = ~np.isnan(y[:, 0])
    fitted = np.asarray(ours.smoothed_means[1:]) @ C[0]
    np.testing.assert_allclose(fitted[obs], y[obs, 0], rtol=1e-9, atol=1e-9)


def test_filter_details_matches_statsmodels_and_filter():
    model = random_model(1, frac=0.15)
    A, B, C, R, m0, P0, y = model
    T, M = y.shape
    d = _details(*with_mask(model))
    ref = statsmodels_smooth(*model, prepend=False)
    assert_close(d.filtered_means[1:], ref["filt_means"])
    assert_close(d.filtered_covs[1:], ref["filt_covs"])
    assert_close(d.log_likelihoods, ref["llf_obs"])
    assert float(d.log_likelihood) == pytest.approx(float(np.sum(ref["llf_obs"])), rel=1e-10)
    assert float(d.log_likelihood) == pytest.approx(float(_rts(*with_mask(model)).log_likelihood),
                                                     rel=1e-14)
    # predicted moments: index 0 is the prior, statsmodels' predicted t is our t + 1
    np.testing.assert_array_equal(np.asarray(d.predicted_means[0]), m0)
    np.testing.assert_array_equal(np.asarray(d.predicted_covs[0]), P0)
    assert_close(d.predicted_means[1:], ref["pred_means"][:T])
    assert_close(d.predicted_covs[1:], ref["pred_covs"][:T])
    assert_close(d.predicted_obs[1:], ref["pred_means"][:T] @ C.T)
    obs = ~np.isnan(y)
    np.testing.assert_array_equal(np.asarray(d.observed), obs)
    innov = np.asarray(d.innovations)
    assert np.all(innov[~obs] == 0.0)
    assert_close(innov[obs], ref["innovations"][obs])
    # innovation covariance: C P C' + R for every entry; statsmodels reports the observed block
    F = np.asarray(d.innovation_covs)
    assert F.shape == (T, M, M)
    assert_close(F, np.einsum("mi,tij,nj->tmn", C, ref["pred_covs"][:T], C) + R)
    for t in range(T):
        o = obs[t]
        if o.any():
            assert_close(F[t][np.ix_(o, o)], ref["innovation_covs"][t][np.ix_(o, o)])


def test_mask_equals_nan():
    A, B, C, R, m0, P0, y = random_model(2, frac=0.3)
    missing = np.isnan(y)
    filled = np.where(missing, 123.0, y)     # any value: the mask hides it
    nan_and_mask = _rts(A, B, C, R, m0, P0, y, ~missing)
    mask_only = _rts(A, B, C, R, m0, P0, filled, ~missing)
    for a, b in zip(nan_and_mask, mask_only):
        assert_close(a, b, rtol=1e-13, atol_rel=1e-14)


def test_no_observations_is_the_prior():
    A, B, C, R, m0, P0, y = random_model(3)
    res = _rts(A, B, C, R, m0, P0, y, np.zeros(y.shape, bool))
    prior_means = np.stack([np.linalg.matrix_power(A, t) @ m0 for t in range(y.shape[0] + 1)])
    assert_close(res.smoothed_means, prior_means, rtol=1e-12)
    assert float(res.log_likelihood) == 0.0


# ---------------------------------------------------------------------------------------------
# simulation smoother
# ---------------------------------------------------------------------------------------------

def check_draws(draws, res, n_se=5.0):
    """Monte Carlo check of mean, covariance and lag-one cross-covariance of draws.

    Standard errors of a sample mean and of a sample covariance entry of a Gaussian:
    ``sqrt(V_ii / n)`` and ``sqrt((V_ii V_jj + V_ij^2) / n)``; a tiny absolute floor covers the
    directions the data pin down exactly (variance ~ 0, draws exact up to round-off).
    """
    draws = np.asarray(draws)
    n = draws.shape[0]
    mean, V, X = (np.asarray(a) for a in (res.smoothed_means, res.smoothed_covs, res.cross_covs))
    floor = 1e-8 * max(1.0, np.max(np.abs(V)))
    var = np.diagonal(V, axis1=-2, axis2=-1)                               # (T+1, N)
    assert np.all(np.abs(draws.mean(0) - mean) <= n_se * np.sqrt(var / n) + floor)
    centred = draws - draws.mean(0)
    S = np.einsum("sti,stj->tij", centred, centred) / (n - 1)
    se = np.sqrt((var[:, :, None] * var[:, None, :] + V**2) / n)
    assert np.all(np.abs(S - V) <= n_se * se + floor)
    Sx = np.einsum("sti,stj->tij", centred[:, 1:], centred[:, :-1]) / (n - 1)
    se_x = np.sqrt((var[1:, :, None] * var[:-1, None, :] + X**2) / n)
    assert np.all(np.abs(Sx - X) <= n_se * se_x + floor)


def test_simulation_smoother_moments_singular_model():
    """4000 draws on the DSGE-style model with P0 = 0 (singular P_{t|t-1} throughout)."""
    model = dsge_model(7, "zero")
    A, B, C, R, m0, P0, y = model
    n = 4000
    draws = _sim(jax.random.key(0), *model, num_samples=n)
    assert draws.shape == (n, y.shape[0] + 1, 3)
    assert np.all(np.isfinite(np.asarray(draws)))
    res = _rts(*model)
    check_draws(draws, res)
    # every draw starts at the known u_0 and reproduces the exact observable
    np.testing.assert_allclose(np.asarray(draws[:, 0]), np.broadcast_to(m0, (n, 3)), atol=1e-12)
    obs = ~np.isnan(y[:, 0])
    fitted = np.asarray(draws[:, 1:]) @ C[0]
    np.testing.assert_allclose(fitted[:, obs], np.broadcast_to(y[obs, 0], (n, obs.sum())),
                               atol=1e-8)


def test_simulation_smoother_moments_regular_model():
    model = dsge_model(8, "stationary")
    draws = _sim(jax.random.key(1), *model, num_samples=4000)
    check_draws(draws, _rts(*model))
    # same key, same draws; different key, different draws
    again = _sim(jax.random.key(1), *model, num_samples=4000)
    np.testing.assert_array_equal(np.asarray(draws), np.asarray(again))


# ---------------------------------------------------------------------------------------------
# forecasts and impulse responses
# ---------------------------------------------------------------------------------------------

def test_forecast_analytic():
    A, B, C, R, m0, P0, y = random_model(4)
    res = _rts(*with_mask((A, B, C, R, m0, P0, y)))
    d = _details(*with_mask((A, B, C, R, m0, P0, y)))
    m_T, P_T = np.asarray(d.filtered_means[-1]), np.asarray(d.filtered_covs[-1])
    steps = 7
    fc = jax.jit(sm.forecast, static_argnames="steps")(A, B, C, R, m_T, P_T, steps=steps)
    Q = B @ B.T
    for h in range(1, steps + 1):
        Ah = np.linalg.matrix_power(A, h)
        powers = [np.linalg.matrix_power(A, j) for j in range(h)]
        cov = Ah @ P_T @ Ah.T + sum(Aj @ Q @ Aj.T for Aj in powers)
        assert_close(fc.state_means[h - 1], Ah @ m_T, rtol=1e-12)
        assert_close(fc.state_covs[h - 1], cov, rtol=1e-12)
        assert_close(fc.obs_means[h - 1], C @ Ah @ m_T, rtol=1e-12)
        assert_close(fc.obs_covs[h - 1], C @ cov @ C.T + R, rtol=1e-12)
    # the last smoothed moments equal the last filtered ones
    assert_close(res.smoothed_means[-1], m_T, rtol=1e-12)
    assert_close(res.smoothed_covs[-1], P_T, rtol=1e-12)


def test_impulse_response_linear():
    A, B, C, *_ = random_model(5)
    steps = 12
    for shock in [0, 1]:
        out = sm.impulse_response(A, B, C, steps, shock)
        u = B[:, shock].copy()
        for t in range(steps):
            assert_close(out.states[t], u, rtol=1e-13, atol_rel=1e-14)
            assert_close(out.observables[t], C @ u, rtol=1e-13, atol_rel=1e-14)
            u = A @ u
    s = np.array([0.3, -2.0])
    out = sm.impulse_response(A, B, C, steps, s)
    every = sm.impulse_response(A, B, C, steps)
    assert every.states.shape == (2, steps, 3) and every.observables.shape == (2, steps, 4)
    # linear: the response to a vector of shocks is the combination of unit responses
    assert_close(out.states, np.tensordot(s, np.asarray(every.states), 1), rtol=1e-12)
    assert_close(out.observables, np.tensordot(s, np.asarray(every.observables), 1), rtol=1e-12)
    with pytest.raises(ValueError, match="shock"):
        sm.impulse_response(A, B, C, steps, 2)
    with pytest.raises(ValueError, match="shock"):
        sm.impulse_response(A, B, C, steps, np.ones(3))
    with pytest.raises(ValueError, match="steps"):
        sm.impulse_response(A, B, C, -1, 0)


def pruned_model(seed=6, N=3, K=2, M=2):
    rng = np.random.default_rng(seed)
    return dict(A_0=0.01 * rng.standard_normal(N), A_1=stable_matrix(rng, N, 0.8),
                A_2=0.1 * rng.standard_normal((N, N, N)), B=rng.standard_normal((N, K)),
                C_0=rng.standard_normal(M), C_1=rng.standard_normal((M, N)),
                C_2=0.1 * rng.standard_normal((M, N, N)))


def pruned_path_numpy(p, u0, noise):
    """``u_1..u_T`` and ``z_1..z_T`` of the pruned model (``_reference.np_quadratic``)."""
    args = [p[k] for k in ("A_0", "A_1", "A_2", "B", "C_0", "C_1", "C_2")]
    return [x[1:] for x in np_quadratic(*args, u0, noise, len(noise), pruned=True)]


@pytest.mark.parametrize("shock", [1, "vector"])
def test_impulse_response_pruned(shock):
    p = pruned_model()
    steps = 10
    u0 = np.array([0.2, -0.1, 0.05])
    w1 = np.array([0.0, 1.0]) if shock == 1 else np.array([-1.5, 0.7])
    noise = np.zeros((steps, 2))
    noise[0] = w1
    u_s, z_s = pruned_path_numpy(p, u0, noise)
    u_b, z_b = pruned_path_numpy(p, u0, 0 * noise)
    arg = shock if shock == 1 else w1
    out = sm.impulse_response_pruned(**p, steps=steps, shock=arg, u0=u0)
    assert_close(out.states, u_s - u_b, rtol=1e-12, atol_rel=1e-13)
    assert_close(out.observables, z_s - z_b, rtol=1e-12, atol_rel=1e-13)


def test_impulse_response_pruned_reduces_to_linear():
    p = pruned_model()
    p.update(A_2=0 * p["A_2"], C_2=0 * p["C_2"])
    pruned = sm.impulse_response_pruned(**p, steps=8)        # all shocks, u0 = 0
    linear = sm.impulse_response(p["A_1"], p["B"], p["C_1"], 8)
    assert pruned.states.shape == (2, 8, 3)
    assert_close(pruned.states, linear.states, rtol=1e-12, atol_rel=1e-14)
    assert_close(pruned.observables, linear.observables, rtol=1e-12, atol_rel=1e-14)


# ---------------------------------------------------------------------------------------------
# transformations: grad, vmap
# ---------------------------------------------------------------------------------------------

def test_gradient_of_smoothed_moments_wrt_A_singular_model():
    """Reverse mode vs central finite differences, on the singular model (P0 = 0)."""
    model = dsge_model(7, "zero")
    A, rest = model[0], model[1:]
    rng = np.random.default_rng(0)
    T, N = model[-1].shape[0], 3
    wm = rng.standard_normal((T + 1, N))
    wc = rng.standard_normal((T + 1, N, N))

    def f(A):
        res = _rts(A, *rest)
        return jnp.sum(wm * res.smoothed_means) + jnp.sum(wc * res.smoothed_covs)

    g = np.asarray(jax.jit(jax.grad(f))(A))
    assert np.all(np.isfinite(g))
    fd = central_difference(f, A)
    np.testing.assert_allclose(g, fd, rtol=1e-5, atol=1e-7 * max(1.0, np.max(np.abs(g))))


def test_vmap_over_data_and_mask():
    A, B, C, R, m0, P0, y = random_model(2, frac=0.3)
    ys = np.stack([y, y + 0.5, 2 * y])
    masks = np.stack([~np.isnan(y), np.ones(y.shape, bool), ~np.isnan(y)])
    batched = jax.jit(jax.vmap(sm.rts_smoother, in_axes=(None,) * 6 + (0, 0)))(
        A, B, C, R, m0, P0, np.where(masks, ys, np.nan), masks)
    for i in range(3):
        single = _rts(A, B, C, R, m0, P0, ys[i], masks[i])
        assert_close(batched.smoothed_means[i], single.smoothed_means, rtol=1e-12)
        assert_close(batched.smoothed_covs[i], single.smoothed_covs, rtol=1e-12)
