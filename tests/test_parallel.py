"""The parallel-in-time Kalman filter (kernels/parallel.py, ``KalmanLGSS(method="parallel")``).

Its value is checked against statsmodels, its gradient against central finite differences
(reverse and forward mode; vmap next to a failing member) and against the sequential
filter's (itself checked against finite differences in test_kalman_adjoint.py): with missing
data; with exact observables (two shocks, three states, R = 0), where the associative scan runs
if the zero dynamics are stable and hands over to the sequential filter if they are not; and
where an exact observable measures a predetermined state (singular elements: the sequential
filter answers). Numerical failure gives -inf with finite gradients.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.linalg import solve_discrete_lyapunov

import numpyro_statespace as nss
from _reference import simulate, spd, stable_matrix, statsmodels_loglik
from numpyro_statespace import kernels
from numpyro_statespace.distributions import kalman as kalman_distribution
from numpyro_statespace.kernels.parallel import _parallel_pass
from test_gradients import (all_transforms, assert_ad_close, assert_fd_close, central_fd,
                            failure_check, sym)

T = 32


def _general(seed=0, N=3, K=2, M=2):
    rng = np.random.default_rng(seed)
    theta = dict(A=stable_matrix(rng, N), B=0.5 * rng.standard_normal((N, K)),
                 C=rng.standard_normal((M, N)), R=spd(rng, M, scale=0.1),
                 m0=0.2 * rng.standard_normal(N), P0=spd(rng, N, scale=0.5))
    y = simulate(rng, *(theta[k] for k in ("A", "B", "C", "R", "m0", "P0")), T)
    return theta, y


def _exact(seed):
    """Two shocks, three states, two exact observables (R = 0), stationary prior. The zero
    dynamics ``(I - B (C B)^-1 C) A`` have eigenvalues up to 0.55 with seed 6 and 3.64 with
    seed 21 (there the parallel elements' products grow like ``3.64 ** T``)."""
    rng = np.random.default_rng(seed)
    A, B, C = stable_matrix(rng, 3), rng.standard_normal((3, 2)), rng.standard_normal((2, 3))
    P0 = solve_discrete_lyapunov(A, B @ B.T)
    y = simulate(rng, A, B, C, np.zeros((2, 2)), np.zeros(3), P0, T)
    return dict(A=A, B=B, C=C, R=np.zeros((2, 2)), m0=np.zeros(3), P0=P0), y


def _predetermined(seed=4):
    """A capital-like state ``k_t = 0.9 k_{t-1} + z_{t-1}`` observed exactly (``C B = 0`` in
    that row), next to an exactly observed sum of the two shocked states."""
    rng = np.random.default_rng(seed)
    A = np.array([[0.9, 1.0, 0.0], [0.0, 0.7, 0.0], [0.0, 0.0, 0.5]])
    B = np.array([[0.0, 0.0], [0.5, 0.0], [0.0, 0.4]])
    C = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]])
    P0 = solve_discrete_lyapunov(A, B @ B.T)
    y = simulate(rng, A, B, C, np.zeros((2, 2)), np.zeros(3), P0, T)
    return dict(A=A, B=B, C=C, R=np.zeros((2, 2)), m0=np.zeros(3), P0=P0), y


def _args(theta, y):
    return [jnp.asarray(theta[k]) for k in ("A", "B", "C", "R", "m0", "P0")] + [jnp.asarray(y)]


@jax.jit
def _scan_runs(A, B, C, R, m0, P0, y):
    """Whether the associative scan's elements are well defined (else the sequential filter
    answers)."""
    observed = ~jnp.isnan(y)
    return _parallel_pass(A, B @ B.T, C, R, m0, P0, jnp.where(observed, y, 0.0), observed)[1]


def _statsmodels_loglik(theta, y):
    return statsmodels_loglik(*(theta[k] for k in ("A", "B", "C", "R", "m0", "P0")), y)


def _logpdf(th):
    """The parallel filter's log-likelihood of a parameter dict that includes the data ``y``."""
    return kernels.parallel_loglik(th["A"], th["B"], th["C"], sym(th["R"]), th["m0"],
                                   sym(th["P0"]), th["y"])


