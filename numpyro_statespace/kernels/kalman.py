"""Kalman filter for the linear Gaussian model, with element-wise missing observations.

Model (``N`` states, ``K`` shocks, ``M`` observables, ``T`` steps)::

    u_0 ~ N(m0, P0),  u_t = A u_{t-1} + B w_t,  y_t = C u_t + v_t,  w_t ~ N(0, I_K), v_t ~ N(0, R)

Each step predicts, then updates on the observed entries of ``y_t``. A missing entry (NaN in
``y`` or ``False`` in ``mask``) gets a zero row of ``C``, a unit variance uncorrelated with the
rest and a zero innovation, so it changes neither the state nor the likelihood (its constant
``-log(2 pi)/2`` is not counted): shapes stay static and an all-missing step is a pure
prediction.

Numerical failure (an innovation covariance that is not positive definite, non-finite
parameters or an overflowing recursion) makes ``log_likelihood`` ``-inf`` and ``ok`` False; the
recursion then continues from finite stand-in values so gradients stay finite (zero).

:func:`.likelihood.kalman_loglik` (the likelihood alone, what the distributions use) runs the same
scan with a hand-written derivative.
"""

from __future__ import annotations

from typing import NamedTuple, Optional

import jax.numpy as jnp
from jax import Array, lax
from jax.scipy.linalg import solve_triangular

from .guards import (
    VARIANCE_FLOOR_POWER,
    WHITENED_POWER,
    bounded_moment,
    bounded_parameter,
    factor_ok,
    finite_or,
    max_power,
    min_diagonal,
    moment_bound,
    whitened_ok,
)
from .linalg import LOG_2PI, logdet_from_cholesky, matmul, safe_cholesky, symmetrize


class KalmanFilterResult(NamedTuple):
    """Output of :func:`kalman_filter`.

    With ``save_everystep=True`` the time axis has ``T + 1`` entries (index 0 is the prior);
    with ``save_everystep=False`` it has 2: the prior and the last step.

    :ivar filtered_means: ``(T + 1, N)`` means of ``u_t | y_1..y_t`` (``m0`` first).
    :ivar filtered_covs: ``(T + 1, N, N)`` covariances of ``u_t | y_1..y_t`` (``P0`` first).
    :ivar predicted_obs: ``(T + 1, M)`` ``C E[u_t | y_1..y_{t-1}]`` (``C m0`` first).
    :ivar log_likelihoods: ``(T,)`` per-step terms ``log p(y_t | y_1..y_{t-1})``, or ``None``.
    :ivar log_likelihood: scalar ``log p(y_1..y_T)``; ``-inf`` on numerical failure.
    :ivar ok: scalar bool, False on numerical failure.
    """

    filtered_means: Array
    filtered_covs: Array
    predicted_obs: Array
    log_likelihoods: Optional[Array]
    log_likelihood: Array
    ok: Array


def predict(m, P, A, Q):
    """One-step prediction: ``(A m, A P A' + Q)``."""
    return A @ m, A @ P @ A.T + Q


def update(m_pred, P_pred, y, observed, C, R):
    """Condition ``N(m_pred, P_pred)`` on the observed entries of ``y = C u + v``.

    :param observed: ``(M,)`` bool, which entries of ``y`` are observed (``y`` is finite there).
    :return: ``(m, P, loglik, ok)`` with ``loglik = log N(y_obs; C_obs m_pred, S_obs)``.
    """
    N = m_pred.shape[0]
    C_t = jnp.where(observed[:, None], C, 0.0)
    R_t = jnp.where(observed[:, None] & observed[None, :], R, 0.0)
    R_t = R_t + jnp.diag(jnp.where(observed, 0.0, 1.0).astype(R.dtype))
    v = jnp.where(observed, y - matmul(C, m_pred), 0.0)
    CP = matmul(C_t, P_pred)
    L, ok = safe_cholesky(matmul(CP, C_t.T) + R_t)
    # Overflow guards (see guards): checked before the solve, which then runs on stand-ins
    # (identity, zero innovation) for a failed step, and on the whitened innovation after it.
    ok = ok & factor_ok(L) & jnp.all(jnp.abs(v) < moment_bound(v.dtype))
    L = jnp.where(ok, L, jnp.eye(L.shape[-1], dtype=L.dtype))
    v = jnp.where(ok, v, 0.0)
    # One triangular solve whitens both the gain's factor and the innovation.
    sol = solve_triangular(L, jnp.concatenate([CP, v[:, None]], axis=1), lower=True)
    W, e = sol[:, :N], sol[:, N]
    ok = ok & whitened_ok(e, min_diagonal(L))
    m = m_pred + matmul(W.T, e)
    P = symmetrize(P_pred - matmul(W.T, W))
    n_observed = jnp.sum(observed)
    loglik = -0.5 * (n_observed * LOG_2PI + logdet_from_cholesky(L) + e @ e)
    return m, P, loglik, ok


