"""Whitened latent shocks (``sample_noise(..., whiten=...)``), checked against dense Gaussian
algebra written here in NumPy and against the plain latent-shock model."""

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import pytest
from numpyro.infer.util import log_density

import numpyro_statespace as nss
from numpyro_statespace import kernels
from _reference import central_difference, record_results, stable_matrix


def _model(N, K, M, T, seed, missing=0.0):
    rng = np.random.default_rng(seed)
    A = stable_matrix(rng, N, 0.9)
    B, C = rng.normal(size=(N, K)), rng.normal(size=(M, N))
    L = rng.normal(size=(M, M)) * 0.1
    R = L @ L.T + 0.05 * np.eye(M)
    u0 = rng.normal(size=N) * 0.1
    w = rng.normal(size=(T, K))
    y = np.array(nss.JointLGSS(A, B, C, R, u0, w).sample(jax.random.key(seed)))
    y[rng.uniform(size=y.shape) < missing] = np.nan
    return A, B, C, R, u0, y


def _dense_posterior(A, B, C, R, u0, y):
    """Posterior N(mean, cov) of the stacked shocks (T*K,) by dense conditioning, observed rows only."""
    T, K = y.shape[0], B.shape[1]
    # z_t = C A^t u0 + sum_{s<=t} C A^{t-s} B w_s
    J = np.zeros((T, y.shape[1], T, K))
    offset = np.zeros((T, y.shape[1]))
    for t in range(T):
        offset[t] = C @ np.linalg.matrix_power(A, t + 1) @ u0
        for s in range(t + 1):
            J[t, :, s, :] = C @ np.linalg.matrix_power(A, t - s) @ B
    obs = ~np.isnan(y)
    J = J.reshape(T * y.shape[1], T * K)
    Rbig = np.kron(np.eye(T), R)
    keep = obs.reshape(-1)
    J, Rk, r = J[keep], Rbig[np.ix_(keep, keep)], (y - offset).reshape(-1)[keep]
    Lambda = np.eye(T * K) + J.T @ np.linalg.solve(Rk, J)
    cov = np.linalg.inv(Lambda)
    return cov @ J.T @ np.linalg.solve(Rk, r), cov


def _whiten(A, B, C, R, u0, y):
    """The whitening map ``eps -> (w, log|dw/deps|)``, compiled (run eagerly, every operation
    would be compiled on its own)."""
    return jax.jit(lambda eps: kernels.whiten_shocks(
        eps, A, B, kernels.backward_information(A, B, C, R, y), u0))


@pytest.mark.parametrize("N,K,M,T,missing,dot", [
    (2, 1, 2, 15, 0.0, False), (3, 1, 1, 12, 0.2, False), (4, 2, 3, 10, 0.3, False),
    (2, 1, 2, 15, 0.0, True), (5, 3, 3, 12, 0.1, False), (4, 4, 2, 8, 0.0, False),
    (2, 1, 2, 45, 0.0, False)])  # complete data, T > STEADY_STATE_TAIL: the steady state
def test_whitening_map_is_the_exact_shock_posterior(N, K, M, T, missing, dot, monkeypatch):
    if dot:  # the state recursion's product as a dot (what large N take), not elementwise
        monkeypatch.setattr(kernels.linalg, "FUSED_MATVEC_MAX_N", 0)
    A, B, C, R, u0, y = _model(N, K, M, T, seed=N + 10 * K, missing=missing)
    f = _whiten(A, B, C, R, u0, y)
    mean, cov = _dense_posterior(A, B, C, R, u0, y)
    w0, _ = f(jnp.zeros((T, K)))
    np.testing.assert_allclose(np.asarray(w0).reshape(-1), mean, rtol=1e-8, atol=1e-10)
    jac = np.asarray(jax.jit(jax.jacfwd(lambda e: f(e.reshape(T, K))[0].reshape(-1)))(
        jnp.zeros(T * K)))
    np.testing.assert_allclose(jac @ jac.T, cov, rtol=1e-8, atol=1e-11)
    # the map is triangular in time and its log-Jacobian is the one reported
    assert np.allclose(np.triu(jac.reshape(T, K, T, K).transpose(0, 2, 1, 3).reshape(T, T, K * K)
                               .sum(-1), 1), 0.0)
    _, logdet = f(jnp.asarray(np.random.default_rng(1).normal(size=(T, K))))
    np.testing.assert_allclose(float(logdet), np.linalg.slogdet(jac)[1], rtol=1e-10)


