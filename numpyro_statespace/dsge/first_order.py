r"""First-order perturbation of DSGE models, differentiable in JAX.

A model is its equilibrium conditions and its steady state. In the timing of Schmitt-Grohé and
Uribe (2004), with ``x`` the ``n_x`` predetermined states and ``y`` the ``n_y`` controls,

.. math::
    \mathbb{E}_t\, H(y_{t+1}, y_t, x_{t+1}, x_t;\ p) = 0 \in \mathbb{R}^{n_x + n_y},

and the first-order solution around the steady state :math:`(\bar y, \bar x)` is

.. math::
    \hat x_{t+1} = h_x \hat x_t + \eta\,\Gamma\,\varepsilon_{t+1},\qquad
    \hat y_t = g_x \hat x_t,

with hats for deviations from the steady state (in the units ``H`` is written in: levels here
if the model is in levels). Writing :math:`H_{y'}, H_y, H_{x'}, H_x` for the Jacobians of ``H``
at the steady state, :math:`g_x` ``(n_y, n_x)`` and :math:`h_x` ``(n_x, n_x)`` solve

.. math::
    H_{y'}\, g_x h_x + H_y\, g_x + H_{x'}\, h_x + H_x = 0 .

The state-space form used by the rest of the package (``u_t = A u_{t-1} + B w_t``,
``z_t = C u_t``) is then :math:`A = h_x`, :math:`B = \eta\,\Gamma` and
:math:`C = Q\,[g_x;\ I_{n_x}]`, where ``Q`` selects observables from the stacked vector
``[y; x]`` (controls first, as in DifferentiableStateSpaceModels.jl).

The matrix quadratic behind it, its derivatives and its failure modes are in
:mod:`numpyro_statespace.dsge.quadratic`.
"""

from __future__ import annotations

import numbers
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

from .._validation import as_float_array
from .quadratic import solve_quadratic

__all__ = [
    "DSGEJacobians",
    "FirstOrderSolution",
    "first_order_from_jacobians",
    "jacobians",
    "solve_first_order",
]


class DSGEJacobians(NamedTuple):
    """Jacobians of ``H`` at the steady state; each has ``n = n_x + n_y`` rows.

    :ivar H_yp: ``(n, n_y)``, with respect to ``y_{t+1}``.
    :ivar H_y: ``(n, n_y)``, with respect to ``y_t``.
    :ivar H_xp: ``(n, n_x)``, with respect to ``x_{t+1}``.
    :ivar H_x: ``(n, n_x)``, with respect to ``x_t``.
    """

    H_yp: jax.Array
    H_y: jax.Array
    H_xp: jax.Array
    H_x: jax.Array


class FirstOrderSolution(NamedTuple):
    r"""First-order solution of a DSGE model and its state-space form.

    :ivar g_x: ``(n_y, n_x)`` policy, :math:`\hat y_t = g_x \hat x_t`.
    :ivar h_x: ``(n_x, n_x)`` transition, :math:`\hat x_{t+1} = h_x \hat x_t + \ldots`.
    :ivar A: ``(n_x, n_x)``, equal to ``h_x``.
    :ivar B: ``(n_x, K)``, ``eta @ Gamma`` (``None`` when no ``eta`` was given).
    :ivar C: ``(M, n_x)``, ``Q @ [g_x; I]`` for the observables selection ``Q``.
    :ivar ok: scalar bool, False when there is no unique stable solution (then ``g_x``,
        ``h_x``, ``A`` and ``C`` are finite stand-ins).
    :ivar steady_state_residual: scalar, ``max |H(ybar, ybar, xbar, xbar, p)|``, a check of
        the steady state the caller supplied (not part of ``ok``).
    """

    g_x: jax.Array
    h_x: jax.Array
    A: jax.Array
    B: jax.Array | None
    C: jax.Array
    ok: jax.Array
    steady_state_residual: jax.Array


# -- DSGE layer ---------------------------------------------------------------------------------
def _vector(name, v):
    v = as_float_array(name, v)
    if v.ndim != 1:
        raise ValueError(f"{name} must be 1-dimensional, shape (n_{name[0]},); "
                         f"got shape {tuple(v.shape)}")
    return v


