r"""State and observation offsets (intercepts, regressors ``X_t beta``) by a change of variables.

The model with offsets ``c_t`` (states) and ``d_t`` (observables)::

    u_t = c_t + A u_{t-1} + B w_t,     y_t = d_t + C_t u_t + v_t

splits exactly into a deterministic path and the model without offsets:
``u_t = ubar_t + x_t`` with ``ubar_t = c_t + A ubar_{t-1}``, ``ubar_0 = 0``, and
``x_t = A x_{t-1} + B w_t`` from the same prior ``x_0 ~ N(m0, P0)``, observed through
``y_t - d_t - C_t ubar_t = C_t x_t + v_t``. So every kernel of the offset-free model (the
likelihood with its hand-written derivative, the steady-state tail, the parallel scan, the
filter, smoother and simulation smoother) applies unchanged to the shifted data, and state
moments and draws are shifted back by ``ubar_t``. A missing entry (NaN) stays missing.
"""

from __future__ import annotations

import jax.numpy as jnp

from .direct import _scan_states


def offset_path(A, c, T):
    """``(ubar (T + 1, N), ok)``: ``ubar_0 = 0``, ``ubar_t = c_t + A ubar_{t-1}``, ``t = 1..T``.

    :param c: ``(T, N)`` or ``(1, N)`` (the same offset at every step).
    ``ok`` is False (and the path zero from there on) where the path overflows, as for the
    simulated paths of :mod:`.direct`.
    """
    N = A.shape[-1]
    c = jnp.broadcast_to(c, (T, N))
    path, valid = _scan_states(lambda u, c_t: A @ u + c_t, jnp.zeros(N, A.dtype), c)
    return path, valid[-1]


def observation_shift(C, ubar, d):
    """``(T, M)`` ``d_t + C_t ubar_t`` for ``t = 1..T`` (``C`` ``(M, N)`` or ``(T, M, N)``,
    ``d`` ``(T, M)`` or ``(1, M)``)."""
    if C.ndim == 3:
        return jnp.einsum("tmn,tn->tm", C, ubar[1:]) + d
    return ubar[1:] @ C.T + d


def shifted_data(A, C, c, d, y):
    """``(y - d - C ubar, ubar, ok)``: the data of the offset-free model (see the module
    docstring) and the deterministic path ``ubar (T + 1, N)``."""
    ubar, ok = offset_path(A, c, y.shape[0])
    return y - observation_shift(C, ubar, d), ubar, ok