def _transforms(theta, y):
    """Every case has the same shapes (N = 3, K = 2, M = 2, T = 32): one compiled program
    (value, grad, jacfwd, vmap(value_and_grad), see test_gradients.all_transforms) serves the
    value, gradient, finite-difference and failure tests of this module."""
    program, flat, unravel = all_transforms(_logpdf, dict(theta, y=y))
    value, g_rev, g_fwd = program(flat, jnp.stack([flat] * 3))[:3]
    return program, flat, unravel, value, g_rev, g_fwd


_sequential_value_and_grad = jax.jit(jax.value_and_grad(kernels.kalman_loglik,
                                                        argnums=tuple(range(7))))

CASES = {
    # model, whether the associative scan runs (else the sequential filter's value is returned)
    "missing": (_general, True),
    "exact_observables": (lambda: _exact(6), True),
    "unstable_zero_dynamics": (lambda: _exact(21), False),
    "predetermined": (_predetermined, False),
}


def _case(case):
    make, parallel = CASES[case]
    theta, y = make()
    if case == "missing":
        y[3, 0] = y[8, :] = y[15, 1] = np.nan
    return theta, y, parallel


@pytest.mark.parametrize("case", list(CASES))
def test_value_and_gradient(case):
    """Value against statsmodels, gradient (parameters and data) against the sequential
    filter's (which tests/test_kalman_adjoint.py checks against finite differences). The scan
    runs with missing data and with exact observables whose zero dynamics are stable; where
    they are unstable (the combined transitions grow exponentially and would cost the gradient
    its digits) and where an element is singular, the sequential filter answers."""
    theta, y, parallel = _case(case)
    assert bool(_scan_runs(*_args(theta, y))) == parallel
    _, _, unravel, ll, g, _ = _transforms(theta, y)
    g = unravel(g)
    np.testing.assert_allclose(ll, _statsmodels_loglik(theta, y), rtol=1e-10)
    ll_seq, g_seq = _sequential_value_and_grad(*_args(theta, y))
    np.testing.assert_allclose(ll, ll_seq, rtol=1e-11)
    for name, b in zip(("A", "B", "C", "R", "m0", "P0", "y"), g_seq):
        b = sym(b) if name in ("R", "P0") else b
        assert_ad_close(g[name], b, f"parallel vs sequential gradient in {name}")
    if case == "missing":
        assert g["y"][3, 0] == 0.0 and np.all(np.asarray(g["y"][8]) == 0.0)


def test_gradients_match_finite_differences():
    """Reverse and forward mode (the module's one compiled program) against central
    differences, in every argument but ``y`` (missing data; vmap(grad) is checked by the
    failure test below, next to a failing member)."""
    theta, y, _ = _case("missing")
    program, flat, _, _, g_rev, g_fwd = _transforms(theta, y)
    n = flat.size - y.size  # the parameters come first in the flat vector, y last
    np.testing.assert_array_equal(flat[n:], y.ravel())
    batch = jnp.stack([flat] * 3)
    fd = central_fd(lambda v: float(program(jnp.concatenate([v, flat[n:]]), batch)[0]), flat[:n])
    assert_fd_close(g_rev[:n], fd, "grad vs central FD")
    assert_fd_close(g_fwd[:n], fd, "jacfwd vs central FD")
    assert_ad_close(g_fwd, g_rev, "jacfwd vs grad")


@pytest.mark.parametrize("bad", ["R=-I", "NaN in A", "huge C"])
def test_failure_gives_minus_inf_with_finite_gradients(bad):
    theta, y = _general(7)
    good = dict(theta, C=0.1 * theta["C"], y=y)
    A_nan = good["A"].copy()
    A_nan[1, 2] = np.nan
    change = {"R=-I": dict(R=-np.eye(2)), "NaN in A": dict(A=A_nan),
              "huge C": dict(C=1e200 * good["C"])}[bad]
    failure_check(_logpdf, dict(good, **change), batch_with=good)


