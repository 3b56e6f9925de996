"""Direct iteration: states and observations of a model driven by a given noise sequence, and the
joint log-likelihood of data given that noise.

Shapes: ``N`` states, ``K`` shocks, ``M`` observables, ``T`` steps. ``noise`` is ``(T, K)``
(``K = 0`` for a deterministic model), paths are ``(T + 1, N)`` with ``u_0`` first.
Only the state recursion is a ``lax.scan``; everything that does not feed back (shock loadings,
observation equations, the likelihood) is computed for all steps at once.

The state kernels also return ``ok``: False when the path overflowed (an explosive quadratic
model, an unstable ``A``). From the first non-finite state on, the recursion continues from
zeros, so that a likelihood built on the path can be ``-inf`` with finite gradients.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.scipy.linalg import solve_triangular

from .guards import (
    factor_ok,
    finite_or,
    min_diagonal,
    moment_bound,
    parameter_bound,
    whitened_ok,
)
from .linalg import LOG_2PI, logdet_from_cholesky, mvn_logpdf_iid, quad, safe_cholesky


def _prepend(u0, path):
    return jnp.concatenate([u0[None], path], axis=0)


def _guard(u, ok):
    """Replace an overflowing state by zeros and record the failure in ``ok``.

    States beyond ``sqrt(max float)`` count as overflow too: their squares (quadratic terms,
    the backward pass of ``quad``) would be infinite and turn zero cotangents into NaN.
    """
    bound = jnp.sqrt(jnp.finfo(u.dtype).max)
    finite = jnp.all(jnp.abs(u) < bound)  # False for NaN too
    return jnp.where(finite, u, 0.0), ok & finite


def _scan_states(step, u0, xs):
    """Run ``u_t = step(u_{t-1}, x_t)`` with the overflow guard; ``((T + 1, N), valid)`` with
    ``valid (T + 1,)`` False from the first overflowing state on (the path is zeros there)."""
    def guarded(carry, x):
        u, ok = _guard(step(carry[0], x), carry[1])
        return (u, ok), (u, ok)

    u0, ok0 = _guard(u0, jnp.array(True))
    _, (path, valid) = lax.scan(guarded, (u0, ok0), xs)
    return _prepend(u0, path), jnp.concatenate([ok0[None], valid])


def _flags(valid, ok, per_step):
    """``ok`` (the path stayed bounded and the inputs are moderate), and with ``per_step``
    also ``valid``."""
    ok = valid[-1] & ok
    return (ok, valid) if per_step else (ok,)


def reported_path(path, valid):
    """``path`` with NaN from its first overflowing state on (``valid`` from the state kernels'
    ``per_step=True``): the kernels continue from zeros there, which a simulated path must not
    show as if they were states."""
    return jnp.where(valid[:, None], path, jnp.nan)


def _moderate(*arrays):
    """False when an entry of the arrays exceeds ``max float ** (1/4)`` (1e77 in float64):
    the gradient of a likelihood built on the path (``sum_t ct_t w_t'``, ``sum_t ct_t u_t'``)
    would overflow even where the value is finite. Only a flag: the path is computed as given."""
    return jnp.all(jnp.stack([jnp.all(jnp.abs(x) < parameter_bound(x.dtype)) for x in arrays]))


def linear_states(A, B, u0, noise, *, per_step=False):
    """``u_t = A u_{t-1} + B w_t`` for ``t = 1..T``; returns ``((T + 1, N), ok)``, and with
    ``per_step`` also ``valid (T + 1,)``, False from the first state beyond ``sqrt(max
    float)`` on (see :func:`reported_path`)."""
    shocks = noise @ B.T  # (T, N), outside the recursion
    u, valid = _scan_states(lambda u, bw: A @ u + bw, u0, shocks)
    return (u, *_flags(valid, _moderate(A, B, noise), per_step))


def linear_observations(C, u):
    """``z_t = C u_t`` for a path ``u (T + 1, N)``; returns ``(T + 1, M)``."""
    return u @ C.T


def quadratic_states(A_0, A_1, A_2, B, u0, noise, pruned, *, per_step=False):
    """Second-order states; with ``pruned`` also the first-order path ``uf``.

    Returns ``(u, uf, ok)``, paths ``(T + 1, N)`` (``uf`` is ``u`` itself when not pruned),
    where ``uf`` is the path that enters the quadratic terms of the observation equation;
    ``per_step`` adds ``valid`` as in :func:`linear_states`.
    """
    shocks = noise @ B.T
    ok_s = _moderate(A_0, A_1, A_2, B, noise)
    N = u0.shape[0]
    if pruned:
        # Both states in one vector so that one guarded recursion covers them.
        def step(x, bw):
            u, uf = x[:N], x[N:]
            return jnp.concatenate([A_0 + A_1 @ u + quad(A_2, uf) + bw, A_1 @ uf + bw])

        x, valid = _scan_states(step, jnp.concatenate([u0, u0]), shocks)
        return (x[:, :N], x[:, N:], *_flags(valid, ok_s, per_step))

    u, valid = _scan_states(lambda u, bw: A_0 + A_1 @ u + quad(A_2, u) + bw, u0, shocks)
    return (u, u, *_flags(valid, ok_s, per_step))


def quadratic_observations(C_0, C_1, C_2, u, uf):
    """``z_t = C_0 + C_1 u_t + quad(C_2, uf_t)``; returns ``(T + 1, M)``."""
    return C_0 + u @ C_1.T + jnp.einsum("ijk,tj,tk->ti", C_2, uf, uf)


def generic_states(transition, p, u0, noise, t0=0, *, per_step=False):
    """``u_{t+1} = transition(u_t, w_{t+1}, p, t)`` for ``t = t0..t0+T-1``; ``((T + 1, N), ok)``
    (``per_step``: also ``valid``, as in :func:`linear_states`)."""
    times = t0 + jnp.arange(noise.shape[0])
    u, valid = _scan_states(lambda u, wt: transition(u, wt[0], p, wt[1]), u0, (noise, times))
    return (u, *_flags(valid, jnp.array(True), per_step))


def generic_observations(observation, p, u, t0=0):
    """``z_t = observation(u_t, p, t)`` for every row of ``u (T + 1, N)``; ``(T + 1, M)``."""
    times = t0 + jnp.arange(u.shape[0])
    return jax.vmap(observation, in_axes=(0, None, 0))(u, p, times)


def joint_loglik(z, y, R, ok=True, *, missing=None):
    r"""``sum_{t=1}^T log N(y_t; z_t, R)`` for ``z (T + 1, M)`` (``z_0`` unused), ``y (T, M)``.

    NaN entries of ``y`` are missing: each step uses the observed entries only. The prior of
    the noise is not included. Returns ``-inf`` (finite gradients) when ``R`` is not positive
    definite, when ``ok`` (the state kernels' flag) is False or when ``z`` is not finite.

    :param missing: static; ``False`` promises a NaN-free ``y`` (one factorisation of ``R`` for
        all steps). ``None``: :func:`may_have_missing` decides.
    """
    z, ok_z = finite_or(z[1:], 0.0)
    if missing is None:
        missing = may_have_missing(y)
    if missing:
        ll = _masked_gaussian_loglik(y - z, ~jnp.isnan(y), R)
    else:
        ll, _ = mvn_logpdf_iid(y - z, R)
    return jnp.where(ok & ok_z & jnp.isfinite(ll), ll, -jnp.inf)


def may_have_missing(y, mask=None):
    """False only when ``y`` (and ``mask``, if given) are concrete, ``y`` is NaN-free and
    ``mask`` all True (then the cheaper complete-data paths apply)."""
    try:
        y = np.asarray(y)
        mask = True if mask is None else np.asarray(mask)
    except (jax.errors.TracerArrayConversionError, jax.errors.ConcretizationTypeError):
        return True
    return bool(np.isnan(y).any() or not np.all(mask))


def _masked_gaussian_loglik(residuals, observed, R):
    """``sum_t log N(r_t[o_t]; 0, R[o_t, o_t])``; ``-inf`` if a needed block is not PD."""
    r = jnp.where(observed, residuals, 0.0)
    both = observed[:, :, None] & observed[:, None, :]
    R_t = jnp.where(both, R, 0.0) + jax.vmap(jnp.diag)(jnp.where(observed, 0.0, 1.0).astype(R.dtype))
    L, ok = safe_cholesky(R_t)
    # Overflow guards of the failure contract (see guards): before the solve, then after it.
    ok = jnp.all(ok & factor_ok(L)) & jnp.all(jnp.abs(r) < moment_bound(r.dtype))
    L = jnp.where(ok, L, jnp.eye(R.shape[-1], dtype=L.dtype))
    white = jax.vmap(lambda L, r: solve_triangular(L, r, lower=True))(L, jnp.where(ok, r, 0.0))
    ok = ok & whitened_ok(white, min_diagonal(L)[:, None])
    n_obs = jnp.sum(observed)
    ll = -0.5 * (n_obs * LOG_2PI + jnp.sum(logdet_from_cholesky(L)) + jnp.sum(white**2))
    return jnp.where(ok, ll, -jnp.inf)
