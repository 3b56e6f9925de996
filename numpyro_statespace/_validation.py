"""Argument checks shared by the problem types and the distributions.

Every check raises ``ValueError`` naming the argument, the expected shape and the actual one,
because a wrong shape deep inside ``lax.scan`` surfaces as an unreadable broadcasting error.
"""

from __future__ import annotations

import numbers
import operator

import jax
import jax.numpy as jnp
import numpy as np


def as_float_array(name, x, ndim=None):
    """``x`` as a floating JAX array (tracers pass through), refusing complex and integer arrays.

    Python lists and scalars of ints are converted to floats: only arrays that *carry* a
    non-float dtype are refused, since they usually signal a mix-up of arguments.
    """
    if isinstance(x, (list, tuple, numbers.Real)) and not isinstance(x, bool):
        try:
            x = jnp.asarray(np.asarray(x, dtype=float))
        except (TypeError, ValueError) as err:
            raise ValueError(f"{name} must be a rectangular array of real numbers; "
                             f"could not convert it ({err})") from None
    elif not hasattr(x, "dtype") or not hasattr(x, "shape"):
        raise ValueError(f"{name} must be an array of floats; got {type(x).__name__}")
    if jnp.issubdtype(x.dtype, jnp.complexfloating):
        raise ValueError(f"{name} must be real; got complex dtype {x.dtype}")
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise ValueError(
            f"{name} must have a floating dtype; got {x.dtype} "
            f"(convert with .astype(float) if the integer values are intended)"
        )
    x = jnp.asarray(x)
    if ndim is not None and x.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-dimensional; got shape {tuple(x.shape)}")
    return x


def as_int(name, value, minimum=0):
    """``value`` as a Python int of at least ``minimum`` (0 or 1); NumPy integers accepted."""
    try:
        n = operator.index(value)
    except TypeError:
        n = minimum - 1
    if n < minimum:
        kind = {0: "non-negative", 1: "positive"}[minimum]
        raise ValueError(f"{name} must be a {kind} int; got {value!r}")
    return n


def float_leaves(tree):
    """The floating-point arrays among the leaves of ``tree``."""
    return [x for x in jax.tree_util.tree_leaves(tree)
            if hasattr(x, "dtype") and jnp.issubdtype(x.dtype, jnp.floating)]


def promote_floats(tree, dtype=None):
    """``tree`` with every floating array cast to ``dtype`` (default: their common dtype).

    A ``lax.scan`` needs its carry (made from parameters such as ``u0``) and its inputs (data,
    other parameters) in one dtype: one float32 array among float64 ones would otherwise fail
    there with a carry-type error."""
    dtype = dtype or jnp.result_type(*float_leaves(tree))
    return jax.tree_util.tree_map(
        lambda x: x.astype(dtype)
        if hasattr(x, "dtype") and jnp.issubdtype(x.dtype, jnp.floating) else x, tree)


def as_shaped_array(name, x, expected, what=""):
    """``as_float_array`` followed by ``check_shape``: one message with both shapes."""
    x = as_float_array(name, x)
    check_shape(name, x, expected, what)
    return x


def check_shape(name, x, expected, what=""):
    """Raise unless ``x.shape == expected``; ``what`` spells the symbolic shape, e.g. '(N, N)'."""
    if tuple(x.shape) != tuple(expected):
        sym = f"{what} = " if what else ""
        raise ValueError(f"{name} must have shape {sym}{tuple(expected)}; got {tuple(x.shape)}")


def covariance_matrix(name, x, size):
    """An observation-noise covariance as an ``(M, M)`` matrix; a 1-D ``(M,)`` input is a diagonal.

    Negative variances on a diagonal (a common sign of standard deviations passed by mistake
    together with a sign error, or of a mis-ordered argument) are refused when concrete.
    """
    x = as_float_array(name, x)
    if x.ndim == 1:
        check_shape(name, x, (size,), "(M,)")
        _refuse_negative_variances(name, x)
        return jnp.diag(x)
    if x.ndim != 2:
        raise ValueError(
            f"{name} must be an (M, M) covariance or an (M,) vector of variances with M = {size}; "
            f"got shape {tuple(x.shape)}"
        )
    check_shape(name, x, (size, size), "(M, M)")
    _refuse_negative_variances(name, jnp.diagonal(x))
    return x


def _refuse_negative_variances(name, diag):
    try:
        d = np.asarray(diag)
    except Exception:  # a tracer: values are unknown at construction
        return
    if np.any(d < 0):
        raise ValueError(
            f"{name} is a covariance (variances on the diagonal), so its diagonal must be "
            f"non-negative; got {d.tolist()}"
        )


def parse_tspan(tspan):
    """``T`` or ``(t0, t1)`` as the pair of Python ints ``(t0, t1)`` with ``t1 >= t0``."""
    if isinstance(tspan, numbers.Integral) and not isinstance(tspan, bool):
        t0, t1 = 0, int(tspan)
    elif isinstance(tspan, (tuple, list)) and len(tspan) == 2:
        t0, t1 = tspan
        for v in (t0, t1):
            if isinstance(v, bool) or not isinstance(v, numbers.Real) or not (
                    isinstance(v, numbers.Integral) or float(v).is_integer()):
                raise ValueError(f"tspan must hold integers (t0, T); got {tspan!r}")
        t0, t1 = int(t0), int(t1)
    else:
        raise ValueError(f"tspan must be an int T or a pair of ints (t0, T); got {tspan!r}")
    if t1 < t0:
        raise ValueError(f"tspan must satisfy t0 <= T; got {tspan!r}")
    return t0, t1


def check_names(name, names, size):
    """Names carried to outputs (``syms``, ``obs_syms``): ``None`` or ``size`` strings."""
    if names is None:
        return None
    if isinstance(names, str) or not hasattr(names, "__iter__"):
        raise ValueError(f"{name} must be a sequence of {size} names, e.g. ('k', 'z'); "
                         f"got {names!r}")
    names = tuple(str(s) for s in names)
    if len(names) != size:
        raise ValueError(f"{name} must hold {size} names; got {len(names)}: {names}")
    return names


def refuse_pandas(name, x):
    """Raise a ``ValueError`` saying what to pass when ``x`` is a pandas object.

    A DataFrame or Series cannot travel through ``jax.jit`` (NumPyro compiles the model with
    its data), and NumPyro's support check fails on one with an unrelated ``TypeError``; the
    values go in as an array and the index and columns name ArviZ' dimensions instead.
    """
    if hasattr(x, "to_numpy") and hasattr(x, "index"):
        kind = "DataFrame" if hasattr(x, "columns") else "Series"
        shape = "(T, M)" if kind == "DataFrame" else "(T, 1): .to_numpy()[:, None]"
        raise ValueError(
            f"{name} is a pandas {kind}: pass its values, {name}.to_numpy() {shape}, and give "
            f"the frame to numpyro_statespace.arviz.to_inference_data(mcmc, y=frame) for "
            f"the time index and observable names")
    return x


def as_values(x):
    """The values of a pandas Series or DataFrame as a NumPy array (other inputs unchanged),
    for functions that run eagerly on data (residuals, the structural helpers)."""
    return x.to_numpy() if hasattr(x, "to_numpy") and hasattr(x, "index") else x
