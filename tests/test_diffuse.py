"""Exact diffuse initialisation, the first observed state's prior and the burn-in, against
statsmodels' exact diffuse filter and smoother (Koopman & Durbin 2003) to 1e-8, and central
finite differences for the gradient.

statsmodels' initial state ``alpha_1`` is observed by ``y_1``: ``prior_of="u1"`` is its timing.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import statsmodels.api as sm

import numpyro_statespace as nss
from _reference import assert_close, central_difference, spd, statsmodels_filter



def _unemployment():
    return sm.datasets.macrodata.load_pandas().data["unemp"].to_numpy(float).copy()


def _ucm(y, params):
    """statsmodels' local linear trend + AR(1): trend states diffuse, the AR state stationary
    (a mixed initialisation), at ``params``; returns the model's matrices and its results."""
    mod = sm.tsa.UnobservedComponents(y, "lltrend", autoregressive=1, use_exact_diffuse=True)
    mod.ssm.tolerance = 0.0  # statsmodels' steady-state switch off (it freezes P at 1e-19)
    res = mod.smooth(params)
    ssm = mod.ssm
    A, C = ssm["transition"], ssm["design"]
    B = ssm["selection"] @ np.sqrt(ssm["state_cov"])
    return A, B, C, np.diag(ssm["obs_cov"]), res


PARAMS = np.array([0.05, 0.01, 0.001, 0.2, 0.8])


def _mixed(y, A, B, C, R, **kw):
    return nss.KalmanLGSS(A, B, C, R, jnp.zeros(3), nss.Diffuse(states=[0, 1], cov="stationary"),
                          len(y), prior_of="u1", **kw)


def test_mixed_diffuse_and_stationary_match_statsmodels():
    y = _unemployment()
    y[[10, 11, 50]] = np.nan  # missing data, also inside the smoother's span
    A, B, C, R, res = _ucm(y, PARAMS)
    dist = _mixed(y, A, B, C, R)
    assert res.nobs_diffuse == 2
    assert_close(dist.log_prob(y[:, None]), res.llf)
    s = dist.smooth(y[:, None])
    assert_close(s.log_likelihood, res.llf)
    assert_close(s.smoothed_means[1:], res.smoothed_state.T)
    assert_close(s.smoothed_covs[1:], np.moveaxis(res.smoothed_state_cov, -1, 0))
    # statsmodels' smoothed_state_autocov[..., t] is Cov(alpha_{t+1}, alpha_t | y); it reports
    # zeros for the two diffuse periods, compared after them
    assert_close(s.cross_covs[3:], np.moveaxis(res.smoothed_state_autocov, -1, 0)[2:-1])
    f = dist.filter(y[:, None])
    # once the diffuse part is identified, the filtered moments are statsmodels'
    assert_close(f.filtered_means[3:], res.filtered_state.T[2:])
    assert_close(f.filtered_covs[3:], np.moveaxis(res.filtered_state_cov, -1, 0)[2:])
    assert np.all(np.isnan(f.filtered_means[:2]))
    # per-step terms, the diffuse periods' included, are statsmodels' llf_obs
    assert_close(f.log_likelihoods, res.llf_obs)


def _missing_start():
    y = _unemployment()[:60]
    y[:5] = np.nan
    return y


def test_missing_start_takes_the_general_route():
    """The first five observations missing: the head (N + 1 = 4 steps) cannot identify the
    diffuse part, and the likelihood falls back to the general route over the whole series."""
    y = _missing_start()
    A, B, C, R, res = _ucm(y, PARAMS)
    assert_close(_mixed(y, A, B, C, R).log_prob(y[:, None]), res.llf)


@pytest.mark.slow
def test_missing_start_gradient_matches_finite_differences():
    y = _missing_start()
    A, B, C, R, _ = _ucm(y, PARAMS)

    def ll(s2):
        return _mixed(y, A, B, C, jnp.reshape(s2, (1,))).log_prob(y[:, None])

    g = jax.grad(ll)(0.05)
    np.testing.assert_allclose(g, central_difference(ll, 0.05, h=1e-7), rtol=1e-5)


@pytest.mark.slow
# statsmodels' own note on its measurement-disturbance output, which is not compared here
@pytest.mark.filterwarnings("ignore:The univariate filtering approach diagonalized")
def test_fully_diffuse_multivariate_full_R_matches_statsmodels():
    """Two observables with a correlated ``R``, all states diffuse, a missing entry."""
    rng = np.random.default_rng(0)
    T, N, M = 40, 3, 2
    A = np.array([[1.0, 1.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 0.5]])
    B = 0.3 * rng.standard_normal((N, N))
    C = rng.standard_normal((M, N))
    R = spd(rng, M, 0.5)
    y = np.cumsum(rng.standard_normal((T, M)), axis=0)
    y[1, 0] = np.nan
    res = statsmodels_filter(A, B, C, R, None, None, y, prior_of="diffuse", smooth=True)
    dist = nss.KalmanLGSS(A, B, C, R, jnp.zeros(N), "diffuse", T, prior_of="u1")
    assert_close(dist.log_prob(y), res.llf)
    assert_close(dist.filter(y).log_likelihoods, res.llf_obs)
    s = dist.smooth(y)
    assert_close(s.smoothed_means[1:], res.smoothed_state.T)
    assert_close(s.smoothed_covs[1:], np.moveaxis(res.smoothed_state_cov, -1, 0))


