r"""The inversion filter: the likelihood of a model with as many shocks as observables and no
measurement error, the shocks recovered exactly from the data (MacroModelling.jl's estimation
route for nonlinear DSGE models; Fair & Taylor 1983, Cuba-Borda et al. 2019).

Given the state at ``t - 1``, the observation is a function of the shock alone,
``y_t = z_t(w_t)``, and with ``K = M`` that map is invertible near the data. The change of
variables from ``w_t ~ N(0, I_K)`` gives

.. math::
    \log p(y_{1:T}) = \sum_t \Big[\log N(w_t;\ 0, I_K)
        - \log\big|\det \partial z_t / \partial w_t\big|\Big],\qquad z_t(w_t) = y_t .

For the (pruned) quadratic model of this package
(``u_t = A_0 + A_1 u_{t-1} + quad(A_2, uf_{t-1}) + B w_t``,
``z_t = C_0 + C_1 u_t + quad(C_2, uf_t)``, ``uf_t = A_1 uf_{t-1} + B w_t`` when pruned, ``uf = u``
otherwise) the map is quadratic in the shock:

.. math::
    z_t(w) = d_t + J_t w + \mathrm{quad}(Q, w),\quad
    v_t = A_1 uf_{t-1}\ (\text{pruned}) \text{ or } u_t - B w_t,\quad
    d_t = C_0 + C_1 (u_t - B w_t) + \mathrm{quad}(C_2, v_t),

:math:`J_t = C_1 B + 2 (v_t^\top \bar C_{2,i} B)_i`, :math:`Q_i = B^\top \bar C_{2,i} B` with
:math:`\bar C_2` the symmetrised ``C_2``, and the Jacobian is :math:`J_t + 2 Q w`. Each step
solves ``z_t(w) = y_t`` by Newton's method from ``w = 0`` (the root whose basin holds the origin,
as MacroModelling.jl does). The derivatives are implicit: the Newton iterations run outside the
gradient and one Newton step from the converged root, ``w* - J(w*)^{-1} F(w*)``, is
differentiated; at a root ``F(w*) = 0``, so its derivative is the implicit-function-theorem
derivative ``-J^{-1} dF`` (forward and reverse mode), never the iterations'.

A step fails (``ok`` False, ``-inf`` with finite gradients) where Newton does not reach a root
(a quadratic map may have none: ``a = b w + c w^2`` with ``a < 0 = b``, ``c > 0``), the Jacobian
is singular, or a value is not finite. From a failed step on the shocks are zero stand-ins.
The linear model is the special case ``Q = 0``: one linear solve per step, no Newton.
"""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp
from jax import lax

from .guards import finite_or
from .linalg import LOG_2PI, quad

#: Newton stops after this many iterations (quadratic convergence needs a handful from w = 0
#: when the quadratic terms are a perturbation, as in a second-order DSGE solution).
MAX_NEWTON_STEPS = 50


class InversionResult(NamedTuple):
    """Per-step pieces of the inversion filter.

    ``shocks (T, K)``: the recovered ``w_t``; ``logdets (T,)``: ``log|det dz_t/dw_t|``;
    ``loglik ()``: the log-likelihood (``-inf`` where ``ok`` is False); ``ok ()``.
    """

    shocks: jnp.ndarray
    logdets: jnp.ndarray
    loglik: jnp.ndarray
    ok: jnp.ndarray


def _jacobian(J0, Q, w):
    """``dz/dw = J0 + 2 Q w`` for ``z = d + J0 w + quad(Q, w)`` with symmetric ``Q_i``."""
    return J0 + 2.0 * jnp.einsum("ijk,k->ij", Q, w)


def _residual(d, J0, Q, y, w):
    return d + J0 @ w + quad(Q, w) - y


def _newton(d, J0, Q, y):
    """Newton's method for ``d + J0 w + quad(Q, w) = y`` from ``w = 0`` (no gradient)."""
    eps = jnp.finfo(d.dtype).eps

    def cond(carry):
        _, step, i = carry
        return (i < MAX_NEWTON_STEPS) & (step > 0.0)

    def body(carry):
        w, _, i = carry
        J = _jacobian(J0, Q, w)
        delta = jnp.linalg.solve(J, _residual(d, J0, Q, y, w))
        ok = jnp.all(jnp.isfinite(delta))
        w_new = jnp.where(ok, w - delta, w)
        # stop at round-off (or on a singular Jacobian: the residual check then refuses w)
        size = jnp.where(ok, jnp.max(jnp.abs(delta)), 0.0)
        step = jnp.where(size > 4.0 * eps * (1.0 + jnp.max(jnp.abs(w_new))), size, 0.0)
        return w_new, step, i + 1

    w0 = jnp.zeros(J0.shape[-1], d.dtype)
    w, _, _ = lax.while_loop(cond, body, (w0, jnp.ones((), d.dtype), 0))
    return w


