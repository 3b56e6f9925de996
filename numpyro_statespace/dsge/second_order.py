r"""Second-order perturbation of DSGE models (Schmitt-Grohé & Uribe 2004), differentiable in JAX.

In the timing of :mod:`.first_order`, with the shocks scaled by the perturbation parameter
:math:`\sigma` (:math:`x_{t+1} = h(x_t, \sigma) + \sigma\,\eta\Gamma\,\varepsilon_{t+1}`,
:math:`\varepsilon \sim N(0, I)`, evaluated at :math:`\sigma = 1`), the second-order policy is

.. math::
    \hat y_t = g_x \hat x_t + \tfrac12 g_{xx}(\hat x_t, \hat x_t) + \tfrac12 g_{\sigma\sigma},
    \qquad
    \hat x_{t+1} = h_x \hat x_t + \tfrac12 h_{xx}(\hat x_t, \hat x_t) + \tfrac12 h_{\sigma\sigma}
    + \eta\Gamma\,\varepsilon_{t+1},

(:math:`g_{x\sigma} = h_{x\sigma} = 0`). Write :math:`v = (y', y, x', x)` for ``H``'s arguments,
:math:`H_v` for its Jacobian and :math:`H_{vv}` its Hessian at the steady state, and
:math:`V_x = [g_x h_x;\ g_x;\ h_x;\ I]`, :math:`V_\varepsilon = [g_x \eta\Gamma;\ 0;\ \eta\Gamma;
\ 0]` for the first-order responses of ``v`` to the states and to the next shocks.

**States twice.** Differentiating :math:`H(v(x)) = 0` twice in ``x`` gives, for
:math:`X = [g_{xx};\ h_{xx}]` ``(n_y + n_x, n_x, n_x)``, the generalised Sylvester equation

.. math::
    \underbrace{[H_y,\ H_{y'} g_x + H_{x'}]}_{A}\, X
    + \underbrace{[H_{y'},\ 0]}_{C}\, X\, (h_x \otimes h_x) = -V_x^\top H_{vv} V_x,

solved with its structure by :func:`~.sylvester.solve_kron_sylvester` (doubling; unique under
Blanchard–Kahn). The right-hand side is the Hessian of
:math:`a \mapsto H(\bar v + V_x a)` at 0, an ``n_x``-dimensional Hessian (never the full
``H_vv``).

**Shock scale twice.** Differentiating twice in :math:`\sigma` and taking expectations,

.. math::
    [H_{y'} + H_y,\ H_{y'} g_x + H_{x'}]\,[g_{\sigma\sigma};\ h_{\sigma\sigma}]
    = -H_{y'} \textstyle\sum_k g_{xx}(\eta\Gamma e_k, \eta\Gamma e_k)
      - \sum_k e_k^\top V_\varepsilon^\top H_{vv} V_\varepsilon e_k,

one ``(n, n)`` linear solve.

**State space** (this package's pruned-quadratic conventions, ``quad(M, u)_i = u' M_i u``):
``A_0 = h_ss / 2``, ``A_1 = h_x``, ``A_2 = h_xx / 2``, ``B = eta Gamma``,
``C_0 = Q [g_ss; 0] / 2``, ``C_1 = Q [g_x; I]``, ``C_2 = Q [g_xx; 0] / 2``.

Derivatives in the parameters flow through the steady state, ``H``'s first, second (and, for
the derivatives, third) derivatives, the first-order solution (implicit, :mod:`.quadratic`),
the Sylvester equation (implicit, same equation per tangent) and the linear solve. ``ok`` adds
to the first-order ``ok`` the finiteness of every term and a small residual of the Sylvester
equation; where it is False every array is a finite stand-in (zeros) with zero derivatives.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .first_order import (
    _observables_matrix,
    _shock_loading,
    _vector,
    first_order_from_jacobians,
    jacobians,
)
from .sylvester import _kron_apply, solve_kron_sylvester

__all__ = ["SecondOrderSolution", "solve_second_order"]


class SecondOrderSolution(NamedTuple):
    r"""Second-order solution of a DSGE model and its pruned-quadratic state space.

    :ivar g_x: ``(n_y, n_x)``; :ivar h_x: ``(n_x, n_x)`` (as at first order).
    :ivar g_xx: ``(n_y, n_x, n_x)``, ``g_xx[i, j, k] = d2 g_i / dx_j dx_k``.
    :ivar h_xx: ``(n_x, n_x, n_x)``.
    :ivar g_ss: ``(n_y,)`` and :ivar h_ss: ``(n_x,)``, the :math:`\sigma\sigma` terms.
    :ivar A_0: ``h_ss / 2``; :ivar A_1: ``h_x``; :ivar A_2: ``h_xx / 2``.
    :ivar B: ``(n_x, K)`` ``eta @ Gamma`` (``None`` without ``eta``).
    :ivar C_0: ``(M,)`` ``Q [g_ss; 0] / 2``; :ivar C_1: ``(M, n_x)`` ``Q [g_x; I]``;
        :ivar C_2: ``(M, n_x, n_x)`` ``Q [g_xx; 0] / 2``.
    :ivar ok: scalar bool (False: no unique stable solution or a failed solve; then the arrays
        are finite stand-ins).
    :ivar steady_state_residual: ``max |H(ybar, ybar, xbar, xbar, p)|`` (not part of ``ok``).
    """

    g_x: jax.Array
    h_x: jax.Array
    g_xx: jax.Array
    h_xx: jax.Array
    g_ss: jax.Array
    h_ss: jax.Array
    A_0: jax.Array
    A_1: jax.Array
    A_2: jax.Array
    B: jax.Array | None
    C_0: jax.Array
    C_1: jax.Array
    C_2: jax.Array
    ok: jax.Array
    steady_state_residual: jax.Array


def _second_order_terms(Hv, vbar, J, g_x, h_x, Bm, ok, num_doublings, rtol):
    """``(g_xx, h_xx, g_ss, h_ss, ok)`` from ``Hv(v)`` (``H`` of the stacked ``v``)."""
    n_y, n_x = g_x.shape
    dtype = g_x.dtype
    eye = jnp.eye(n_x + n_y, dtype=dtype)
    V_x = jnp.concatenate([g_x @ h_x, g_x, h_x, jnp.eye(n_x, dtype=dtype)])
    K = 0 if Bm is None else Bm.shape[1]
    V = V_x if Bm is None else jnp.concatenate(
        [V_x, jnp.concatenate([g_x @ Bm, jnp.zeros((n_y, K), dtype), Bm,
                               jnp.zeros((n_x, K), dtype)])], axis=1)
    # One Hessian of a -> H(vbar + V a) in the n_x + K directions of states and shocks (the
    # cross block is not used); forward over forward, since the directions are few and the
    # graph is differentiated again for the parameter gradients.
    H_aa = jax.jacfwd(jax.jacfwd(lambda a: Hv(vbar + V @ a)))(jnp.zeros(n_x + K, dtype))
    E = -H_aa[:, :n_x, :n_x]
    A = jnp.concatenate([J.H_y, J.H_yp @ g_x + J.H_xp], axis=1)
    C = jnp.concatenate([J.H_yp, jnp.zeros((n_x + n_y, n_x), dtype)], axis=1)
    # Stand-ins where the first order failed: A = I, C = 0, E = 0 give X = 0.
    A, C, E = jnp.where(ok, A, eye), jnp.where(ok, C, 0.0), jnp.where(ok, E, 0.0)
    X = solve_kron_sylvester(A, C, h_x, E, num_doublings=num_doublings)
    X = 0.5 * (X + jnp.swapaxes(X, 1, 2))
    resid = jnp.max(jnp.abs(jnp.einsum("ia,ajk->ijk", A, X)
                            + jnp.einsum("ia,ajk->ijk", C, _kron_apply(X, h_x)) - E))
    scale = (jnp.max(jnp.abs(E))
             + jnp.max(jnp.abs(X)) * (jnp.max(jnp.abs(A)) + jnp.max(jnp.abs(C))))
    ok = ok & jnp.all(jnp.isfinite(X)) & (resid <= rtol * jnp.maximum(scale, 1.0))
    X = jnp.where(ok, X, 0.0)
    g_xx, h_xx = X[:n_y], X[n_y:]
    if Bm is None:
        return g_xx, h_xx, jnp.zeros(n_y, dtype), jnp.zeros(n_x, dtype), ok
    H_ee = H_aa[:, n_x:, n_x:]
    rhs = -(jnp.einsum("ikk->i", H_ee) + J.H_yp @ jnp.einsum("ijk,jl,kl->i", g_xx, Bm, Bm))
    M = jnp.concatenate([J.H_yp + J.H_y, J.H_yp @ g_x + J.H_xp], axis=1)
    M_ok = jnp.all(jnp.isfinite(jnp.linalg.solve(M, eye)))
    ok = ok & M_ok
    ss = jnp.linalg.solve(jnp.where(ok, M, eye), jnp.where(ok, rhs, 0.0))
    ok = ok & jnp.all(jnp.isfinite(ss))
    ss = jnp.where(ok, ss, 0.0)
    return g_xx, h_xx, ss[:n_y], ss[n_y:], ok


def solve_second_order(H: Callable, y_ss, x_ss, p, eta=None, *, Gamma=None, observables=None,
                       num_doublings=40, rtol=None, **kwargs) -> SecondOrderSolution:
    r"""Second-order perturbation solution of ``E_t H(y', y, x', x; p) = 0`` and its pruned
    state space (see the module docstring for the equations).

    Arguments as :func:`~.first_order.solve_first_order` (same timing; ``B = eta @ Gamma`` is
    the shock loading whose covariance enters ``g_ss``, ``h_ss``), plus:

    :param num_doublings: static, doubling steps of the Sylvester solve.
    :param rtol: static, relative residual of the Sylvester equation accepted (default
        ``sqrt(eps)``).
    :param kwargs: passed to :func:`~.quadratic.solve_quadratic`.
    :return: :class:`SecondOrderSolution`.

    Example (``models/rbc_second_order.py``)::

        sol = solve_second_order(H, y_ss, x_ss, p, eta, Gamma=jnp.array([sigma]),
                                 observables=(0, 2))
        dist = JointQuadraticSS(sol.A_0, sol.A_1, sol.A_2, sol.B, sol.C_0, sol.C_1, sol.C_2,
                                R, u0, noise, pruned=True)
    """
    y_ss, x_ss = _vector("y_ss", y_ss), _vector("x_ss", x_ss)
    n_y, n_x = y_ss.shape[0], x_ss.shape[0]
    J = jacobians(H, y_ss, x_ss, p)
    g_x, h_x, ok = first_order_from_jacobians(*J, **kwargs)
    dtype = g_x.dtype
    y_ss, x_ss = y_ss.astype(dtype), x_ss.astype(dtype)
    Bm = _shock_loading(eta, Gamma, n_x, dtype)
    Q = _observables_matrix(observables, n_y, n_x, dtype)
    if rtol is None:
        rtol = float(np.sqrt(np.finfo(dtype).eps))

    def Hv(v):
        return jnp.asarray(H(v[:n_y], v[n_y:2 * n_y], v[2 * n_y:2 * n_y + n_x],
                             v[2 * n_y + n_x:], p), dtype)

    vbar = jnp.concatenate([y_ss, y_ss, x_ss, x_ss])
    g_xx, h_xx, g_ss, h_ss, ok = _second_order_terms(Hv, vbar, J, g_x, h_x, Bm, ok,
                                                     int(num_doublings), rtol)
    g_x, h_x = jnp.where(ok, g_x, 0.0), jnp.where(ok, h_x, 0.0)
    resid = jnp.abs(Hv(vbar))
    resid = jnp.max(resid) if resid.size else jnp.zeros((), dtype)
    zeros_x = jnp.zeros((n_x,), dtype)
    C_0 = Q @ jnp.concatenate([g_ss, zeros_x]) / 2
    C_1 = Q @ jnp.concatenate([g_x, jnp.eye(n_x, dtype=dtype)])
    C_2 = jnp.einsum("mi,ijk->mjk", Q, jnp.concatenate([g_xx, jnp.zeros((n_x, n_x, n_x),
                                                                         dtype)])) / 2
    return SecondOrderSolution(g_x, h_x, g_xx, h_xx, g_ss, h_ss, h_ss / 2, h_x, h_xx / 2, Bm,
                               C_0, C_1, C_2, ok, resid)
