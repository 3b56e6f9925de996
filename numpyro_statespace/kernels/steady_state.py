"""The steady-state tail of a Kalman filter: once the covariance recursion has converged, only
the mean moves, and the remaining steps are a linear time-invariant recursion.

Without missing data the covariances of the Kalman filter do not depend on the data and, for a
detectable model, converge geometrically to the fixed point of the Riccati recursion. From then
on (predicted covariance ``P``, innovation covariance ``S = C P C' + R = L L'``, gain
``K = P C' S^-1``) the predicted means follow::

    a_{t+1} = F a_t + G y_t,   F = A (I - K C),   G = A K,

the innovations are ``v_t = y_t - C a_t`` and ``log p(y_t | y_1..y_{t-1}) = log N(v_t; 0, S)``:
no factorisation per step, one matrix-vector product (:func:`linear_recursion`).

:func:`riccati_converged` decides the switch; it compares the predicted covariance with the one
a further fully observed step would give, entry by entry, relative to the entry's scale. What the
tail then leaves out is the covariance's remaining movement, which shrinks geometrically from
below that tolerance: the log-likelihood and its gradient agree with the full filter to
round-off (tests/test_steady_state.py).
"""

from __future__ import annotations

import jax.numpy as jnp
from jax import lax
from jax.scipy.linalg import cho_solve, solve_triangular

from .guards import factor_ok, min_diagonal, moment_bound, whitened_ok
from .linalg import LOG_2PI, logdet_from_cholesky, matvec, safe_cholesky, symmetrize

#: Relative change per step, entry by entry, below which the covariance counts as converged,
#: in units of the dtype's machine epsilon: 1e-13 in float64, 5e-5 in float32 (whose recursion
#: ends in a one-ulp oscillation that a float64 tolerance would never accept).
CONVERGENCE_RTOL_EPS = 450


def convergence_rtol(dtype):
    """:data:`CONVERGENCE_RTOL_EPS` machine epsilons of ``dtype``."""
    return CONVERGENCE_RTOL_EPS * float(jnp.finfo(dtype).eps)


def riccati_step(P, A, Q, C, R):
    """One fully observed filter step of the covariance alone: filtered ``P`` at ``t - 1`` to
    filtered at ``t``. ``R`` is ``(M, M)``."""
    P_pred = symmetrize(A @ P @ A.T + Q)
    CP = C @ P_pred
    L, _ = safe_cholesky(CP @ C.T + R)
    W = solve_triangular(L, CP, lower=True)
    return symmetrize(P_pred - W.T @ W)


def riccati_converged(P, A, Q, C, R, rtol=None):
    """True when one more fully observed step from the filtered covariance ``P`` changes no entry
    of the *predicted* covariance ``A P A' + Q`` (what the steady-state gain is made of) by more
    than ``rtol`` times its scale (:func:`settled`). The predicted covariance, not the filtered
    one: in a DSGE model with exact observables the filtered covariance is zero up to
    round-off, and round-off is all that keeps changing."""
    P_pred = symmetrize(A @ P @ A.T + Q)
    return settled(A @ (riccati_step(P, A, Q, C, R) - P) @ A.T, P_pred, A, rtol)


#: The run-time switch's tolerance is at most this (see :func:`riccati_settled`).
SWITCH_RTOL_MAX = 2e-6


def riccati_settled(P_before, P, A, Q, C, R):
    """The test of :func:`.likelihood.kalman_loglik`'s run-time switch after a run of filter
    steps from the filtered covariance ``P_before`` to ``P``, which is taken at the first run
    that passes it: :func:`riccati_converged` at ``P``; and in a dtype coarser than float64,
    also no entry of the predicted covariance moved by more than the tolerance over the whole
    run, at a tolerance of at most :data:`SWITCH_RTOL_MAX`.

    One step's change understates what is left when the recursion converges at a rate ``rho``
    per step: ``rho / (1 - rho)`` times that change remains (9 at 0.9); over ``b`` steps,
    ``rho^b / (1 - rho^b)`` times the run's change does (0.75 at 0.9 and ``b = 8``). At
    float64's tolerance (1e-13) the first leaves round-off. At float32's (5e-5; it cannot go
    far below the recursion's one-ulp oscillation) the first test alone left gradient errors of
    3e-5 relative where the full filter's own are 2e-6; both, at 2e-6 (17 machine epsilons),
    leave 3e-6. (The second test holds the switch until a whole run has been still, up to
    ``b`` steps later: in float64 not worth it.)"""
    converged = riccati_converged(P, A, Q, C, R)
    if jnp.finfo(P.dtype).eps < 1e-10:
        return converged
    rtol = min(convergence_rtol(P.dtype), SWITCH_RTOL_MAX)
    P_pred = symmetrize(A @ P @ A.T + Q)
    return (riccati_converged(P, A, Q, C, R, rtol)
            & settled(A @ (P - P_before) @ A.T, P_pred, A, rtol))


