"""Small linear-algebra pieces shared by the kernels: a Cholesky that fails softly, Gaussian
log-densities from a Cholesky factor, and quadratic forms.

A covariance that is not positive definite yields ``ok = False`` and a finite stand-in factor
(the identity), so the caller can return ``-inf`` while every intermediate, and therefore every
gradient, stays finite; the bounds that keep products from overflowing are in :mod:`.guards`.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jax import lax
from jax.scipy.linalg import solve_triangular

from .guards import factor_ok, min_diagonal, moment_bound, whitened_ok

LOG_2PI = math.log(2.0 * math.pi)


def transpose(x):
    """``x'`` over the last two axes (a batch of matrices)."""
    return jnp.swapaxes(x, -1, -2)


def symmetrize(S):
    """``(S + S') / 2`` over the last two axes: removes round-off asymmetry before a Cholesky."""
    return 0.5 * (S + transpose(S))


@jax.custom_jvp
def _raw_cholesky(S):
    return jnp.linalg.cholesky(S)


@_raw_cholesky.defjvp
def _raw_cholesky_jvp(primals, tangents):
    # The standard rule dL = L Phi(L^{-1} dS L^{-T}), evaluated at a finite stand-in where the
    # factorisation failed so that neither the tangent nor its transpose ever holds NaN.
    (S,), (dS,) = primals, tangents
    L = jnp.linalg.cholesky(S)
    ok = jnp.all(jnp.isfinite(L), axis=(-2, -1), keepdims=True)
    eye = jnp.eye(S.shape[-1], dtype=S.dtype)
    Ls = jnp.where(ok, L, eye)
    X = solve_triangular(Ls, symmetrize(dS), lower=True)
    X = jnp.swapaxes(solve_triangular(Ls, jnp.swapaxes(X, -1, -2), lower=True), -1, -2)
    phi = jnp.tril(X) - 0.5 * jnp.eye(S.shape[-1], dtype=S.dtype) * X
    return L, jnp.where(ok, Ls @ phi, 0.0)


def safe_cholesky(S):
    """Lower Cholesky factor of the symmetrised ``S`` and a flag ``ok``.

    Where ``S`` is not (numerically) positive definite or holds non-finite values, the factor is
    the identity and ``ok`` is ``False``; gradients are finite in both cases.
    """
    L = _raw_cholesky(symmetrize(S))
    ok = jnp.all(jnp.isfinite(L), axis=(-2, -1))
    eye = jnp.eye(S.shape[-1], dtype=S.dtype)
    return jnp.where(ok[..., None, None], L, eye), ok


def psd_factor(S):
    """``F`` with ``F F' = S`` for a positive semi-definite ``S`` (singular allowed).

    Zero variances (a known initial state, an observable without measurement error) are handled
    exactly by a Cholesky factor with those rows zeroed (differentiable). Any other singular
    ``S`` falls back to an eigendecomposition, outside the gradient (eigenvector derivatives of
    repeated eigenvalues are not finite).
    """
    S = symmetrize(S)
    zero = jnp.diagonal(S) <= 0.0
    either = zero[:, None] | zero[None, :]
    L, ok = safe_cholesky(jnp.where(either, 0.0, S) + jnp.diag(zero.astype(S.dtype)))
    L = jnp.where(zero[:, None], 0.0, L)
    evals, evecs = jnp.linalg.eigh(lax.stop_gradient(S))
    E = evecs * jnp.sqrt(jnp.clip(evals, 0.0))[None, :]
    return jnp.where(ok, L, E)


def logdet_from_cholesky(L):
    """``log|S|`` from the lower Cholesky factor ``L`` of ``S``."""
    return 2.0 * jnp.sum(jnp.log(jnp.diagonal(L, axis1=-2, axis2=-1)), axis=-1)


def mvn_logpdf_iid(residuals, cov):
    """``sum_t log N(r_t; 0, cov)`` for residuals ``(T, M)`` and one ``(M, M)`` covariance.

    Returns ``(logpdf, ok)``; ``ok`` is ``False`` when ``cov`` is not positive definite, in
    which case ``logpdf`` is ``-inf`` (with finite gradients).
    """
    T, M = residuals.shape
    L, ok = safe_cholesky(cov)
    # Guard before the solve (a failed case whitens zeros with the identity), then the result.
    ok = ok & factor_ok(L) & jnp.all(jnp.abs(residuals) < moment_bound(residuals.dtype))
    L = jnp.where(ok, L, jnp.eye(M, dtype=L.dtype))
    white = solve_triangular(L, jnp.where(ok, residuals, 0.0).T, lower=True)
    ok = ok & whitened_ok(white, min_diagonal(L))
    ll = -0.5 * (T * (M * LOG_2PI + logdet_from_cholesky(L)) + jnp.sum(white**2))
    return jnp.where(ok, ll, -jnp.inf), ok


#: Up to this size :func:`matvec` multiplies and sums instead of calling a dot.
FUSED_MATVEC_MAX_N = 16


def matvec(F, x):
    """``F @ x``. Inside a scan, XLA's CPU backend fuses an elementwise product and a sum with the
    step's other operations but calls a dot on its own, and the loop pays per call: for a small
    ``F`` the former is faster; a dot is faster again from ``N ~ 30`` (see
    benchmarks/README.md)."""
    return jnp.sum(F * x, axis=-1) if F.shape[-1] <= FUSED_MATVEC_MAX_N else F @ x


#: Up to this size :func:`matmul` multiplies and sums matrix products instead of calling a dot.
FUSED_MATMUL_MAX_N = 8


def matmul(a, b):
    """``a @ b`` for 1-D and 2-D operands, as :func:`matvec` does for small sizes: an
    elementwise product and a sum, which XLA fuses, instead of a dot, which XLA's CPU backend
    hands to Eigen's thread pool at a fixed cost per call, whatever the size (most of a small
    filter step's cost; see benchmarks/README.md). Vectors up to ``FUSED_MATVEC_MAX_N``,
    matrix products up to ``FUSED_MATMUL_MAX_N`` in every dimension."""
    if a.ndim == 1 or b.ndim == 1:
        if max(a.shape + b.shape) > FUSED_MATVEC_MAX_N:
            return a @ b
        if b.ndim == 1:
            return matvec(a, b)
        return jnp.sum(a[:, None] * b, axis=0)
    if max(a.shape + b.shape) > FUSED_MATMUL_MAX_N:
        return a @ b
    return jnp.sum(a[:, :, None] * b[None, :, :], axis=1)


def quad(T3, v):
    """Quadratic forms ``quad(T3, v)[i] = v @ T3[i] @ v`` for ``T3 (P, N, N)``, ``v (N,)``."""
    return jnp.einsum("ijk,j,k->i", T3, v, v)
