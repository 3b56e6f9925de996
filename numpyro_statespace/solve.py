"""``solve(prob, alg)``: the DifferenceEquations.jl entry point.

Algorithms are markers: :class:`DirectIteration` (simulation, and the joint likelihood given the
noise), :class:`KalmanFilter` (marginal likelihood of a linear model) and
:class:`ConditionalLikelihood` (fully observed models). ``solve`` is a pure function of the
problem's arrays, so ``jax.jit(solve, static_argnames=...)``, ``jax.grad`` of
``solve(...).logpdf`` and ``jax.vmap`` over problems all work.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import jax
import jax.numpy as jnp

from . import kernels
from .distributions import ConditionalSS, KalmanLGSS
from .distributions.joint import joint_likelihood
from .families import filter_form
from .kernels.guards import bounded_moment, finite_tree
from .kernels.linalg import psd_factor
from .problems import (
    LinearStateSpaceProblem,
    QuadraticStateSpaceProblem,
    StateSpaceProblem,
)

__all__ = [
    "ConditionalLikelihood",
    "DirectIteration",
    "KalmanFilter",
    "StateSpaceSolution",
    "default_algorithm",
    "from_problem",
    "solve",
]


@dataclass(frozen=True)
class DirectIteration:
    """Iterate the model forward from ``u0`` with a given (or drawn) noise sequence."""


@dataclass(frozen=True)
class KalmanFilter:
    """Kalman filter: filtered states, covariances and the marginal likelihood (linear only)."""


@dataclass(frozen=True)
class ConditionalLikelihood:
    """Prediction-error likelihood of a fully observed model (state clamped to the data)."""


@jax.tree_util.register_pytree_node_class
@dataclass(frozen=True)
class StateSpaceSolution:
    """Result of :func:`solve`.

    :ivar t: ``(T + 1,)`` times ``t0..T`` (2 entries with ``save_everystep=False``).
    :ivar u: ``(T + 1, N)`` states (Kalman: filtered means; conditional: clamped states).
        A simulated path that overflows (a state beyond ``sqrt(max float)``, 1e154 in float64)
        is NaN from there on, and ``logpdf`` is ``-inf``.
    :ivar z: ``(T + 1, M)`` observations (``z_0`` noiseless; Kalman: predicted), or ``None``.
    :ivar W: ``(T, K)`` noise used, or ``None``.
    :ivar P: ``(T + 1, N, N)`` filtered covariances (Kalman only), else ``None``.
    :ivar logpdf: scalar log-likelihood (0 without observables; ``-inf`` on numerical failure).
    :ivar syms: state names, ``obs_syms``: observable names (``sol["name"]`` indexes by them).
    """

    t: Any
    u: Any
    z: Optional[Any]
    W: Optional[Any]
    P: Optional[Any]
    logpdf: Any
    syms: Optional[tuple] = None
    obs_syms: Optional[tuple] = None

    def tree_flatten(self):
        return (self.t, self.u, self.z, self.W, self.P, self.logpdf), (self.syms, self.obs_syms)

    @classmethod
    def tree_unflatten(cls, aux, children):
        return cls(*children, *aux)

    def __getitem__(self, name):
        """The path of one named state (a column of ``u``) or observable (a column of ``z``)."""
        if self.syms is not None and name in self.syms:
            return self.u[:, self.syms.index(name)]
        if self.obs_syms is not None and name in self.obs_syms:
            return self.z[:, self.obs_syms.index(name)]
        raise KeyError(f"{name!r} is neither in syms {self.syms} nor in obs_syms {self.obs_syms}")


def default_algorithm(prob):
    """As in DifferenceEquations.jl: the Kalman filter for a linear problem with a prior
    covariance, observables, their noise, ``B`` and ``C`` and no fixed noise; otherwise direct
    iteration. The conditional likelihood is never chosen by default."""
    if (
        prob.family.linear_gaussian
        and prob.u0_prior_var is not None
        and prob.noise is None
        and prob.observables is not None
        and prob.observables_noise is not None
        and prob.B is not None
        and prob.C is not None
    ):
        return KalmanFilter()
    return DirectIteration()


def solve(prob, alg=None, *, key=None, save_everystep=True):
    """Solve a state-space problem.

    :param prob: a problem from :mod:`numpyro_statespace.problems`.
    :param alg: ``DirectIteration()``, ``KalmanFilter()``, ``ConditionalLikelihood()`` or
        ``None`` for :func:`default_algorithm`.
    :param key: a ``jax.random`` key, needed when noise must be drawn (``noise=None`` with
        shocks) or observation noise added (``observables_noise`` without ``observables``).
    :param save_everystep: False keeps only the first and last entries of ``t, u, z, P``; the
        ``logpdf`` is identical.
    :return: :class:`StateSpaceSolution`.

    Linear and quadratic problems are solved by one compiled program per problem structure and
    algorithm (reused for new values; inlined where ``solve`` is called inside ``jit``,
    ``grad`` or ``vmap``); a generic problem runs as it is.
    """
    if not isinstance(prob, (LinearStateSpaceProblem, QuadraticStateSpaceProblem,
                             StateSpaceProblem)):
        raise ValueError(f"prob must be a state-space problem; got {type(prob).__name__}")
    alg = default_algorithm(prob) if alg is None else alg
    if isinstance(alg, type):
        alg = alg()
    if not isinstance(alg, (KalmanFilter, DirectIteration, ConditionalLikelihood)):
        raise ValueError(f"alg must be DirectIteration(), KalmanFilter() or "
                         f"ConditionalLikelihood(); got {alg!r}")
    if isinstance(alg, DirectIteration) and prob.observables is not None \
            and prob.observables_noise is None:
        # a logpdf of 0 would be a flat likelihood, silently
        raise ValueError("DirectIteration with observables needs observables_noise (the "
                         "covariance R of their measurement error) for the joint likelihood")
    if isinstance(alg, ConditionalLikelihood) and prob.observables is not None \
            and not isinstance(prob.observables, jax.core.Tracer) \
            and kernels.may_have_missing(prob.observables):
        # (traced data cannot be checked here; NaN there gives -inf)
        raise ValueError("ConditionalLikelihood clamps the state to the data, which must be "
                         "complete: observables hold NaN (missing data need KalmanFilter())")
    # One compiled program per problem structure: called eagerly, the solvers would run (and
    # be compiled) operation by operation; inside a traced caller it is inlined. A generic
    # problem's callbacks are part of its structure, and closures made afresh for each call
    # would compile (and keep) a program per call: it runs as it is.
    run = _solve if prob.family.callbacks else _compiled_solve
    return run(prob, alg, key, save_everystep)


def _solve(prob, alg, key, save_everystep):
    if isinstance(alg, KalmanFilter):
        sol = _solve_kalman(prob, save_everystep)
    elif isinstance(alg, DirectIteration):
        sol = _solve_direct(prob, key)
    else:
        sol = _solve_conditional(prob, key)
    if save_everystep or isinstance(alg, KalmanFilter):
        return sol
    ends = lambda x: None if x is None else x[jnp.array([0, -1])]  # noqa: E731
    return StateSpaceSolution(ends(sol.t), ends(sol.u), ends(sol.z), sol.W, sol.P, sol.logpdf,
                              sol.syms, sol.obs_syms)


_compiled_solve = jax.jit(_solve, static_argnums=(1, 3))


def _times(prob):
    t0, t1 = prob.tspan
    return jnp.arange(t0, t1 + 1)


def _need_key(key, what):
    if key is None:
        raise ValueError(
            f"solve needs a PRNG key to {what}: pass key=jax.random.key(0) (or give the "
            f"values explicitly); no fixed seed is used silently"
        )


def _noise(prob, key):
    """The ``(T, K)`` noise: the problem's, or standard normal draws from ``key``."""
    K = prob.n_shocks
    if K == 0:
        return None
    if prob.noise is not None:
        return prob.noise
    _need_key(key, "draw the noise (noise=None and the model has shocks)")
    return jax.random.normal(key, (prob.num_timesteps, K), prob.u0.dtype)


