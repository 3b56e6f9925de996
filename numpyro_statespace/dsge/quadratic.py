r"""The matrix quadratic :math:`\mathcal{A} P^2 + \mathcal{B} P + \mathcal{C} = 0` of
first-order perturbation, solved by cyclic reduction with implicit derivatives.

See :mod:`numpyro_statespace.dsge.first_order` for how the DSGE conditions become this
quadratic.

Method
------
With :math:`s_t = \hat x_{t+1}` (decided at ``t``) and :math:`w_t = [s_t; \hat y_t]` of size
:math:`n = n_x + n_y`, the conditions read
:math:`\mathcal{A}\, w_{t+1} + \mathcal{B}\, w_t + \mathcal{C}\, w_{t-1} = 0` with

.. math::
    \mathcal{A} = [\,0,\ H_{y'}\,],\quad \mathcal{B} = [\,H_{x'},\ H_y\,],\quad
    \mathcal{C} = [\,H_x,\ 0\,],

and the solution :math:`w_t = P\, w_{t-1}` with
:math:`P = \begin{bmatrix} h_x & 0 \\ g_x & 0 \end{bmatrix}` is the *minimal solvent* of the
matrix quadratic :math:`\mathcal{A} P^2 + \mathcal{B} P + \mathcal{C} = 0` (all eigenvalues
inside the unit circle). :func:`solve_quadratic` finds it by cyclic reduction (Bini & Meini;
the algorithm of Dynare's ``cycle_reduction``), which converges quadratically when the
``2n`` roots of :math:`\det(\mathcal{A}\lambda^2 + \mathcal{B}\lambda + \mathcal{C})` split into
``n`` inside and ``n`` outside the unit circle. For the DSGE pencil that split is exactly the
Blanchard–Kahn condition: ``n_x`` stable and ``n_y`` unstable generalised eigenvalues (the other
``n_y`` roots are zero and ``n_x`` are infinite).

Derivatives are implicit (no differentiation through the iterations): differentiating the
quadratic gives, with :math:`M = \mathcal{A} P + \mathcal{B}`,

.. math::
    M\, \dot P + \mathcal{A}\, \dot P\, P = -(\dot{\mathcal{A}} P^2 + \dot{\mathcal{B}} P
    + \dot{\mathcal{C}}),

a generalised Sylvester equation, uniquely solvable since :math:`\mathcal{A}\lambda^2 +
\mathcal{B}\lambda + \mathcal{C} = (\mathcal{A}\lambda + M)(\lambda I - P)` puts the stable
roots in ``P`` and the unstable ones in the pencil :math:`\mathcal{A}\lambda + M`. It is solved
either densely, :math:`(I \otimes M + P^\top \otimes \mathcal{A})\,\mathrm{vec}\,\dot P =
\mathrm{vec}(\cdots)` (small ``n``), or as the Stein equation :math:`\dot P = F \dot P P +
M^{-1}(\cdots)` with :math:`F = -M^{-1}\mathcal{A}` (whose eigenvalues are the reciprocals of the
unstable roots, so :math:`\rho(F)\rho(P) < 1`) summed by doubling. Both are linear maps JAX
transposes, so ``jax.jvp``/``jax.jacfwd`` and ``jax.grad`` both work and agree.

Failure
-------
``ok`` is False when there is no unique stable solution: cyclic reduction requires both of its
coefficient sequences to vanish, which happens exactly when the roots split at the unit circle,
so too few stable roots (no stable solution, e.g. an explosive exogenous process), too many
(indeterminacy) and unit roots fail (a root exactly on the unit circle may still converge, e.g.
a forward-looking ``y = E y' + x``: then the minimal-state solution comes back with ``ok`` True,
although adding a constant to ``y`` gives another bounded one); so do a large residual of the
quadratic, a singular ``M`` and non-finite Jacobians. Then ``g_x`` and ``h_x`` are zero (finite
stand-ins) and their derivatives are zero, so a model can return ``-inf`` (see
:func:`log_prob_guard`) with finite gradients. The steady state and ``H`` themselves must stay
finite for every parameter the sampler may propose (guard a closed-form steady state with
``jnp.where`` where it has no solution, and fold that condition into ``ok``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from .._validation import as_float_array

__all__ = ["solve_quadratic"]


# -- the matrix quadratic ---------------------------------------------------------------------
def _norm1(X):
    return jnp.max(jnp.sum(jnp.abs(X), axis=-2))


def _cyclic_reduction(A, B, C, max_iter):
    r"""Minimal solvent of ``A P^2 + B P + C = 0`` by cyclic reduction.

    Iterates :math:`C_{k+1} = -C_k B_k^{-1} C_k`, :math:`A_{k+1} = -A_k B_k^{-1} A_k`,
    :math:`B_{k+1} = B_k - C_k B_k^{-1} A_k - A_k B_k^{-1} C_k`,
    :math:`\hat B_{k+1} = \hat B_k - A_k B_k^{-1} C_k`; then :math:`P = -\hat B^{-1} C`.
    With the roots ordered by modulus, :math:`C_k = O(|\lambda_n|^{2^k})` and
    :math:`A_k = O(|\lambda_{n+1}|^{-2^k})`: both vanish exactly when the roots split
    ``n`` inside / ``n`` outside the unit circle (Bini, Latouche & Meini 2005), so requiring
    both to vanish is the Blanchard–Kahn test; otherwise one of them blows up or the loop
    stops at ``max_iter`` (a unit root converges only linearly). Returns ``(P, converged)``.
    """
    eps = jnp.finfo(A.dtype).eps
    n = A.shape[0]

    def cond(state):
        k, _, _, _, _, done, bad = state
        return (k < max_iter) & ~done & ~bad

    def body(state):
        k, Ak, Bk, Ck, Bhat, _, _ = state
        sol = jnp.linalg.solve(Bk, jnp.concatenate([Ak, Ck], axis=1))
        KA, KC = sol[:, :n], sol[:, n:]
        A_new = -Ak @ KA
        C_new = -Ck @ KC
        AKC = Ak @ KC
        B_new = Bk - Ck @ KA - AKC
        Bhat_new = Bhat - AKC
        a, c, b = _norm1(A_new), _norm1(C_new), _norm1(B_new)
        done = jnp.maximum(a, c) <= eps * b
        bad = ~(jnp.isfinite(a) & jnp.isfinite(b) & jnp.isfinite(c)
                & jnp.all(jnp.isfinite(Bhat_new)))
        return k + 1, A_new, B_new, C_new, Bhat_new, done, bad

    init = (jnp.array(0), A, B, C, B, jnp.array(False), jnp.array(False))
    _, _, _, _, Bhat, done, bad = lax.while_loop(cond, body, init)
    P = -jnp.linalg.solve(Bhat, C)
    return P, done & ~bad & jnp.all(jnp.isfinite(P))


def _quadratic_primal(A, B, C, max_iter, rtol):
    """``(P, M, ok)``: the solvent, ``M = A P + B`` and the success flag (stand-ins if not ok:
    ``P = 0``, ``M = I``)."""
    P, converged = _cyclic_reduction(A, B, C, max_iter)
    P = jnp.where(converged, P, 0.0)
    M = A @ P + B
    # M is invertible under the split (its pencil holds the unstable roots); check anyway.
    m_ok = jnp.all(jnp.isfinite(jnp.linalg.solve(M, A)))
    resid = _norm1(A @ P @ P + B @ P + C)
    scale = _norm1(A) * _norm1(P) ** 2 + _norm1(B) * _norm1(P) + _norm1(C)
    small = resid <= rtol * jnp.maximum(scale, jnp.finfo(A.dtype).tiny)
    ok = converged & m_ok & small
    eye = jnp.eye(A.shape[0], dtype=A.dtype)
    return jnp.where(ok, P, 0.0), jnp.where(ok, M, eye), ok


def _tangent_kronecker(M, A, P, R):
    """``X`` with ``M X + A X P = R``, from ``(I (x) M + P' (x) A) vec X = vec R``."""
    n = P.shape[0]
    K = jnp.kron(jnp.eye(n, dtype=M.dtype), M) + jnp.kron(P.T, A)
    x = jnp.linalg.solve(K, R.T.reshape(-1))  # column-major vec
    return x.reshape(n, n).T


def _tangent_doubling(M, A, P, R, num_doublings):
    """``X`` with ``M X + A X P = R``: ``X = F X P + M^{-1} R`` with ``F = -M^{-1} A``, summed
    as ``sum_k F^k (M^{-1} R) P^k`` by doubling (converges since ``rho(F) rho(P) < 1``)."""
    # Two solves, not one with [A, R]: F must not depend on the tangent R, or the loop's
    # F X P is bilinear in it and reverse mode cannot transpose it.
    F, X0 = -jnp.linalg.solve(M, A), jnp.linalg.solve(M, R)

    def body(_, carry):
        Fk, Pk, X = carry
        return Fk @ Fk, Pk @ Pk, X + Fk @ X @ Pk

    return lax.fori_loop(0, num_doublings, body, (F, P, X0))[2]


def _solve_quadratic_impl(A, B, C, max_iter, rtol, tangent):
    P, _, ok = _quadratic_primal(A, B, C, max_iter, rtol)
    return P, ok


_solve_quadratic = jax.custom_jvp(_solve_quadratic_impl, nondiff_argnums=(3, 4, 5))


@_solve_quadratic.defjvp
def _solve_quadratic_jvp(max_iter, rtol, tangent, primals, tangents):
    A, B, C = primals
    dA, dB, dC = tangents
    P, M, ok = _quadratic_primal(A, B, C, max_iter, rtol)
    # Differentiating A P^2 + B P + C = 0:  M dP + A dP P = -(dA P^2 + dB P + dC).
    # Where there is no solution the tangent is zero; the stand-ins keep every value finite.
    R = jnp.where(ok, -(dA @ P @ P + dB @ P + dC), 0.0)
    A_t = jnp.where(ok, A, 0.0)
    if tangent == "kronecker":
        dP = _tangent_kronecker(M, A_t, P, R)
    else:
        dP = _tangent_doubling(M, A_t, P, R, tangent)
    return (P, ok), (dP, np.zeros(ok.shape, dtype=jax.dtypes.float0))


_solve_quadratic_jit = jax.jit(lambda A, B, C, max_iter, rtol, tangent: _solve_quadratic(
    A, B, C, max_iter, rtol, tangent), static_argnums=(3, 4, 5))


def solve_quadratic(A, B, C, *, max_iter=100, rtol=None, tangent="auto"):
    r"""Minimal solvent ``P`` of :math:`A P^2 + B P + C = 0`, differentiable (implicitly).

    ``P`` is the solution whose eigenvalues all lie inside the unit circle, found by cyclic
    reduction; it exists and is unique when the ``2n`` roots of
    :math:`\det(A\lambda^2 + B\lambda + C)` split ``n`` inside / ``n`` outside the unit circle.

    :param A: ``(n, n)``; :param B: ``(n, n)``; :param C: ``(n, n)``.
    :param max_iter: static, cap on the cyclic-reduction iterations (each squares the error).
    :param rtol: static, relative residual accepted (default ``sqrt(eps)`` of the dtype).
    :param tangent: static, how derivatives solve :math:`M\dot P + A\dot P P = \ldots`:
        ``"kronecker"`` (one dense ``n^2 x n^2`` solve), ``"doubling"`` (60 doubling steps of
        the equivalent Stein equation, matrix products only) or ``"auto"`` (Kronecker for
        ``n <= 12``: the ``n^2 x n^2`` solve costs ``n^6 / 3`` flops against doubling's
        ``O(n^3)`` per step, and above that size it is the slower by far).
    :return: ``(P (n, n), ok)``; ``ok`` is False (and ``P`` zero, with zero derivatives) when
        the split fails or the iteration breaks down.
    """
    A = as_float_array("A", A)
    B = as_float_array("B", B)
    C = as_float_array("C", C)
    n = A.shape[-1] if A.ndim else 0
    for name, X in (("A", A), ("B", B), ("C", C)):
        if X.ndim != 2 or X.shape != (n, n):
            raise ValueError(f"{name} must have shape (n, n) = ({n}, {n}) (the shape of A); "
                             f"got {tuple(X.shape)}")
    dtype = jnp.result_type(A, B, C)
    A, B, C = (X.astype(dtype) for X in (A, B, C))
    if rtol is None:
        rtol = float(np.sqrt(np.finfo(dtype).eps))
    if tangent == "auto":
        tangent = "kronecker" if n <= 12 else "doubling"
    if tangent == "doubling":
        tangent = 60
    elif tangent != "kronecker":
        raise ValueError(f"tangent must be 'auto', 'kronecker' or 'doubling'; got {tangent!r}")
    # jit caches the compiled loops for eager calls; inside an outer jit it is inlined.
    return _solve_quadratic_jit(A, B, C, int(max_iter), float(rtol), tangent)
