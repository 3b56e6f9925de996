"""The numerical-failure contract: named overflow bounds and the guards that apply them.

A likelihood that fails numerically must return ``-inf`` with finite gradients. Finite values
are not enough for that: a cotangent that overflows to ``inf`` meets another ``inf`` of the
opposite sign (``inf - inf = NaN``), and the zero cotangent of a failed branch meets an ``inf``
intermediate (``0 * inf = NaN``). The guards keep every intermediate, and the cotangents of a
successful evaluation, below the largest float ``max`` of the dtype:

- arrays that enter products as parameters (``A``, ``B``, ``C``, ``R``, a noise path) stay below
  ``max ** PARAMETER_POWER``;
- state moments, residuals and data stay below ``max ** MOMENT_POWER``;
- for a Gaussian term with Cholesky factor ``L`` (smallest diagonal entry ``d``) and whitened
  residual ``e``, the gradients are of order ``(1 + e^2) / d^2``, so ``d > max ** FACTOR_POWER``
  and ``|e| < max ** WHITENED_POWER * d`` keep them below ``max ** 0.8``; a scalar innovation
  variance ``f`` (univariate filter) must exceed ``max ** VARIANCE_FLOOR_POWER``.

Beyond these bounds the evaluation counts as a numerical failure (``-inf``). In float64:
parameters 1e77, moments 1e154, ``d`` 1e-123 (a variance of 1e-246); in float32: 4e9, 2e19,
``d`` 4e-16. Every bound is a Python float computed from the dtype, so it is static under jit.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

PARAMETER_POWER = 0.25
MOMENT_POWER = 0.5
WHITENED_POWER = 0.4
FACTOR_POWER = -0.4
VARIANCE_FLOOR_POWER = -0.8


def max_power(dtype, power):
    """``finfo(dtype).max ** power`` as a Python float (a static threshold)."""
    return float(jnp.finfo(dtype).max) ** power


def parameter_bound(dtype):
    """The largest magnitude a parameter entry may have: ``max ** PARAMETER_POWER``."""
    return max_power(dtype, PARAMETER_POWER)


def moment_bound(dtype):
    """The largest magnitude a state moment, residual or data entry may have."""
    return max_power(dtype, MOMENT_POWER)


def bounded_or(x, fallback, power):
    """``(where(all |x| < max ** power, x, fallback), ok)``: :func:`finite_or` with a margin
    against overflow in the products ``x`` enters (False for NaN too)."""
    ok = jnp.all(jnp.abs(x) < max_power(x.dtype, power))
    return jnp.where(ok, x, fallback), ok


def bounded_parameter(x, fallback=0.0):
    """:func:`bounded_or` at the parameters' bound."""
    return bounded_or(x, fallback, PARAMETER_POWER)


def bounded_moment(x, fallback=0.0):
    """:func:`bounded_or` at the moments' bound."""
    return bounded_or(x, fallback, MOMENT_POWER)


def moments_bounded(*arrays):
    """True when every entry of ``arrays`` is below the moments' bound (NaN fails)."""
    return jnp.all(jnp.stack([jnp.all(jnp.abs(x) < moment_bound(x.dtype)) for x in arrays]))


def parameters_bounded(*arrays):
    """True when every entry of ``arrays`` is below the parameters' bound (NaN fails)."""
    return jnp.all(jnp.stack([jnp.all(jnp.abs(x) < parameter_bound(x.dtype)) for x in arrays]))


def min_diagonal(L):
    """Smallest diagonal entry of ``L`` over the last two axes."""
    return jnp.min(jnp.diagonal(L, axis1=-2, axis2=-1), axis=-1)


def factor_ok(L):
    """True where the Cholesky factor ``L`` (..., M, M) has its diagonal above
    ``max ** FACTOR_POWER``."""
    return min_diagonal(L) > max_power(L.dtype, FACTOR_POWER)


def whitened_ok(e, d_min):
    """True where ``|e| < max ** WHITENED_POWER * d_min``: the whitened residuals ``e`` of a
    factor whose smallest diagonal entry is ``d_min`` (broadcast against ``e``) keep gradients
    finite."""
    return jnp.all(jnp.abs(e) < max_power(e.dtype, WHITENED_POWER) * d_min)


def finite_or(x, fallback):
    """``(where(all finite, x, fallback), ok)``: stops a NaN/inf input from reaching the algebra."""
    ok = jnp.all(jnp.isfinite(x))
    return jnp.where(ok, x, fallback), ok


def finite_tree(tree):
    """Every floating leaf of ``tree`` with a non-finite entry replaced by zeros, and ``ok``.

    Applied to parameters before any algebra: a NaN that reached a product would turn the
    zero cotangent of a failed likelihood into a NaN gradient (``0 * nan``).
    """
    leaves, treedef = jax.tree_util.tree_flatten(tree)
    ok = jnp.array(True)
    clean = []
    for x in leaves:
        if hasattr(x, "dtype") and jnp.issubdtype(x.dtype, jnp.inexact):
            x, ok_x = finite_or(x, 0.0)
            ok = ok & ok_x
        clean.append(x)
    return jax.tree_util.tree_unflatten(treedef, clean), ok