def _split(key):
    return (None, None) if key is None else tuple(jax.random.split(key))


def _empty_noise(prob):
    return jnp.zeros((prob.num_timesteps, 0), prob.u0.dtype)


def _solve_direct(prob, key):
    key_w, key_v = _split(key)
    W = _noise(prob, key_w)
    # Iterate a NaN-free copy of the parameters (observables excluded) so that a failed
    # likelihood is -inf with finite gradients; paths of non-finite inputs are reported as NaN.
    (clean, W_clean), ok_params = finite_tree((prob._copy_with(observables=None), W))
    family = clean.family
    u, uf, ok, valid = family.states(clean.u0, _empty_noise(prob) if W is None else W_clean)
    z = family.observe(u, uf) if family.has_observation else None
    logpdf = jnp.zeros((), u.dtype)
    if z is not None and prob.observables_noise is not None:
        if prob.observables is not None:
            logpdf = kernels.joint_loglik(z, prob.observables, clean.observables_noise,
                                          ok & ok_params, missing=prob.observables_missing)
        else:
            _need_key(key_v, "add observation noise (observables_noise without observables)")
            z = z.at[1:].add(_draw_observation_noise(key_v, clean.observables_noise,
                                                     z.shape[0] - 1))
    # an overflowing path is NaN from there on (the kernels continue from zeros)
    valid = valid & ok_params
    u = kernels.reported_path(u, valid)
    z = None if z is None else kernels.reported_path(z, valid)
    return StateSpaceSolution(_times(prob), u, z, W, None, logpdf, prob.syms, prob.obs_syms)


def _draw_observation_noise(key, R, T):
    """``(T, M)`` draws from ``N(0, R)`` (``R`` may be singular, e.g. zero for some entries)."""
    return jax.random.normal(key, (T, R.shape[0]), R.dtype) @ psd_factor(R).T