def _root_ok(d, J0, Q, y, w):
    """True where ``w`` solves the step to ``sqrt(eps)`` relative to the sizes involved."""
    r = _residual(d, J0, Q, y, w)
    scale = 1.0 + jnp.max(jnp.abs(y)) + jnp.max(jnp.abs(d)) + jnp.max(jnp.abs(J0 @ w))
    tol = jnp.sqrt(jnp.finfo(d.dtype).eps) * scale
    return jnp.all(jnp.isfinite(w)) & (jnp.max(jnp.abs(r)) <= tol)


def solve_shock(d, J0, Q, y, quadratic=True):
    """The shock ``w`` with ``d + J0 w + quad(Q, w) = y``, the Jacobian there and ``ok``.

    Differentiable (implicit derivatives, see the module docstring), the Jacobian included;
    where ``ok`` is False the shock is zeros and the Jacobian the identity (finite stand-ins).
    """
    K = J0.shape[-1]
    eye = jnp.eye(K, dtype=J0.dtype)
    if quadratic:
        w_star = _newton(*(lax.stop_gradient(x) for x in (d, J0, Q, y)))
        ok = _root_ok(d, J0, Q, y, w_star)
        w_star = jnp.where(ok, w_star, 0.0)
        J = _jacobian(J0, Q, w_star)
        F = _residual(d, J0, Q, y, w_star)
    else:
        w_star = jnp.zeros(K, J0.dtype)
        J, F, ok = J0, d - y, jnp.array(True)
    sign, _ = jnp.linalg.slogdet(lax.stop_gradient(J))
    ok = ok & (sign != 0) & jnp.all(jnp.isfinite(J)) & jnp.all(jnp.isfinite(F))
    J = jnp.where(ok, J, eye)
    # one (differentiated) Newton step from the root: the value is w*, the derivative implicit
    w = w_star - jnp.linalg.solve(J, jnp.where(ok, F, 0.0))
    ok = ok & jnp.all(jnp.isfinite(w))
    w = jnp.where(ok, w, 0.0)
    # the Jacobian again at the differentiable w: its log-determinant depends on the
    # parameters through w too
    return w, jnp.where(ok, _jacobian(J0, Q, w), eye), ok


def inversion_filter(A_0, A_1, A_2, B, C_0, C_1, C_2, u0, y, *, pruned=True, quadratic=True):
    """Recover ``w_1..w_T`` from ``y (T, M)`` given ``u_0`` (``uf_0 = u_0``) and return an
    :class:`InversionResult`. ``quadratic=False`` ignores ``A_2`` and ``C_2`` (``None``
    allowed): the linear model ``u_t = A_0 + A_1 u_{t-1} + B w_t``, ``z_t = C_0 + C_1 u_t``.
    ``B`` must be ``(N, M)``.
    """
    if quadratic:
        C2 = 0.5 * (C_2 + jnp.swapaxes(C_2, -1, -2))
        Q = jnp.einsum("ijk,jl,km->ilm", C2, B, B)
    else:
        Q = jnp.zeros((B.shape[1],) * 3, B.dtype)
    C1B = C_1 @ B

    def step(carry, y_t):
        u, uf, ok = carry
        if quadratic:
            base = A_0 + A_1 @ u + quad(A_2, uf)
            v = A_1 @ uf if pruned else base
            d = C_0 + C_1 @ base + quad(C_2, v)
            J0 = C1B + 2.0 * jnp.einsum("ijk,j,kl->il", C2, v, B)
        else:
            base = A_0 + A_1 @ u
            v = base
            d = C_0 + C_1 @ base
            J0 = C1B
        w, J, ok_t = solve_shock(d, J0, Q, y_t, quadratic)
        ok_t = ok_t & ok
        w = jnp.where(ok_t, w, 0.0)
        _, logdet = jnp.linalg.slogdet(J)
        Bw = B @ w
        (u_new, uf_new), ok_u = finite_or(jnp.stack([base + Bw, v + Bw]), 0.0)
        bound = jnp.sqrt(jnp.finfo(u.dtype).max)
        ok_u = ok_u & jnp.all(jnp.abs(u_new) < bound) & jnp.all(jnp.abs(uf_new) < bound)
        ok_t = ok_t & ok_u
        return (jnp.where(ok_t, u_new, 0.0), jnp.where(ok_t, uf_new, 0.0), ok_t), (w, logdet)

    (_, _, ok), (w, logdets) = lax.scan(step, (u0, u0, jnp.array(True)), y)
    T, K = w.shape
    ll = -0.5 * (jnp.sum(w**2) + T * K * LOG_2PI) - jnp.sum(logdets)
    ok = ok & jnp.isfinite(ll)
    return InversionResult(w, logdets, jnp.where(ok, ll, -jnp.inf), ok)


def inversion_loglik(A_0, A_1, A_2, B, C_0, C_1, C_2, u0, y, *, pruned=True, quadratic=True):
    """The inversion-filter log-likelihood alone (see :func:`inversion_filter`)."""
    return inversion_filter(A_0, A_1, A_2, B, C_0, C_1, C_2, u0, y, pruned=pruned,
                            quadratic=quadratic).loglik