def settled(change, P, A, rtol=None):
    """True when no entry of ``change`` exceeds ``rtol`` times its scale: the convergence
    criterion of the Kalman and the backward information filters, whose recursions move ``P``
    through ``A P A'``.

    The scale of entry ``(i, j)`` is ``s_i s_j + r_i r_j`` with ``s = sqrt|diag P|`` and
    ``r = |A| s``: the entry's own size, plus the size of the products that form it, which
    bounds the round-off they leave in it (what keeps an exactly observed direction "moving").
    Not the largest variance: a near-exact observable (precision ~1e8 next to 0.1) would make
    that a tolerance of 1e-4 relative for the other entries, which then passed while still
    moving. ``rtol`` defaults to :func:`convergence_rtol` of ``P``'s dtype."""
    rtol = convergence_rtol(P.dtype) if rtol is None else rtol
    s = jnp.sqrt(jnp.abs(jnp.diagonal(P)))
    r = jnp.abs(A) @ s
    return jnp.all(jnp.abs(change) <= rtol * (jnp.outer(s, s) + jnp.outer(r, r)))


def linear_recursion(F, U, a1):
    """``a_1 .. a_n`` of ``a_{t+1} = F a_t + u_t`` for ``U = (u_1 .. u_n) (n, N)``: a scan of
    one product per step. (Blocks of ``b`` steps as batched products by powers of ``F`` leave
    ``n / b`` sequential steps, but cost ``b`` sequential ``N x N`` products and ``b`` times
    the work: on CPU they are at best level with the scan for long recursions and much slower
    for short ones; see benchmarks/README.md.)"""

    def step(a, u):
        return matvec(F, a) + u, a

    return lax.scan(step, a1, U)[1]


def steady_state_loglik(m, P, A, Q, C, R, y, n=None):
    """``(sum_t log p(y_t | y_1..y_{t-1}), ok)`` over the first ``n`` rows of ``y`` (all
    observed; by default every row), starting from the filtered ``N(m, P)`` of the step before,
    with the covariance held at its steady state.

    ``R`` is ``(M, M)``; ``n`` may be traced (a switch step found at run time: the rows after it
    should be zero, so that the recursion stays bounded there); ``ok`` is False on numerical
    failure (the value is then meaningless and its gradient finite).
    """
    M = y.shape[1]
    counted = None if n is None else (jnp.arange(y.shape[0]) < n)[:, None]
    n = y.shape[0] if n is None else n
    P_pred = symmetrize(A @ P @ A.T + Q)
    CP = C @ P_pred
    L, ok = safe_cholesky(CP @ C.T + R)
    ok = ok & factor_ok(L)
    L = jnp.where(ok, L, jnp.eye(M, dtype=L.dtype))
    K = cho_solve((L, True), CP).T                             # P C' S^-1, (N, M)
    G = A @ K
    F = A - G @ C
    a = linear_recursion(F, y @ G.T, A @ m)                   # predicted means a_1 .. a_n
    v = y - a @ C.T
    if counted is not None:
        v, a = jnp.where(counted, v, 0.0), jnp.where(counted, a, 0.0)
    big = moment_bound(v.dtype)
    ok = ok & jnp.all(jnp.abs(v) < big) & jnp.all(jnp.abs(a) < big)
    e = solve_triangular(L, jnp.where(ok, v, 0.0).T, lower=True)
    ok = ok & whitened_ok(e, min_diagonal(L))
    ll = -0.5 * (n * (M * LOG_2PI + logdet_from_cholesky(L)) + jnp.sum(e * e))
    return ll, ok