@pytest.mark.slow
def test_diffuse_u0_differs_from_u1_by_the_transition_determinant():
    """A flat prior on ``u_0`` is a flat prior on ``u_1 = A u_0 + B w_1`` scaled by ``A``:
    the same posterior, and a log-likelihood lower by ``log|det A|``."""
    y = _unemployment()[:60]
    A, B, C, R, _ = _ucm(y, PARAMS)
    A = A + np.diag([0.0, 0.0, 0.0])  # invertible (AR 0.8)
    u1 = nss.KalmanLGSS(A, B, C, R, jnp.zeros(3), "diffuse", 60, prior_of="u1")
    u0 = nss.KalmanLGSS(A, B, C, R, jnp.zeros(3), "diffuse", 60)
    logdet = np.log(abs(np.linalg.det(A)))
    assert_close(u0.log_prob(y[:, None]), u1.log_prob(y[:, None]) - logdet)
    assert_close(u0.smooth(y[:, None]).smoothed_means[1:], u1.smooth(y[:, None]).smoothed_means[1:])


@pytest.mark.parametrize("diffuse", [pytest.param(False, marks=pytest.mark.slow), True])
def test_burn_in_matches_statsmodels(diffuse):
    y = _unemployment()[:80]
    A, B, C, R, _ = _ucm(y, PARAMS)
    mod = sm.tsa.UnobservedComponents(y, "lltrend", autoregressive=1, use_exact_diffuse=True,
                                      loglikelihood_burn=5)
    if not diffuse:
        a1, P1 = np.array([6.0, 0.0, 0.0]), np.diag([1.0, 0.1, 0.5])
        mod.ssm.initialize_known(a1, P1)
        dist = nss.KalmanLGSS(A, B, C, R, a1, P1, 80, prior_of="u1", loglikelihood_burn=5)
    else:
        dist = _mixed(y, A, B, C, R, loglikelihood_burn=5)
    assert_close(dist.log_prob(y[:, None]), mod.loglike(PARAMS))


def test_diffuse_gradient_matches_finite_differences():
    y = _unemployment()[:50, None]

    def ll(theta):
        A = jnp.array([[1.0, 1.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, theta[0]]])
        B = jnp.diag(jnp.sqrt(theta[1:4]))
        return _mixed(y, A, B, jnp.array([[1.0, 0.0, 1.0]]), theta[4:5]).log_prob(y)

    ll = jax.jit(ll)
    theta = np.array([0.8, 0.01, 0.001, 0.2, 0.05])
    g = jax.grad(ll)(theta)
    fd = central_difference(ll, theta, h=1e-6 * np.maximum(np.abs(theta), 1e-3))
    np.testing.assert_allclose(g, fd, rtol=1e-5)
    assert np.all(np.isfinite(g))


@pytest.mark.slow
def test_diffuse_posterior_draws_match_the_smoother():
    """Simulation smoother with the diffuse part drawn from its posterior: the draws' mean and
    variance against the exact smoother, within Monte Carlo error (4,000 draws)."""
    y = _unemployment()[:40, None]
    A, B, C, R, _ = _ucm(y[:, 0], PARAMS)
    dist = _mixed(y, A, B, C, R)
    s = dist.smooth(y)
    draws = np.asarray(dist.posterior_sample(jax.random.key(0), y, 4000))
    sd = np.sqrt(np.diagonal(s.smoothed_covs, axis1=1, axis2=2))
    z = (draws.mean(0) - s.smoothed_means) / (sd / np.sqrt(4000))
    assert np.max(np.abs(z)) < 5.0
    np.testing.assert_allclose(draws.std(0), sd, rtol=0.1)
    # the first rows are the diffuse ones: their variance includes delta's posterior
    assert np.all(np.isfinite(draws))


@pytest.mark.slow
def test_unidentified_diffuse_state_gives_minus_inf():
    """A diffuse state the data never see (a zero column of ``C``) has no exact diffuse
    likelihood: -inf with finite gradients."""
    A, B, C = np.eye(2), np.eye(2), np.array([[1.0, 0.0]])
    y = np.arange(10.0)[:, None]

    def ll(b):
        return nss.KalmanLGSS(A, b * B, C, np.ones(1), np.zeros(2), "diffuse", 10,
                              prior_of="u1").log_prob(y)

    assert ll(1.0) == -np.inf
    assert np.isfinite(jax.grad(ll)(1.0))


def test_bad_initialisation_arguments_refused_by_name():
    A, B, C = np.eye(2), np.eye(2), np.eye(2)
    make = lambda u0_cov, **kw: nss.KalmanLGSS(A, B, C, np.ones(2), np.zeros(2), u0_cov, 10,
                                               **kw)
    with pytest.raises(ValueError, match=r"Diffuse.states must be indices in \[0, 2\)"):
        make(nss.Diffuse(states=[2]))
    with pytest.raises(ValueError, match=r"Diffuse.states as bools must have shape \(N,\)"):
        make(nss.Diffuse(states=[True]))
    with pytest.raises(ValueError, match=r"Diffuse.cov must have shape"):
        make(nss.Diffuse(states=[0], cov=np.eye(3)))
    with pytest.raises(ValueError, match="Diffuse.cov must be"):
        make(nss.Diffuse(states=[0], cov="flat"))
    with pytest.raises(ValueError, match="u0_cov must be"):
        make("difuse")
    with pytest.raises(ValueError, match="prior_of must be 'u0' or 'u1'"):
        make(np.eye(2), prior_of="u2")
    with pytest.raises(ValueError, match="loglikelihood_burn must be less than"):
        make(np.eye(2), loglikelihood_burn=10)
    with pytest.raises(ValueError, match="loglikelihood_burn must be a non-negative int"):
        make(np.eye(2), loglikelihood_burn=-1)
