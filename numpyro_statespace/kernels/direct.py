"""Direct iteration: states and observations of a model driven by a given noise sequence, and the
joint log-likelihood of data given that noise.

Shapes: ``N`` states, ``K`` shocks, ``M`` observables, ``T`` steps. ``noise`` is ``(T, K)``
(``K = 0`` for a deterministic model), paths are ``(T + 1, N)`` with ``u_0`` first.
Only the state recursion is a ``lax.scan``; everything that does not feed back (shock loadings,
observation equations, the likelihood) is computed for all steps at once.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

from ._linalg import mvn_logpdf_iid, quad


def _prepend(u0, path):
    return jnp.concatenate([u0[None], path], axis=0)


def linear_states(A, B, u0, noise):
    """``u_t = A u_{t-1} + B w_t`` for ``t = 1..T``; returns ``(T + 1, N)``."""
    shocks = noise @ B.T  # (T, N), outside the recursion

    def step(u, bw):
        u = A @ u + bw
        return u, u

    _, path = lax.scan(step, u0, shocks)
    return _prepend(u0, path)


def linear_observations(C, u):
    """``z_t = C u_t`` for a path ``u (T + 1, N)``; returns ``(T + 1, M)``."""
    return u @ C.T


def quadratic_states(A_0, A_1, A_2, B, u0, noise, pruned):
    """Second-order states; with ``pruned`` also the first-order path ``uf``.

    Returns ``(u, uf)``, both ``(T + 1, N)`` (``uf`` is ``u`` itself when not pruned), where
    ``uf`` is the path that enters the quadratic terms of the observation equation.
    """
    shocks = noise @ B.T

    if pruned:
        def step(carry, bw):
            u, uf = carry
            u_next = A_0 + A_1 @ u + quad(A_2, uf) + bw
            uf_next = A_1 @ uf + bw
            return (u_next, uf_next), (u_next, uf_next)

        _, (path, fpath) = lax.scan(step, (u0, u0), shocks)
        return _prepend(u0, path), _prepend(u0, fpath)

    def step(u, bw):
        u = A_0 + A_1 @ u + quad(A_2, u) + bw
        return u, u

    _, path = lax.scan(step, u0, shocks)
    u = _prepend(u0, path)
    return u, u


def quadratic_observations(C_0, C_1, C_2, u, uf):
    """``z_t = C_0 + C_1 u_t + quad(C_2, uf_t)``; returns ``(T + 1, M)``."""
    return C_0 + u @ C_1.T + jnp.einsum("ijk,tj,tk->ti", C_2, uf, uf)


def generic_states(transition, p, u0, noise, t0=0):
    """``u_{t+1} = transition(u_t, w_{t+1}, p, t)`` for ``t = t0..t0+T-1``; ``(T + 1, N)``."""
    times = t0 + jnp.arange(noise.shape[0])

    def step(u, inputs):
        w, t = inputs
        u = transition(u, w, p, t)
        return u, u

    _, path = lax.scan(step, u0, (noise, times))
    return _prepend(u0, path)


def generic_observations(observation, p, u, t0=0):
    """``z_t = observation(u_t, p, t)`` for every row of ``u (T + 1, N)``; ``(T + 1, M)``."""
    times = t0 + jnp.arange(u.shape[0])
    return jax.vmap(observation, in_axes=(0, None, 0))(u, p, times)


def joint_loglik(z, y, R):
    r"""``sum_{t=1}^T log N(y_t; z_t, R)`` for ``z (T + 1, M)`` (``z_0`` unused), ``y (T, M)``.

    The prior of the noise is not included. Returns ``-inf`` (finite gradients) when ``R`` is
    not positive definite.
    """
    ll, _ = mvn_logpdf_iid(y - z[1:], R)
    return ll
