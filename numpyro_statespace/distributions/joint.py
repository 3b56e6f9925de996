"""Likelihoods given the noise (DifferenceEquations.jl's ``DirectIteration``):
:class:`JointLGSS`, :class:`JointQuadraticSS`, :class:`JointStateSpace`."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpyro.distributions as dist
from numpyro.distributions import constraints
from numpyro.distributions.util import validate_sample

from .. import families, kernels
from .._validation import as_float_array
from ..kernels.guards import finite_tree
from ._common import _compiled_log_prob, _gaussian, _log_prob, _psd_factor, _require_unbatched
from .validators import (
    _batch_shape,
    _check_value,
    _noise_arg,
    _obs_cov,
    _param,
    _promote_fields,
    _set_quadratic,
    _sized,
    _square,
    positive_semidefinite,
    real_or_missing,
)

__all__ = ["JointLGSS", "JointQuadraticSS", "JointStateSpace"]


class JointLikelihood(dist.Distribution):
    r"""``log p(y | w) = sum_t log N(y_t; z_t(w), R)``: the prior of the noise is not included
    (in a model the noise is its own latent site, see :func:`sample_noise`). NaN entries of
    ``y`` are missing observations."""

    support = constraints.independent(real_or_missing, 2)

    # Subclasses provide the unbatched path, the jnp.vectorize signature of the parameters it
    # takes, and those parameters in order.
    _signature: str
    #: log_prob as one compiled program. Not for JointStateSpace: its callbacks would be part
    #: of the cache key, and a model that builds new closures on every call (``from_problem``
    #: does) would compile and keep a program per call.
    _compiled = True

    def _params(self):
        raise NotImplementedError

    def _family(self, *params):
        """``(family, u0, noise)`` of one set of unbatched parameters (``_params`` order)."""
        raise NotImplementedError

    @property
    def family(self):
        """The model (:mod:`numpyro_statespace.families`) with this distribution's arrays."""
        return self._family(*self._params())[0]

    @staticmethod
    def _observations(family, u0, noise):
        """``(z (T + 1, M), ok, valid (T + 1,))`` of one unbatched model (``valid``: the state
        kernels' per-step flags)."""
        u, uf, ok, valid = family.states(u0, noise)
        return family.observe(u, uf), ok, valid

    def _unbatched(self, what):
        _require_unbatched(self, what)

    def _init_base(self, R, M, batch_pairs, validate_args):
        self.R = _obs_cov(R, M)
        _promote_fields(self, self.pytree_data_fields)
        T = self.noise.shape[-2]
        batch_shape = _batch_shape((self.R, 2), *batch_pairs)
        dist.Distribution.__init__(self, batch_shape, (T, M), validate_args=validate_args)

    @validate_sample
    def log_prob(self, value):
        # before any jnp call: inside a trace that would turn a NumPy `value` into a tracer
        missing = kernels.may_have_missing(value)
        run = _compiled_log_prob if self._compiled else _log_prob
        return run(self, _check_value(self, value), (missing,))

    def _log_prob(self, value, missing):
        def single(*args):
            *params, R, y = args
            (model, R), ok_params = finite_tree((self._family(*params), R))
            z, ok, _ = self._observations(*model)
            return kernels.joint_loglik(z, y, R, ok & ok_params, missing=missing)

        return jnp.vectorize(single, signature=f"{self._signature},(m,m),(t,m)->()")(
            *self._params(), self.R, value)

    def mean_path(self):
        """``z_1..z_T`` of the deterministic path given the noise: ``batch_shape + (T, M)``."""
        def path(*params):
            z, _, valid = self._observations(*self._family(*params))
            return kernels.reported_path(z, valid)[1:]  # NaN from an overflow on

        return jnp.vectorize(path, signature=f"{self._signature}->(t,m)")(*self._params())

    @property
    def mean(self):
        """``E[y_t | w] = z_t``, ``batch_shape + (T, M)``."""
        return jnp.broadcast_to(self.mean_path(), self.batch_shape + self.event_shape)

    @property
    def variance(self):
        """The diagonal of ``R`` at every step, ``batch_shape + (T, M)``."""
        var = jnp.diagonal(self.R, axis1=-2, axis2=-1)[..., None, :]
        return jnp.broadcast_to(var, self.batch_shape + self.event_shape)

    def sample(self, key, sample_shape=()):
        shape = tuple(sample_shape) + self.batch_shape
        z = jnp.broadcast_to(self.mean_path(), shape + self.event_shape)
        return z + _gaussian(key, shape + self.event_shape[:1],
                             _psd_factor(self.R)[..., None, :, :])



