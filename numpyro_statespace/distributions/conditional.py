"""The prediction-error likelihood of a fully observed linear model, :class:`ConditionalSS`."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpyro.distributions as dist
from numpyro.distributions import constraints
from numpyro.distributions.util import validate_sample

from .. import families, kernels
from .._validation import as_int
from ..kernels.guards import bounded_moment, bounded_parameter, finite_tree
from ._common import _LinearMoments, _compiled_log_prob, _psd_factor
from .validators import _batch_shape, _check_value, _loading, _obs_cov, _offset, _param
from .validators import _promote_fields, _square, positive_semidefinite

__all__ = ["ConditionalSS"]


class ConditionalSS(_LinearMoments, dist.Distribution):
    r"""Fully observed linear model, likelihood by the prediction-error decomposition.

    The state is clamped to the data (``y_0 = u0``) and the shocks are integrated out:

    .. math::
        y_t \mid y_{t-1} \sim N(C A y_{t-1},\ C B B^\top C^\top + R)

    (``C = I`` when omitted). With ``B=None`` this is DifferenceEquations.jl's
    ``ConditionalLikelihood`` exactly (VAR(1) with innovation covariance ``R``). With offsets
    (intercepts, regressors) the prediction is :math:`d_t + C (c_t + A y_{t-1})`.

    :param A: ``(..., N, N)``; :param B: ``(..., N, K)`` or ``None``;
    :param R: ``(..., N, N)`` (or ``(N,)`` variances); :param u0: ``(..., N)``;
    :param C: ``(..., N, N)`` or ``None``; :param num_timesteps: ``T``.
    :param state_offset: ``c_t``, ``(N,)`` or ``(..., T, N)``; :param obs_offset: ``d_t``,
        ``(N,)`` or ``(..., T, N)`` (as for :class:`KalmanLGSS`).
    """

    arg_constraints = {
        "A": constraints.real_matrix,
        "B": constraints.real_matrix,
        "R": positive_semidefinite,
        "u0": constraints.real_vector,
        "C": constraints.real_matrix,
    }
    support = constraints.independent(constraints.real, 2)
    pytree_data_fields = ("A", "B", "R", "u0", "C", "_shift")
    pytree_aux_fields = ("num_timesteps",)

    def __init__(self, A, B, R, u0, C=None, *, num_timesteps, state_offset=None,
                 obs_offset=None, validate_args=None):
        self.A = _square("A", A)
        N = self.A.shape[-1]
        self.B = _loading(B, N, self.A.dtype)
        self.C = jnp.eye(N, dtype=self.A.dtype) if C is None else _param("C", C, (N, N), "(N, N)")
        self.R = _obs_cov(R, N)
        self.u0 = _param("u0", u0, (N,), "(N,)")
        self.num_timesteps = as_int("num_timesteps", num_timesteps)
        T = self.num_timesteps
        c = _offset("state_offset", state_offset, N, T, "N")
        d = _offset("obs_offset", obs_offset, N, T, "N")
        # the offsets enter the prediction only as d_t + C c_t: one (..., T', N) array
        shift = None
        if c is not None or d is not None:
            shift = 0.0 if c is None else jnp.einsum("...mn,...tn->...tm", self.C, c)
            shift = shift + (0.0 if d is None else d)
        self._shift = shift
        _promote_fields(self, ("A", "B", "R", "u0", "C", "_shift"))
        batch_shape = _batch_shape((self.A, 2), (self.B, 2), (self.R, 2), (self.u0, 1), (self.C, 2),
                                   (self._shift, 2))
        super().__init__(batch_shape, (self.num_timesteps, N), validate_args=validate_args)

    @property
    def family(self):
        """The model as a :class:`.families.Linear` with this distribution's arrays."""
        return families.Linear(self.A, self.B, self.C)

    def _transition_and_cov(self):
        G = self.C @ self.A
        CB = self.C @ self.B
        return G, CB @ jnp.swapaxes(CB, -1, -2) + self.R

    @validate_sample
    def log_prob(self, value):
        return _compiled_log_prob(self, _check_value(self, value), ())

    def _shift_or_zero(self):
        N = self.A.shape[-1]
        return jnp.zeros((1, N), self.A.dtype) if self._shift is None else self._shift

    def _log_prob(self, value):
        def single(A, B, C, R, u0, h, y):
            (A, B, C, R, u0), ok = finite_tree((A, B, C, R, u0))
            # Entries that enter products are bounded (see kernels.guards).
            (A, ok_A), (B, ok_B), (C, ok_C) = (bounded_parameter(x) for x in (A, B, C))
            # The states they multiply (u_0, then the data) are bounded as state moments are:
            # a huge u_0 times A = 0 predicts 0, but its cotangent would overflow.
            states, ok_u = bounded_moment(kernels.clamped_states(u0, y)[:-1])
            ok = ok & ok_A & ok_B & ok_C & ok_u
            CB = C @ B
            h, ok_h = bounded_moment(h)
            ok = ok & ok_h
            ll = kernels.conditional_loglik(states @ (C @ A).T + h, y, CB @ CB.T + R)
            return jnp.where(ok, ll, -jnp.inf)

        return jnp.vectorize(single, signature="(n,n),(n,k),(n,n),(n,n),(n),(s,n),(t,n)->()")(
            self.A, self.B, self.C, self.R, self.u0, self._shift_or_zero(), value)

    def sample(self, key, sample_shape=()):
        shape = tuple(sample_shape) + self.batch_shape
        G, S = self._transition_and_cov()
        F = _psd_factor(S)
        e = jax.random.normal(key, shape + self.event_shape, self.A.dtype)

        T, N = self.event_shape

        def path(G, F, u0, e, h):
            # y_t = h_t + G y_{t-1} + F e_t: the shift enters as a second, known "shock"
            FI = jnp.concatenate([F, jnp.eye(N, dtype=F.dtype)], axis=1)
            eh = jnp.concatenate([e, jnp.broadcast_to(h, (T, N))], axis=1)
            u, _, valid = kernels.linear_states(G, FI, u0, eh, per_step=True)
            return kernels.reported_path(u, valid)[1:]

        return jnp.vectorize(path, signature="(n,n),(n,n),(n),(t,n),(s,n)->(t,n)")(
            G, F, self.u0, e, self._shift_or_zero())

    def _linear_model(self):
        if self._shift is not None:
            raise NotImplementedError("mean and variance of a ConditionalSS with offsets are "
                                      "not computed; draw samples instead")
        # y_t = G y_{t-1} + F e_t from the known y_0 = u0, observed without noise
        G, S = self._transition_and_cov()
        N = G.shape[-1]
        zero = jnp.zeros((N, N), G.dtype)
        return (G, _psd_factor(S), jnp.eye(N, dtype=G.dtype), zero, self.u0, zero,
                jnp.ones((), G.dtype))

