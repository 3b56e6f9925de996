"""The Kalman filter (``nss.solve(prob, nss.KalmanFilter())`` and ``nss.KalmanLGSS.log_prob``)
against statsmodels' independent implementation: log-likelihood, filtered means, filtered
covariances and predicted observations; missing data as NaN and through ``mask=``.

Timing (``_reference.statsmodels_filter``: statsmodels' initial state is our ``u_1``):
``sol.u[1:]``/``sol.P[1:]`` are statsmodels' ``filtered_state``/``filtered_state_cov`` and
``sol.z[1:]`` is ``C`` times its ``predicted_state[:, :T]``.
"""

import jax
import numpy as np
import pytest

import numpyro_statespace as nss
from numpyro_statespace import kernels
from models import reference_data
from _reference import random_model as _random_model
from _reference import assert_close, dsge_singular
from _reference import statsmodels_filter as _statsmodels_filter

RTOL = 1e-8  # (and _reference.assert_close's absolute floor, 1e-10 of the largest entry)


def statsmodels_filter(A, B, C, R, m0, P0, y):
    T = y.shape[0]
    res = _statsmodels_filter(A, B, C, R, m0, P0, y)
    return dict(
        llf=float(np.sum(res.llf_obs)),
        llf_obs=np.asarray(res.llf_obs),
        means=np.asarray(res.filtered_state).T,                              # (T, N)
        covs=np.moveaxis(np.asarray(res.filtered_state_cov), -1, 0),         # (T, N, N)
        pred_obs=(C @ np.asarray(res.predicted_state)[:, :T]).T,             # (T, M)
    )


# Problems and distributions are pytrees, so the whole solve and log_prob are jitted: one
# compilation per shape, much faster than tracing the scan eagerly.
_solve_kalman = jax.jit(lambda prob: nss.solve(prob, nss.KalmanFilter()))
_log_prob = jax.jit(lambda d, y: d.log_prob(y))


def solve_ours(A, B, C, R, m0, P0, y):
    T = y.shape[0]
    prob = nss.LinearStateSpaceProblem(A, B, np.zeros(A.shape[0]), (0, T), C=C,
                                       observables_noise=R, observables=y,
                                       u0_prior_mean=m0, u0_prior_var=P0)
    return _solve_kalman(prob)


def compare(A, B, C, R, m0, P0, y, distribution=False):
    """``distribution``: also ``KalmanLGSS(...).log_prob(y)`` (a compilation of its own, so
    for the cases where the distribution's own handling matters: missing data, singular R)."""
    sol = solve_ours(A, B, C, R, m0, P0, y)
    ref = statsmodels_filter(A, B, C, R, m0, P0, y)
    T, N = y.shape[0], A.shape[0]
    if distribution:
        log_prob = _log_prob(nss.KalmanLGSS(A, B, C, R, m0, P0, T), y)
        assert log_prob.shape == ()
        np.testing.assert_allclose(float(log_prob), ref["llf"], rtol=RTOL)
        ref = dict(ref, log_prob=float(log_prob))
    assert sol.u.shape == (T + 1, N) and sol.P.shape == (T + 1, N, N)
    assert sol.z.shape == (T + 1, C.shape[0])
    np.testing.assert_allclose(float(sol.logpdf), ref["llf"], rtol=RTOL)
    assert_close(sol.u[1:], ref["means"])
    assert_close(sol.P[1:], ref["covs"])
    assert_close(sol.z[1:], ref["pred_obs"])
    # index 0 is the prior
    np.testing.assert_array_equal(np.asarray(sol.u[0]), m0)
    np.testing.assert_array_equal(np.asarray(sol.P[0]), P0)
    assert_close(sol.z[0], C @ m0, rtol=1e-14, atol_rel=1e-15)
    return sol, ref


def random_model(seed, N, K, M, T, diag_R=False):
    return tuple(_random_model(seed, N, K, M, T, diag_R=diag_R).values())


# --------------------------------------------------------------------------------------------
# the 5-state test model of DifferenceEquations.jl
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("which_R", ["R", "R_offdiag"])
def test_kalman_test_model(which_R):
    d = reference_data.kalman_test_model()
    sol, ref = compare(d["A"], d["B"], d["C"], d[which_R], d["u0_prior_mean"],
                       d["u0_prior_var"], d["observables"])
    assert np.isfinite(float(sol.logpdf))


def test_per_step_loglikelihoods_kernel():
    d = reference_data.kalman_test_model()
    ref = statsmodels_filter(d["A"], d["B"], d["C"], d["R_offdiag"], d["u0_prior_mean"],
                             d["u0_prior_var"], d["observables"])
    res = jax.jit(kernels.kalman_filter)(d["A"], d["B"], d["C"], d["R_offdiag"],
                                         d["u0_prior_mean"], d["u0_prior_var"],
                                         d["observables"])
    assert_close(res.log_likelihoods, ref["llf_obs"])
    assert bool(res.ok)


