"""The hand-written derivative of ``kernels.kalman_loglik`` (kernels/likelihood.py).

Series longer than ``FULL_UNROLL_MAX_STEPS`` get their gradient from the adjoint recursion
inside a ``custom_jvp`` rule instead of JAX's differentiation of the filter's scan. Checked here,
for every argument (the matrices, ``R`` as a matrix or as variances, the prior moments, the
data): against central finite differences (reverse and forward mode, under jit and vmap, via
test_gradients.check_gradients), against JAX's own derivative of the filter
(``kalman_filter(...).log_likelihood``), with missing data, a singular DSGE-style model, the
steady-state tail, numerical failure, and second derivatives.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree
from scipy.linalg import solve_discrete_lyapunov

from _reference import numpy_kalman_loglik, simulate, spd, stable_matrix
from numpyro_statespace.kernels import kalman_filter, kalman_loglik
from numpyro_statespace.kernels.kalman import FULL_UNROLL_MAX_STEPS
from numpyro_statespace.kernels.steady_state import riccati_converged
from test_gradients import assert_ad_close, assert_fd_close, central_fd, check_gradients, \
    failure_check, sym

T_LONG = 24
assert T_LONG > FULL_UNROLL_MAX_STEPS  # the hand-written derivative, not JAX's


def _model(seed, N=3, K=2, M=2, T=T_LONG, diagonal=False, R_scale=0.1):
    rng = np.random.default_rng(seed)
    A = stable_matrix(rng, N)
    B = 0.5 * rng.standard_normal((N, K))
    C = rng.standard_normal((M, N))
    R = rng.uniform(0.05, 0.2, M) if diagonal else spd(rng, M, scale=R_scale)
    m0 = 0.2 * rng.standard_normal(N)
    P0 = spd(rng, N, scale=0.5)
    y = simulate(rng, A, B, C, np.diag(R) if diagonal else R, m0, P0, T)
    return dict(A=A, B=B, C=C, R=R, m0=m0, P0=P0), y


def _loglik_fn(y, mask=None, diagonal=False, **kw):
    def f(th):
        R = th["R"] if diagonal else sym(th["R"])
        return kalman_loglik(th["A"], th["B"], th["C"], R, th["m0"], sym(th["P0"]), y, mask, **kw)
    return f


def _autodiff_fn(y, mask=None, diagonal=False):
    """JAX's derivative of the filter's scan: a second, independent route to the gradient."""
    def f(th):
        R = th["R"] if diagonal else sym(th["R"])
        return kalman_filter(th["A"], th["B"], th["C"], R, th["m0"], sym(th["P0"]), y, mask,
                             save_everystep=False).log_likelihood
    return f


#: JAX's derivative of the filter, one jitted function for every test (compiled once per
#: shape and option, so the two tail cases share a compilation)
_autodiff_value_and_grad = jax.jit(
    jax.value_and_grad(lambda th, y, mask, diagonal: _autodiff_fn(y, mask, diagonal)(th)),
    static_argnames="diagonal")


def _check(theta, y, mask=None, diagonal=False, seed=0, **kw):
    """FD / jacfwd / vmap checks, and the gradient equal to JAX's derivative of the filter."""
    f = _loglik_fn(jnp.asarray(y), mask, diagonal, **kw)
    ll, g = check_gradients(f, theta, seed=seed)
    th = jax.tree_util.tree_map(jnp.asarray, theta)
    ll_ref, g_ref = _autodiff_value_and_grad(th, jnp.asarray(y), mask, diagonal=diagonal)
    np.testing.assert_allclose(ll, ll_ref, rtol=1e-12)
    assert_ad_close(g, ravel_pytree(g_ref)[0], "hand-written vs JAX's derivative of the filter")


def test_full_R():
    _check(*_model(0))


def test_diagonal_R_univariate_with_missing_data():
    """R as variances (the univariate update), NaN entries and a step with nothing observed."""
    theta, y = _model(1, M=3, diagonal=True)
    y[3, 0] = y[10, :] = y[17, 1:] = np.nan
    _check(theta, y, diagonal=True, seed=1)


def test_mask_and_many_observables():
    """Five observables given as variances (the full update) and a ``mask`` argument."""
    theta, y = _model(2, N=4, K=3, M=5, diagonal=True)
    mask = np.ones(y.shape, dtype=bool)
    mask[[2, 9, 20], [0, 4, 2]] = False
    _check(theta, y, mask=jnp.asarray(mask), diagonal=True, seed=2)


def test_dsge_singular():
    """One shock, three states, one exact observable (R = 0), stationary prior: every filtered
    covariance is singular and S_t comes from the state alone."""
    rng = np.random.default_rng(3)
    N = 3
    A = stable_matrix(rng, N)
    B = rng.standard_normal((N, 1))
    C = rng.standard_normal((1, N))
    P0 = solve_discrete_lyapunov(A, B @ B.T)
    y = simulate(rng, A, B, C, np.zeros((1, 1)), np.zeros(N), P0, T_LONG)
    theta = dict(A=A, B=B, C=C, R=np.zeros((1, 1)), m0=np.zeros(N), P0=P0)
    _check(theta, y, seed=3)


