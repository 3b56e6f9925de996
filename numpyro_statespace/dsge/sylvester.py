r"""The generalised Sylvester equation of second-order perturbation, with implicit derivatives.

Solves for ``X`` ``(n, m, m)`` in

.. math::
    A X + C X (P \otimes P) = E, \qquad
    [X (P \otimes P)]_{i j k} = \sum_{a b} X_{i a b} P_{a j} P_{b k},

with ``A``, ``C`` ``(n, n)``, ``P`` ``(m, m)``, ``E`` ``(n, m, m)``. With :math:`F = -A^{-1} C`
it is the Stein equation :math:`X = F X (P \otimes P) + A^{-1} E`, whose solution
:math:`X = \sum_{k \ge 0} F^k (A^{-1} E) (P^k \otimes P^k)` converges when
:math:`\rho(F)\,\rho(P)^2 < 1`. Doubling sums it: with :math:`F_0 = F`, :math:`P_0 = P`,
:math:`S_0 = A^{-1} E`,

.. math::
    S_{j+1} = S_j + F_j S_j (P_j \otimes P_j), \quad F_{j+1} = F_j^2, \quad P_{j+1} = P_j^2,

so ``J`` steps sum :math:`2^J` terms at the cost of ``J`` products of ``(n, n)`` and
``(m, m)`` matrices and contractions of ``(n, m, m)`` arrays: never the dense
``n m^2 x n m^2`` system (``(P ⊗ P)`` is never formed).

In second-order perturbation (:mod:`.second_order`) ``P = h_x`` (stable), ``A = [H_y,\ H_{y'}
g_x + H_{x'}]`` and ``C = [H_{y'},\ 0]``: then ``A`` is the first-order ``M`` of
:mod:`.quadratic` (columns reordered) and the eigenvalues of :math:`F` are the reciprocals of
the unstable roots, so under Blanchard–Kahn the series converges.

Derivatives: differentiating the equation gives the same equation for the tangent,
:math:`A \dot X + C \dot X (P \otimes P) = \dot E - \dot A X - \dot C X (P \otimes P)
- C X (\dot P \otimes P + P \otimes \dot P)`, solved by the same doubling (a custom JVP, the
primal iterations are not differentiated). The tangent solve is linear in the right-hand side
with ``F_j``, ``P_j`` independent of it, so JAX transposes it and reverse mode works too.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax import lax

__all__ = ["solve_kron_sylvester"]


def _kron_apply(X, P):
    r""":math:`X (P \otimes P)`: ``sum_ab X[i, a, b] P[a, j] P[b, k]``."""
    return jnp.einsum("iab,aj,bk->ijk", X, P, P)


def _doubling(A, C, P, E, num_doublings):
    # Two solves, not one with [C, E]: F must not depend on the tangent E (see the module
    # docstring: the loop must stay linear in S for reverse mode).
    F = -jnp.linalg.solve(A, C)
    S0 = jnp.linalg.solve(A, E.reshape(E.shape[0], -1)).reshape(E.shape)

    def body(_, carry):
        Fj, Pj, S = carry
        return Fj @ Fj, Pj @ Pj, S + jnp.einsum("ia,ajk->ijk", Fj, _kron_apply(S, Pj))

    return lax.fori_loop(0, num_doublings, body, (F, P, S0))[2]


@functools.partial(jax.custom_jvp, nondiff_argnums=(4,))
def _sylvester(A, C, P, E, num_doublings):
    return _doubling(A, C, P, E, num_doublings)


@_sylvester.defjvp
def _sylvester_jvp(num_doublings, primals, tangents):
    A, C, P, E = primals
    dA, dC, dP, dE = tangents
    X = _doubling(A, C, P, E, num_doublings)
    XPP = _kron_apply(X, P)
    R = (dE - jnp.einsum("ia,ajk->ijk", dA, X) - jnp.einsum("ia,ajk->ijk", dC, XPP)
         - jnp.einsum("ia,ajk->ijk", C, jnp.einsum("iab,aj,bk->ijk", X, dP, P)
                      + jnp.einsum("iab,aj,bk->ijk", X, P, dP)))
    return X, _doubling(A, C, P, R, num_doublings)


def solve_kron_sylvester(A, C, P, E, *, num_doublings=40):
    r"""``X`` ``(n, m, m)`` with :math:`A X + C X (P \otimes P) = E`, by doubling.

    :param A: ``(n, n)`` invertible; :param C: ``(n, n)``; :param P: ``(m, m)``;
        :param E: ``(n, m, m)``.
    :param num_doublings: static number of doubling steps (sums :math:`2^J` terms of the
        series; 40 covers :math:`\rho(F)\rho(P)^2` up to about ``1 - 1e-10``).
    :return: ``X``; not finite or inaccurate when :math:`\rho(F)\rho(P)^2 \ge 1` (check the
        residual). Differentiable (forward and reverse) by the implicit function theorem.
    """
    n, m = A.shape[0], P.shape[0]
    for name, X, shape in (("A", A, (n, n)), ("C", C, (n, n)), ("P", P, (m, m)),
                           ("E", E, (n, m, m))):
        if X.shape != shape:
            raise ValueError(f"{name} must have shape {shape} (n = {n} from A, m = {m} from P); "
                             f"got {tuple(X.shape)}")
    return _sylvester(A, C, P, E, int(num_doublings))