class JointLGSS(JointLikelihood):
    r"""Linear model given the noise: :math:`u_t = A u_{t-1} + B w_t`, :math:`y_t \sim N(C u_t, R)`.

    :param A: ``(..., N, N)``; :param B: ``(..., N, K)``; :param C: ``(..., M, N)``;
    :param R: ``(..., M, M)`` (or ``(M,)`` variances); :param u0: ``(..., N)``;
    :param noise: ``(..., T, K)``, the shocks ``w_1..w_T``.
    """

    arg_constraints = {
        "A": constraints.real_matrix,
        "B": constraints.real_matrix,
        "C": constraints.real_matrix,
        "R": positive_semidefinite,
        "u0": constraints.real_vector,
        "noise": constraints.real_matrix,
    }
    pytree_data_fields = ("A", "B", "C", "R", "u0", "noise")
    _signature = "(n,n),(n,k),(m,n),(n),(t,k)"

    def __init__(self, A, B, C, R, u0, noise, *, validate_args=None):
        self.A = _square("A", A)
        N = self.A.shape[-1]
        self.B = _sized("B", B, -2, N, "N, K")
        self.C = _sized("C", C, -1, N, "M, N")
        self.u0 = _param("u0", u0, (N,), "(N,)")
        self.noise = _noise_arg(noise, self.B.shape[-1])
        self._init_base(R, self.C.shape[-2],
                        [(self.A, 2), (self.B, 2), (self.C, 2), (self.u0, 1), (self.noise, 2)],
                        validate_args)

    def _params(self):
        return self.A, self.B, self.C, self.u0, self.noise

    def impulse_response(self, steps, shock=None):
        """Responses of states and observables to a one-standard-deviation shock at ``t = 1``
        (see :meth:`KalmanLGSS.impulse_response`); unbatched distributions only."""
        self._unbatched("impulse_response")
        return self.family.impulse_response(steps, shock)

    @staticmethod
    def _family(A, B, C, u0, noise):
        return families.Linear(A, B, C), u0, noise

    @classmethod
    def _from_family(cls, family, R, u0, noise):
        return cls(family.A, family.B, family.C, R, u0, noise)


class JointQuadraticSS(JointLikelihood):
    r"""Second-order model given the noise (``pruned=True``: Andreasen et al. 2017 pruning).

    .. math::
        u_t = A_0 + A_1 u_{t-1} + \mathrm{quad}(A_2, \tilde u_{t-1}) + B w_t,\quad
        y_t \sim N(C_0 + C_1 u_t + \mathrm{quad}(C_2, \tilde u_t), R)

    with :math:`\tilde u = u` (not pruned) or the first-order state
    :math:`\tilde u_t = A_1 \tilde u_{t-1} + B w_t` (pruned), :math:`\mathrm{quad}(T, v)_i =
    v^\top T_i v`. Shapes: ``A_0 (..., N)``, ``A_1 (..., N, N)``, ``A_2 (..., N, N, N)``,
    ``B (..., N, K)``, ``C_0 (..., M)``, ``C_1 (..., M, N)``, ``C_2 (..., M, N, N)``,
    ``R (..., M, M)``, ``u0 (..., N)``, ``noise (..., T, K)``.
    """

    arg_constraints = {
        **families.Quadratic.arg_constraints,
        "R": positive_semidefinite,
        "u0": constraints.real_vector,
        "noise": constraints.real_matrix,
    }
    pytree_data_fields = ("A_0", "A_1", "A_2", "B", "C_0", "C_1", "C_2", "R", "u0", "noise")
    pytree_aux_fields = ("pruned",)
    _signature = families.Quadratic.signature + ",(n),(t,k)"

    def __init__(self, A_0, A_1, A_2, B, C_0, C_1, C_2, R, u0, noise, pruned=False, *,
                 validate_args=None):
        pairs = _set_quadratic(self, A_0, A_1, A_2, B, C_0, C_1, C_2)
        self.u0 = _param("u0", u0, (self.A_1.shape[-1],), "(N,)")
        self.noise = _noise_arg(noise, self.B.shape[-1])
        self.pruned = bool(pruned)
        self._init_base(R, self.C_1.shape[-2], pairs + [(self.u0, 1), (self.noise, 2)],
                        validate_args)

    def _params(self):
        return (self.A_0, self.A_1, self.A_2, self.B, self.C_0, self.C_1, self.C_2, self.u0,
                self.noise)

    def impulse_response(self, steps, shock=None, u0=None):
        """Pruned models: the path after a one-standard-deviation shock at ``t = 1`` minus the
        path without it, both from ``u0`` (default zeros) with no later shocks."""
        if not self.pruned:
            raise ValueError("impulse_response is defined for pruned=True (the unpruned "
                             "second-order model may explode)")
        self._unbatched("impulse_response")
        return self.family.impulse_response(steps, shock, u0)

    def _family(self, A_0, A_1, A_2, B, C_0, C_1, C_2, u0, noise):
        return families.Quadratic(A_0, A_1, A_2, B, C_0, C_1, C_2, self.pruned), u0, noise

    @classmethod
    def _from_family(cls, family, R, u0, noise):
        return cls(family.A_0, family.A_1, family.A_2, family.B, family.C_0, family.C_1,
                   family.C_2, R, u0, noise, pruned=family.pruned)


