"""The inversion filter (InversionFilterSS / InversionFilterLGSS) against a NumPy/SciPy loop that
solves each step with scipy.optimize.root, the Kalman filter where they must agree, and central
differences for the implicit derivatives."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.optimize import root

import numpyro_statespace as nss
from _reference import central_difference, np_linear, np_quad, np_quadratic, stable_matrix


def _model(seed=0, N=3, K=2):
    rng = np.random.default_rng(seed)
    return dict(
        A_0=0.01 * rng.standard_normal(N), A_1=stable_matrix(rng, N, 0.8),
        A_2=0.05 * rng.standard_normal((N, N, N)), B=0.1 * rng.standard_normal((N, K)),
        C_0=0.01 * rng.standard_normal(K), C_1=rng.standard_normal((K, N)),
        C_2=0.2 * rng.standard_normal((K, N, N)), u0=0.01 * rng.standard_normal(N))


def _simulate(m, w, pruned):
    """NumPy loop of the (pruned) quadratic model driven by ``w (T, K)``: ``y (T, M)``."""
    args = [m[k] for k in ("A_0", "A_1", "A_2", "B", "C_0", "C_1", "C_2")]
    return np_quadratic(*args, m["u0"], w, len(w), pruned)[1][1:]


def _scipy_inversion(m, y, pruned):
    """Reference: each step solved by scipy.optimize.root from zero, the Jacobian's determinant
    by central differences of the step map; returns (loglik, shocks)."""
    u = uf = m["u0"]
    ll, shocks = 0.0, []
    K = m["B"].shape[1]
    for y_t in y:
        arg = uf if pruned else u

        def step(w, u=u, uf=uf, arg=arg):
            u_new = m["A_0"] + m["A_1"] @ u + np_quad(m["A_2"], arg) + m["B"] @ w
            uf_new = m["A_1"] @ uf + m["B"] @ w
            return u_new, uf_new

        def residual(w):
            u_new, uf_new = step(w)
            z = m["C_0"] + m["C_1"] @ u_new + np_quad(m["C_2"], uf_new if pruned else u_new)
            return z - y_t

        w = root(residual, np.zeros(K), tol=1e-13).x
        assert np.max(np.abs(residual(w))) < 1e-13
        J = central_difference(residual, w)
        ll += -0.5 * w @ w - 0.5 * K * np.log(2 * np.pi) - np.linalg.slogdet(J)[1]
        u, uf = step(w)
        shocks.append(w)
    return ll, np.array(shocks)


def _dist(m, T, pruned, **changes):
    m = {**m, **changes}
    return nss.InversionFilterSS(m["A_0"], m["A_1"], m["A_2"], m["B"], m["C_0"], m["C_1"],
                                 m["C_2"], m["u0"], T, pruned=pruned)


@pytest.mark.parametrize("pruned", [True, False])
def test_matches_scipy_root_loop(pruned):
    m = _model()
    w = np.random.default_rng(1).standard_normal((25, 2))
    y = _simulate(m, w, pruned)
    d = _dist(m, 25, pruned)
    ll_ref, shocks_ref = _scipy_inversion(m, y, pruned)
    r = d.shocks(y)
    np.testing.assert_allclose(r.shocks, shocks_ref, atol=1e-10)
    np.testing.assert_allclose(r.shocks, w, atol=1e-10)  # the data's own shocks come back
    # the reference's determinant is from central differences (step 1e-6: ~1e-10 relative)
    np.testing.assert_allclose(float(d.log_prob(y)), ll_ref, rtol=1e-9)


def _central(f, x, index):
    """The central difference of ``f`` along the one entry ``index`` of ``x``."""
    e = np.zeros_like(x)
    e[index] = 1.0
    return central_difference(lambda s: f(x + s * e), 0.0)


GRAD_ENTRIES = {"A_1": (0, 1), "C_2": (1, 0, 2), "B": (2, 0), "A_2": (1, 1, 2), "u0": (0,),
                "C_1": (1, 2), "A_0": (1,)}


def test_gradients_match_central_differences():
    m = _model(seed=2)
    y = _simulate(m, np.random.default_rng(3).standard_normal((15, 2)), True)
    names = tuple(GRAD_ENTRIES)

    def f(*xs):
        return _dist(m, 15, True, **dict(zip(names, xs))).log_prob(y)

    xs = tuple(jnp.asarray(m[k]) for k in names)
    rev = jax.jit(jax.grad(f, argnums=tuple(range(len(names)))))(*xs)
    for k, (name, index) in enumerate(GRAD_ENTRIES.items()):
        fd = _central(lambda v: float(f(*xs[:k], v, *xs[k + 1:])), np.asarray(m[name]), index)
        np.testing.assert_allclose(rev[k][index], fd, rtol=1e-6, atol=1e-8, err_msg=name)
    # forward mode along a random direction equals the reverse-mode gradient's projection
    tangents = tuple(jnp.asarray(np.random.default_rng(4).standard_normal(x.shape)) for x in xs)
    _, fwd = jax.jvp(f, xs, tangents)
    np.testing.assert_allclose(fwd, sum(jnp.sum(g * t) for g, t in zip(rev, tangents)),
                               rtol=1e-10)


def test_gradient_with_respect_to_data():
    m = _model(seed=4)
    y = _simulate(m, np.random.default_rng(5).standard_normal((10, 2)), True)
    g = jax.grad(lambda y: _dist(m, 10, True).log_prob(y))(jnp.asarray(y))
    fd = _central(lambda v: float(_dist(m, 10, True).log_prob(v)), y, (3, 1))
    np.testing.assert_allclose(g[3, 1], fd, rtol=1e-6)


def test_linear_equals_kalman_with_known_initial_state():
    rng = np.random.default_rng(6)
    N, K, T = 4, 2, 30
    A, B, C = stable_matrix(rng, N, 0.9), rng.standard_normal((N, K)), rng.standard_normal((K, N))
    u0 = rng.standard_normal(N)
    w = rng.standard_normal((T, K))
    y = np_linear(A, B, C, u0, w, T)[1][1:]
    # R = 0 and a known u_0: the Kalman filter's innovations are C B w_t exactly
    kalman = nss.KalmanLGSS(A, B, C, np.zeros((K, K)), u0, np.zeros((N, N)), T,
                            method="sequential")
    inv = nss.InversionFilterLGSS(A, B, C, u0, T)
    np.testing.assert_allclose(inv.log_prob(y), kalman.log_prob(y), rtol=1e-10)
    np.testing.assert_allclose(inv.shocks(y).shocks, w, atol=1e-10)
    # the quadratic class with zero second-order terms takes the Newton path: same value
    quad = nss.InversionFilterSS(np.zeros(N), A, np.zeros((N, N, N)), B, np.zeros(K), C,
                                 np.zeros((K, N, N)), u0, T, pruned=True)
    np.testing.assert_allclose(quad.log_prob(y), kalman.log_prob(y), rtol=1e-10)
    # and their gradients with respect to A
    g_k = jax.grad(lambda A: nss.KalmanLGSS(A, B, C, np.zeros((K, K)), u0, np.zeros((N, N)), T,
                                            method="sequential").log_prob(y))(jnp.asarray(A))
    g_i = jax.grad(lambda A: nss.InversionFilterLGSS(A, B, C, u0, T).log_prob(y))(jnp.asarray(A))
    np.testing.assert_allclose(g_i, g_k, rtol=1e-8, atol=1e-8)


def _scalar_model(c2):
    """One state, one shock: u_t = 0.5 u_{t-1} + w_t, y_t = u_t + c2 uf_t^2 (pruned)."""
    return dict(A_0=np.zeros(1), A_1=np.array([[0.5]]), A_2=np.zeros((1, 1, 1)),
                B=np.array([[1.0]]), C_0=np.zeros(1), C_1=np.array([[1.0]]),
                C_2=np.array([[[c2]]]), u0=np.zeros(1))


def test_no_root_gives_minus_inf_with_finite_gradient():
    # y = w + w^2 has no real root below -1/4
    m = _scalar_model(1.0)
    y = np.array([[0.1], [-1.0], [0.2]])
    d = _dist(m, 3, True)
    assert float(d.log_prob(y)) == -np.inf
    assert not bool(d.shocks(y).ok)
    g = jax.jit(jax.grad(lambda c: _dist(m, 3, True, C_2=c).log_prob(y)))(jnp.asarray(m["C_2"]))
    assert np.all(np.isfinite(g))
    # a data point with a root: finite, and the root nearest zero is taken (w = (-1 + sqrt 2)/2
    # for w + w^2 = 1/4)
    ok = _dist(m, 1, True).shocks(np.array([[0.25]]))
    np.testing.assert_allclose(ok.shocks[0, 0], (-1 + np.sqrt(2.0)) / 2, rtol=1e-12)


def test_singular_loading_gives_minus_inf_with_finite_gradient():
    rng = np.random.default_rng(7)
    A = stable_matrix(rng, 3, 0.5)
    B = np.array([[1.0, 0.0], [0.0, 0.0], [0.0, 0.0]])  # C B has rank one
    C = np.array([[1.0, 0.0, 0.0], [2.0, 1.0, 0.0]])
    y = rng.standard_normal((5, 2))
    f = lambda A: nss.InversionFilterLGSS(A, B, C, np.zeros(3), 5).log_prob(y)  # noqa: E731
    assert float(f(A)) == -np.inf
    assert np.all(np.isfinite(jax.grad(f)(jnp.asarray(A))))


def test_sample_is_inverted_back_to_its_shocks():
    m = _model(seed=8)
    d = _dist(m, 12, True)
    key = jax.random.key(9)
    y = d.sample(key, (3,))
    assert y.shape == (3, 12, 2)
    w = jax.random.normal(key, (3, 12, 2))  # sample()'s draws
    np.testing.assert_allclose(d.shocks(y).shocks, w, atol=1e-9)
    np.testing.assert_allclose(y[1], _simulate(m, np.asarray(w[1]), True), atol=1e-12)


def test_batched_parameters_and_jit():
    m = _model(seed=10)
    y = _simulate(m, np.random.default_rng(11).standard_normal((8, 2)), True)
    A_1 = np.stack([m["A_1"], 0.5 * m["A_1"]])
    d = _dist(m, 8, True, A_1=A_1)
    assert d.batch_shape == (2,) and d.event_shape == (8, 2)
    lp = jax.jit(lambda d, y: d.log_prob(y))(d, y)
    for i in range(2):
        np.testing.assert_allclose(lp[i], _dist(m, 8, True, A_1=A_1[i]).log_prob(y), rtol=1e-12)


def test_bad_input():
    m = _model()
    with pytest.raises(ValueError, match="as many shocks as observables"):
        _dist(m, 5, True, B=np.zeros((3, 3)))
    with pytest.raises(ValueError, match="C_2"):
        _dist(m, 5, True, C_2=np.zeros((2, 3)))
    with pytest.raises(ValueError, match="num_timesteps"):
        _dist(m, 0, True)
    with pytest.raises(ValueError, match="as many shocks"):
        nss.InversionFilterLGSS(np.eye(2), np.ones((2, 1)), np.eye(2), np.zeros(2), 4)
    with pytest.raises(ValueError, match="value must have shape"):
        _dist(m, 5, True).log_prob(np.zeros((4, 2)))
