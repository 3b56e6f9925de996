r"""Steady states by Newton's method with implicit derivatives.

The steady state :math:`\bar v(p)` solves :math:`F(\bar v, p) = 0`. Newton's iterations find it
(with backtracking: of the steps :math:`2^{-i}\,\Delta`, ``i = 0..7``, the first that lowers
:math:`\|F\|_2`, for which the Newton step is a descent direction), and the derivatives come
from the implicit function theorem, :math:`\partial \bar v / \partial p = -F_v^{-1} F_p`,
through :func:`jax.lax.custom_root`: the iterations are never differentiated, so forward and
reverse mode both cost one extra linear solve with the Jacobian :math:`F_v` at the root.
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
from jax import lax

__all__ = ["newton_steady_state"]

_STEPS = 0.5 ** jnp.arange(8)


def _newton(F, x0, max_iter, xtol):
    """Backtracking Newton from ``x0``; stops when the step is below ``xtol`` (relative), the
    step is not finite, or after ``max_iter`` iterations. Returns the last iterate."""

    def norm(x):
        r = F(x)
        return jnp.where(jnp.all(jnp.isfinite(r)), jnp.sum(r * r), jnp.inf)

    def cond(state):
        k, _, done = state
        return (k < max_iter) & ~done

    def body(state):
        k, x, _ = state
        r, J = F(x), jax.jacfwd(F)(x)
        dx = -jnp.linalg.solve(J, r)
        trial = x[None, :] + _STEPS[:, None] * dx[None, :]
        norms = jax.vmap(norm)(trial)
        better = norms < norm(x)
        # first improving step; the full step when none improves (then the next check stops)
        i = jnp.where(jnp.any(better), jnp.argmax(better), 0)
        x_new = jnp.where(jnp.all(jnp.isfinite(dx)), trial[i], x)
        small = jnp.max(jnp.abs(x_new - x)) <= xtol * (1.0 + jnp.max(jnp.abs(x)))
        return k + 1, x_new, small | ~jnp.any(better) | ~jnp.all(jnp.isfinite(dx))

    return lax.while_loop(cond, body, (jnp.array(0), x0, jnp.array(False)))[1]


def newton_steady_state(F: Callable, x0, *, max_iter=50, xtol=None):
    r"""Root of ``F(x) = 0`` near ``x0`` by Newton's method, with implicit derivatives.

    :param F: pure JAX function ``(n,) -> (n,)``; it may close over traced parameters, and the
        root is differentiable in them (``jax.lax.custom_root``).
    :param x0: ``(n,)`` start.
    :param max_iter: static cap on the Newton iterations.
    :param xtol: relative step size at which to stop (default ``eps ** 0.75`` of the dtype).
    :return: ``(x (n,), residual)``, with ``residual = max |F(x)|`` (not finite when ``F`` is
        not); the caller decides whether the residual is small enough.
    """
    x0 = jnp.asarray(x0)
    if xtol is None:
        xtol = float(jnp.finfo(x0.dtype).eps) ** 0.75

    def solve(f, guess):
        return _newton(f, guess, max_iter, xtol)

    def tangent_solve(g, y):
        # A singular or non-finite Jacobian (no root found) gets a zero tangent, so a model
        # can reject the parameters with finite gradients.
        J = jax.jacfwd(g)(y)
        eye = jnp.eye(J.shape[0], dtype=J.dtype)
        good = jnp.all(jnp.isfinite(jnp.linalg.solve(J, eye)))
        return jnp.where(good, jnp.linalg.solve(jnp.where(good, J, eye), y), 0.0)

    x = lax.custom_root(F, x0, solve, tangent_solve)
    r = F(x)
    resid = jnp.where(jnp.all(jnp.isfinite(r)), jnp.max(jnp.abs(r)), jnp.inf)
    return x, resid