@pytest.mark.parametrize("K", [2, 3])
def test_written_out_factor_and_solves_equal_lapack(K):
    """Up to UNROLLED_FACTOR_MAX_K shocks the factor of M = I + B' Omega B and its triangular
    solves are written out entry by entry: the same numbers as LAPACK's (batched, both solve
    directions), and derivatives equal to JAX's of the LAPACK calls and to finite differences.
    The written-out factor reads M's lower triangle, as LAPACK does, so its gradient puts an
    off-diagonal entry's share on M[i, j], i > j, where JAX's rule splits it over both
    triangles: the same derivative along symmetric M (how M is built), compared as such."""
    assert K <= kernels.whitening.UNROLLED_FACTOR_MAX_K
    rng = np.random.default_rng(K)
    G = rng.normal(size=(5, K, K))
    M = jnp.asarray(np.eye(K) + G @ np.swapaxes(G, -1, -2))
    b = jnp.asarray(rng.normal(size=(5, K, 3)))

    def ours(M, b):
        U = kernels.whitening._small_cholesky(M)
        return U, kernels.whitening._solve_lower(U, b), kernels.whitening._solve_lower(U, b, True)

    def lapack(M, b):
        U = jnp.linalg.cholesky(M)
        solve = jax.scipy.linalg.solve_triangular
        return U, solve(U, b, lower=True), solve(U, b, lower=True, trans=1)

    def scalar(f, M, b):
        return sum(jnp.sum(jnp.sin(x)) for x in f(M, b))

    program = jax.jit(lambda M, b: (ours(M, b), lapack(M, b),
                                    jax.grad(scalar, (1, 2))(ours, M, b),
                                    jax.grad(scalar, (1, 2))(lapack, M, b),
                                    jax.jvp(lambda M: scalar(ours, M, b), (M,), (M,))[1]))
    got, want, g_ours, g_lapack, jvp = program(M, b)
    for x, y in zip(got, want):
        np.testing.assert_allclose(x, y, rtol=1e-12, atol=1e-14)
    assert np.allclose(np.triu(np.asarray(got[0]), 1), 0.0)
    sym = lambda g: 0.5 * (g + np.swapaxes(g, -1, -2))  # noqa: E731
    np.testing.assert_allclose(sym(np.asarray(g_ours[0])), g_lapack[0], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(g_ours[1], g_lapack[1], rtol=1e-10, atol=1e-12)
    f = jax.jit(lambda t: scalar(ours, M * (1 + t), b))
    np.testing.assert_allclose(jvp, central_difference(f, 0.0), rtol=1e-6)


def _steady_state_case():
    A, B, C, R, u0, y = _model(3, 2, 2, 80, seed=21)
    rng = np.random.default_rng(4)
    a, d = 0.05 * rng.normal(size=3), 0.05 * rng.normal(size=2)

    def info(scale, y=y, steady_state=True):
        return kernels.backward_information(scale[0] * A, scale[1] * B, C, R, y, None, a, d,
                                            steady_state=steady_state)

    return info, A, B, u0, a, y


@pytest.mark.parametrize("tail, converged, dot", [(32, True, False), (32, True, True),
                                                   (2, False, False)])
def test_steady_state_backward_filter_equals_the_full_one(tail, converged, dot, monkeypatch):
    """Complete data: after the last ``STEADY_STATE_TAIL`` steps the precision has reached its
    fixed point (checked) and the earlier steps take it, with the shifts from a time-invariant
    recursion (its product elementwise, or as a dot as for large N); not yet converged (a tail
    of 2 steps), the full filter continues. Both give the full filter's numbers. NaN data take
    the full filter without the check."""
    monkeypatch.setattr(kernels.whitening, "STEADY_STATE_TAIL", tail)
    if dot:
        monkeypatch.setattr(kernels.linalg, "FUSED_MATVEC_MAX_N", 0)
    seen = record_results(monkeypatch, kernels.whitening, "_precision_converged")
    info, *_, y = _steady_state_case()
    y_nan = y.copy()
    y_nan[40, 1] = np.nan
    got, want, _ = jax.jit(lambda s: (info(s), info(s, steady_state=False), info(s, y_nan)))(
        jnp.ones(2))
    assert seen == [converged]
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-12 * np.max(np.abs(w)))