def _check_kalman(prob, needed=("C", "observables", "observables_noise", "u0_prior_mean",
                                 "u0_prior_var")):
    """Refuse a problem the Kalman filter does not take: not linear Gaussian, a field of
    ``needed`` missing, or a given noise sequence (which contradicts the marginal)."""
    if not prob.family.linear_gaussian:
        raise ValueError(f"KalmanFilter needs a LinearStateSpaceProblem; got {type(prob).__name__}")
    missing = [name for name in needed if getattr(prob, name) is None]
    if missing:
        raise ValueError(f"KalmanFilter needs {', '.join(missing)} on the problem")
    if prob.noise is not None:
        raise ValueError("KalmanFilter integrates the noise out: the problem must have noise=None")


def _solve_kalman(prob, save_everystep):
    _check_kalman(prob)
    family = prob.family
    res = kernels.kalman_filter(family.A, family.B, family.C,
                                filter_form(prob.observables_noise, prob.diagonal_noise),
                                prob.u0_prior_mean, prob.u0_prior_var, prob.observables,
                                save_everystep=save_everystep)
    t = _times(prob)
    if not save_everystep:
        t = t[jnp.array([0, -1])]
    return StateSpaceSolution(t, res.filtered_means, res.predicted_obs, None, res.filtered_covs,
                              res.log_likelihood, prob.syms, prob.obs_syms)


def _solve_conditional(prob, key):
    if prob.observables is None or prob.observables_noise is None:
        raise ValueError("ConditionalLikelihood needs observables and observables_noise")
    N = prob.n_states
    if prob.observables.shape[1] != N:
        raise ValueError(
            f"ConditionalLikelihood clamps the state to the data, so observables must have shape "
            f"(T, N) = {(prob.num_timesteps, N)}; got {tuple(prob.observables.shape)}"
        )
    W = _noise(prob, key)
    # As in _solve_direct: a NaN-free copy of the parameters keeps failed gradients finite.
    (clean, W_clean), ok_params = finite_tree((prob._copy_with(observables=None), W))
    noise = _empty_noise(prob) if W is None else W_clean
    # The clamped states enter products as state moments do (kernels.guards): a huge
    # u_0 or datum that predicts a finite observation would still overflow its cotangent.
    (u0, ok_u0), (y, ok_y) = (bounded_moment(x) for x in (clean.u0, prob.observables))
    family = clean.family
    preds = kernels.one_step_predictions(family.predict, u0, y, noise)
    logpdf = kernels.conditional_loglik(preds, prob.observables, clean.observables_noise)
    logpdf = jnp.where(ok_params & ok_u0 & ok_y, logpdf, -jnp.inf)
    u = kernels.clamped_states(prob.u0, prob.observables)
    z = None
    if family.has_observation:
        z0 = family.observe(clean.u0[None], clean.u0[None])
        z = jnp.where(ok_params, jnp.concatenate([z0, preds], axis=0), jnp.nan)
    return StateSpaceSolution(_times(prob), u, z, W, None, logpdf, prob.syms, prob.obs_syms)


def from_problem(prob, alg=None):
    """The distribution whose ``log_prob(prob.observables)`` is ``solve(prob, alg).logpdf``.

    ``KalmanFilter`` gives :class:`KalmanLGSS`; ``DirectIteration`` gives :class:`JointLGSS`,
    :class:`JointQuadraticSS` or :class:`JointStateSpace` (the problem's ``noise`` is needed);
    ``ConditionalLikelihood`` gives :class:`ConditionalSS` (linear problems with ``B=None``).
    """
    alg = default_algorithm(prob) if alg is None else alg
    if isinstance(alg, type):
        alg = alg()
    if prob.observables_noise is None:
        raise ValueError("from_problem needs observables_noise (the covariance R)")
    T, R = prob.num_timesteps, prob.observables_noise
    family = prob.family
    if isinstance(alg, KalmanFilter):
        _check_kalman(prob, ("C", "u0_prior_mean", "u0_prior_var"))
        return KalmanLGSS(family.A, prob.B, family.C, filter_form(R, prob.diagonal_noise),
                          prob.u0_prior_mean, prob.u0_prior_var, T)
    if isinstance(alg, ConditionalLikelihood):
        if not family.linear_gaussian or prob.B is not None:
            raise ValueError("from_problem(..., ConditionalLikelihood()) needs a "
                             "LinearStateSpaceProblem with B=None (ConditionalSS integrates "
                             "shocks out; build it directly to include B)")
        return ConditionalSS(family.A, None, R, prob.u0, family.C, num_timesteps=T)
    if not isinstance(alg, DirectIteration):
        raise ValueError(f"alg must be DirectIteration(), KalmanFilter() or "
                         f"ConditionalLikelihood(); got {alg!r}")
    if prob.n_obs == 0:
        raise ValueError("a joint likelihood needs an observation equation")
    noise = prob.noise
    if noise is None:
        if prob.n_shocks:
            raise ValueError("a joint likelihood needs the problem's noise (the shocks it is "
                             "conditioned on): pass noise=...")
        noise = jnp.zeros((T, 0), prob.u0.dtype)  # no shocks: a deterministic path
    return joint_likelihood(family, R, prob.u0, noise)