class JointStateSpace(JointLikelihood):
    r"""Generic model given the noise: ``u_{t+1} = transition(u_t, w_{t+1}, p, t)``,
    :math:`y_t \sim N(\mathrm{observation}(u_t, p, t), R)`.

    :param transition: pure JAX function ``(x, w, p, t) -> x_next``.
    :param observation: pure JAX function ``(x, p, t) -> z`` of shape ``(M,)``.
    :param p: any pytree of parameters (not batched; ``vmap`` the model for batches).
    :param R: ``(..., M, M)`` (or ``(M,)`` variances); :param u0: ``(..., N)``;
    :param noise: ``(..., T, K)``.
    """

    arg_constraints = {
        "R": positive_semidefinite,
        "u0": constraints.real_vector,
        "noise": constraints.real_matrix,
    }
    pytree_data_fields = ("p", "R", "u0", "noise")
    pytree_aux_fields = ("transition", "observation")
    _signature = "(n),(t,k)"
    _compiled = False

    def __init__(self, transition, observation, p, R, u0, noise, *, validate_args=None):
        if not callable(transition) or not callable(observation):
            raise ValueError("transition and observation must be callables "
                             "(x, w, p, t) -> x_next and (x, p, t) -> z")
        self.transition, self.observation, self.p = transition, observation, p
        self.u0 = as_float_array("u0", u0)
        if self.u0.ndim < 1:
            raise ValueError(f"u0 must have shape (..., N); got {tuple(self.u0.shape)}")
        self.noise = as_float_array("noise", noise)
        if self.noise.ndim < 2:
            raise ValueError(f"noise must have shape (..., T, K); got {tuple(self.noise.shape)}")
        N, K = self.u0.shape[-1], self.noise.shape[-1]
        x = jax.eval_shape(transition, jnp.zeros(N, self.u0.dtype), jnp.zeros(K, self.u0.dtype), p, 0)
        if getattr(x, "shape", None) != (N,):
            batched = len(getattr(x, "shape", ())) > 1
            raise ValueError(f"transition(x, w, p, t) must return shape (N,) = ({N},); "
                             f"got {getattr(x, 'shape', None)}"
                             + (". p takes no batch dimensions: for one p per series build "
                                "the distribution inside jax.vmap, or use JointLGSS / "
                                "JointQuadraticSS, whose parameters batch" if batched else ""))
        z = jax.eval_shape(observation, jnp.zeros(N, self.u0.dtype), p, 0)
        zshape = getattr(z, "shape", None)
        if zshape is None or len(zshape) != 1:
            raise ValueError(f"observation(x, p, t) must return shape (M,); got {zshape}")
        self._init_base(R, zshape[0], [(self.u0, 1), (self.noise, 2)], validate_args)

    def _params(self):
        return self.u0, self.noise

    def _family(self, u0, noise):
        M = self.event_shape[-1]
        family = families.Generic(self.transition, self.observation, self.p, u0.shape[-1],
                                  noise.shape[-1], M)
        return family, u0, noise

    @classmethod
    def _from_family(cls, family, R, u0, noise):
        tr, ob, t0 = family.transition, family.observation, family.t0
        if t0:  # the distribution counts time from 0
            tr, ob = (lambda x, w, p, t: family.transition(x, w, p, t + t0),
                      lambda x, p, t: family.observation(x, p, t + t0))
        return cls(tr, ob, family.p, R, u0, noise)


def joint_likelihood(family, R, u0, noise):
    """The likelihood given the noise of a model family (``from_problem``'s
    ``DirectIteration``): the distribution class each family is registered with below."""
    return _JOINT[type(family)]._from_family(family, R, u0, noise)


_JOINT = {families.Linear: JointLGSS, families.Quadratic: JointQuadraticSS,
          families.Generic: JointStateSpace}

