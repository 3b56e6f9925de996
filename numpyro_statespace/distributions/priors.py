"""The prior of ``u_0`` that :class:`~numpyro_statespace.KalmanLGSS` derives from ``A`` and
``B``: the stationary covariance, and the exact diffuse initialisation (:class:`Diffuse`)."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from numpyro.util import not_jax_tracer

from .. import kernels
from ..kernels.guards import finite_tree, parameter_bound
from .validators import _param


def _stationary_prior(A, B):
    """Stationary covariance of ``u_t = A u_{t-1} + B w_t`` and its ``ok`` flag (NaN-safe)."""
    (A, B), ok = finite_tree((A, B))
    P, ok_P = kernels.stationary_covariance(A, B @ B.T)
    return P, ok & ok_P


_stationary_priors_jit = jax.jit(jnp.vectorize(_stationary_prior,
                                               signature="(n,n),(n,k)->(n,n),()"))


def _stationary_priors_numpy(A, B, num_doublings=64):
    """:func:`.kernels.stationary_covariance`'s doubling and checks in NumPy, for concrete
    ``A``, ``B`` (batched): the same iterates, without compiling a program.

    A second spelling of the kernel on purpose: the kernel is a ``lax.fori_loop`` (one small
    program, differentiable, the traced path), while eager construction must not compile at
    all, and an array-module-generic version would unroll 64 doublings into every traced
    program instead. Eager and jitted construction are checked to give the same likelihood
    (``test_jit_log_prob_equals_eager_and_tree_round_trip``)."""
    A, B = np.asarray(A), np.asarray(B)
    big = parameter_bound(A.dtype)
    with np.errstate(all="ignore"):
        Q = B @ np.swapaxes(B, -1, -2)
        # |x| < big is False for NaN too
        ok = (np.all(np.abs(A) < big, axis=(-2, -1)) & np.all(np.abs(B) < big, axis=(-2, -1))
              & np.all(np.abs(Q) < big, axis=(-2, -1)))
        Ak = np.where(ok[..., None, None], A, 0.0)
        P = np.where(ok[..., None, None], Q, 0.0)
        for _ in range(num_doublings):
            Ak, P = (np.clip(Ak @ Ak, -big, big),
                     np.clip(P + Ak @ P @ np.swapaxes(Ak, -1, -2), -big, big))
        ok = ok & (np.max(np.abs(P), axis=(-2, -1)) < big) & (
            np.max(np.abs(Ak), axis=(-2, -1)) < np.sqrt(np.finfo(A.dtype).eps))
        P = 0.5 * (P + np.swapaxes(P, -1, -2))
    eye = np.broadcast_to(np.eye(A.shape[-1], dtype=A.dtype), P.shape)
    return jnp.asarray(np.where(ok[..., None, None], P, eye)), jnp.asarray(ok)


def _stationary_priors(A, B):
    """``(P, ok)`` for (batches of) ``A``, ``B``: one compiled program when traced; in NumPy
    when concrete (eager construction: the doubling's program would take longer to compile
    than the whole construction should)."""
    if not (not_jax_tracer(A) and not_jax_tracer(B)):
        return _stationary_priors_jit(A, B)
    return _stationary_priors_numpy(A, B)


class Diffuse(NamedTuple):
    """An exact diffuse initialisation (Koopman & Durbin 2003) for ``KalmanLGSS(u0_cov=...)``.

    :param states: the diffuse states: indices, or ``(N,)`` bools; ``None`` (default) for all.
        Their prior is flat (``u0_mean`` is ignored for them); ``u0_cov="diffuse"`` is
        ``Diffuse()``.
    :param cov: the covariance of the other states: ``(N, N)`` (rows and columns of the
        diffuse states are ignored), ``"stationary"`` (the stationary covariance of their own
        block of ``A`` and ``B B'``, as statsmodels' mixed initialisation) or ``None`` (known
        exactly: ``u0_mean``).
    """

    states: Any = None
    cov: Any = None


def _diffuse_flags(diffuse, N):
    """The static ``(N,)`` tuple of bools of a :class:`Diffuse`'s ``states``."""
    if diffuse.states is None:
        return (True,) * N
    states = np.asarray(diffuse.states)
    if states.dtype == bool:
        if states.shape != (N,):
            raise ValueError(f"Diffuse.states as bools must have shape (N,) = ({N},); got "
                             f"{states.shape}")
        return tuple(bool(f) for f in states)
    if states.ndim != 1 or not np.issubdtype(states.dtype, np.integer) or states.size == 0 \
            or states.min() < -N or states.max() >= N:
        raise ValueError(f"Diffuse.states must be indices in [0, {N}) or (N,) bools; got "
                         f"{diffuse.states!r}")
    flags = np.zeros(N, bool)
    flags[states] = True
    return tuple(bool(f) for f in flags)


def _diffuse_cov(diffuse, flags, A, B, name="Diffuse.cov"):
    """``(P_*, ok)``: the proper part of the prior covariance (zero on the diffuse states)."""
    N = A.shape[-1]
    keep = np.array([not f for f in flags])
    zero_out = jnp.asarray(np.outer(keep, keep), A.dtype)
    if diffuse.cov is None:
        return jnp.zeros(A.shape, A.dtype), jnp.ones((), A.dtype)
    if isinstance(diffuse.cov, str):
        if diffuse.cov != "stationary":
            raise ValueError(f"{name} must be an (N, N) array, 'stationary' or None; got "
                             f"{diffuse.cov!r}")
        idx = np.flatnonzero(keep)
        if idx.size == 0:  # a flag per member of A's batch, as the stationary one
            return jnp.zeros(A.shape, A.dtype), jnp.ones(A.shape[:-2], A.dtype)
        A_s = A[..., idx[:, None], idx]
        B_s = B[..., idx, :]
        P_s, ok = _stationary_priors(A_s, B_s)
        P = jnp.zeros(jnp.broadcast_shapes(A.shape, P_s.shape[:-2] + (N, N)), A.dtype)
        return P.at[..., idx[:, None], idx].set(P_s), ok.astype(A.dtype)
    P = _param(name, diffuse.cov, (N, N), "(N, N)")
    return P * zero_out, jnp.ones((), A.dtype)