def test_short_series_rolled_value_unrolled_derivative():
    """``T <= FULL_UNROLL_MAX_STEPS``: the value alone comes from the rolled scan, derivatives
    from JAX's of the unrolled filter (a custom_jvp rule): FD / jacfwd / vmap, JAX's derivative
    of the filter, and the value of the plain NumPy filter (_reference.numpy_kalman_loglik)."""
    theta, y = _model(5, M=3, T=10, diagonal=True)
    y[4, 1] = np.nan
    _check(theta, y, diagonal=True, seed=5)
    value = jax.jit(_loglik_fn(jnp.asarray(y), diagonal=True))(
        jax.tree_util.tree_map(jnp.asarray, theta))  # not differentiated: the rolled scan
    ll = numpy_kalman_loglik(**dict(theta, R=np.diag(theta["R"])), y=y)
    np.testing.assert_allclose(value, ll, rtol=1e-13)


@pytest.mark.parametrize("start, converged", [(40, True), (3, False)],
                         ids=["steady tail", "full tail"])
def test_tail_after_the_switch_step(start, converged):
    """A series of 120 split after ``start`` steps: the tail (steady state, or the full filter
    when the covariance has not converged) feeds its gradient into the head's adjoint recursion
    through the last filtered moments. (Finite differences of the switched likelihood:
    tests/test_steady_state.py.)"""
    theta, y = _model(4, T=120)
    th = jax.tree_util.tree_map(jnp.asarray, theta)
    yj = jnp.asarray(y)
    head = kalman_filter(th["A"], th["B"], th["C"], th["R"], th["m0"], th["P0"], yj[:start])
    assert bool(riccati_converged(head.filtered_covs[-1], th["A"], th["B"] @ th["B"].T, th["C"],
                                  th["R"])) == converged
    ll, g = jax.jit(jax.value_and_grad(_loglik_fn(yj, steady_state=start)))(th)
    ll_ref, g_ref = _autodiff_value_and_grad(th, yj, None, diagonal=False)
    np.testing.assert_allclose(ll, ll_ref, rtol=1e-12)
    assert_ad_close(ravel_pytree(g)[0], ravel_pytree(g_ref)[0], "steady tail vs full filter")


def test_data_gradient():
    """The gradient with respect to the observations, with a missing entry (zero there)."""
    theta, y = _model(5)
    y[6, 1] = np.nan
    th = jax.tree_util.tree_map(jnp.asarray, theta)
    R, P0 = sym(th["R"]), sym(th["P0"])
    f = jax.jit(lambda yy: kalman_loglik(th["A"], th["B"], th["C"], R, th["m0"], P0, yy))
    g = np.asarray(jax.grad(f)(jnp.asarray(y)))
    assert g[6, 1] == 0.0 and np.all(np.isfinite(g))
    observed = ~np.isnan(y)
    flat = y[observed]

    def f_flat(v):
        yy = y.copy()
        yy[observed] = v
        return f(jnp.asarray(yy))

    assert_fd_close(g[observed], central_fd(f_flat, flat), "d loglik / d y vs FD")
    g_fwd = jax.jacfwd(f)(jnp.asarray(y))
    assert_ad_close(np.asarray(g_fwd)[observed], g[observed], "jacfwd vs grad in y")


def test_second_derivatives():
    """JAX differentiates the custom rule itself: the Hessian matches central differences of
    the gradient."""
    full, y = _model(6, N=2, K=1, M=1)
    rest = jax.tree_util.tree_map(jnp.asarray, full)
    theta = dict(A=full["A"], C=full["C"])
    yj = jnp.asarray(y)

    def f(th):
        return kalman_loglik(th["A"], rest["B"], th["C"], rest["R"], rest["m0"], rest["P0"], yj)

    flat, unravel = ravel_pytree(jax.tree_util.tree_map(jnp.asarray, theta))
    fv = lambda v: f(unravel(v))  # noqa: E731
    H = np.asarray(jax.jit(jax.hessian(fv))(flat))
    grad = jax.jit(jax.grad(fv))
    H_fd = np.stack([central_fd(lambda v, i=i: grad(jnp.asarray(v))[i], np.asarray(flat))
                     for i in range(flat.size)])
    np.testing.assert_allclose(H, H.T, rtol=1e-8, atol=1e-8 * np.max(np.abs(H)))
    np.testing.assert_allclose(H, H_fd, rtol=1e-5, atol=1e-6 * np.max(np.abs(H)))


_FAIL_THETA, _FAIL_Y = _model(7)
_FAIL_Y = jnp.asarray(_FAIL_Y)


def _fail_logpdf(th):
    return kalman_loglik(th["A"], th["B"], th["C"], th["R"], th["m0"], th["P0"], _FAIL_Y)


@pytest.mark.parametrize("bad", ["R=-I", "NaN in A", "NaN in P0", "huge C"])
def test_failure_gives_minus_inf_with_finite_gradients(bad):
    good = dict(_FAIL_THETA, C=0.1 * _FAIL_THETA["C"], B=0.3 * _FAIL_THETA["B"])
    A_nan = good["A"].copy()
    A_nan[1, 2] = np.nan
    P0_nan = good["P0"].copy()
    P0_nan[0, 0] = np.nan
    change = {"R=-I": dict(R=-np.eye(2)), "NaN in A": dict(A=A_nan), "NaN in P0": dict(P0=P0_nan),
              "huge C": dict(C=1e200 * good["C"])}[bad]
    failure_check(_fail_logpdf, dict(good, **change), batch_with=good)
