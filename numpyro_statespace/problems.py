"""Problem types: immutable pytree containers describing a state-space model and its data.

They mirror DifferenceEquations.jl's problem types so Julia code ports line by line. Time is
``tspan = (t0, T)`` (or an int ``T``): states ``u_0..u_T``, noise ``w_1..w_T`` as a ``(T, K)``
array, observables ``y_1..y_T`` as a ``(T, M)`` array. ``observables_noise`` is a covariance
(a 1-D array is its diagonal) and is stored as the full ``(M, M)`` matrix.

Shapes are checked at construction and a mismatch raises ``ValueError`` naming the argument.
Array fields are pytree leaves (so problems pass through ``jit``, ``vmap`` and ``grad``);
``tspan``, names and callbacks are static.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ._validation import (
    as_float_array,
    as_shaped_array,
    check_names,
    check_shape,
    covariance_matrix,
    parse_tspan,
    promote_floats,
)
from . import families
from .families import declared_diagonal, shock_loading
from .kernels.direct import may_have_missing

__all__ = [
    "LinearStateSpaceProblem",
    "QuadraticStateSpaceProblem",
    "PrunedQuadraticStateSpaceProblem",
    "StateSpaceProblem",
]


class _Problem:
    """Shared pytree plumbing, immutability and the data fields common to every problem."""

    _data_fields: tuple = ()
    _aux_fields: tuple = ("tspan", "syms", "obs_syms", "diagonal_noise", "observables_missing")

    def tree_flatten(self):
        return (
            tuple(getattr(self, f) for f in self._data_fields),
            tuple(getattr(self, f) for f in self._aux_fields),
        )

    @classmethod
    def tree_unflatten(cls, aux, children):
        # No validation here: JAX rebuilds problems with tracers or placeholder leaves.
        obj = object.__new__(cls)
        for f, v in zip(cls._data_fields, children):
            object.__setattr__(obj, f, v)
        for f, v in zip(cls._aux_fields, aux):
            object.__setattr__(obj, f, v)
        return obj

    def __setattr__(self, name, value):
        raise AttributeError(f"{type(self).__name__} is immutable; use .replace({name}=...)")

    def replace(self, **changes):
        """A copy with some constructor arguments changed (re-validated)."""
        kwargs = {f: getattr(self, f) for f in self._init_fields}
        kwargs.update(changes)
        return type(self)(**kwargs)

    def _copy_with(self, **fields):
        """A copy with some fields swapped, without re-validation (internal use)."""
        obj = object.__new__(type(self))
        obj.__dict__.update(self.__dict__)
        obj._set(**fields)
        return obj

    def _set(self, **fields):
        for k, v in fields.items():
            object.__setattr__(self, k, v)

    def __repr__(self):
        parts = []
        for f in self._data_fields:
            v = getattr(self, f)
            if v is not None:
                parts.append(f"{f}={getattr(v, 'shape', type(v).__name__)}")
        return f"{type(self).__name__}(tspan={self.tspan}, {', '.join(parts)})"

    # -- sizes ---------------------------------------------------------------------------
    @property
    def num_timesteps(self) -> int:
        """``T``: the number of transitions, noise draws and observations."""
        return self.tspan[1] - self.tspan[0]

    @property
    def n_states(self) -> int:
        return self.u0.shape[-1]

    def _set_common(self, u0, tspan, n_shocks, n_obs, observables_noise, observables, noise,
                    syms, obs_syms):
        """Validate and store the fields every problem has; ``n_obs`` is 0 without observation."""
        tspan = parse_tspan(tspan)
        T = tspan[1] - tspan[0]
        u0 = as_float_array("u0", u0, ndim=1)
        N = u0.shape[0]
        # Without an observation equation observables are the states (ConditionalLikelihood).
        M = n_obs if n_obs else N
        # Decided on the input as given: inside a trace the converted array is a tracer. False
        # (NaN-free, concrete data) lets the joint likelihood factorise R once for all steps.
        observables_missing = observables is None or may_have_missing(observables)
        if observables is not None:
            observables = as_float_array("observables", observables)
            if observables.ndim != 2:
                raise ValueError(
                    f"observables must be time-major with shape (T, M) = ({T}, {M}); "
                    f"got shape {tuple(observables.shape)}"
                )
            check_shape("observables", observables, (T, M), "(T, M)")
        # variances declare a diagonal covariance (families.declared_diagonal): the Kalman
        # filter's univariate update
        diagonal_noise = observables_noise is not None and declared_diagonal(observables_noise)
        if observables_noise is not None:
            observables_noise = covariance_matrix("observables_noise", observables_noise, M)
        if noise is not None:
            if n_shocks == 0:
                raise ValueError("noise was given but the model has no shocks "
                                 "(B is None, or n_shocks = 0 for a generic problem)")
            noise = as_float_array("noise", noise)
            check_shape("noise", noise, (T, n_shocks), "(T, K)")
        self._set(
            u0=u0, tspan=tspan, observables=observables, observables_noise=observables_noise,
            noise=noise, diagonal_noise=diagonal_noise, observables_missing=observables_missing,
            syms=check_names("syms", syms, N),
            obs_syms=check_names("obs_syms", obs_syms, n_obs),
        )
        self._set(**promote_floats({f: getattr(self, f) for f in self._data_fields}))


class _LoadedProblem(_Problem):
    """A problem whose shocks enter through a loading ``B`` (``None``: no shocks) and whose
    observation equation is present when the matrix named ``_observation_matrix`` is."""

    _observation_matrix = "C"

    @property
    def n_shocks(self) -> int:
        return 0 if self.B is None else self.B.shape[1]

    @property
    def n_obs(self) -> int:
        C = getattr(self, self._observation_matrix)
        return 0 if C is None else C.shape[0]


@jax.tree_util.register_pytree_node_class
class LinearStateSpaceProblem(_LoadedProblem):
    r"""Linear Gaussian state-space model.

    .. math::
        u_t = A u_{t-1} + B w_t,\quad z_t = C u_t,\quad y_t = z_t + v_t,\quad
        w_t \sim N(0, I_K),\ v_t \sim N(0, R)

    :param A: ``(N, N)`` transition matrix.
    :param B: ``(N, K)`` shock loading, or ``None`` for a deterministic model.
    :param u0: ``(N,)`` initial state (used by simulation and the joint likelihood).
    :param tspan: ``T`` or ``(t0, T)``.
    :param C: ``(M, N)`` observation matrix, or ``None`` for no observation equation.
    :param observables_noise: ``R``, an ``(M, M)`` covariance or an ``(M,)`` vector of variances.
    :param observables: ``(T, M)`` data ``y_1..y_T``; NaN marks a missing entry (Kalman filter).
    :param noise: ``(T, K)`` shocks ``w_1..w_T``; ``None`` draws them from ``solve``'s key.
    :param u0_prior_mean: ``(N,)`` prior mean of ``u_0`` for the Kalman filter.
    :param u0_prior_var: ``(N, N)`` prior covariance of ``u_0`` for the Kalman filter.
    :param syms: names of the ``N`` states; ``obs_syms``: names of the ``M`` observables.
    """

    _data_fields = ("A", "B", "C", "u0", "observables_noise", "observables", "noise",
                    "u0_prior_mean", "u0_prior_var")
    _init_fields = ("A", "B", "u0", "tspan", "C", "observables_noise", "observables", "noise",
                    "u0_prior_mean", "u0_prior_var", "syms", "obs_syms")

    def __init__(self, A, B, u0, tspan, *, C=None, observables_noise=None, observables=None,
                 noise=None, u0_prior_mean=None, u0_prior_var=None, syms=None, obs_syms=None):
        A = as_float_array("A", A, ndim=2)
        N = A.shape[0]
        check_shape("A", A, (N, N), "(N, N)")
        u0 = as_shaped_array("u0", u0, (N,), "(N,)")
        B = _shock_loading(B, N)
        if C is not None:
            C = as_float_array("C", C)
            if C.ndim != 2 or C.shape[1] != N:
                raise ValueError(f"C must have shape (M, N) with N = {N}; got {tuple(C.shape)}")
        if u0_prior_mean is not None:
            u0_prior_mean = as_shaped_array("u0_prior_mean", u0_prior_mean, (N,), "(N,)")
        if u0_prior_var is not None:
            u0_prior_var = as_shaped_array("u0_prior_var", u0_prior_var, (N, N), "(N, N)")
        self._set(A=A, B=B, C=C, u0_prior_mean=u0_prior_mean, u0_prior_var=u0_prior_var)
        self._set_common(u0, tspan, 0 if B is None else B.shape[1], 0 if C is None else C.shape[0],
                         observables_noise, observables, noise, syms, obs_syms)

    @property
    def family(self):
        """The model as a :class:`.families.Linear`."""
        return families.Linear(self.A, shock_loading(self.B, self.n_states, self.A.dtype),
                               self.C)


def _shock_loading(B, N):
    """``B`` as an ``(N, K)`` array, or ``None`` for a deterministic model."""
    if B is None:
        return None
    B = as_float_array("B", B)
    if B.ndim != 2 or B.shape[0] != N:
        raise ValueError(f"B must have shape (N, K) with N = {N}; got {tuple(B.shape)}")
    return B


@jax.tree_util.register_pytree_node_class
class QuadraticStateSpaceProblem(_LoadedProblem):
    r"""Second-order state-space model (no pruning).

    .. math::
        u_t = A_0 + A_1 u_{t-1} + \mathrm{quad}(A_2, u_{t-1}) + B w_t,\quad
        z_t = C_0 + C_1 u_t + \mathrm{quad}(C_2, u_t)

    with :math:`\mathrm{quad}(T, v)_i = v^\top T_i v` (no 1/2). Shapes: ``A_0 (N,)``,
    ``A_1 (N, N)``, ``A_2 (N, N, N)``, ``B (N, K)`` or ``None``, ``C_0 (M,)``, ``C_1 (M, N)``,
    ``C_2 (M, N, N)``. The observation equation is present when ``C_1`` is given; ``C_0`` and
    ``C_2`` then default to zeros. Other keywords as in :class:`LinearStateSpaceProblem`.
    """

    pruned = False
    _observation_matrix = "C_1"
    _data_fields = ("A_0", "A_1", "A_2", "B", "C_0", "C_1", "C_2", "u0", "observables_noise",
                    "observables", "noise")
    _init_fields = ("A_0", "A_1", "A_2", "B", "u0", "tspan", "C_0", "C_1", "C_2",
                    "observables_noise", "observables", "noise", "syms", "obs_syms")

    def __init__(self, A_0, A_1, A_2, B, u0, tspan, *, C_0=None, C_1=None, C_2=None,
                 observables_noise=None, observables=None, noise=None, syms=None, obs_syms=None):
        A_1 = as_float_array("A_1", A_1, ndim=2)
        N = A_1.shape[0]
        check_shape("A_1", A_1, (N, N), "(N, N)")
        A_0 = as_shaped_array("A_0", A_0, (N,), "(N,)")
        A_2 = as_shaped_array("A_2", A_2, (N, N, N), "(N, N, N)")
        u0 = as_shaped_array("u0", u0, (N,), "(N,)")
        B = _shock_loading(B, N)
        M = 0
        if C_1 is None:
            if C_0 is not None or C_2 is not None:
                raise ValueError("C_0 / C_2 were given without C_1: the observation equation "
                                 "needs at least C_1 (C_0 and C_2 default to zeros)")
        else:
            C_1 = as_float_array("C_1", C_1)
            if C_1.ndim != 2 or C_1.shape[1] != N:
                raise ValueError(f"C_1 must have shape (M, N) with N = {N}; got {tuple(C_1.shape)}")
            M = C_1.shape[0]
            C_0 = (jnp.zeros(M, C_1.dtype) if C_0 is None
                   else as_shaped_array("C_0", C_0, (M,), "(M,)"))
            C_2 = (jnp.zeros((M, N, N), C_1.dtype) if C_2 is None
                   else as_shaped_array("C_2", C_2, (M, N, N), "(M, N, N)"))
        self._set(A_0=A_0, A_1=A_1, A_2=A_2, B=B, C_0=C_0, C_1=C_1, C_2=C_2)
        self._set_common(u0, tspan, 0 if B is None else B.shape[1], M, observables_noise,
                         observables, noise, syms, obs_syms)

    @property
    def family(self):
        """The model as a :class:`.families.Quadratic` (``pruned`` for the pruned problem)."""
        return families.Quadratic(self.A_0, self.A_1, self.A_2,
                                  shock_loading(self.B, self.n_states, self.A_1.dtype),
                                  self.C_0, self.C_1, self.C_2, pruned=self.pruned)


@jax.tree_util.register_pytree_node_class
class PrunedQuadraticStateSpaceProblem(QuadraticStateSpaceProblem):
    r"""Pruned second-order model (Andreasen, Fernández-Villaverde and Rubio-Ramírez, 2017).

    A first-order state :math:`u^f_t = A_1 u^f_{t-1} + B w_t` (with :math:`u^f_0 = u_0`) feeds
    the quadratic terms, which keeps simulated paths stable:

    .. math::
        u_t = A_0 + A_1 u_{t-1} + \mathrm{quad}(A_2, u^f_{t-1}) + B w_t,\quad
        z_t = C_0 + C_1 u_t + \mathrm{quad}(C_2, u^f_t)

    Arguments as in :class:`QuadraticStateSpaceProblem`.
    """

    pruned = True


@jax.tree_util.register_pytree_node_class
class StateSpaceProblem(_Problem):
    """Generic state-space model given by pure JAX callbacks.

    ``transition(x, w, p, t) -> x_next`` maps the state at time ``t`` (0-based, ``t0`` included)
    and the shock ``w_{t+1}`` to ``u_{t+1}``; ``observation(x, p, t) -> z`` gives ``z_t``.
    ``p`` is any pytree of parameters (differentiable). ``n_shocks`` is ``K`` (0 for none);
    ``n_obs`` is ``M``, inferred from ``observation`` when omitted (or 0,
    DifferenceEquations.jl's default). ``observation=None`` means no observation equation.
    Other keywords as in :class:`LinearStateSpaceProblem`.
    """

    _data_fields = ("p", "u0", "observables_noise", "observables", "noise")
    _aux_fields = ("transition", "observation", "n_shocks", "n_obs") + _Problem._aux_fields
    _init_fields = ("transition", "observation", "u0", "tspan", "p", "n_shocks", "n_obs",
                    "observables_noise", "observables", "noise", "syms", "obs_syms")

    def __init__(self, transition, observation, u0, tspan, p=None, *, n_shocks, n_obs=None,
                 observables_noise=None, observables=None, noise=None, syms=None, obs_syms=None):
        if not callable(transition):
            raise ValueError(f"transition must be callable; got {type(transition).__name__}")
        if observation is not None and not callable(observation):
            raise ValueError(f"observation must be callable or None; got {type(observation).__name__}")
        if not isinstance(n_shocks, int) or n_shocks < 0:
            raise ValueError(f"n_shocks must be a non-negative int; got {n_shocks!r}")
        u0 = as_float_array("u0", u0, ndim=1)
        t0 = parse_tspan(tspan)[0]
        N = u0.shape[0]
        # Check the callbacks' output shapes once, abstractly (no FLOPs spent).
        try:
            x_next = jax.eval_shape(transition, u0, jnp.zeros(n_shocks, u0.dtype), p, t0)
        except Exception as err:
            raise ValueError(
                f"transition(x, w, p, t) failed on x of shape ({N},) and w of shape "
                f"(n_shocks,) = ({n_shocks},): {type(err).__name__}: {err}") from err
        if getattr(x_next, "shape", None) != (N,):
            raise ValueError(f"transition(x, w, p, t) must return shape (N,) = ({N},); "
                             f"got {getattr(x_next, 'shape', type(x_next).__name__)}")
        if observation is None:
            if n_obs:
                raise ValueError(f"n_obs = {n_obs} but observation is None")
            n_obs = 0
        else:
            try:
                z = jax.eval_shape(observation, u0, p, t0)
            except Exception as err:
                raise ValueError(f"observation(x, p, t) failed on x of shape ({N},): "
                                 f"{type(err).__name__}: {err}") from err
            zshape = getattr(z, "shape", None)
            if zshape is None or len(zshape) != 1:
                raise ValueError(f"observation(x, p, t) must return a 1-D array; got {zshape}")
            if not n_obs:  # None, or DifferenceEquations.jl's default 0: inferred
                n_obs = zshape[0]
            elif zshape != (n_obs,):
                raise ValueError(f"observation(x, p, t) must return shape (n_obs,) = ({n_obs},); "
                                 f"got {zshape}")
        self._set(transition=transition, observation=observation, p=p, n_shocks=n_shocks,
                  n_obs=n_obs)
        self._set_common(u0, tspan, n_shocks, n_obs, observables_noise, observables, noise,
                         syms, obs_syms)

    @property
    def family(self):
        """The model as a :class:`.families.Generic` (times counted from ``tspan[0]``)."""
        return families.Generic(self.transition, self.observation, self.p, self.n_states,
                                self.n_shocks, self.n_obs, self.tspan[0])