# --------------------------------------------------------------------------------------------
# random stable models
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "N, K, M, T",
    [
        (1, 1, 1, 1),
        (1, 1, 2, 50),
        (2, 1, 1, 10),      # K < N
        (3, 2, 2, 100),
        (4, 4, 6, 1),       # M > N, single step
        (5, 5, 3, 30),
        (8, 3, 8, 200),
        (10, 2, 12, 60),    # M > N, K << N
        (14, 6, 6, 500),    # FVGQ20-sized
    ],
)
def test_random_models(N, K, M, T):
    compare(*random_model(1000 * N + 10 * M + K, N, K, M, T))


def test_random_model_diagonal_R_vector():
    A, B, C, R, m0, P0, y = random_model(5, 5, 5, 3, 30, diag_R=True)
    sol_vec = solve_ours(A, B, C, np.diag(R), m0, P0, y)
    sol, ref = compare(A, B, C, R, m0, P0, y)
    np.testing.assert_allclose(float(sol_vec.logpdf), ref["llf"], rtol=RTOL)
    d_vec = nss.KalmanLGSS(A, B, C, np.diag(R), m0, P0, y.shape[0])
    np.testing.assert_allclose(float(_log_prob(d_vec, y)), ref["llf"], rtol=RTOL)


def test_dsge_style_singular():
    """K = 1 < N = 3 shocks, one observable without measurement error (R = 0)."""
    A, B, C, R, m0, P0, y = dsge_singular(11, 150).values()  # (test_distributions' model)
    sol, ref = compare(A, B, C, R, m0, P0, y, distribution=True)
    assert np.isfinite(float(sol.logpdf))
    # The observed direction is known exactly after each update: C P_t|t C' = 0.
    CPC = np.einsum("mi,tij,nj->tmn", C, np.asarray(sol.P[1:]), C)
    assert np.max(np.abs(CPC)) < 1e-10 * np.max(np.abs(np.asarray(sol.P)))


# --------------------------------------------------------------------------------------------
# missing data (NaN in observables)
# --------------------------------------------------------------------------------------------

# (shapes shared with test_random_models to save compilations)
@pytest.mark.parametrize("frac, N, K, M, T", [(0.15, 3, 2, 2, 100), (0.30, 5, 5, 3, 30),
                                               (0.30, 1, 1, 2, 50), (0.30, 8, 3, 8, 200)])
def test_missing_observations(frac, N, K, M, T):
    A, B, C, R, m0, P0, y = random_model(int(frac * 100) + N, N, K, M, T)
    rng = np.random.default_rng(99 + N)
    y = y.copy()
    y[rng.uniform(size=y.shape) < frac] = np.nan
    y[T // 2] = np.nan  # one step with every entry missing
    assert 0 < np.isnan(y).mean() < 0.5
    sol, ref = compare(A, B, C, R, m0, P0, y, distribution=True)
    # the all-missing step is a pure prediction: the filtered state is the predicted one
    t = T // 2 + 1  # index into sol.u (u_0 first)
    np.testing.assert_allclose(np.asarray(sol.u[t]), A @ np.asarray(sol.u[t - 1]), rtol=1e-12)
    # the same pattern through mask= (which also gives num_timesteps), with arbitrary finite
    # values at the masked entries, and mask= combined with the NaN data
    observed = ~np.isnan(y)
    d_mask = nss.KalmanLGSS(A, B, C, R, m0, P0, mask=observed)
    assert d_mask.event_shape == (T, M) and d_mask.num_timesteps == T
    y_filled = np.where(observed, y, 1e3 * rng.standard_normal(y.shape))
    assert float(_log_prob(d_mask, y_filled)) == ref["log_prob"]
    assert float(_log_prob(d_mask, y)) == ref["log_prob"]


def test_missing_observations_kalman_test_model():
    d = reference_data.kalman_test_model()
    y = d["observables"].copy()
    rng = np.random.default_rng(2024)
    y[rng.uniform(size=y.shape) < 0.2] = np.nan
    y[0] = np.nan
    y[-1] = np.nan
    compare(d["A"], d["B"], d["C"], d["R_offdiag"], d["u0_prior_mean"], d["u0_prior_var"], y)


def test_all_missing_gives_zero_loglik():
    A, B, C, R, m0, P0, y = random_model(3, 3, 2, 2, 100)
    y = np.full_like(y, np.nan)
    sol, ref = compare(A, B, C, R, m0, P0, y)
    assert float(sol.logpdf) == 0.0


@pytest.mark.parametrize("shapes", [
    ((5, 5), (5, 5)), ((3, 8), (8, 2)), ((9, 4), (4, 4)), ((5, 5), (5,)), ((5,), (5, 3)),
    ((5,), (5,)), ((20, 17), (17,)),
], ids=str)
def test_filter_matmul_matches_numpy(shapes):
    """The filter's products (``linalg.matmul``): a fused product and sum up to 8 (matrices)
    or 16 (vectors) in every dimension, a dot beyond; both as NumPy's ``@``."""
    from numpyro_statespace.kernels.linalg import matmul

    rng = np.random.default_rng(len(str(shapes)))
    a, b = (rng.standard_normal(s) for s in shapes)
    np.testing.assert_allclose(jax.jit(matmul)(a, b), a @ b, rtol=1e-13, atol=1e-13)
