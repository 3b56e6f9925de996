"""Constraints of the distributions' arguments and the checks that raise ``ValueError`` naming
the argument and its expected shape."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
from numpyro.distributions import constraints
from numpyro.distributions.transforms import IdentityTransform, biject_to
from numpyro.util import not_jax_tracer

from .._validation import as_float_array, promote_floats, refuse_pandas
from ..families import shock_loading


class _RealOrMissing(constraints.Constraint):
    """Real numbers or NaN (a missing observation); infinities are refused."""

    event_dim = 0

    def __call__(self, x):
        # NumPyro checks an observed value's support first: a pandas object must get our
        # message here, not an unrelated TypeError from inside the comparison
        x = refuse_pandas("value", x)
        return (x != jnp.inf) & (x != -jnp.inf)

    def feasible_like(self, prototype):
        return jnp.zeros_like(prototype)


real_or_missing = _RealOrMissing()


@biject_to.register(_RealOrMissing)
def _unconstrained_series(constraint):
    # A series as a latent site (or imputed through ``obs_mask``) is unconstrained real.
    return IdentityTransform()


class _PositiveSemidefinite(constraints.Constraint):
    """Symmetric, with no eigenvalue below ``-sqrt(eps)`` times the largest in magnitude.

    NumPyro's ``positive_semidefinite`` asks for eigenvalues ``>= 0`` exactly, which refuses
    valid singular covariances (``B B'`` with fewer shocks than states has eigenvalues of
    ``-1e-17`` from round-off), the DSGE case this package exists for.
    """

    event_dim = 2

    def __call__(self, x):
        xp = np if isinstance(x, (np.ndarray, np.generic)) else jnp
        symmetric = xp.all(xp.isclose(x, xp.swapaxes(x, -2, -1)), axis=(-2, -1))
        eigenvalues = xp.linalg.eigvalsh(x)
        tolerance = np.sqrt(np.finfo(x.dtype).eps) * xp.max(xp.abs(eigenvalues), axis=-1)
        return symmetric & (eigenvalues[..., 0] >= -tolerance)

    def feasible_like(self, prototype):
        return jnp.broadcast_to(jnp.eye(prototype.shape[-1], dtype=prototype.dtype),
                                prototype.shape)


positive_semidefinite = _PositiveSemidefinite()


# -- argument checks ------------------------------------------------------------------------
def _param(name, x, trailing, what):
    """``x`` as a float array whose trailing dimensions are ``trailing`` (spelled ``what``)."""
    x = as_float_array(name, x)
    n = len(trailing)
    if x.ndim < n or tuple(x.shape[x.ndim - n:]) != tuple(trailing):
        raise ValueError(
            f"{name} must have shape (..., {what[1:-1].rstrip(',')}) = "
            f"(..., {', '.join(map(str, trailing))}); "
            f"got {tuple(x.shape)}"
        )
    return x


def _square(name, x, what="(N, N)"):
    x = as_float_array(name, x)
    if x.ndim < 2 or x.shape[-1] != x.shape[-2]:
        raise ValueError(f"{name} must have shape (..., {what[1:-1]}) with equal trailing "
                         f"dimensions; got {tuple(x.shape)}")
    return x


def _sized(name, x, axis, N, what):
    """``x`` as a float array of at least 2 dimensions whose ``axis`` (-2 or -1) has size
    ``N``; ``what`` spells the trailing shape, e.g. ``"N, K"``."""
    x = as_float_array(name, x)
    if x.ndim < 2 or x.shape[axis] != N:
        raise ValueError(f"{name} must have shape (..., {what}) with N = {N}; "
                         f"got {tuple(x.shape)}")
    return x


def _loading(B, N, dtype):
    """``B`` as ``(..., N, K)``; ``None`` (no shocks) is :func:`.families.shock_loading`'s."""
    return shock_loading(None if B is None else _sized("B", B, -2, N, "N, K"), N, dtype)


def _obs_cov(R, M, name="R"):
    """``R`` as ``(..., M, M)``; a 1-D ``(M,)`` input holds the variances of a diagonal."""
    R = as_float_array(name, R)
    if R.ndim == 0:
        raise ValueError(f"{name} must be an (M, M) covariance or (M,) variances with M = {M}; "
                         f"got a scalar (for one observable pass [{name}])")
    if R.ndim == 1:
        _param(name, R, (M,), "(M,)")
        return jnp.diag(R)
    if R.shape[-1] == M and R.shape[-2] != M:
        # (P, M) would be ambiguous with (M, M) when P == M: batches are matrices only
        raise ValueError(f"{name} must have shape (..., M, M) = (..., {M}, {M}); got "
                         f"{tuple(R.shape)}. Variances (M,) take no batch dimensions: pass "
                         f"a batch of diagonal matrices, jnp.vectorize(jnp.diag, "
                         f"signature='(m)->(m,m)')({name})")
    return _param(name, R, (M, M), "(M, M)")