def jacobians(H: Callable, y_ss, x_ss, p) -> DSGEJacobians:
    """Jacobians of ``H(y_next, y, x_next, x, p)`` at the steady state, by ``jax.jacfwd``.

    :param H: pure JAX function returning the ``n_x + n_y`` residuals.
    :param y_ss: ``(n_y,)`` steady state of the controls; :param x_ss: ``(n_x,)`` of the states.
    :param p: any pytree of parameters passed through to ``H``.
    """
    y_ss, x_ss = _vector("y_ss", y_ss), _vector("x_ss", x_ss)
    n_y, n_x = y_ss.shape[0], x_ss.shape[0]
    dtype = jnp.result_type(y_ss, x_ss)
    y_ss, x_ss = y_ss.astype(dtype), x_ss.astype(dtype)
    out = jax.eval_shape(H, y_ss, y_ss, x_ss, x_ss, p)
    if getattr(out, "shape", None) != (n_x + n_y,):
        raise ValueError(f"H(y_next, y, x_next, x, p) must return shape (n_x + n_y,) = "
                         f"({n_x + n_y},) for n_y = {n_y} controls and n_x = {n_x} states; "
                         f"got {getattr(out, 'shape', None)}")

    def stacked(v):
        yp, y = v[:n_y], v[n_y:2 * n_y]
        xp, x = v[2 * n_y:2 * n_y + n_x], v[2 * n_y + n_x:]
        return jnp.asarray(H(yp, y, xp, x, p), dtype)

    J = jax.jacfwd(stacked)(jnp.concatenate([y_ss, y_ss, x_ss, x_ss]))
    return DSGEJacobians(J[:, :n_y], J[:, n_y:2 * n_y], J[:, 2 * n_y:2 * n_y + n_x],
                         J[:, 2 * n_y + n_x:])


def first_order_from_jacobians(H_yp, H_y, H_xp, H_x, **kwargs):
    r"""``(g_x, h_x, ok)`` from the Jacobians (see the module docstring for the maths).

    :param H_yp: ``(n, n_y)``; :param H_y: ``(n, n_y)``; :param H_xp: ``(n, n_x)``;
        :param H_x: ``(n, n_x)``, with ``n = n_x + n_y``.
    :param kwargs: passed to :func:`solve_quadratic` (``max_iter``, ``rtol``, ``tangent``).
    :return: ``g_x (n_y, n_x)``, ``h_x (n_x, n_x)``, ``ok`` (scalar bool).
    """
    H_yp, H_y = as_float_array("H_yp", H_yp, 2), as_float_array("H_y", H_y, 2)
    H_xp, H_x = as_float_array("H_xp", H_xp, 2), as_float_array("H_x", H_x, 2)
    n_y, n_x = H_yp.shape[1], H_xp.shape[1]
    n = n_x + n_y
    for name, X, cols in (("H_yp", H_yp, n_y), ("H_y", H_y, n_y), ("H_xp", H_xp, n_x),
                          ("H_x", H_x, n_x)):
        if X.shape != (n, cols):
            raise ValueError(f"{name} must have shape (n_x + n_y, {cols}) = ({n}, {cols}); "
                             f"got {tuple(X.shape)}")
    dtype = jnp.result_type(H_yp, H_y, H_xp, H_x)
    # Non-finite Jacobians (a steady state outside its domain) fail softly.
    finite = (jnp.all(jnp.isfinite(H_yp)) & jnp.all(jnp.isfinite(H_y))
              & jnp.all(jnp.isfinite(H_xp)) & jnp.all(jnp.isfinite(H_x)))
    H_yp, H_y, H_xp, H_x = (jnp.where(finite, X, 0.0).astype(dtype)
                            for X in (H_yp, H_y, H_xp, H_x))
    # Stand-in pencil with the solution P = 0 when the Jacobians are not finite.
    eye = jnp.eye(n, dtype=dtype)
    A = jnp.concatenate([jnp.zeros((n, n_x), dtype), H_yp], axis=1)
    B = jnp.where(finite, jnp.concatenate([H_xp, H_y], axis=1), eye)
    C = jnp.concatenate([H_x, jnp.zeros((n, n_y), dtype)], axis=1)
    P, ok = solve_quadratic(A, B, C, **kwargs)
    ok = ok & finite
    return P[n_x:, :n_x], P[:n_x, :n_x], ok


