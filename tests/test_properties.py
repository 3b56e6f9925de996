"""Property-based tests (hypothesis) of ``KalmanLGSS.log_prob`` over random stable models.

For every drawn model (``N``, ``M``, ``K`` in 1..10 states / observables / shocks, ``T`` in
1..300 steps, a random spectral radius below 0.98, a given prior or ``u0_cov="stationary"``,
``R`` as a full covariance or as the ``(M,)`` variances of a diagonal one (the filter's
univariate update), with or without missing observations, including fully missing steps):

* ``log_prob`` is finite and equals :func:`numpy_kalman_loglik`, an independent plain-NumPy
  float64 filter in ``_reference.py`` (missing entries are dropped by selecting the observed
  rows; nothing is shared with the library): ``rtol = 1e-9``;
* the gradient with respect to every parameter and the data is finite (zero at missing data)
  and its directional derivative in a random direction matches a five-point central finite
  difference: ``|fd - ad| <= 1e-5 |ad| + 1e-9 (1 + |log p|)`` (the absolute part covers the
  finite difference's rounding error ~ eps |log p| / h, h = 1e-3);
* float32 inputs give a float32 result that agrees with float64 to
  ``|ll32 - ll64| <= F32_RTOL * (T M + |ll64|)`` (see ``F32_RTOL``);
* a batch (parameter sets stacked with ``jnp.stack``: batch_shape ``(5,)``) reproduces the
  unbatched value of its unperturbed member, and eager (un-jitted) evaluation equals the jitted
  one (``rtol = 1e-12``).

Compilation dominates the cost (one XLA program per shape), so the default test draws the
sizes from a fixed list ``SHAPES`` spanning the ranges (the parameter values, the missing
pattern and the spectral radius are drawn freely) and compiles one program per shape that
computes value, gradient, the batched finite-difference stencil and the float32 value at once.
``test_kalman_properties_any_size`` (``-m slow``) draws every size freely.

Hypothesis runs derandomized (fixed seed, no example database), so CI is reproducible.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.linalg import solve_discrete_lyapunov

from _reference import dense_moments, numpy_kalman_loglik, simulate

import numpyro_statespace as nss

PARAMS = ("A", "B", "C", "R", "m0", "P0", "y")
REF_RTOL = 1e-9
FD_STEP = 1e-3
FD_RTOL = 1e-5
FD_ATOL_REL = 1e-9
BATCH_RTOL = 1e-12
# float32 vs float64: each of the T*M observed terms carries a rounding error of a few float32
# eps (6e-8) amplified by the conditioning of the innovation covariances. The largest error
# seen on these models is 3.5e-7 * (T M + |ll|); 5e-6 leaves a ~14x margin.
F32_RTOL = 5e-6

# (N, M, K, T, stationary, diagonal): corners and interior points of N, M, K in 1..10, T in
# 1..300; ``diagonal`` passes R as its (M,) variances (the filter's univariate update).
SHAPES = [
    (1, 1, 1, 1, False, False),
    (10, 10, 10, 300, True, False),
    (3, 2, 1, 60, True, True),  # fewer shocks than states, diagonal R
    (6, 7, 9, 211, False, False),  # more observables and shocks than states
]

HYP = dict(deadline=None, derandomize=True, database=None,
           suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


# ---------------------------------------------------------------------------------------------
# random stable models
# ---------------------------------------------------------------------------------------------


def random_model(N, M, K, T, stationary, seed, rho, missing, empty_steps, diagonal=False):
    """A stable model with spectral radius ``rho``, data simulated from it, a missing pattern.

    With ``diagonal``, ``R`` is a vector of variances (a diagonal covariance)."""
    rng = np.random.default_rng(seed)
    G = rng.standard_normal((N, N))
    A = rho * G / max(np.max(np.abs(np.linalg.eigvals(G))), 1e-12)
    B = rng.standard_normal((N, K)) / math.sqrt(K)
    C = rng.standard_normal((M, N))
    F = rng.standard_normal((M, M)) / math.sqrt(M)
    R = 0.5 * F @ F.T + 0.1 * np.eye(M)
    if diagonal:
        R = np.diag(R).copy()
    m0 = rng.standard_normal(N)
    if stationary:
        P0 = solve_discrete_lyapunov(A, B @ B.T)
    else:
        H = rng.standard_normal((N, N)) / math.sqrt(N)
        P0 = H @ H.T + 0.1 * np.eye(N)
    y = simulate(rng, A, B, C, np.diag(R) if diagonal else R, m0, P0, T)
    y[rng.random((T, M)) < missing] = np.nan
    if empty_steps and T > 1:
        y[rng.choice(T, size=max(1, T // 10), replace=False)] = np.nan
    theta = dict(A=A, B=B, C=C, R=R, m0=m0, P0=P0, y=y)
    # a random direction, symmetric in the covariances, zero at the missing data, unit norm
    d = {k: rng.standard_normal(np.shape(v)) for k, v in theta.items()}
    if not diagonal:
        d["R"] = 0.5 * (d["R"] + d["R"].T)
    d["P0"] = 0.0 * d["P0"] if stationary else 0.5 * (d["P0"] + d["P0"].T)
    d["y"] = np.where(np.isnan(y), 0.0, d["y"])
    norm = math.sqrt(sum(float(np.sum(v**2)) for v in d.values()))
    d = {k: v / norm for k, v in d.items()}
    return theta, d


@st.composite
def model_draws(draw, shapes=None):
    if shapes is None:
        N, M, K = (draw(st.integers(1, 10)) for _ in range(3))
        T = draw(st.integers(1, 300))
        stationary = draw(st.booleans())
        diagonal = draw(st.booleans())
    else:
        N, M, K, T, stationary, diagonal = draw(st.sampled_from(shapes))
    return dict(N=N, M=M, K=K, T=T, stationary=stationary, diagonal=diagonal,
                seed=draw(st.integers(0, 2**32 - 1)),
                rho=draw(st.floats(0.0, 0.98)),
                missing=draw(st.sampled_from([0.0, 0.0, 0.1, 0.3, 0.7])),
                empty_steps=draw(st.booleans()))


# ---------------------------------------------------------------------------------------------
# the library side: one compiled program per shape
# ---------------------------------------------------------------------------------------------


def log_prob(th, stationary):
    P0 = "stationary" if stationary else th["P0"]
    d = nss.KalmanLGSS(th["A"], th["B"], th["C"], th["R"], th["m0"], P0,
                       num_timesteps=th["y"].shape[-2], validate_args=False)
    return d, d.log_prob(th["y"])


STENCIL = np.array([-2.0, -1.0, 1.0, 2.0, 0.0])  # last entry: the unperturbed member
WEIGHTS = np.array([1.0, -8.0, 8.0, -1.0, 0.0]) / 12.0


def _make_checks(stationary):
    def lp(t):
        return log_prob(t, stationary)[1]

    def checks(th, d):
        value, grad = jax.value_and_grad(lp)(th)
        # the finite-difference stencil and the unperturbed member as ONE batch of 5
        hs = jnp.asarray(FD_STEP * STENCIL)
        params = {k: v for k, v in th.items() if k != "y"}
        stacked = {k: jnp.stack([params[k] + h * d[k] for h in hs]) for k in params}
        if stacked["R"].ndim == 2:  # variances: a batch of diagonals is passed as matrices
            stacked["R"] = jax.vmap(jnp.diag)(stacked["R"])
        ys = jnp.stack([th["y"] + h * d["y"] for h in hs])
        dist_b, batch = log_prob(dict(stacked, y=ys), stationary)
        t32 = jax.tree.map(lambda x: x.astype(jnp.float32), th)
        value32 = lp(t32)
        return value, grad, batch, jnp.asarray(dist_b.batch_shape), value32

    return jax.jit(checks)


CHECKS = {s: _make_checks(s) for s in (False, True)}


def check_model(draw, eager=True):
    theta, d = random_model(**draw)
    stationary = draw["stationary"]
    M, T = draw["M"], draw["T"]
    th = {k: jnp.asarray(v) for k, v in theta.items()}
    dd = {k: jnp.asarray(v) for k, v in d.items()}
    value, grad, batch, batch_shape, value32 = CHECKS[stationary](th, dd)
    value, batch, value32 = float(value), np.asarray(batch), value32
    what = f"{draw}"

    # finite and equal to the independent reference
    assert np.isfinite(value), what
    ref = numpy_kalman_loglik(**dict(theta, R=np.diag(theta["R"]) if draw["diagonal"]
                                     else theta["R"]))
    np.testing.assert_allclose(value, ref, rtol=REF_RTOL, atol=1e-12, err_msg=what)

    # finite gradient, zero at missing data, directional derivative = finite difference
    for k, g in grad.items():
        assert np.all(np.isfinite(np.asarray(g))), f"{what}: non-finite gradient for {k}"
    assert np.all(np.asarray(grad["y"])[np.isnan(theta["y"])] == 0.0), what
    ad = sum(float(jnp.vdot(grad[k], dd[k])) for k in PARAMS)
    assert np.all(np.isfinite(batch)), f"{what}: stencil {batch}"
    fd = float(WEIGHTS @ batch) / FD_STEP
    assert abs(fd - ad) <= FD_RTOL * abs(ad) + FD_ATOL_REL * (1 + abs(value)), \
        f"{what}: directional derivative AD {ad!r} vs FD {fd!r}"

    # batching: batch_shape (5,) and the unperturbed member equals the unbatched value
    assert tuple(np.asarray(batch_shape)) == (len(STENCIL),)
    np.testing.assert_allclose(batch[-1], value, rtol=BATCH_RTOL, err_msg=what)

    # float32 in, float32 out, close to float64
    assert value32.dtype == jnp.float32, f"{what}: float32 inputs gave {value32.dtype}"
    err32 = abs(float(value32) - value)
    assert err32 <= F32_RTOL * (T * M + abs(value)), f"{what}: float32 error {err32}"

    # jit does not change the result: eager (op-by-op) evaluation
    if eager:
        eager_value = float(log_prob(th, stationary)[1])
        np.testing.assert_allclose(eager_value, value, rtol=BATCH_RTOL, err_msg=what)
    return err32 / (T * M + abs(value))


@settings(max_examples=8, **HYP)
@given(model_draws(SHAPES))
def test_kalman_properties(draw):
    check_model(draw, eager=False)


@settings(max_examples=3, **HYP)
@given(model_draws(SHAPES))
def test_kalman_jit_equals_eager(draw):
    """Eager evaluation costs a retrace per example, so it is checked on fewer draws."""
    check_model(draw, eager=True)


@pytest.mark.slow
@settings(max_examples=25, **HYP)
@given(model_draws())
def test_kalman_properties_any_size(draw):
    check_model(draw)


def test_reference_agrees_with_statsmodels_style_dense_formula():
    """Sanity of the reference itself: for a tiny model the log-likelihood equals the dense
    joint Gaussian density of the stacked observations (computed with scipy)."""
    from scipy.stats import multivariate_normal

    theta, _ = random_model(2, 2, 1, 5, False, seed=3, rho=0.7, missing=0.3, empty_steps=True)
    A, B, C, R, m0, P0, y = (theta[k] for k in PARAMS)
    mean, cov = dense_moments(A, B, C, R, m0, P0, y.shape[0])
    o = ~np.isnan(y.ravel())
    dense = multivariate_normal(mean[o], cov[np.ix_(o, o)]).logpdf(y.ravel()[o])
    np.testing.assert_allclose(numpy_kalman_loglik(A, B, C, R, m0, P0, y), dense, rtol=1e-12)