def _batch_shape(*pairs):
    """Broadcast the leading (batch) dimensions of ``(array, event_ndim)`` pairs."""
    shapes = [tuple(x.shape[: x.ndim - nd]) for x, nd in pairs if x is not None]
    try:
        return jax.lax.broadcast_shapes(*shapes)
    except ValueError:
        raise ValueError(f"parameter batch shapes {shapes} do not broadcast") from None


def _promote_fields(d, names):
    """Cast the array attributes ``names`` of ``d`` (``None`` skipped) to their common dtype."""
    fields = {k: getattr(d, k) for k in names if getattr(d, k) is not None}
    for k, v in promote_floats(fields).items():
        setattr(d, k, v)


def _check_value(d, value):
    value = jnp.asarray(refuse_pandas("value", value))
    if value.ndim < 2 or tuple(value.shape[-2:]) != tuple(d.event_shape):
        raise ValueError(f"value must have shape (..., T, M) = (..., {d.event_shape[0]}, "
                         f"{d.event_shape[1]}); got {tuple(value.shape)}")
    return value



def _validate_concrete(d, strict):
    """NumPyro's argument validation on NumPy copies of concrete arguments (eager
    construction): the same checks, without compiling every ``jnp`` operation of every
    constraint on first use. Traced arguments take NumPyro's own path."""
    args = d.get_args()
    if not all(not_jax_tracer(v) for v in jax.tree_util.tree_leaves(args)):
        return dist.Distribution.validate_args(d, strict)
    for param, value in args.items():
        constraint = d.arg_constraints[param]
        if constraints.is_dependent(constraint) or value is None:
            continue
        if not np.all(constraint(np.asarray(value))):
            raise ValueError(f"{type(d).__name__} distribution got invalid {param} parameter.")


def _offset(name, x, size, T, what):
    """An offset as ``(..., T', size)`` with ``T'`` 1 (the same at every step) or ``T``: a 1-D
    ``(size,)`` is time-invariant; 2-D and more are ``(..., T, size)`` (batches of a constant
    offset: ``(..., 1, size)``)."""
    if x is None:
        return None
    x = as_float_array(name, x)
    if x.ndim == 1 and x.shape[0] == size:
        return x[None]
    if x.ndim < 2 or x.shape[-1] != size or x.shape[-2] not in (1, T):
        raise ValueError(f"{name} must have shape ({what},) (the same at every step) or "
                         f"(..., T, {what}) = (..., {T}, {size}) (one per step; (..., 1, "
                         f"{size}) for a batch of constant ones); got {tuple(x.shape)}")
    return x


def _noise_arg(noise, K):
    noise = as_float_array("noise", noise)
    if noise.ndim < 2 or noise.shape[-1] != K:
        raise ValueError(f"noise must have shape (..., T, K) with K = {K}; got {tuple(noise.shape)}")
    return noise


def _set_quadratic(d, A_0, A_1, A_2, B, C_0, C_1, C_2):
    """Check the arrays of a :class:`.families.Quadratic` (leading batch dimensions allowed)
    and store them on the distribution ``d``; returns their ``(array, event ndim)`` pairs for
    :func:`_batch_shape`."""
    d.A_1 = _square("A_1", A_1)
    N = d.A_1.shape[-1]
    d.A_0 = _param("A_0", A_0, (N,), "(N,)")
    d.A_2 = _param("A_2", A_2, (N, N, N), "(N, N, N)")
    d.B = _sized("B", B, -2, N, "N, K")
    d.C_1 = _sized("C_1", C_1, -1, N, "M, N")
    M = d.C_1.shape[-2]
    d.C_0 = _param("C_0", C_0, (M,), "(M,)")
    d.C_2 = _param("C_2", C_2, (M, N, N), "(M, N, N)")
    return [(d.A_0, 1), (d.A_1, 2), (d.A_2, 3), (d.B, 2), (d.C_0, 1), (d.C_1, 2), (d.C_2, 3)]