def update_univariate(m_pred, P_pred, y, observed, C, r):
    """:func:`update` for a diagonal ``R = diag(r)``: the observables are processed one at a
    time (Koopman and Durbin's univariate treatment), so no matrix is factorised; the result
    is the same. Fewer, fusable operations make it faster for a few observables.

    :param r: ``(M,)`` observation-noise variances.
    """
    m, P = m_pred, P_pred
    loglik = jnp.zeros((), P.dtype)
    ok = jnp.array(True)
    lo = max_power(P.dtype, VARIANCE_FLOOR_POWER)
    hi = max_power(P.dtype, WHITENED_POWER)
    big = moment_bound(P.dtype)
    for i in range(C.shape[0]):  # a static loop over observables, not over time
        c = C[i]
        Pc = matmul(P, c)
        f = matmul(c, Pc) + r[i]
        v = y[i] - matmul(c, m)
        # f > 0, with the overflow guards of the full update (see guards): the variance f
        # above max ** -0.8 and |v| / sqrt(f) < max ** 0.4 sqrt(f)
        good = (f > lo) & jnp.isfinite(f) & (jnp.abs(v) < big) & (jnp.abs(v) < hi * f)
        f = jnp.where(good, f, 1.0)
        v = jnp.where(good, v, 0.0)
        use = observed[i] & good
        m = jnp.where(use, m + Pc * (v / f), m)
        P = jnp.where(use, P - jnp.outer(Pc, Pc) / f, P)  # outer(Pc, Pc) keeps P symmetric
        loglik = loglik + jnp.where(use, -0.5 * (LOG_2PI + jnp.log(f) + v * v / f), 0.0)
        ok = ok & (good | ~observed[i])
    return m, P, loglik, ok


#: Up to this many observables a diagonal ``R`` is handled by :func:`update_univariate`.
UNIVARIATE_MAX_OBS = 4
#: Series up to this length are fully unrolled.
FULL_UNROLL_MAX_STEPS = 16


def observed_mask(y, mask=None):
    """``(T, M)`` bool: finite entries of ``y`` that ``mask`` (if given) does not exclude."""
    observed = ~jnp.isnan(y)
    if mask is not None:
        observed = observed & mask
    return observed


def observed_system(C, R, observed):
    """``(T, M, N)`` and ``(T, M, M)``: every step's ``C`` and ``R`` under the missing-data
    convention of :func:`update` (a missing entry: zero row of ``C``, unit variance uncorrelated
    with the rest), for the computations over all steps at once.

    :param R: ``(M, M)``.
    """
    C_t = jnp.where(observed[:, :, None], C, 0.0)
    R_t = jnp.where(observed[:, :, None] & observed[:, None, :], R, 0.0)
    return C_t, R_t + jnp.eye(R.shape[0], dtype=R.dtype) * ~observed[:, None, :]


def _prepare(A, B, C, R, m0, P0, y, mask):
    """What the filter's scan takes: finite, bounded stand-ins for the parameters (see guards)
    with ``Q = B B'``, ``y`` with its missing entries zeroed, the ``observed`` mask, whether
    ``R`` is handled univariately, and ``ok``.

    Non-finite parameters would poison the gradients of every step; magnitudes are bounded
    because the products they enter must not overflow.
    """
    eye = jnp.eye(A.shape[0], dtype=P0.dtype)
    A, ok_A = bounded_parameter(A)
    B, ok_B = bounded_parameter(B)
    C, ok_C = bounded_parameter(C)
    univariate = R.ndim == 1 and R.shape[0] <= UNIVARIATE_MAX_OBS
    if R.ndim == 1 and not univariate:
        R = jnp.diag(R)
    R, ok_R = finite_or(R, jnp.ones_like(R) if univariate else jnp.eye(R.shape[0], dtype=R.dtype))
    m0, ok_m = bounded_moment(m0)
    P0, ok_P = bounded_moment(P0, eye)
    ok = ok_A & ok_B & ok_C & ok_R & ok_m & ok_P & ~jnp.any(jnp.isinf(y))
    observed = observed_mask(y, mask)
    return A, B @ B.T, C, R, m0, P0, jnp.where(observed, y, 0.0), observed, univariate, ok


