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
part, it is close to it. Cost: ``O(T N^3)`` for the filter, ``O(T N^2)`` for the map.

Missing observations (NaN in ``y`` or False in ``mask``) carry no information. ``R`` must be
positive definite for the information form; zero variances are floored at ``jitter`` times the
largest variance (only the reparameterisation uses the floor, the likelihood keeps ``R``).
"""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp
from jax import Array, lax
from jax.scipy.linalg import solve_triangular

from ._linalg import safe_cholesky, symmetrize
from .kalman import observed_mask


class BackwardInformation(NamedTuple):
    """Information about ``u_t`` carried by ``y_t..y_T``, for ``t = 1..T``.

    :ivar precisions: ``(T, N, N)`` :math:`\\Omega'_t`.
    :ivar shifts: ``(T, N)`` :math:`\\xi'_t`.
    """

    precisions: Array
    shifts: Array


def _observation_information(C, R, y, observed, jitter):
    """``(C_o' R_oo^{-1} C_o, C_o' R_oo^{-1} y_o)`` for one step, missing entries dropped."""
    scale = jnp.max(jnp.abs(jnp.diagonal(R)))
    floor = jitter * jnp.where(scale > 0, scale, 1.0)
    R = R + jnp.diag(jnp.where(jnp.diagonal(R) <= 0, floor, 0.0))
    C_t = jnp.where(observed[:, None], C, 0.0)
    R_t = jnp.where(observed[:, None] & observed[None, :], R, 0.0)
    R_t = R_t + jnp.diag(jnp.where(observed, 0.0, 1.0).astype(R.dtype))
    L, _ = safe_cholesky(R_t)
    Cw = solve_triangular(L, C_t, lower=True)
    yw = solve_triangular(L, jnp.where(observed, y, 0.0), lower=True)
    return Cw.T @ Cw, Cw.T @ yw


def backward_information(A, B, C, R, y, mask=None, state_offset=None, obs_offset=None,
                         jitter=1e-10):
    """Run the backward information filter; see :class:`BackwardInformation`.

    :param A: ``(N, N)``; :param B: ``(N, K)``; :param C: ``(M, N)``; :param R: ``(M, M)``.
    :param y: ``(T, M)``; NaN entries are missing. :param mask: optional ``(T, M)`` bool.
    :param state_offset: ``a (N,)``; :param obs_offset: ``d (M,)`` (default zeros).
    """
    N, K = B.shape
    a = jnp.zeros(N, A.dtype) if state_offset is None else state_offset
    d = jnp.zeros(C.shape[0], A.dtype) if obs_offset is None else obs_offset
    observed = observed_mask(y, mask)
    eye_K = jnp.eye(K, dtype=A.dtype)

    def step(carry, inputs):
        Omega_next, xi_next = carry  # information about u_t from y_{t+1..T}
        y_t, obs_t = inputs
        info_C, info_y = _observation_information(C, R, y_t - d, obs_t, jitter)
        Omega = symmetrize(info_C + Omega_next)  # about u_t from y_{t..T}
        xi = info_y + xi_next
        # Marginalise w_t through u_t = a + A u_{t-1} + B w_t.
        OB = Omega @ B
        U, _ = safe_cholesky(eye_K + B.T @ OB)
        Z = solve_triangular(U, OB.T, lower=True)  # U^{-1} B' Omega
        G_Omega = Omega - Z.T @ Z
        G_xi = xi - Z.T @ solve_triangular(U, B.T @ xi, lower=True)
        Omega_prev = symmetrize(A.T @ G_Omega @ A)
        xi_prev = A.T @ (G_xi - G_Omega @ a)
        return (Omega_prev, xi_prev), (Omega, xi)

    init = (jnp.zeros((N, N), A.dtype), jnp.zeros(N, A.dtype))
    _, (Omegas, xis) = lax.scan(step, init, (y, observed), reverse=True)
    return BackwardInformation(Omegas, xis)


def whiten_shocks(eps, A, B, info, u0, state_offset=None):
    """The shocks ``w (T, K)`` for standardised ``eps (T, K)``, and ``log|dw/deps|``.

    :param info: :class:`BackwardInformation` from :func:`backward_information`.
    :param u0: ``(N,)`` the known initial state of the whitening model.
    """
    N, K = B.shape
    a = jnp.zeros(N, A.dtype) if state_offset is None else state_offset
    eye_K = jnp.eye(K, dtype=A.dtype)

    def step(u, inputs):
        eps_t, Omega, xi = inputs
        x = a + A @ u
        OB = Omega @ B
        U, _ = safe_cholesky(eye_K + B.T @ OB)  # lower: U U' = M_t
        # mean M^{-1} B'(xi - Omega x); draw U'^{-1} eps has covariance M^{-1}
        rhs = solve_triangular(U, B.T @ (xi - Omega @ x), lower=True)
        w = solve_triangular(U.T, rhs + eps_t, lower=False)
        logdet = -jnp.sum(jnp.log(jnp.diagonal(U)))
        return x + B @ w, (w, logdet)

    _, (w, logdets) = lax.scan(step, u0, (eps, info.precisions, info.shifts))
    return w, jnp.sum(logdets)