def test_steady_state_waits_for_a_weakly_informed_state_beside_a_near_exact_observable():
    """A near-exact observable (precision 1e8) beside a noisy one (precision 0.01) on a
    persistent state: the convergence check measured every entry against the largest precision,
    took the steady state after the 32-step tail while the persistent state's precision was
    still moving, and the map was off by 3e-4 (its potential jumped where the switch flipped).
    Now the steady state is taken only once that state has converged too (about 120 steps),
    and the map is the exact posterior's."""
    T = 200
    A, B, C = np.diag([0.1, 0.95]), np.array([[0.0], [1.0]]), np.eye(2)
    R = np.diag([1e-8, 100.0])
    rng = np.random.default_rng(0)
    u0 = np.array([0.1, 0.5])
    y = np.array(nss.JointLGSS(A, B, C, R, u0, rng.normal(size=(T, 1))).sample(
        jax.random.key(0)))
    mean, cov = _dense_posterior(A, B, C, R, u0, y)
    w0, logdet = _whiten(A, B, C, R, u0, y)(jnp.zeros((T, 1)))
    np.testing.assert_allclose(np.asarray(w0).reshape(-1), mean, rtol=1e-8,
                               atol=1e-10 * np.max(np.abs(mean)))
    np.testing.assert_allclose(float(logdet), 0.5 * np.linalg.slogdet(cov)[1], rtol=1e-10)


def test_steady_state_backward_filter_gradients():
    """The whitening map through the steady-state filter: reverse and forward mode equal the
    full filter's gradient and central finite differences."""
    info, A, B, u0, a, _ = _steady_state_case()
    eps = jnp.asarray(np.random.default_rng(5).normal(size=(80, 2)))

    def f(scale, steady_state=True):
        w, logdet = kernels.whiten_shocks(eps, scale[0] * A, scale[1] * B,
                                          info(scale, steady_state=steady_state), u0, a)
        return jnp.sum(jnp.sin(w)) + logdet

    ones = jnp.ones(2)
    program = jax.jit(lambda s, points: (  # one compilation
        jax.grad(f)(s), jax.jacfwd(f)(s), jax.grad(f)(s, False), jax.vmap(f)(points)))
    values = {}

    def batch(points):  # the finite-difference points go through the same program
        values.update(zip(("rev", "fwd", "full", "fd"), program(ones, points)))
        return values["fd"]

    fd = central_difference(batch, ones, batched=True)
    np.testing.assert_allclose(values["rev"], values["full"], rtol=1e-10)
    np.testing.assert_allclose(values["fwd"], values["full"], rtol=1e-10)
    np.testing.assert_allclose(values["rev"], fd, rtol=1e-5)


def _joint(A, B, C, R, u0, y, whiten):
    T, K = y.shape[0], B.shape[1]

    def model():
        w = nss.sample_noise("w", T, K,
                             whiten=nss.Whitening(A, B, C, R, y, u0) if whiten else None)
        numpyro.sample("y", nss.JointLGSS(A, B, C, R, u0, w), obs=y)

    return model


def test_whitened_posterior_of_eps_is_standard_normal_for_a_linear_model():
    A, B, C, R, u0, y = _model(3, 1, 2, 20, seed=3, missing=0.1)
    model = _joint(A, B, C, R, u0, y, whiten=True)
    rng = np.random.default_rng(0)
    consts = []
    for _ in range(4):
        eps = jnp.asarray(rng.normal(size=(20, 1)))
        ld, _ = log_density(model, (), {}, {"w_white": eps})
        consts.append(float(ld) + 0.5 * float(jnp.sum(eps**2)))
    np.testing.assert_allclose(consts, consts[0], rtol=1e-12)