def _filter_scan(A, Q, C, R, univariate, m0, P0, y, observed, ok, save_everystep,
                 save_predicted=False, unroll=None):
    """The filter's ``lax.scan`` from the prior ``N(m0, P0)`` over ``y`` (missing entries
    zeroed); returns the final ``(m, P, loglik, ok, z)`` and the per-step outputs: filtered
    means and covariances, predicted observations and log-likelihood terms, and with
    ``save_predicted`` the predicted means and covariances and ``A P_{t-1}`` too. ``unroll``:
    the scan's, by default all steps of a short series (``FULL_UNROLL_MAX_STEPS``)."""
    eye = jnp.eye(A.shape[0], dtype=P0.dtype)

    varying_C = C.ndim == 3  # (T, M, N): a design matrix per step, scanned with the data

    def step(carry, inputs):
        m, P, ll, ok, _ = carry
        y_t, obs_t, C_t = inputs if varying_C else (*inputs, C)
        AP = matmul(A, P)  # kept by save_predicted: the hand-written gradient needs it (dA)
        m_pred, P_pred = matmul(A, m), matmul(AP, A.T) + Q
        m_pred, ok_mp = bounded_moment(m_pred, jnp.zeros_like(m_pred))
        P_pred, ok_Pp = bounded_moment(P_pred, eye)
        z = matmul(C_t, m_pred)
        m_f, P_f, ll_t, ok_t = (update_univariate if univariate else update)(
            m_pred, P_pred, y_t, obs_t, C_t, R)
        # an update may overflow where its inputs did not (a gain against a tiny variance)
        big = moment_bound(P_f.dtype)
        ok_t = ok_t & ok_mp & ok_Pp & jnp.all(jnp.abs(m_f) < big) & jnp.all(jnp.abs(P_f) < big)
        # Continue from finite values after a failure; the total is -inf anyway.
        m_f = jnp.where(ok_t, m_f, m_pred)
        P_f = jnp.where(ok_t, P_f, eye)
        ll_t = jnp.where(ok_t, ll_t, 0.0)
        out = (m_f, P_f, z, ll_t) if save_everystep else None
        if save_predicted:
            out = out + (m_pred, P_pred, AP)
        return (m_f, P_f, ll + ll_t, ok & ok_t, z), out

    init = (m0, P0, jnp.zeros((), P0.dtype), ok, _first(C) @ m0)
    # Short series: unrolling removes the loop's per-step overhead and lets XLA fuse across steps.
    T = y.shape[0]
    if unroll is None:
        unroll = T if 1 <= T <= FULL_UNROLL_MAX_STEPS else 1
    xs = (y, observed, C) if varying_C else (y, observed)
    return lax.scan(step, init, xs, unroll=unroll)


def _first(C):
    """``C_1``: the design matrix of the first step, time-varying ``(T, M, N)`` or not."""
    return C[0] if C.ndim == 3 else C


def kalman_filter(A, B, C, R, m0, P0, y, mask=None, *, save_everystep=True):
    """Run the filter over ``y (T, M)``; see :class:`KalmanFilterResult`.

    :param A: ``(N, N)``; :param B: ``(N, K)``; :param C: ``(M, N)``, or ``(T, M, N)`` for a
        design matrix per step (``y_t = C_t u_t + v_t``: dynamic regression).
    :param R: ``(M, M)`` covariance, or ``(M,)`` variances of a diagonal one (faster for a few
        observables: see :func:`update_univariate`).
    :param m0: ``(N,)`` and :param P0: ``(N, N)``, the prior of ``u_0``.
    :param mask: optional ``(T, M)`` bool, False marks a missing entry (as NaN in ``y`` does).
    :param save_everystep: static; False keeps only the prior and the last step (same
        ``log_likelihood``).
    """
    A, Q, C, R, m0, P0, y, observed, univariate, params_ok = _prepare(A, B, C, R, m0, P0, y, mask)
    (m_T, P_T, ll, ok, z_T), out = _filter_scan(A, Q, C, R, univariate, m0, P0, y, observed,
                                                params_ok, save_everystep)
    z0 = _first(C) @ m0
    if save_everystep:
        ms, Ps, zs, lls = out
        means = jnp.concatenate([m0[None], ms])
        covs = jnp.concatenate([P0[None], Ps])
        preds = jnp.concatenate([z0[None], zs])
    else:
        means, covs, preds = jnp.stack([m0, m_T]), jnp.stack([P0, P_T]), jnp.stack([z0, z_T])
        lls = None
    return KalmanFilterResult(means, covs, preds, lls, jnp.where(ok, ll, -jnp.inf), ok)
