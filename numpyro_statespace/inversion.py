r"""The inversion filter as NumPyro distributions: models with as many shocks as observables
and no measurement error, whose shocks are recovered exactly from the data.

=========================  ==============================================================
class                      model
=========================  ==============================================================
:class:`InversionFilterSS`     quadratic or pruned quadratic (a second-order DSGE solution)
:class:`InversionFilterLGSS`   linear (a first-order solution)
=========================  ==============================================================

.. math::
    \log p(y_{1:T}) = \sum_t \Big[\log N(w_t;\ 0, I_K)
        - \log\big|\det \partial z_t / \partial w_t\big|\Big],\qquad z_t(w_t) = y_t,

the likelihood MacroModelling.jl estimates nonlinear DSGE models with (its ``filter =
:inversion``). It is exact given ``u_0`` and needs no latent shocks, so NUTS samples the
parameters alone. Each step solves a quadratic equation in ``K`` unknowns by Newton's method
with implicit derivatives (see :mod:`numpyro_statespace.kernels.inversion`). For a linear model
it equals :class:`KalmanLGSS` with ``R = 0`` and a known initial state (``u0_cov = 0``).
Missing data are not supported (a NaN in ``y`` gives ``-inf``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpyro.distributions as dist
from numpyro.distributions import constraints
from numpyro.distributions.util import validate_sample

from . import families, kernels
from ._validation import as_int
from .distributions._common import _compiled_log_prob
from .distributions.validators import (
    _batch_shape,
    _check_value,
    _param,
    _promote_fields,
    _set_quadratic,
    _sized,
    _square,
)
from .kernels.guards import finite_tree
from .kernels.inversion import inversion_filter

__all__ = ["InversionFilterLGSS", "InversionFilterSS"]


def _square_loading(B, C):
    K, M = B.shape[-1], C.shape[-2]
    if K != M:
        raise ValueError(f"the inversion filter needs as many shocks as observables: B is "
                         f"(..., N, K) = {tuple(B.shape)} and C (..., M, N) = {tuple(C.shape)} "
                         f"with K = {K} != M = {M}")


class _InversionBase(dist.Distribution):
    support = constraints.independent(constraints.real, 2)

    def _init_base(self, M, batch_pairs, validate_args):
        _promote_fields(self, self.pytree_data_fields)
        batch_shape = _batch_shape(*batch_pairs)
        super().__init__(batch_shape, (self.num_timesteps, M), validate_args=validate_args)

    @validate_sample
    def log_prob(self, value):
        return _compiled_log_prob(self, _check_value(self, value), ())

    def shocks(self, y):
        """The recovered shocks ``w_1..w_T`` ``(..., T, K)`` (zeros from a failed step on) and
        the per-step ``log|det dz_t/dw_t|`` ``(..., T)`` (a :class:`kernels.inversion.
        InversionResult`, batched)."""
        y = _check_value(self, jnp.asarray(y))
        return self._filter(y)

    def _log_prob(self, value):
        return self._filter(value).loglik


class InversionFilterSS(_InversionBase):
    r"""Quadratic or pruned-quadratic model without measurement error, ``K = M`` shocks.

    .. math::
        u_t = A_0 + A_1 u_{t-1} + \mathrm{quad}(A_2, \tilde u_{t-1}) + B w_t,\quad
        y_t = C_0 + C_1 u_t + \mathrm{quad}(C_2, \tilde u_t)

    with :math:`\tilde u_t = A_1 \tilde u_{t-1} + B w_t`, :math:`\tilde u_0 = u_0` (pruned) or
    :math:`\tilde u = u`, and :math:`w_t \sim N(0, I)` (as :class:`JointQuadraticSS`).
    ``log_prob`` recovers each :math:`w_t` from :math:`y_t` given the past and adds the
    log-density of the shock and the change-of-variables term (module docstring).

    :param A_0: ``(..., N)``; :param A_1: ``(..., N, N)``; :param A_2: ``(..., N, N, N)``;
    :param B: ``(..., N, K)``; :param C_0: ``(..., M)``; :param C_1: ``(..., M, N)``;
    :param C_2: ``(..., M, N, N)`` with ``M = K``; :param u0: ``(..., N)``;
    :param num_timesteps: ``T``; :param pruned: bool.
    """

    arg_constraints = {**families.Quadratic.arg_constraints, "u0": constraints.real_vector}
    pytree_data_fields = ("A_0", "A_1", "A_2", "B", "C_0", "C_1", "C_2", "u0")
    pytree_aux_fields = ("num_timesteps", "pruned")

    def __init__(self, A_0, A_1, A_2, B, C_0, C_1, C_2, u0, num_timesteps, *, pruned,
                 validate_args=None):
        pairs = _set_quadratic(self, A_0, A_1, A_2, B, C_0, C_1, C_2)
        _square_loading(self.B, self.C_1)
        self.u0 = _param("u0", u0, (self.A_1.shape[-1],), "(N,)")
        self.num_timesteps = as_int("num_timesteps", num_timesteps, 1)
        self.pruned = bool(pruned)
        self._init_base(self.C_1.shape[-2], pairs + [(self.u0, 1)], validate_args)

    def _params(self):
        return (self.A_0, self.A_1, self.A_2, self.B, self.C_0, self.C_1, self.C_2, self.u0)

    def _filter(self, y):
        def single(*args):
            args, ok = finite_tree(args)
            r = inversion_filter(*args, pruned=self.pruned)
            return r._replace(loglik=jnp.where(ok, r.loglik, -jnp.inf), ok=r.ok & ok)

        sig = families.Quadratic.signature + ",(n),(t,m)->(t,k),(t),(),()"
        return jnp.vectorize(single, signature=sig)(*self._params(), y)

    def sample(self, key, sample_shape=()):
        shape = tuple(sample_shape) + self.batch_shape
        w = jax.random.normal(key, shape + (self.num_timesteps, self.B.shape[-1]), self.B.dtype)

        def path(*args):
            *arrays, u0, w = args
            family = families.Quadratic(*arrays, pruned=self.pruned)
            u, uf, _, valid = family.states(u0, w)
            return kernels.reported_path(family.observe(u, uf), valid)[1:]

        sig = families.Quadratic.signature + ",(n),(t,k)->(t,m)"
        return jnp.vectorize(path, signature=sig)(*self._params(), w)


class InversionFilterLGSS(_InversionBase):
    r"""Linear model without measurement error, ``K = M`` shocks:
    :math:`u_t = A u_{t-1} + B w_t`, :math:`y_t = C u_t`, from a known :math:`u_0`.

    ``log_prob`` recovers :math:`w_t = (C B)^{-1} (y_t - C A u_{t-1})` and returns
    :math:`\sum_t \log N(w_t; 0, I) - T \log|\det C B|`, which equals the Kalman filter's
    likelihood with ``R = 0`` and ``u0_cov = 0``.

    :param A: ``(..., N, N)``; :param B: ``(..., N, K)``; :param C: ``(..., M, N)`` with
        ``M = K``; :param u0: ``(..., N)``; :param num_timesteps: ``T``.
    """

    arg_constraints = {
        "A": constraints.real_matrix,
        "B": constraints.real_matrix,
        "C": constraints.real_matrix,
        "u0": constraints.real_vector,
    }
    pytree_data_fields = ("A", "B", "C", "u0")
    pytree_aux_fields = ("num_timesteps",)

    def __init__(self, A, B, C, u0, num_timesteps, *, validate_args=None):
        self.A = _square("A", A)
        N = self.A.shape[-1]
        self.B = _sized("B", B, -2, N, "N, K")
        self.C = _sized("C", C, -1, N, "M, N")
        _square_loading(self.B, self.C)
        self.u0 = _param("u0", u0, (N,), "(N,)")
        self.num_timesteps = as_int("num_timesteps", num_timesteps, 1)
        self._init_base(self.C.shape[-2], [(self.A, 2), (self.B, 2), (self.C, 2), (self.u0, 1)],
                        validate_args)

    def _filter(self, y):
        def single(A, B, C, u0, y):
            (A, B, C, u0), ok = finite_tree((A, B, C, u0))
            N, M = A.shape[-1], C.shape[-2]
            r = inversion_filter(jnp.zeros(N, A.dtype), A, None, B, jnp.zeros(M, A.dtype), C,
                                 None, u0, y, quadratic=False)
            return r._replace(loglik=jnp.where(ok, r.loglik, -jnp.inf), ok=r.ok & ok)

        return jnp.vectorize(single, signature="(n,n),(n,k),(m,n),(n),(t,m)->(t,k),(t),(),()")(
            self.A, self.B, self.C, self.u0, y)

    def sample(self, key, sample_shape=()):
        shape = tuple(sample_shape) + self.batch_shape
        w = jax.random.normal(key, shape + (self.num_timesteps, self.B.shape[-1]), self.B.dtype)

        def path(A, B, C, u0, w):
            family = families.Linear(A, B, C)
            u, uf, _, valid = family.states(u0, w)
            return kernels.reported_path(family.observe(u, uf), valid)[1:]

        return jnp.vectorize(path, signature="(n,n),(n,k),(m,n),(n),(t,k)->(t,m)")(
            self.A, self.B, self.C, self.u0, w)