def test_distribution_method_parallel_and_auto(monkeypatch):
    """A batch of two models, the stationary prior, a missing entry and ``R`` as variances."""
    theta, y = _general(8)
    y[2, 1] = np.nan
    A, B, C, _, m0, P0, yj = _args(theta, y)
    R = jnp.array([0.1, 0.2])
    A2 = jnp.stack([A, 0.9 * A])  # a batch of two models

    def log_prob(method):
        return jax.jit(lambda: nss.KalmanLGSS(A2, B, C, R, m0, "stationary", T,
                                              method=method).log_prob(yj))()

    np.testing.assert_allclose(log_prob("parallel"), log_prob("sequential"), rtol=1e-12)
    # "auto" takes the parallel filter where JAX's default backend is an accelerator: the
    # choice is made outside the compiled log_prob (whose cache may already hold both filters)
    seen = []
    compiled = kalman_distribution._compiled_log_prob
    monkeypatch.setattr(kalman_distribution, "_compiled_log_prob",
                        lambda d, y, options: seen.append(options) or compiled(d, y, options))
    nss.KalmanLGSS(A, B, C, R, m0, P0, T).log_prob(yj)
    monkeypatch.setattr(jax, "default_backend", lambda: "gpu")
    nss.KalmanLGSS(A, B, C, R, m0, P0, T).log_prob(yj)
    assert seen == [(False,), (True,)]  # CPU: the sequential filter; "gpu": the parallel one


def _near_exact_predetermined(r0, seed=2, N=4, K=2, T=200):
    """A DSGE-style model whose first observable measures a predetermined state (``C B = 0`` in
    that row) with a small measurement variance ``r0``, in a rotated state basis."""
    rng = np.random.default_rng(seed)
    A = stable_matrix(rng, N, 0.9)
    B = np.zeros((N, K))
    B[2:] = rng.standard_normal((2, K))
    C = np.zeros((3, N))
    C[0, 0] = 1.0
    C[1:] = rng.standard_normal((2, N))
    Z, _ = np.linalg.qr(rng.standard_normal((N, N)))
    A, B, C = Z @ A @ Z.T, Z @ B, C @ Z.T
    R = np.diag([r0, 0.1, 0.2])
    P0 = solve_discrete_lyapunov(A, B @ B.T)
    y = simulate(rng, A, B, C, R, np.zeros(N), P0, T)
    return [np.asarray(x, np.float32) for x in (A, B, C, R, np.zeros(N), P0, y)]


@pytest.mark.parametrize("r0", [1e-7, 1e-5])
def test_float32_near_singular_element_falls_back(r0):
    """The singularity threshold is the dtype's sqrt(eps): in float32 an element whose pivot
    ratio was between 1e-8 and 1e-4 passed float64's threshold, and its gain amplified float32
    round-off into value errors of 3e-3 and gradient errors of order 1. Now the sequential
    filter answers, and float32 agrees with float64 at the same numbers."""
    args = _near_exact_predetermined(r0)
    assert not bool(_scan_runs(*map(jnp.asarray, args)))
    f = jax.jit(jax.value_and_grad(kernels.parallel_loglik, argnums=(0, 1, 2, 3)))
    v32, g32 = f(*map(jnp.asarray, args))
    v64, g64 = f(*(jnp.asarray(a, jnp.float64) for a in args))
    assert v32.dtype == jnp.float32
    np.testing.assert_allclose(float(v32), float(v64), rtol=2e-6)
    for a, b in zip(g32, g64):  # float32 conditioning alone: up to ~2e-4 (XLA -O3 fusions)
        assert float(jnp.max(jnp.abs(a - b)) / jnp.max(jnp.abs(b))) < 1e-3


def test_observables_on_different_scales_use_the_scan():
    """Each pivot is compared with its own observable's innovation variance: observables in
    units 1e6 apart are not a singular element (they sent the filter to the sequential
    fallback), and the value is statsmodels'."""
    theta, y = _general(3)
    D = np.diag([1e3, 1e-3])
    theta = dict(theta, C=D @ theta["C"], R=D @ theta["R"] @ D)
    y = y @ D
    assert bool(_scan_runs(*_args(theta, y)))
    np.testing.assert_allclose(float(jax.jit(kernels.parallel_loglik)(*_args(theta, y))),
                               _statsmodels_loglik(theta, y), rtol=1e-9)