@pytest.mark.parametrize("pruned", [False, True])
def test_whitened_density_is_original_density_plus_log_jacobian(pruned):
    A, B, C, R, u0, y = _model(2, 1, 2, 15, seed=7)
    rng = np.random.default_rng(2)
    A_0, C_0 = 0.01 * rng.normal(size=2), 0.01 * rng.normal(size=2)
    A_2, C_2 = 0.1 * rng.normal(size=(2, 2, 2)), 0.1 * rng.normal(size=(2, 2, 2))
    whitening = nss.Whitening(A, B, C, R, y, u0, state_offset=A_0, obs_offset=C_0)

    def model(whiten):
        w = nss.sample_noise("w", 15, 1, whiten=whitening if whiten else None)
        numpyro.sample("y", nss.JointQuadraticSS(A_0, A, A_2, B, C_0, C, C_2, R, u0, w,
                                                 pruned=pruned), obs=y)

    eps = jnp.asarray(rng.normal(size=(15, 1)))
    ld_white, trace = log_density(model, (True,), {}, {"w_white": eps})
    w = trace["w"]["value"]
    info = kernels.backward_information(A, B, C, R, y, state_offset=A_0, obs_offset=C_0)
    w_direct, logdet = kernels.whiten_shocks(eps, A, B, info, u0, A_0)
    np.testing.assert_allclose(w, w_direct, rtol=1e-12)
    ld_plain, _ = log_density(model, (False,), {}, {"w": w})
    np.testing.assert_allclose(float(ld_white), float(ld_plain) + float(logdet), rtol=1e-10)


def test_zero_variance_and_gradients():
    """Zero measurement variances are floored in the map only; gradients are finite."""
    A, B, C, R, u0, y = _model(3, 1, 2, 10, seed=5)
    R0 = np.diag([0.0, 0.1])

    def f(theta):
        info = kernels.backward_information(theta * A, B, C, R0, y)
        w, logdet = kernels.whiten_shocks(jnp.ones((10, 1)), theta * A, B, info, u0)
        return jnp.sum(w) + logdet

    val, grad = jax.jit(jax.value_and_grad(f))(1.0)
    assert np.isfinite(val) and np.isfinite(grad)
    f = jax.jit(f)
    fd = central_difference(f, 1.0)
    np.testing.assert_allclose(grad, fd, rtol=1e-5)


def test_prior_predictive_without_data_uses_plain_shocks():
    A, B, C, R, u0, y = _model(2, 1, 2, 8, seed=1)

    def model(y=None):
        w = nss.sample_noise("w", 8, 1, whiten=nss.Whitening(A, B, C, R, y, u0))
        numpyro.sample("y", nss.JointLGSS(A, B, C, R, u0, w), obs=y)

    prior = numpyro.infer.Predictive(model, num_samples=3)(jax.random.key(0))
    assert prior["w"].shape == (3, 8, 1) and prior["y"].shape == (3, 8, 2)
    post = numpyro.infer.Predictive(model, num_samples=3)(jax.random.key(0), y=y)
    assert post["w_white"].shape == (3, 8, 1)


def test_bad_whitening_argument():
    A, B, C, R, u0, y = _model(2, 1, 2, 8, seed=1)
    with pytest.raises(ValueError, match="whiten"), numpyro.handlers.seed(rng_seed=0):
        nss.sample_noise("w", 9, 1, whiten=nss.Whitening(A, B, C, R, y, u0))
    with pytest.raises(ValueError, match="Whitening"), numpyro.handlers.seed(rng_seed=0):
        nss.sample_noise("w", 8, 1, whiten=(A, B, C, R, y, u0))


def _whitened_log_density(A, B, C, R, u0, y, eps, plate=None):
    """The log density of the whitened joint model at ``eps`` and its shocks ``w``; with
    ``plate`` the series ``y (P, T, M)`` share the parameters inside a ``numpyro.plate``."""
    T, K = eps.shape[-2:]

    def model():
        w = nss.sample_noise("w", T, K, whiten=nss.Whitening(A, B, C, R, y, u0))
        numpyro.sample("y", nss.JointLGSS(A, B, C, R, u0, w), obs=y)

    def plated():
        with numpyro.plate("series", plate):
            model()

    ld, trace = log_density(plated if plate else model, (), {}, {"w_white": eps})
    return float(ld), np.asarray(trace["w"]["value"])


