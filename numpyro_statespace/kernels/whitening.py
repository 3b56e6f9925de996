r"""Whitening the shocks of a linear(ised) model by their conditional posterior.

For the linear Gaussian model with a known ``u_0``

.. math::
    u_t = a + A u_{t-1} + B w_t,\quad y_t = d + C u_t + v_t,\quad w_t \sim N(0, I_K),\
    v_t \sim N(0, R),

the posterior of the shocks factorises forward in time,
:math:`p(w \mid y) = \prod_t p(w_t \mid u_{t-1}, y_{t:T})`, and each factor is Gaussian:

.. math::
    w_t \mid u_{t-1}, y_{t:T} \sim N\big(M_t^{-1} B^\top (\xi'_t - \Omega'_t x_t),\ M_t^{-1}\big),
    \quad x_t = a + A u_{t-1},\quad M_t = I + B^\top \Omega'_t B,

where :math:`(\Omega'_t, \xi'_t)` is the information that ``y_t..y_T`` carry about ``u_t``
(a backward information filter, run once per parameter value). The map
``eps -> w``, :math:`w_t = \mu_t(u_{t-1}) + U_t^{-\top} \epsilon_t` with
:math:`U_t^\top U_t = M_t`, is triangular in time with log-Jacobian
:math:`-\sum_t \sum_i \log (U_t)_{ii}`. For the linear model, ``eps`` is then a posteriori
exactly ``N(0, I)`` whatever the parameters; for a quadratic model whitened by its first-order
part, it is close to it. Cost: ``O(T N^3)`` for the filter, ``O(T N^2)`` for the map. With
complete data the filter's precision converges to a fixed point; from there back the filter is
a time-invariant linear recursion for the shifts (``steady_state`` of
:func:`backward_information`, which then costs one fused product per step; see
benchmarks/README.md).

Missing observations (NaN in ``y`` or False in ``mask``) carry no information. ``R`` must be
positive definite for the information form; variances below ``jitter`` times the largest are
raised to it (by default 1e-10 in float64, 100 machine epsilons in float32: the recursion's
cancellation error, about eps over the floor, must stay small). Only the reparameterisation
uses the floor; the likelihood keeps ``R``, and since the map and its log-Jacobian come from
the same factors, a whitening model that differs from the true one (a floor, round-off, a
quadratic model's first-order part) costs sampling efficiency, never exactness.
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import Array, lax
from jax.scipy.linalg import solve_triangular

from ._batching import unbatched_all
from .direct import may_have_missing
from .kalman import observed_mask
from .linalg import matvec, safe_cholesky, symmetrize
from .steady_state import linear_recursion, settled

#: with complete data, the steps at the end of a series filtered in full before the check for
#: a converged precision (see :func:`backward_information`)
STEADY_STATE_TAIL = 32
#: up to this many shocks the factor of ``M = I + B' Omega B`` and its triangular solves are
#: written out entry by entry (fused by XLA) instead of LAPACK calls, which XLA's CPU runtime
#: pays per call and per step. The written-out factor compiles longer, and its gain shrinks
#: with ``K``: from 4 shocks on the gain does not repay it (benchmarks/README.md).
UNROLLED_FACTOR_MAX_K = 3


class BackwardInformation(NamedTuple):
    r"""Information about ``u_t`` carried by ``y_t..y_T``, for ``t = 1..T``.

    :ivar precisions: ``(T, N, N)`` :math:`\Omega'_t`.
    :ivar shifts: ``(T, N)`` :math:`\xi'_t`.
    :ivar factors: ``(T, K, K)`` lower Cholesky factors :math:`U_t` of
        :math:`M_t = I + B^\top \Omega'_t B` (reused by :func:`whiten_shocks`).
    """

    precisions: Array
    shifts: Array
    factors: Array


def default_jitter(dtype):
    """The variance floor relative to the largest variance: ``max(1e-10, 100 eps)``."""
    return max(1e-10, 100 * float(jnp.finfo(dtype).eps))


def _floored(R, jitter=None):
    """``R`` with variances below ``jitter`` times the largest one raised to that floor."""
    jitter = default_jitter(R.dtype) if jitter is None else jitter
    var = jnp.diagonal(R)
    scale = jnp.max(jnp.abs(var))
    floor = jitter * jnp.where(scale > 0, scale, 1.0)
    return R + jnp.diag(jnp.where(var < floor, floor - var, 0.0))


def observation_information(C, R, y, observed, jitter=None, missing=True):
    r"""``(T, N, N)`` :math:`C_o^\top R_{oo}^{-1} C_o` and ``(T, N)`` :math:`C_o^\top R_{oo}^{-1}
    y_o` per step, missing entries dropped (``missing=False``, static: all of ``y`` observed,
    one factorisation of ``R``)."""
    R = _floored(R, jitter)
    y = jnp.where(observed, y, 0.0)
    if not missing:
        L, _ = safe_cholesky(R)
        Cw = solve_triangular(L, C, lower=True)
        info_C = jnp.broadcast_to(Cw.T @ Cw, (y.shape[0],) + Cw.shape[1:] * 2)
        return info_C, y @ solve_triangular(L, Cw, lower=True, trans=1)

    def one(y_t, o_t):
        C_t = jnp.where(o_t[:, None], C, 0.0)
        R_t = jnp.where(o_t[:, None] & o_t[None, :], R, 0.0)
        R_t = R_t + jnp.diag(jnp.where(o_t, 0.0, 1.0).astype(R.dtype))
        L, _ = safe_cholesky(R_t)
        Cw = solve_triangular(L, C_t, lower=True)
        return Cw.T @ Cw, Cw.T @ solve_triangular(L, y_t, lower=True)

    return jax.vmap(one)(y, observed)


def _small_cholesky(M):
    """Lower Cholesky factor of a small ``M = I + B' Omega B (..., K, K)``: a square root for
    one shock, the Cholesky-Banachiewicz recursion written out up to
    :data:`UNROLLED_FACTOR_MAX_K` shocks, LAPACK beyond.

    The pivots of such an ``M`` are at least 1; where round-off has cost ``Omega`` its
    semi-definiteness (float32 beside near-exact observables) a pivot below 1 is raised to 1
    (LAPACK: the identity factor where it fails), so the factor and its gradient stay finite."""
    K = M.shape[-1]
    if K == 1:
        return jnp.sqrt(jnp.maximum(M, 1.0))
    if K > UNROLLED_FACTOR_MAX_K:
        return safe_cholesky(M)[0]
    L = {}
    for i in range(K):
        for j in range(i + 1):
            s = M[..., i, j] - sum(L[i, k] * L[j, k] for k in range(j))
            L[i, j] = jnp.sqrt(jnp.maximum(s, 1.0)) if i == j else s / L[j, j]
    zero = jnp.zeros_like(M[..., 0, 0])
    return jnp.stack([jnp.stack([L[i, j] if j <= i else zero for j in range(K)], -1)
                      for i in range(K)], -2)


def _solve_lower(U, b, trans=False):
    """``U^-1 b`` (``U^-T b`` with ``trans``) for lower triangular ``U (..., K, K)`` and
    ``b (..., K, n)``: substitution written out up to :data:`UNROLLED_FACTOR_MAX_K`, LAPACK
    beyond."""
    K = U.shape[-1]
    if K == 1:
        return b / U
    if K > UNROLLED_FACTOR_MAX_K:
        return solve_triangular(U, b, lower=True, trans=1 if trans else 0)
    x = [None] * K
    for i in (range(K - 1, -1, -1) if trans else range(K)):  # back or forward substitution
        known = range(i + 1, K) if trans else range(i)
        r = b[..., i, :] - sum((U[..., k, i] if trans else U[..., i, k])[..., None] * x[k]
                               for k in known)
        x[i] = r / U[..., i, i][..., None]
    return jnp.stack(x, -2)


def backward_information(A, B, C, R, y, mask=None, state_offset=None, obs_offset=None,
                         jitter=None, *, missing=None, steady_state=True):
    """Run the backward information filter; see :class:`BackwardInformation`.

    :param A: ``(N, N)``; :param B: ``(N, K)``; :param C: ``(M, N)``; :param R: ``(M, M)``.
    :param y: ``(T, M)``; NaN entries are missing. :param mask: optional ``(T, M)`` bool.
    :param state_offset: ``a (N,)``; :param obs_offset: ``d (M,)`` (default zeros).
    :param missing: static; ``False`` promises that every entry is observed (the cheaper
        complete-data path). ``None``: decided from ``y`` and ``mask`` when they are concrete.
    :param steady_state: static. With complete data and ``T > STEADY_STATE_TAIL``, the last
        ``STEADY_STATE_TAIL`` steps are filtered in full; if the precision recursion has then
        converged (:func:`_precision_converged`), the precisions of the earlier steps are its
        fixed point and the shifts follow a time-invariant linear recursion (one product per
        step instead of the filter's dozen); otherwise the full filter continues. Same numbers
        to round-off.

    The recursion carries precision and shift as one ``(N + 1, N + 1)`` matrix
    ``[[Omega, -xi], [-xi', .]]``, the quadratic form in ``(u, 1)``, with the offset folded into
    ``[[A, a], [0, 1]]``: a few small products per step instead of a dozen (the loop's cost
    is per operation; same numbers to round-off).
    """
    N = A.shape[0]
    a = jnp.zeros(N, A.dtype) if state_offset is None else state_offset
    d = jnp.zeros(C.shape[0], A.dtype) if obs_offset is None else obs_offset
    observed = observed_mask(y, mask)
    if missing is None:
        missing = may_have_missing(y, mask)
    info_C, info_y = observation_information(C, R, y - d, observed, jitter, missing)
    info = _augmented_information(info_C, info_y, A.dtype)
    step = _augmented_step(A, B, a)
    zero = jnp.zeros((N + 1, N + 1), A.dtype)
    head = info.shape[0] - STEADY_STATE_TAIL
    if missing or not steady_state or head <= 0:
        _, (Omega, U) = lax.scan(step, zero, info, reverse=True)
        return BackwardInformation(Omega[:, :N, :N], -Omega[:, :N, N], U)

    Omega_next, (Omega_tail, U_tail) = lax.scan(step, zero, info[head:], reverse=True)

    def full(Omega_next):
        _, (Omegas, Us) = lax.scan(step, Omega_next, info[:head], reverse=True)
        return Omegas[:, :N, :N], -Omegas[:, :N, N], Us

    # The precision at step `head`, were the recursion converged: the steady branch's fixed
    # point and the convergence check's starting point.
    Omega = info_C[0] + Omega_next[:N, :N]
    U, G = _marginalise_shock(Omega, B)
    steady = partial(_steady_head, A, a, Omega, U, G, info_y[:head])
    # one branch for a vmapped batch (see ._batching): a select would run both for every member
    converged = unbatched_all(_precision_converged(Omega_next[:N, :N], Omega, G, A))
    precisions, shifts, factors = lax.cond(converged, steady, full, Omega_next)
    return BackwardInformation(
        jnp.concatenate([precisions, Omega_tail[:, :N, :N]]),
        jnp.concatenate([shifts, -Omega_tail[:, :N, N]]),
        jnp.concatenate([factors, U_tail]))


def _augmented_information(info_C, info_y, dtype):
    """The information of each observation about ``(u_t, 1)``, ``(T, N + 1, N + 1)``:
    ``[[C' R^-1 C, -xi], [-xi', 0]]`` with ``xi = C' R^-1 (y_t - d)``."""
    T = info_y.shape[0]
    return jnp.concatenate([
        jnp.concatenate([info_C, -info_y[:, :, None]], axis=-1),
        jnp.concatenate([-info_y[:, None, :], jnp.zeros((T, 1, 1), dtype)], axis=-1)],
        axis=-2)


def _augmented_step(A, B, a):
    """One backward step of the information filter on the augmented form: the information
    about ``(u_t, 1)`` from ``y_{t+1..T}`` and the observation's, to the information about
    ``(u_{t-1}, 1)`` from ``y_{t..T}``, with ``(Omega, U)`` of step ``t`` as output."""
    N, K = B.shape
    dtype = A.dtype
    A_aug = jnp.block([[A, a[:, None]], [jnp.zeros((1, N), dtype), jnp.ones((1, 1), dtype)]])
    B_aug = jnp.concatenate([B, jnp.zeros((1, K), dtype)])
    eye_K = jnp.eye(K, dtype=dtype)

    def step(Omega_next, info_t):
        Omega = info_t + Omega_next  # about (u_t, 1) from y_{t..T}
        # Marginalise w_t through u_t = a + A u_{t-1} + B w_t.
        OB = Omega @ B_aug
        U = _small_cholesky(eye_K + B_aug.T @ OB)
        Z = _solve_lower(U, OB.T)  # U^{-1} B' [Omega, -xi]
        return symmetrize(A_aug.T @ (Omega - Z.T @ Z) @ A_aug), (Omega, U)

    return step


def _steady_head(A, a, Omega, U, G, info_y, Omega_next):
    """Precisions, shifts and factors of steps ``1..head`` (``head = len(info_y)``) once the
    precision has converged to ``Omega`` (with ``U, G`` from :func:`_marginalise_shock`):
    ``Omega_next`` is the augmented information that ``y_{head+1..T}`` carry."""
    # From step `head` back the precision is the fixed point Omega; the shift obeys
    # xi_t = C' R^-1 (y_t - d) + F xi_{t+1} - A' Omega_c a with F = A' G,
    # G = I - Omega B M^-1 B' and Omega_c = G Omega (the precision with w marginalised).
    head, N = info_y.shape
    K = U.shape[0]
    F = A.T @ G
    c = -A.T @ (G @ Omega) @ a
    xi_head = info_y[head - 1] - Omega_next[:N, N]
    # t = head - 1 .. 1, and a zero row: the recursion emits each step's incoming shift
    inputs = jnp.concatenate([info_y[:head - 1][::-1] + c, jnp.zeros((1, N), A.dtype)])
    xi = linear_recursion(F, inputs, xi_head)[::-1]           # xi_1 .. xi_head
    return (jnp.broadcast_to(Omega, (head, N, N)), xi, jnp.broadcast_to(U, (head, K, K)))


def _marginalise_shock(Omega, B):
    """``(U, G)`` for the precision ``Omega`` about ``u_t``: the factor ``U U' = M = I + B'
    Omega B`` and ``G = I - Omega B M^-1 B'`` (``G Omega``: the precision about ``x_t`` with
    ``w_t`` marginalised)."""
    N, K = B.shape
    OB = Omega @ B
    U = _small_cholesky(jnp.eye(K, dtype=B.dtype) + B.T @ OB)
    M_inv_Bt = _solve_lower(U, _solve_lower(U, B.T), trans=True)
    return U, jnp.eye(N, dtype=B.dtype) - OB @ M_inv_Bt


def _precision_converged(P_next, Omega, G, A, rtol=None):
    """True when one more step of the precision recursion from ``P_next`` (the precision
    about ``u_t`` that ``y_{t+1..T}`` carry) changes no entry by more than ``rtol`` times its
    scale (:func:`.steady_state.settled`, as for the Kalman covariance). ``Omega = C' R^-1 C
    + P_next`` and ``G`` from :func:`_marginalise_shock` of it."""
    return settled(symmetrize(A.T @ G @ Omega @ A) - P_next, Omega, A.T, rtol)


def whiten_shocks(eps, A, B, info, u0, state_offset=None):
    """The shocks ``w (T, K)`` for standardised ``eps (T, K)``, and ``log|dw/deps|``.

    :param info: :class:`BackwardInformation` from :func:`backward_information`.
    :param u0: ``(N,)`` the known initial state of the whitening model.

    ``w_t = g_t - H_t x_t`` with ``x_t = a + A u_{t-1}``, ``H_t = M_t^-1 B' Omega'_t`` and
    ``g_t = M_t^-1 B' xi'_t + U_t'^-1 eps_t`` computed for all steps at once; the states then
    follow the time-varying linear recursion ``u_t = (I - B H_t) x_t + B g_t``, one product per
    step.
    """
    N, K = B.shape
    a = jnp.zeros(N, A.dtype) if state_offset is None else state_offset
    U = info.factors
    # V = M^-1 B' = U'^-1 U^-1 B' for every step
    V = _solve_lower(U, _solve_lower(U, jnp.broadcast_to(B.T, U.shape[:-2] + (K, N))),
                     trans=True)
    H = V @ info.precisions                                            # (T, K, N)
    g = (jnp.einsum("tkn,tn->tk", V, info.shifts)
         + _solve_lower(U, eps[..., None], trans=True)[..., 0])       # (T, K)
    J = jnp.eye(N, dtype=A.dtype) - B @ H                              # (T, N, N): I - B H_t
    F = J @ A
    c = jnp.einsum("tij,j->ti", J, a) + g @ B.T

    def step(u, inputs):
        F_t, c_t = inputs
        u = matvec(F_t, u) + c_t
        return u, u

    _, u = lax.scan(step, u0, (F, c))
    x = a + jnp.concatenate([u0[None], u])[:-1] @ A.T  # x_t from u_{t-1}
    w = g - jnp.einsum("tkn,tn->tk", H, x)
    logdet = -jnp.sum(jnp.log(jnp.diagonal(U, axis1=-2, axis2=-1)))
    return w, logdet
