"""Stationary covariance of ``u_t = A u_{t-1} + B w_t``: the solution of ``P = A P A' + Q``."""

from __future__ import annotations

import jax.numpy as jnp
from jax import lax

from .guards import bounded_parameter, parameter_bound
from .linalg import symmetrize


def _doubling(_, carry):
    """``(A_k, P) -> (A_k^2, P + A_k P A_k')``, clipped: the doubling overflows for unstable
    ``A``, and the iterates (and gradients) must stay finite. A module-level function, so an
    eager call reuses the loop's compiled program instead of compiling a new closure's."""
    Ak, P = carry
    big = parameter_bound(P.dtype)
    return jnp.clip(Ak @ Ak, -big, big), jnp.clip(P + Ak @ P @ Ak.T, -big, big)


def stationary_covariance(A, Q, num_doublings=64):
    r"""Solve the discrete Lyapunov equation :math:`P = A P A^\top + Q` by doubling.

    :math:`P = \sum_k A^k Q A^{k\top}` is summed in ``num_doublings`` squarings
    (:math:`P \leftarrow P + A_k P A_k^\top`, :math:`A_k \leftarrow A_k^2`), which converges
    for a stable ``A`` (spectral radius below 1) after about ``log2(1 / (1 - rho))`` steps and
    uses only matrix products, so it is cheap to differentiate and runs well on accelerators.

    :param A: ``(N, N)``; :param Q: ``(N, N)`` positive semi-definite.
    :return: ``(P, ok)``; ``ok`` is False when ``A`` is not stable (``A^(2^k)`` did not vanish)
        or an entry of ``A``, ``Q`` or ``P`` exceeds ``max float ** (1/4)`` (1e77 in float64),
        in which case ``P`` is the identity, a finite stand-in.
    """
    # Inputs beyond the clipping bound would overflow in the first products (and 0 * inf is a
    # NaN gradient even where the result is discarded): they count as failure up front.
    A, ok_A = bounded_parameter(A)
    Q, ok_Q = bounded_parameter(Q)
    Ak, P = lax.fori_loop(0, num_doublings, _doubling, (A, Q))
    big = parameter_bound(P.dtype)
    ok = (ok_A & ok_Q & (jnp.max(jnp.abs(P)) < big)  # never clipped (P grows monotonically)
          & (jnp.max(jnp.abs(Ak)) < jnp.sqrt(jnp.finfo(P.dtype).eps)))
    return jnp.where(ok, symmetrize(P), jnp.eye(A.shape[0], dtype=P.dtype)), ok