def test_whitened_noise_in_a_plate_equals_each_series_alone():
    """Panel data: three series sharing the parameters in a plate, one with missing values.
    Each series' shocks are those it gets whitened alone, and the log density is the sum of
    the single-series ones (the whitening is vectorised over the batch)."""
    A, B, C, R, u0, _ = _model(3, 1, 2, 40, seed=4)
    rng = np.random.default_rng(9)
    ys = np.stack([np.array(nss.JointLGSS(A, B, C, R, u0, rng.normal(size=(40, 1))).sample(
        jax.random.key(i))) for i in range(3)])
    ys[1][rng.uniform(size=(40, 2)) < 0.2] = np.nan
    eps = rng.normal(size=(3, 40, 1))
    ld, w = _whitened_log_density(A, B, C, R, u0, ys, eps, plate=3)
    singles = [_whitened_log_density(A, B, C, R, u0, ys[i], eps[i]) for i in range(3)]
    np.testing.assert_allclose(w, np.stack([s[1] for s in singles]), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(ld, sum(s[0] for s in singles), rtol=1e-10)


def test_whitening_promotes_a_float32_parameter():
    """A float32 ``A`` with float64 data: the same numbers as the float64 model at the rounded
    ``A`` (a float32 carry among float64 inputs would fail inside lax.scan)."""
    A, B, C, R, u0, y = _model(2, 1, 2, 12, seed=6, missing=0.1)
    eps = np.random.default_rng(1).normal(size=(12, 1))
    A32 = jnp.asarray(A, jnp.float32)
    got = _whitened_log_density(A32, B, C, R, u0, y, eps)
    want = _whitened_log_density(jnp.asarray(A32, jnp.float64), B, C, R, u0, y, eps)
    assert got[1].dtype == np.float64
    np.testing.assert_allclose(got[0], want[0], rtol=1e-12)
    np.testing.assert_allclose(got[1], want[1], rtol=1e-12)


def test_float32_near_exact_observable_stays_finite(monkeypatch):
    """float32 beside a near-exact observable (variance 5e-9 of the largest): the information
    recursion's cancellation (about eps / variance) cost the precision its semi-definiteness,
    the factor of I + B' Omega B took square roots of negative pivots and the log density and
    its gradient were NaN. Now the variance floor is in machine epsilons of the dtype and a
    pivot below 1 (impossible in exact arithmetic) is raised to 1: finite values and gradients,
    for one shock and for more than are written out (LAPACK's factor)."""
    rng = np.random.default_rng(1)
    N, M, T = 4, 3, 200
    for K in (1, 2, kernels.whitening.UNROLLED_FACTOR_MAX_K + 1):
        A = stable_matrix(rng, N, 0.9)
        B, C = rng.standard_normal((N, K)), rng.standard_normal((M, N))
        R = np.diag([1e-9, 0.1, 0.2])
        y = np.array(nss.JointLGSS(A, B, C, R, np.zeros(N), rng.normal(size=(T, K))).sample(
            jax.random.key(K)))
        args = [jnp.asarray(x, jnp.float32) for x in (A, B, C, R, y)]

        def log_density_(eps, A):
            def model():
                w = nss.sample_noise("w", T, K, whiten=nss.Whitening(
                    A, *args[1:], jnp.zeros(N, jnp.float32)))
                numpyro.sample("y", nss.JointLGSS(A, *args[1:4], jnp.zeros(N, jnp.float32), w),
                               obs=args[4])
            return log_density(model, (), {}, {"w_white": eps})[0]

        eps = jnp.asarray(rng.normal(size=(T, K)), jnp.float32)
        v, (g_eps, g_A) = jax.jit(jax.value_and_grad(log_density_, (0, 1)))(eps, args[0])
        assert v.dtype == jnp.float32 and np.isfinite(v), (K, v)
        assert np.all(np.isfinite(g_eps)) and np.all(np.isfinite(g_A)), K