def _observables_matrix(observables, n_y, n_x, dtype):
    n = n_y + n_x
    if observables is None:
        return jnp.eye(n, dtype=dtype)
    if isinstance(observables, (tuple, list)) and all(
            isinstance(i, numbers.Integral) and not isinstance(i, bool) for i in observables):
        idx = [int(i) for i in observables]
        if not idx or any(i < 0 or i >= n for i in idx):
            raise ValueError(f"observables must be indices into [y; x], each in 0..{n - 1} "
                             f"(n_y = {n_y} controls first, then n_x = {n_x} states); "
                             f"got {observables!r}")
        return jnp.eye(n, dtype=dtype)[jnp.array(idx)]
    Q = as_float_array("observables", observables)
    if Q.ndim != 2 or Q.shape[1] != n:
        raise ValueError(f"observables must be a tuple of indices or an (M, n_y + n_x) = "
                         f"(M, {n}) selection matrix acting on [y; x]; got shape "
                         f"{tuple(Q.shape)}")
    return Q.astype(dtype)


def _shock_loading(eta, Gamma, n_x, dtype):
    """``B = eta @ Gamma`` ``(n_x, K)`` (``Gamma`` ``(K, K)`` or ``(K,)``), or ``None``."""
    Bm = None
    if eta is not None:
        eta = as_float_array("eta", eta)
        if eta.ndim != 2 or eta.shape[0] != n_x:
            raise ValueError(f"eta must have shape (n_x, K) with n_x = {n_x}; "
                             f"got {tuple(eta.shape)}")
        Bm = eta.astype(dtype)
        if Gamma is not None:
            K = eta.shape[1]
            Gamma = as_float_array("Gamma", Gamma)
            if Gamma.shape == (K,):
                Gamma = jnp.diag(Gamma)
            if Gamma.shape != (K, K):
                raise ValueError(f"Gamma must have shape (K, K) = ({K}, {K}) or (K,) = ({K},); "
                                 f"got {tuple(Gamma.shape)}")
            Bm = Bm @ Gamma.astype(dtype)
    elif Gamma is not None:
        raise ValueError("Gamma needs eta: B = eta @ Gamma")
    return Bm


def solve_first_order(H: Callable, y_ss, x_ss, p, eta=None, *, Gamma=None, observables=None,
                      **kwargs) -> FirstOrderSolution:
    r"""First-order perturbation solution of ``E_t H(y', y, x', x; p) = 0`` and its state space.

    :param H: pure JAX function ``H(y_next, y, x_next, x, p)`` returning the ``n_x + n_y``
        equilibrium residuals (Schmitt-Grohé–Uribe timing: ``x`` predetermined).
    :param y_ss: ``(n_y,)`` steady state of the controls; :param x_ss: ``(n_x,)`` of the
        states (both typically computed from ``p``; derivatives flow through them).
    :param p: any pytree of parameters, passed to ``H``.
    :param eta: ``(n_x, K)`` shock loading of the state transition, or ``None``.
    :param Gamma: ``(K, K)`` shock scale (or ``(K,)`` standard deviations); ``B = eta @ Gamma``;
        ``None`` means ``B = eta``.
    :param observables: indices into the stacked ``[y; x]`` (a tuple of ints), or an
        ``(M, n_y + n_x)`` selection matrix ``Q``; ``None`` observes all of ``[y; x]``.
    :param kwargs: passed to :func:`solve_quadratic`.
    :return: :class:`FirstOrderSolution` with ``A = h_x (n_x, n_x)``, ``B = eta Gamma
        (n_x, K)``, ``C = Q [g_x; I] (M, n_x)``.

    Example (the RBC of DifferentiableStateSpaceModels.jl is ``models/rbc.py``)::

        sol = solve_first_order(H, y_ss, x_ss, p, eta=jnp.array([[0.0], [-1.0]]),
                                Gamma=jnp.array([sigma]), observables=(0, 2))
        dist = KalmanLGSS(sol.A, sol.B, sol.C, R, jnp.zeros(2), "stationary", T)
    """
    y_ss, x_ss = _vector("y_ss", y_ss), _vector("x_ss", x_ss)
    n_y, n_x = y_ss.shape[0], x_ss.shape[0]
    J = jacobians(H, y_ss, x_ss, p)
    g_x, h_x, ok = first_order_from_jacobians(*J, **kwargs)
    dtype = g_x.dtype
    resid = jnp.asarray(H(y_ss, y_ss, x_ss, x_ss, p), dtype)
    resid = jnp.max(jnp.abs(resid)) if resid.size else jnp.zeros((), dtype)

    Bm = _shock_loading(eta, Gamma, n_x, dtype)
    Q = _observables_matrix(observables, n_y, n_x, dtype)
    C = Q @ jnp.concatenate([g_x, jnp.eye(n_x, dtype=dtype)], axis=0)
    return FirstOrderSolution(g_x, h_x, h_x, Bm, C, ok, resid)
