"""Reference values of the DifferenceEquations.jl test suite (see shared/reference/README.md),
reproduced through ``nss.solve``, and the behaviour of ``solve`` itself: ``save_everystep``,
``sol.t``, names, the default algorithm, noise drawing and observation noise.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import numpyro_statespace as nss
from models import reference_data

RTOL = 1e-10

# Most tests call a jitted ``solve`` (problems are pytrees, the algorithm marker is hashable):
# one compilation per problem structure is much cheaper than tracing every scan eagerly. The
# reference likelihoods are also checked through the plain, eager ``nss.solve``.
_jsolve = jax.jit(nss.solve, static_argnames=("alg", "save_everystep"))


def jsolve(prob, alg=None, *, key=None, save_everystep=True):
    return _jsolve(prob, alg, key=key, save_everystep=save_everystep)


def assert_close(actual, expected, rtol=RTOL, atol=0.0):
    np.testing.assert_allclose(np.asarray(actual), np.asarray(expected), rtol=rtol, atol=atol)


@pytest.fixture(scope="module")
def rbc():
    return reference_data.rbc()


@pytest.fixture(scope="module")
def fvgq():
    return reference_data.fvgq20()


@pytest.fixture(scope="module")
def kalman_model():
    return reference_data.kalman_test_model()


# --------------------------------------------------------------------------------------------
# The RBC matrices, as printed in the reference README
# --------------------------------------------------------------------------------------------

def test_rbc_matrices_match_readme(rbc):
    A = [[0.9568351489231076, 6.209371005755285], [3.0153731819288737e-18, 0.20000000000000007]]
    B = [[0.0], [-0.01]]
    C = [[0.09579643002426148, 0.6746869652592109], [1.0, 0.0]]
    A_0 = [-7.824904812740593e-5, 0.0]
    A_2_0 = [[-0.00019761505863889124, 0.03375055315837927],
             [0.03375055315837913, 3.128758481817603]]
    C_0 = [7.824904812740593e-5, 0.0]
    C_2_0 = [[-0.00018554166974717046, 0.0025652363153049716],
             [0.002565236315304951, 0.3132705036896446]]
    # Exact equality: these are literals, not computed values.
    np.testing.assert_array_equal(rbc["A"], A)
    np.testing.assert_array_equal(rbc["B"], B)
    np.testing.assert_array_equal(rbc["C"], C)
    np.testing.assert_array_equal(rbc["A_1"], A)
    np.testing.assert_array_equal(rbc["C_1"], C)
    np.testing.assert_array_equal(rbc["A_0"], A_0)
    np.testing.assert_array_equal(rbc["A_2"][0], A_2_0)
    np.testing.assert_array_equal(rbc["A_2"][1], np.zeros((2, 2)))
    np.testing.assert_array_equal(rbc["C_0"], C_0)
    np.testing.assert_array_equal(rbc["C_2"][0], C_2_0)
    np.testing.assert_array_equal(rbc["C_2"][1], np.zeros((2, 2)))
    np.testing.assert_array_equal(rbc["R"], np.diag([0.01, 0.01]))
    np.testing.assert_array_equal(rbc["u0"], np.zeros(2))
    assert rbc["noise"].shape == (200, 1)
    assert rbc["observables"].shape == (200, 2)


def test_fvgq20_shapes(fvgq):
    assert fvgq["A"].shape == (14, 14) and fvgq["B"].shape == (14, 6)
    assert fvgq["C"].shape == (6, 14)
    assert fvgq["A_2"].shape == (14, 14, 14) and fvgq["C_2"].shape == (6, 14, 14)
    assert fvgq["noise"].shape == (232, 6) and fvgq["observables"].shape == (232, 6)


# --------------------------------------------------------------------------------------------
# Joint likelihoods
# --------------------------------------------------------------------------------------------

def _rbc_linear(rbc, T=5, **kw):
    return nss.LinearStateSpaceProblem(
        rbc["A"], rbc["B"], rbc["u0"], (0, T), C=rbc["C"], observables_noise=rbc["R"],
        observables=rbc["observables"][:T], noise=rbc["noise"][:T], **kw)


def test_rbc_linear_joint(rbc):
    sol = nss.solve(_rbc_linear(rbc), nss.DirectIteration())
    assert_close(sol.logpdf, -690.9407412360038)


def test_rbc_linear_joint_is_default(rbc):
    # noise is given, so the default algorithm is direct iteration
    sol = jsolve(_rbc_linear(rbc))
    assert_close(sol.logpdf, -690.9407412360038)


def test_rbc_linear_joint_diagonal_R_vector(rbc):
    prob = _rbc_linear(rbc).replace(observables_noise=np.array([0.01, 0.01]))
    assert_close(jsolve(prob).logpdf, -690.9407412360038)


def _rbc_pruned(rbc, T=5):
    return nss.PrunedQuadraticStateSpaceProblem(
        rbc["A_0"], rbc["A_1"], rbc["A_2"], rbc["B"], rbc["u0"], (0, T),
        C_0=rbc["C_0"], C_1=rbc["C_1"], C_2=rbc["C_2"], observables_noise=rbc["R"],
        observables=rbc["observables"][:T], noise=rbc["noise"][:T])


def test_rbc_pruned_quadratic_joint(rbc):
    sol = nss.solve(_rbc_pruned(rbc), nss.DirectIteration())
    assert_close(sol.logpdf, -690.81094364573)


def test_fvgq20_linear_joint(fvgq):
    prob = nss.LinearStateSpaceProblem(
        fvgq["A"], fvgq["B"], fvgq["u0"], (0, 232), C=fvgq["C"], observables_noise=fvgq["R"],
        observables=fvgq["observables"], noise=fvgq["noise"])
    sol = nss.solve(prob, nss.DirectIteration())
    assert_close(sol.logpdf, -1.4613614369686982e6)


def test_fvgq20_pruned_quadratic_joint(fvgq):
    prob = nss.PrunedQuadraticStateSpaceProblem(
        fvgq["A_0"], fvgq["A_1"], fvgq["A_2"], fvgq["B"], fvgq["u0"], (0, 232),
        C_0=fvgq["C_0"], C_1=fvgq["C_1"], C_2=fvgq["C_2"], observables_noise=fvgq["R"],
        observables=fvgq["observables"], noise=fvgq["noise"])
    sol = nss.solve(prob, nss.DirectIteration())
    assert_close(sol.logpdf, -1.4728927648336522e7)


# --------------------------------------------------------------------------------------------
# Further primal values
# --------------------------------------------------------------------------------------------

def test_rbc_linear_primal_values(rbc):
    sol = jsolve(_rbc_linear(rbc), nss.DirectIteration())
    assert sol.u.shape == (6, 2) and sol.z.shape == (6, 2)
    assert_close(sol.z[4][0] + sol.z[2][1], -0.09008162336682057)
    assert_close(sol.u[2][0] + sol.u[2][1], -0.08780558376240931)
    np.testing.assert_array_equal(np.asarray(sol.W), rbc["noise"][:5])


def test_no_noise_with_observation():
    rbc = reference_data.rbc()
    prob = nss.LinearStateSpaceProblem(rbc["A"], None, [1.1, 0.2], (0, 5), C=rbc["C"])
    sol = jsolve(prob)
    assert sol.W is None
    assert sol.u.shape == (6, 2) and sol.z.shape == (6, 2)
    assert_close(sol.z[1][1], 2.2943928649664755)
    assert float(sol.logpdf) == 0.0


def test_no_noise_no_observation():
    rbc = reference_data.rbc()
    prob = nss.LinearStateSpaceProblem(rbc["A"], None, [1.1, 0.2], (0, 5))
    sol = jsolve(prob)
    assert sol.z is None and sol.W is None
    assert_close(sol.u[1][1] + sol.u[3][0], 2.4279222804056597)


# --------------------------------------------------------------------------------------------
# save_everystep=False
# --------------------------------------------------------------------------------------------

def _check_ends(full, ends):
    np.testing.assert_array_equal(np.asarray(ends.logpdf), np.asarray(full.logpdf))
    N = full.u.shape[1]
    assert ends.u.shape == (2, N)
    assert_close(ends.u, np.stack([full.u[0], full.u[-1]]), rtol=1e-14)
    assert_close(ends.t, np.stack([full.t[0], full.t[-1]]), rtol=0)
    if full.z is not None:
        assert ends.z.shape == (2, full.z.shape[1])
        assert_close(ends.z, np.stack([full.z[0], full.z[-1]]), rtol=1e-14)


def test_save_everystep_false_direct(rbc):
    prob = _rbc_linear(rbc, T=50)
    full = jsolve(prob, nss.DirectIteration())
    ends = jsolve(prob, nss.DirectIteration(), save_everystep=False)
    _check_ends(full, ends)
    np.testing.assert_array_equal(np.asarray(ends.W), np.asarray(full.W))


def test_save_everystep_false_direct_pruned(rbc):
    prob = _rbc_pruned(rbc, T=50)
    full = jsolve(prob, nss.DirectIteration())
    ends = jsolve(prob, nss.DirectIteration(), save_everystep=False)
    _check_ends(full, ends)


def test_save_everystep_false_kalman(kalman_model):
    d = kalman_model
    prob = nss.LinearStateSpaceProblem(
        d["A"], d["B"], np.zeros(5), (0, 200), C=d["C"], observables_noise=d["R"],
        observables=d["observables"], u0_prior_mean=d["u0_prior_mean"],
        u0_prior_var=d["u0_prior_var"])
    full = jsolve(prob, nss.KalmanFilter())
    ends = jsolve(prob, nss.KalmanFilter(), save_everystep=False)
    # The logpdf must be the same number (the same recursion).
    np.testing.assert_array_equal(np.asarray(ends.logpdf), np.asarray(full.logpdf))
    assert ends.u.shape == (2, 5)
    assert_close(ends.u, np.stack([full.u[0], full.u[-1]]), rtol=1e-12)
    assert_close(ends.u[0], d["u0_prior_mean"], rtol=0)
    assert ends.P.shape == (2, 5, 5)
    assert_close(ends.P, np.stack([full.P[0], full.P[-1]]), rtol=1e-12)
    assert_close(ends.z, np.stack([full.z[0], full.z[-1]]), rtol=1e-12)
    assert_close(ends.t, [0, 200], rtol=0)


def test_save_everystep_false_conditional():
    rng = np.random.default_rng(3)
    N, K, T = 3, 2, 20
    A = 0.3 * rng.standard_normal((N, N))
    B = rng.standard_normal((N, K))
    y = rng.standard_normal((T, N))
    prob = nss.LinearStateSpaceProblem(A, B, rng.standard_normal(N), (0, T),
                                       observables_noise=np.full(N, 0.3), observables=y,
                                       noise=rng.standard_normal((T, K)))
    full = jsolve(prob, nss.ConditionalLikelihood())
    ends = jsolve(prob, nss.ConditionalLikelihood(), save_everystep=False)
    _check_ends(full, ends)
    assert_close(ends.u[1], y[-1], rtol=0)


# --------------------------------------------------------------------------------------------
# times and names
# --------------------------------------------------------------------------------------------

def test_times(rbc):
    sol = jsolve(_rbc_linear(rbc))
    np.testing.assert_array_equal(np.asarray(sol.t), np.arange(6))
    prob = nss.LinearStateSpaceProblem(rbc["A"], rbc["B"], rbc["u0"], (3, 8), C=rbc["C"],
                                       noise=rbc["noise"][:5])
    sol = jsolve(prob)
    np.testing.assert_array_equal(np.asarray(sol.t), np.arange(3, 9))
    assert sol.u.shape == (6, 2)
    prob = nss.LinearStateSpaceProblem(rbc["A"], None, rbc["u0"], 4)
    np.testing.assert_array_equal(np.asarray(jsolve(prob).t), np.arange(5))


def test_syms_and_obs_syms(rbc):
    prob = _rbc_linear(rbc).replace(syms=("k", "z"), obs_syms=("y", "c"))
    sol = jsolve(prob)
    np.testing.assert_array_equal(np.asarray(sol["k"]), np.asarray(sol.u[:, 0]))
    np.testing.assert_array_equal(np.asarray(sol["z"]), np.asarray(sol.u[:, 1]))
    np.testing.assert_array_equal(np.asarray(sol["y"]), np.asarray(sol.z[:, 0]))
    np.testing.assert_array_equal(np.asarray(sol["c"]), np.asarray(sol.z[:, 1]))
    assert sol.syms == ("k", "z") and sol.obs_syms == ("y", "c")
    with pytest.raises(KeyError):
        sol["nope"]


def test_syms_wrong_length(rbc):
    with pytest.raises(ValueError, match="syms"):
        _rbc_linear(rbc).replace(syms=("k",))


# --------------------------------------------------------------------------------------------
# default algorithm
# --------------------------------------------------------------------------------------------

def _kalman_kwargs(d, **overrides):
    kw = dict(A=d["A"], B=d["B"], u0=np.zeros(5), tspan=(0, 200), C=d["C"],
              observables_noise=d["R"], observables=d["observables"],
              u0_prior_mean=d["u0_prior_mean"], u0_prior_var=d["u0_prior_var"])
    kw.update(overrides)
    return kw


def test_default_algorithm_kalman(kalman_model):
    prob = nss.LinearStateSpaceProblem(**_kalman_kwargs(kalman_model))
    assert isinstance(nss.default_algorithm(prob), nss.KalmanFilter)
    sol_default = jsolve(prob)
    sol_kalman = jsolve(prob, nss.KalmanFilter())
    assert sol_default.P is not None
    assert_close(sol_default.logpdf, sol_kalman.logpdf, rtol=1e-14)


@pytest.mark.parametrize("drop", ["u0_prior_var", "observables", "observables_noise", "B", "C"])
def test_default_algorithm_direct_when_missing(kalman_model, drop):
    kw = _kalman_kwargs(kalman_model, **{drop: None})
    if drop == "C":  # without C the observables must be (T, N)
        kw["observables"] = np.zeros((200, 5))
        kw["observables_noise"] = np.full(5, 0.01)
    prob = nss.LinearStateSpaceProblem(**kw)
    assert isinstance(nss.default_algorithm(prob), nss.DirectIteration)


def test_default_algorithm_direct_with_noise(kalman_model):
    prob = nss.LinearStateSpaceProblem(**_kalman_kwargs(kalman_model,
                                                        noise=kalman_model["noise"]))
    assert isinstance(nss.default_algorithm(prob), nss.DirectIteration)
    sol = jsolve(prob)
    assert sol.P is None
    np.testing.assert_array_equal(np.asarray(sol.W), kalman_model["noise"])


def test_default_algorithm_non_linear_problems(rbc):
    assert isinstance(nss.default_algorithm(_rbc_pruned(rbc)), nss.DirectIteration)
    prob = nss.StateSpaceProblem(lambda x, w, p, t: 0.5 * x + w, lambda x, p, t: x,
                                 np.zeros(2), 3, n_shocks=2)
    assert isinstance(nss.default_algorithm(prob), nss.DirectIteration)


def test_algorithm_class_accepted(rbc):
    prob = _rbc_linear(rbc)
    assert_close(jsolve(prob, nss.DirectIteration).logpdf, -690.9407412360038)


# --------------------------------------------------------------------------------------------
# simulation: noise and observation noise
# --------------------------------------------------------------------------------------------

def test_simulation_needs_key(rbc):
    prob = nss.LinearStateSpaceProblem(rbc["A"], rbc["B"], rbc["u0"], (0, 10), C=rbc["C"])
    with pytest.raises(ValueError, match="key"):
        nss.solve(prob)
    pruned = nss.PrunedQuadraticStateSpaceProblem(
        rbc["A_0"], rbc["A_1"], rbc["A_2"], rbc["B"], rbc["u0"], (0, 10), C_1=rbc["C_1"])
    with pytest.raises(ValueError, match="key"):
        nss.solve(pruned)


def test_simulation_draws_noise(rbc):
    T, K = 40, 1
    prob = nss.LinearStateSpaceProblem(rbc["A"], rbc["B"], rbc["u0"], (0, T), C=rbc["C"])
    sol = jsolve(prob, key=jax.random.key(0))
    assert sol.W.shape == (T, K)
    assert np.all(np.isfinite(np.asarray(sol.W)))
    assert np.std(np.asarray(sol.W)) > 0.1
    # The states are driven by exactly that noise.
    replay = jsolve(prob.replace(noise=sol.W))
    assert_close(replay.u, sol.u, rtol=1e-14)
    assert_close(replay.z, sol.z, rtol=1e-14)
    # Same key, same draw; another key, another draw.
    again = jsolve(prob, key=jax.random.key(0))
    np.testing.assert_array_equal(np.asarray(again.W), np.asarray(sol.W))
    other = jsolve(prob, key=jax.random.key(1))
    assert not np.allclose(np.asarray(other.W), np.asarray(sol.W))


def test_simulation_draws_noise_standard_normal():
    N, K, T = 2, 3, 4000
    prob = nss.LinearStateSpaceProblem(0.5 * np.eye(N), np.ones((N, K)), np.zeros(N), T)
    W = np.asarray(jsolve(prob, key=jax.random.key(42)).W)
    assert W.shape == (T, K)
    # mean 0, covariance I_K (loose statistical bounds: ~6 standard errors)
    assert np.all(np.abs(W.mean(0)) < 6 / np.sqrt(T))
    assert np.allclose(np.cov(W.T), np.eye(K), atol=6 * np.sqrt(2 / T))


def test_observation_noise_added(rbc):
    T = 4000
    R = np.array([[0.04, 0.01], [0.01, 0.09]])
    prob = nss.LinearStateSpaceProblem(rbc["A"], rbc["B"], rbc["u0"], (0, T), C=rbc["C"],
                                       observables_noise=R, noise=rbc["noise"][:1].repeat(T, 0))
    with pytest.raises(ValueError, match="key"):
        nss.solve(prob)
    sol = jsolve(prob, key=jax.random.key(7))
    u, z = np.asarray(sol.u), np.asarray(sol.z)
    noiseless = u @ rbc["C"].T
    # z_0 is the noiseless observation of u_0
    assert_close(z[0], noiseless[0], rtol=1e-14)
    v = z[1:] - noiseless[1:]
    assert np.all(np.abs(v) > 0)
    # the states are not perturbed: they follow the given noise exactly
    clean = jsolve(prob.replace(observables_noise=None))
    assert_close(u, clean.u, rtol=1e-14)
    assert_close(noiseless, clean.z, rtol=1e-12, atol=1e-15)
    # v ~ N(0, R): loose statistical bounds
    assert np.all(np.abs(v.mean(0)) < 6 * np.sqrt(np.diag(R) / T))
    np.testing.assert_allclose(np.cov(v.T), R, atol=6 * 0.09 * np.sqrt(2 / T))
    assert float(sol.logpdf) == 0.0


def test_observation_noise_zero_variance_entry():
    # A singular R: the noise-free observable stays exact.
    N, T = 2, 30
    prob = nss.LinearStateSpaceProblem(0.5 * np.eye(N), None, np.ones(N), T, C=np.eye(N),
                                       observables_noise=np.array([0.0, 0.5]))
    sol = jsolve(prob, key=jax.random.key(1))
    u, z = np.asarray(sol.u), np.asarray(sol.z)
    assert_close(z[:, 0], u[:, 0], rtol=1e-14)
    assert np.all(np.abs(z[1:, 1] - u[1:, 1]) > 0)
    assert z[0, 1] == u[0, 1]


def test_simulation_draws_noise_other_families(rbc):
    T = 30
    pruned = nss.PrunedQuadraticStateSpaceProblem(
        rbc["A_0"], rbc["A_1"], rbc["A_2"], rbc["B"], rbc["u0"], (0, T), C_1=rbc["C_1"],
        C_2=rbc["C_2"], observables_noise=rbc["R"])
    generic = nss.StateSpaceProblem(lambda x, w, p, t: 0.5 * x + p @ w, lambda x, p, t: x[:1],
                                    np.zeros(3), (2, 2 + T), jnp.ones((3, 2)), n_shocks=2,
                                    observables_noise=np.array([0.1]))
    for prob, K in ((pruned, 1), (generic, 2)):
        with pytest.raises(ValueError, match="key"):
            nss.solve(prob)
        sol = jsolve(prob, key=jax.random.key(3))
        assert sol.W.shape == (T, K)
        # replaying the drawn noise without observation noise gives the same states
        clean = jsolve(prob.replace(noise=sol.W, observables_noise=None))
        assert_close(sol.u, clean.u, rtol=1e-14)
        assert_close(sol.z[0], clean.z[0], rtol=1e-14)          # z_0 noiseless
        assert np.all(np.asarray(sol.z[1:]) != np.asarray(clean.z[1:]))  # z_1..z_T noisy
