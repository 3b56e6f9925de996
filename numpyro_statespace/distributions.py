r"""NumPyro distributions over a whole observed series ``y_1..y_T``.

Every class here has ``event_shape == (T, M)`` and a ``batch_shape`` broadcast from the leading
dimensions of its parameters, so ``numpyro.plate`` over series and ``vmap`` over parameter draws
work. ``log_prob`` calls the kernels of :mod:`numpyro_statespace.kernels`; numerical failure
gives ``-inf`` with finite gradients, so NUTS rejects the proposal instead of crashing.

=====================  ==================================================================
class                  likelihood
=====================  ==================================================================
:class:`KalmanLGSS`    marginal (Kalman filter), shocks integrated out
:class:`JointLGSS`     linear model given the noise
:class:`JointQuadraticSS`  quadratic or pruned-quadratic model given the noise
:class:`JointStateSpace`   generic callbacks given the noise
:class:`ConditionalSS` fully observed linear model, prediction-error decomposition
=====================  ==================================================================
"""

from __future__ import annotations

from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from numpyro.distributions import constraints
from numpyro.distributions.batch_util import vmap_over
from numpyro.distributions.transforms import IdentityTransform, biject_to
from numpyro.distributions.util import validate_sample
from numpyro.util import not_jax_tracer

from . import _kalman_routes as routes
from . import kernels
from ._validation import (
    as_float_array,
    as_int,
    float_leaves,
    promote_floats,
    refuse_pandas,
)
from .kernels.guards import (
    bounded_moment,
    bounded_parameter,
    finite_tree,
    parameter_bound,
)
from .kernels.linalg import psd_factor
from .problems import (
    LinearStateSpaceProblem,
    QuadraticStateSpaceProblem,
    StateSpaceProblem,
)
from .solve import (
    ConditionalLikelihood,
    DirectIteration,
    KalmanFilter,
    default_algorithm,
)

__all__ = [
    "ConditionalSS",
    "Diffuse",
    "JointLGSS",
    "JointQuadraticSS",
    "JointStateSpace",
    "KalmanLGSS",
    "Whitening",
    "from_problem",
    "sample_noise",
]


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


def _psd_factor(S):
    """``F`` with ``F F' = S`` for (batches of) positive semi-definite ``S``, singular allowed."""
    return jnp.vectorize(psd_factor, signature="(n,n)->(n,n)")(S)


def _gaussian(key, shape, factor):
    """Draws ``F e`` with ``e ~ N(0, I)``: ``shape + (factor.shape[-2],)``, broadcast over batch."""
    e = jax.random.normal(key, shape + factor.shape[-1:], factor.dtype)
    return jnp.einsum("...ij,...j->...i", factor, e)


def _stationary_prior(A, B):
    """Stationary covariance of ``u_t = A u_{t-1} + B w_t`` and its ``ok`` flag (NaN-safe)."""
    (A, B), ok = finite_tree((A, B))
    P, ok_P = kernels.stationary_covariance(A, B @ B.T)
    return P, ok & ok_P


_stationary_priors_jit = jax.jit(jnp.vectorize(_stationary_prior,
                                               signature="(n,n),(n,k)->(n,n),()"))


def _stationary_priors_numpy(A, B, num_doublings=64):
    """:func:`.kernels.stationary_covariance`'s doubling and checks in NumPy, for concrete
    ``A``, ``B`` (batched): the same iterates, without compiling a program."""
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


def _log_prob(d, value, options):
    """``d._log_prob(value, *options)``, parameters and ``value`` in their common dtype;
    ``options`` holds what must be decided outside a trace: whether ``value`` may hold NaN
    (before tracing hides its values), which filter ``method="auto"`` means on this backend."""
    dtype = jnp.result_type(value, *float_leaves(d))
    return promote_floats(d, dtype)._log_prob(value.astype(dtype), *options)


# The same as one compiled program (the distribution is a pytree: its arrays are the arguments,
# its options part of the cache key). NumPyro evaluates a model and its gradient op by op while
# it initialises a sampler, and eager users call log_prob directly; without this every
# operation of the likelihood would be compiled on its own. Inside a jitted caller it is inlined.
_compiled_log_prob = jax.jit(_log_prob, static_argnums=2)


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


# -- marginal likelihood ------------------------------------------------------------------
class _LinearMoments:
    """``mean`` and ``variance`` of ``y_t``, ``batch_shape + event_shape``, by the moment
    recursion of the linear model ``(A, B, C, R, u0_mean, u0_cov, ok)`` that
    ``_linear_model()`` returns (NaN where ``ok`` is 0: no stationary distribution)."""

    @property
    def mean(self):
        return self._moments()[0]

    @property
    def variance(self):
        """Entrywise."""
        return self._moments()[1]

    def _moments(self):
        def single(A, B, C, R, m0, P0, ok):
            f = kernels.forecast(A, B, C, R, m0, P0, self.num_timesteps)
            var = jnp.diagonal(f.obs_covs, axis1=-2, axis2=-1)
            return tuple(jnp.where(ok > 0, x, jnp.nan) for x in (f.obs_means, var))

        means, var = jnp.vectorize(
            single, signature="(n,n),(n,k),(m,n),(m,m),(n),(n,n),()->(t,m),(t,m)")(
            *self._linear_model())
        shape = self.batch_shape + self.event_shape
        return jnp.broadcast_to(means, shape), jnp.broadcast_to(var, shape)


class KalmanLGSS(_LinearMoments, dist.Distribution):
    r"""Linear Gaussian state-space model with the shocks integrated out (Kalman filter).

    .. math::
        u_0 \sim N(\mu_0, \Sigma_0),\quad u_t = A u_{t-1} + B w_t,\quad
        y_t = C u_t + v_t,\quad w_t \sim N(0, I_K),\ v_t \sim N(0, R)

    and :math:`\log p(y) = \sum_t \log N(y_t;\ C m_{t|t-1},\ C P_{t|t-1} C^\top + R)`.

    :param A: ``(..., N, N)``. :param B: ``(..., N, K)`` or ``None``. :param C: ``(..., M, N)``.
    :param R: ``(..., M, M)`` observation-noise covariance, or ``(M,)`` variances.
    :param u0_mean: ``(..., N)``.
    :param u0_cov: ``(..., N, N)``, or ``"stationary"`` for the solution of
        :math:`\Sigma_0 = A \Sigma_0 A^\top + B B^\top` (``-inf`` when ``A`` is not stable).
    :param num_timesteps: ``T``; may be omitted when ``mask`` is given.
    :param mask: optional ``(..., T, M)`` bool; False marks a missing entry. NaN entries of
        the observed ``y`` are missing too; an all-missing step is a pure prediction. (A bool
        leaf: ``jax.grad`` over the distribution object then needs ``allow_int=True``.)
    :param method: ``"sequential"`` (``lax.scan``, with a steady-state switch: see
        :func:`.kernels.likelihood.steady_state_horizon`),
        ``"parallel"`` (associative scan, ``O(log T)`` depth: :mod:`.kernels.parallel`) or
        ``"auto"``: parallel when JAX's default backend is an accelerator, else sequential.
    :param state_offset: ``c_t``, added to the state equation:
        :math:`u_t = c_t + A u_{t-1} + B w_t`. ``(N,)`` (constant) or ``(..., T, N)``.
    :param obs_offset: ``d_t``, added to the observation equation:
        :math:`y_t = d_t + C u_t + v_t`; regressors :math:`X_t \beta` are an observation
        offset. ``(M,)`` (constant) or ``(..., T, M)``. Offsets are carried through every
        method (:mod:`.kernels.offsets`); impulse responses, deviations from the path without
        the shock, do not depend on them.
    :param time_varying_C: ``C`` is ``(..., T, M, N)``, one design matrix per step
        (:math:`y_t = C_t u_t + v_t`, dynamic regression); sequential filter only.
    :param prior_of: ``"u0"`` (default): ``u0_mean, u0_cov`` are the prior of ``u_0``;
        ``"u1"``: they are the prior of the first observed state ``u_1`` (statsmodels'
        ``a_1, P_1``), and ``u_0 = u_1`` (no shock in the first step).
    :param loglikelihood_burn: the first ``b`` steps are left out of the log-likelihood
        (``log p(y_{b+1..T} | y_{1..b})``, statsmodels' ``loglikelihood_burn``).

    ``u0_cov="diffuse"`` (or a :class:`Diffuse` naming the diffuse states) gives the exact
    diffuse initialisation of Koopman & Durbin (2003), statsmodels'
    ``initialization="diffuse"`` (use ``prior_of="u1"`` for statsmodels' timing): see
    :mod:`.kernels.diffuse`. Diffuse states have no proper prior, so ``sample``, ``mean``
    and ``variance`` treat them as fixed at ``u0_mean``.
    """

    arg_constraints = {
        "A": constraints.real_matrix,
        "B": constraints.real_matrix,
        "C": constraints.real_matrix,
        "R": positive_semidefinite,
        "u0_mean": constraints.real_vector,
        "u0_cov": positive_semidefinite,
    }
    support = constraints.independent(real_or_missing, 2)
    # The mask is stored as ``_mask``: ``mask`` is Distribution's own method (numpyro.handlers.mask).
    pytree_data_fields = ("A", "B", "C", "R", "u0_mean", "u0_cov", "_mask", "_prior_ok",
                          "state_offset", "obs_offset")
    pytree_aux_fields = ("num_timesteps", "method", "stationary", "_diagonal_R", "_spec",
                         "time_varying_C", "_derived_prior")

    def __init__(self, A, B, C, R, u0_mean, u0_cov, num_timesteps=None, *, mask=None,
                 method="auto", state_offset=None, obs_offset=None, time_varying_C=False,
                 prior_of="u0", loglikelihood_burn=0, validate_args=None):
        self.A = _square("A", A)
        N = self.A.shape[-1]
        self.B = jnp.zeros((N, 0), self.A.dtype) if B is None else _sized("B", B, -2, N, "N, K")
        self.time_varying_C = bool(time_varying_C)
        if self.time_varying_C:
            C = as_float_array("C", C)
            if C.ndim < 3 or C.shape[-1] != N:
                raise ValueError(f"C must have shape (..., T, M, N) with N = {N} when "
                                 f"time_varying_C=True; got {tuple(C.shape)}")
            if num_timesteps is None and mask is None:
                num_timesteps = C.shape[-3]
            self.C = C
        else:
            self.C = _sized("C", C, -1, N, "M, N")
        M = self.C.shape[-2]
        # R given as variances is diagonal by declaration (not detected from its values, which
        # grad or vmap over the distribution may change): the filter's univariate update.
        self._diagonal_R = jnp.ndim(R) == 1
        self.R = _obs_cov(R, M)
        self.u0_mean = _param("u0_mean", u0_mean, (N,), "(N,)")
        if method not in ("auto", "sequential", "parallel"):
            raise ValueError(f"method must be 'auto', 'sequential' or 'parallel'; got {method!r}")
        self.method = method
        if mask is not None:
            mask = jnp.asarray(mask)
            if mask.dtype != jnp.bool_ or mask.ndim < 2 or mask.shape[-1] != M:
                raise ValueError(f"mask must be a bool array of shape (..., T, M) with M = {M}; "
                                 f"got {mask.dtype} {tuple(mask.shape)}")
        self._mask = mask
        if num_timesteps is None:
            if mask is None:
                raise ValueError("KalmanLGSS needs num_timesteps (T) or a mask of shape (T, M): "
                                 "pass num_timesteps=y.shape[-2]")
            num_timesteps = mask.shape[-2]
        num_timesteps = as_int("num_timesteps", num_timesteps)
        if mask is not None and mask.shape[-2] != num_timesteps:
            raise ValueError(f"mask must have shape (..., T, M) = (..., {num_timesteps}, {M}); "
                             f"got {tuple(mask.shape)}")
        self.num_timesteps = num_timesteps
        if self.time_varying_C and self.C.shape[-3] != num_timesteps:
            raise ValueError(f"C must have shape (..., T, M, N) = (..., {num_timesteps}, {M}, "
                             f"{N}) when time_varying_C=True; got {tuple(self.C.shape)}")
        self.state_offset = _offset("state_offset", state_offset, N, num_timesteps, "N")
        self.obs_offset = _offset("obs_offset", obs_offset, M, num_timesteps, "M")
        if prior_of not in ("u0", "u1"):
            raise ValueError(f"prior_of must be 'u0' or 'u1'; got {prior_of!r}")
        burn = as_int("loglikelihood_burn", loglikelihood_burn)
        if burn >= num_timesteps:
            raise ValueError(f"loglikelihood_burn must be less than num_timesteps = "
                             f"{num_timesteps}; got {burn}")
        if isinstance(u0_cov, str) and u0_cov == "diffuse":
            u0_cov = Diffuse()
        diffuse = isinstance(u0_cov, Diffuse)
        flags = _diffuse_flags(u0_cov, N) if diffuse else None
        self._spec = routes.Spec(flags if flags and any(flags) else None, prior_of == "u1", burn)
        self.stationary = isinstance(u0_cov, str)
        if self.stationary and u0_cov != "stationary":
            raise ValueError(f"u0_cov must be an (N, N) array, 'stationary', 'diffuse' or a "
                             f"Diffuse(...); got {u0_cov!r}")
        self.u0_cov = (None if self.stationary or diffuse
                       else _param("u0_cov", u0_cov, (N, N), "(N, N)"))
        if self._general and method == "parallel":
            raise ValueError("method='parallel' takes no time-varying C, diffuse states, "
                             "prior_of='u1' or loglikelihood_burn: use method='sequential'")
        # one dtype before the stationary covariance is computed from A and B
        _promote_fields(self, ("A", "B", "C", "R", "u0_mean", "u0_cov", "state_offset",
                               "obs_offset"))
        constraints_ = dict(KalmanLGSS.arg_constraints)
        for name in ("state_offset", "obs_offset"):
            if getattr(self, name) is not None:
                constraints_[name] = constraints.real_matrix
        if self.time_varying_C:
            constraints_["C"] = constraints.independent(constraints.real, 3)
        # a prior covariance computed from A and B (shares their batch axes under vmap)
        self._derived_prior = self.stationary or (diffuse and isinstance(u0_cov.cov, str))
        if diffuse:
            self.u0_cov, self._prior_ok = _diffuse_cov(u0_cov, flags, self.A, self.B)
            if self._derived_prior:
                constraints_["u0_cov"] = constraints.dependent(is_discrete=False, event_dim=2)
        elif self.stationary:
            self.u0_cov, prior_ok = _stationary_priors(self.A, self.B)
            # a float 1/0, not a bool: jax.grad over the distribution accepts float leaves only
            self._prior_ok = prior_ok.astype(self.A.dtype)
            # computed from A and B, not an argument to check: an unstable A gives -inf
            constraints_["u0_cov"] = constraints.dependent(is_discrete=False, event_dim=2)
        else:
            self._prior_ok = jnp.ones((), self.A.dtype)
        self.arg_constraints = constraints_
        batch_shape = _batch_shape((self.A, 2), (self.B, 2),
                                   (self.C, 3 if self.time_varying_C else 2),
                                   (self.R, 2), (self.u0_mean, 1), (self.u0_cov, 2), (mask, 2),
                                   (self.state_offset, 2), (self.obs_offset, 2),
                                   (self._prior_ok, 0))
        super().__init__(batch_shape, (num_timesteps, M), validate_args=validate_args)

    def validate_args(self, strict=True):
        _validate_concrete(self, strict)

    @property
    def _general(self):
        """Options that the fast likelihood kernels do not take (see :mod:`._kalman_routes`)."""
        spec = self._spec
        return (self.time_varying_C or spec.diffuse is not None or spec.first_state
                or spec.burn > 0)

    @validate_sample
    def log_prob(self, value):
        parallel = self.method == "parallel" or (self.method == "auto"
                                                 and jax.default_backend() != "cpu")
        options = (parallel,)
        if self._general and not self.time_varying_C:  # the head-and-tail route
            # before any jnp call: inside a trace that would turn a NumPy `value` into a tracer
            options += (kernels.may_have_missing(value, self._mask),)
        return _compiled_log_prob(self, _check_value(self, value), options)

    def _log_prob(self, value, parallel, missing=True):
        mask = jnp.ones(self.event_shape, bool) if self._mask is None else self._mask
        loglik = kernels.parallel_loglik if parallel else kernels.kalman_loglik

        def single(A, B, C, R, m0, P0, y, mask, prior_ok, c=None, d=None):
            R = jnp.diagonal(R) if self._diagonal_R else R
            if self.time_varying_C:
                ll = routes.log_likelihood(self._spec, A, B, C, R, m0, P0, c, d, y, mask)
            elif self._general:
                ll = routes.head_and_tail_log_likelihood(
                    kernels.kalman_loglik, self._spec, missing, A, B, C, R, m0, P0, c, d, y,
                    mask)
            else:
                ll = routes.fast_log_likelihood(loglik, A, B, C, R, m0, P0, c, d, y, mask)
            return jnp.where(prior_ok > 0, ll, -jnp.inf)

        args, sig = self._vectorized_args(value, mask)
        return jnp.vectorize(single, signature=sig + "->()")(*args)

    def _vectorized_args(self, value, mask):
        """The arrays ``single`` functions take, and their ``jnp.vectorize`` signature."""
        c_sig = "(t,m,n)" if self.time_varying_C else "(m,n)"
        args = [self.A, self.B, self.C, self.R, self.u0_mean, self.u0_cov, value, mask,
                self._prior_ok]
        sig = f"(n,n),(n,k),{c_sig},(m,m),(n),(n,n),(t,m),(t,m),()"
        if self.state_offset is not None or self.obs_offset is not None:
            N, M = self.A.shape[-1], self.event_shape[1]
            args += [jnp.zeros((1, N), self.A.dtype) if self.state_offset is None
                     else self.state_offset,
                     jnp.zeros((1, M), self.A.dtype) if self.obs_offset is None
                     else self.obs_offset]
            sig += ",(s,n),(r,m)"
        return args, sig

    def sample(self, key, sample_shape=()):
        shape = tuple(sample_shape) + self.batch_shape
        T, M = self.event_shape
        k0, kw, kv = jax.random.split(key, 3)
        u0 = self.u0_mean + _gaussian(k0, shape, _psd_factor(self.u0_cov))
        # no stationary distribution (unstable A): NaN paths, as log_prob is -inf
        u0 = jnp.where(self._prior_ok[..., None] > 0, u0, jnp.nan)
        first = self._spec.first_state  # u0 is then u_1, and the first step has no shock
        w = jax.random.normal(kw, shape + (T - first, self.B.shape[-1]), self.A.dtype)
        N = self.A.shape[-1]
        c = (jnp.zeros((1, N), self.A.dtype) if self.state_offset is None
             else self.state_offset)

        def states(A, B, u0, w, c):
            shocks = w @ B.T + jnp.broadcast_to(c, (T, N))[first:]
            u, _, valid = kernels.linear_states(A, jnp.eye(N, dtype=A.dtype), u0, shocks,
                                                per_step=True)
            path = kernels.reported_path(u, valid)  # NaN from an overflow on
            return path if first else path[1:]

        u = jnp.vectorize(states, signature="(n,n),(n,k),(n),(r,k),(s,n)->(t,n)")(
            self.A, self.B, u0, w, c)
        subs = "...tmn,...tn->...tm" if self.time_varying_C else "...mn,...tn->...tm"
        y = jnp.einsum(subs, self.C, u)
        if self.obs_offset is not None:
            y = y + self.obs_offset
        y = y + _gaussian(kv, shape + (T,), _psd_factor(self.R)[..., None, :, :])
        if self._mask is not None:
            y = jnp.where(self._mask, y, jnp.nan)
        return y

    def _moments(self):
        means, var = super()._moments()
        if self.state_offset is None and self.obs_offset is None:
            return means, var
        T, M = self.event_shape
        N = self.A.shape[-1]
        c = jnp.zeros((1, N), self.A.dtype) if self.state_offset is None else self.state_offset
        d = jnp.zeros((1, M), self.A.dtype) if self.obs_offset is None else self.obs_offset

        def shift(A, C, c, d):  # the offsets' deterministic path (kernels.offsets)
            ubar = kernels.offset_path(A, c, T)[0]
            return kernels.observation_shift(C, ubar, jnp.broadcast_to(d, (T, M)))

        return means + jnp.vectorize(shift, signature="(n,n),(m,n),(s,n),(r,m)->(t,m)")(
            self.A, self.C, c, d), var

    def _linear_model(self):
        if self.time_varying_C or self._spec.first_state:
            raise NotImplementedError("mean and variance are computed for a time-invariant C "
                                      "with the prior on u_0; draw samples instead")
        return self.A, self.B, self.C, self.R, self.u0_mean, self.u0_cov, self._prior_ok

    # -- the Bayesian workflow around the likelihood (unbatched distributions) ------------
    def _unbatched(self, what):
        if self.batch_shape:
            raise ValueError(f"{what} works on an unbatched distribution; batch_shape is "
                             f"{self.batch_shape} (build it inside jax.vmap instead)")

    def _args(self, y):
        self._unbatched("this method")
        y = _check_value(self, y)
        R = jnp.diagonal(self.R) if self._diagonal_R else self.R
        arrays = (self.A, self.B, self.C, R, self.u0_mean, self.u0_cov, self.state_offset,
                  self.obs_offset, y)
        return promote_floats(arrays)

    def _routed(self, y):
        return not self._general and self.state_offset is None and self.obs_offset is None

    def filter(self, y):
        """Kalman filter of ``y (T, M)``: filtered and predicted means and covariances,
        per-step log-likelihoods, innovations (a :class:`kernels.FilterDetails`; the means and
        covariances are ``(T + 1, .)``, row 0 the prior of ``u_0``). With diffuse states,
        moments that the data so far do not identify are NaN, and ``log_likelihood`` is the
        exact diffuse one; its per-step terms are statsmodels' ``llf_obs`` (Koopman and
        Durbin's split of the diffuse periods)."""
        return _workflow_filter(self._spec, *self._args(y), self._mask)

    def smooth(self, y):
        """Rauch–Tung–Striebel smoothed means ``(T + 1, N)``, covariances and lag-one
        cross-covariances of ``u_0..u_T`` given ``y`` (a :class:`kernels.SmootherResult`;
        exact diffuse smoother with diffuse states)."""
        return _workflow_smooth(self._spec, *self._args(y), self._mask)

    def posterior_sample(self, key, y, num_samples):
        """``(num_samples, T + 1, N)`` draws of the state path ``u_0..u_T`` given ``y``
        (Durbin–Koopman simulation smoother)."""
        num_samples = as_int("num_samples", num_samples)
        return _workflow_sample(self._spec, key, *self._args(y), self._mask, num_samples)

    def forecast(self, y, steps, *, state_offset=None, obs_offset=None, C=None):
        """Means and covariances of ``u_{T+1..T+steps}`` and ``y_{T+1..T+steps}`` given ``y``
        (a :class:`kernels.ForecastResult`). ``state_offset (steps, N)``, ``obs_offset
        (steps, M)`` are the future offsets (default: a constant offset continues; a
        time-varying one must be given), ``C (steps, M, N)`` the future design matrices of a
        time-varying ``C``."""
        steps = as_int("steps", steps)
        A, B, C_, R, m0, P0, c, d, y = self._args(y)
        N, M = A.shape[-1], self.event_shape[1]
        c_f = self._future("state_offset", state_offset, c, steps, N)
        d_f = self._future("obs_offset", obs_offset, d, steps, M)
        if self.time_varying_C:
            if C is None:
                raise ValueError(f"forecast with a time-varying C needs the future design "
                                 f"matrices: C of shape (steps, M, N) = ({steps}, {M}, {N})")
            C_f = _param("C", C, (steps, M, N), "(steps, M, N)")
        else:
            C_f = C_
        return _workflow_forecast(self._spec, A, B, C_, R, m0, P0, c, d, y, self._mask,
                                  c_f, d_f, C_f, steps)

    def _future(self, name, value, current, steps, size):
        """The future offsets ``(steps, size)`` (zeros without offsets)."""
        if value is not None:
            what = "(steps, N)" if name == "state_offset" else "(steps, M)"
            return _param(name, value, (steps, size), what)
        if current is None:
            return jnp.zeros((steps, size), self.A.dtype)
        if current.shape[-2] != 1:
            raise ValueError(f"forecast needs the future {name} of shape (steps, "
                             f"{size}) = ({steps}, {size}): the model's {name} is "
                             f"time-varying")
        return jnp.broadcast_to(current, (steps, size))

    def impulse_response(self, steps, shock=None):
        """Responses ``(steps, N)`` of the states and ``(steps, M)`` of the observables to a
        one-standard-deviation shock (index ``shock``, a ``(K,)`` vector, or ``None`` for each
        shock in turn: a leading ``(K,)`` axis) hitting at ``t = 1`` (a
        :class:`kernels.ImpulseResponse`). Offsets do not enter (a response is the difference
        of two paths); with a time-varying ``C`` the observables use ``C_1..C_steps``."""
        self._unbatched("impulse_response")
        if self.time_varying_C:
            res = kernels.impulse_response(self.A, self.B, self.C[0], steps, shock)
            if steps > self.num_timesteps:
                raise ValueError(f"steps must be at most T = {self.num_timesteps} with a "
                                 f"time-varying C; got {steps}")
            obs = jnp.einsum("tmn,...tn->...tm", self.C[:steps], res.states)
            return res._replace(observables=obs)
        return kernels.impulse_response(self.A, self.B, self.C, steps, shock)


# The workflow methods as compiled programs (the specification and the mask's presence are
# part of the cache key): a second call with the same shapes runs in milliseconds.
@partial(jax.jit, static_argnums=0)
def _workflow_filter(spec, A, B, C, R, m0, P0, c, d, y, mask):
    return routes.filter(spec, A, B, C, R, m0, P0, c, d, y, mask)


@partial(jax.jit, static_argnums=0)
def _workflow_smooth(spec, A, B, C, R, m0, P0, c, d, y, mask):
    return routes.smooth(spec, A, B, C, R, m0, P0, c, d, y, mask)


@partial(jax.jit, static_argnums=(0, 12))
def _workflow_sample(spec, key, A, B, C, R, m0, P0, c, d, y, mask, num_samples):
    return routes.posterior_sample(spec, key, A, B, C, R, m0, P0, c, d, y, mask, num_samples)


@partial(jax.jit, static_argnums=(0, 14))
def _workflow_forecast(spec, A, B, C, R, m0, P0, c, d, y, mask, c_f, d_f, C_f, steps):
    return routes.forecast(spec, A, B, C, R, m0, P0, c, d, y, mask, c_f, d_f, C_f, steps)


@vmap_over.register
def _vmap_over_kalman(d: KalmanLGSS, A=None, B=None, C=None, R=None, u0_mean=None,
                      u0_cov=None, mask=None, state_offset=None, obs_offset=None):
    """``in_axes`` for a :class:`KalmanLGSS` (``numpyro.distributions.batch_util.vmap_over``):
    a stationary ``u0_cov`` and its flag are computed from ``A`` and ``B`` and share their axis."""
    derived = (A if A is not None else B) if d._derived_prior else None
    return vmap_over.dispatch(dist.Distribution)(
        d, A=A, B=B, C=C, R=R, u0_mean=u0_mean, u0_cov=u0_cov if derived is None else derived,
        _mask=mask, _prior_ok=derived, state_offset=state_offset, obs_offset=obs_offset)


# -- joint likelihoods given the noise --------------------------------------------------------
class _JointBase(dist.Distribution):
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

    def _observations(self, *params):
        """``(z (T + 1, M), ok, valid (T + 1,))`` for one set of unbatched parameters
        (``valid``: the state kernels' per-step flags)."""
        raise NotImplementedError

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
            (params, R), ok_params = finite_tree((params, R))
            z, ok, _ = self._observations(*params)
            return kernels.joint_loglik(z, y, R, ok & ok_params, missing=missing)

        return jnp.vectorize(single, signature=f"{self._signature},(m,m),(t,m)->()")(
            *self._params(), self.R, value)

    def mean_path(self):
        """``z_1..z_T`` of the deterministic path given the noise: ``batch_shape + (T, M)``."""
        def path(*params):
            z, _, valid = self._observations(*params)
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


def _noise_arg(noise, K):
    noise = as_float_array("noise", noise)
    if noise.ndim < 2 or noise.shape[-1] != K:
        raise ValueError(f"noise must have shape (..., T, K) with K = {K}; got {tuple(noise.shape)}")
    return noise


class JointLGSS(_JointBase):
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
        if self.batch_shape:
            raise ValueError(f"impulse_response works on an unbatched distribution; batch_shape "
                             f"is {self.batch_shape}")
        return kernels.impulse_response(self.A, self.B, self.C, steps, shock)

    def _observations(self, A, B, C, u0, noise):
        u, ok, valid = kernels.linear_states(A, B, u0, noise, per_step=True)
        return kernels.linear_observations(C, u), ok, valid


class JointQuadraticSS(_JointBase):
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
        "A_0": constraints.real_vector,
        "A_1": constraints.real_matrix,
        "A_2": constraints.independent(constraints.real, 3),
        "B": constraints.real_matrix,
        "C_0": constraints.real_vector,
        "C_1": constraints.real_matrix,
        "C_2": constraints.independent(constraints.real, 3),
        "R": positive_semidefinite,
        "u0": constraints.real_vector,
        "noise": constraints.real_matrix,
    }
    pytree_data_fields = ("A_0", "A_1", "A_2", "B", "C_0", "C_1", "C_2", "R", "u0", "noise")
    pytree_aux_fields = ("pruned",)
    _signature = "(n),(n,n),(n,n,n),(n,k),(m),(m,n),(m,n,n),(n),(t,k)"

    def __init__(self, A_0, A_1, A_2, B, C_0, C_1, C_2, R, u0, noise, pruned=False, *,
                 validate_args=None):
        self.A_1 = _square("A_1", A_1)
        N = self.A_1.shape[-1]
        self.A_0 = _param("A_0", A_0, (N,), "(N,)")
        self.A_2 = _param("A_2", A_2, (N, N, N), "(N, N, N)")
        self.B = _sized("B", B, -2, N, "N, K")
        self.C_1 = _sized("C_1", C_1, -1, N, "M, N")
        M = self.C_1.shape[-2]
        self.C_0 = _param("C_0", C_0, (M,), "(M,)")
        self.C_2 = _param("C_2", C_2, (M, N, N), "(M, N, N)")
        self.u0 = _param("u0", u0, (N,), "(N,)")
        self.noise = _noise_arg(noise, self.B.shape[-1])
        self.pruned = bool(pruned)
        self._init_base(R, M, [(self.A_0, 1), (self.A_1, 2), (self.A_2, 3), (self.B, 2),
                                      (self.C_0, 1), (self.C_1, 2), (self.C_2, 3), (self.u0, 1),
                                      (self.noise, 2)], validate_args)

    def _params(self):
        return (self.A_0, self.A_1, self.A_2, self.B, self.C_0, self.C_1, self.C_2, self.u0,
                self.noise)

    def impulse_response(self, steps, shock=None, u0=None):
        """Pruned models: the path after a one-standard-deviation shock at ``t = 1`` minus the
        path without it, both from ``u0`` (default zeros) with no later shocks."""
        if not self.pruned:
            raise ValueError("impulse_response is defined for pruned=True (the unpruned "
                             "second-order model may explode)")
        if self.batch_shape:
            raise ValueError(f"impulse_response works on an unbatched distribution; batch_shape "
                             f"is {self.batch_shape}")
        return kernels.impulse_response_pruned(self.A_0, self.A_1, self.A_2, self.B, self.C_0,
                                               self.C_1, self.C_2, steps, shock, u0)

    def _observations(self, A_0, A_1, A_2, B, C_0, C_1, C_2, u0, noise):
        u, uf, ok, valid = kernels.quadratic_states(A_0, A_1, A_2, B, u0, noise, self.pruned,
                                                    per_step=True)
        return kernels.quadratic_observations(C_0, C_1, C_2, u, uf), ok, valid


class JointStateSpace(_JointBase):
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

    def _observations(self, u0, noise):
        p, ok_p = finite_tree(self.p)
        u, ok, valid = kernels.generic_states(self.transition, p, u0, noise, per_step=True)
        return kernels.generic_observations(self.observation, p, u), ok & ok_p, valid


# -- conditional likelihood ------------------------------------------------------------------
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
        self.B = jnp.zeros((N, 0), self.A.dtype) if B is None else _sized("B", B, -2, N, "N, K")
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


# -- model helpers ----------------------------------------------------------------------------
class Whitening(NamedTuple):
    r"""The linear(ised) model whose shock posterior whitens a latent noise site.

    ``u_t = state_offset + A u_{t-1} + B w_t``, ``y_t = obs_offset + C u_t + v_t``,
    ``v_t ~ N(0, R)``, from the known ``u0``. For a quadratic or pruned-quadratic model pass
    its first-order part: ``A = A_1``, ``C = C_1``, ``state_offset = A_0``,
    ``obs_offset = C_0``. ``y (T, M)`` may hold NaN (missing); ``y=None`` (e.g. prior
    predictive) disables the whitening. Every field may carry leading batch dimensions (series
    in a ``numpyro.plate``), as the distributions' parameters do; each series is whitened by
    its own posterior.
    """

    A: Any
    B: Any
    C: Any
    R: Any
    y: Any
    u0: Any
    mask: Any = None
    state_offset: Any = None
    obs_offset: Any = None


def _whitening_args(whiten, T, K):
    """``(A, B, C, R, y, mask, u0, state_offset, obs_offset)`` of ``whiten`` checked against
    ``T`` steps and ``K`` shocks (leading batch dimensions allowed, as for the distributions);
    ``R`` as ``(..., M, M)``, defaults filled in (all observed, zero offsets)."""
    A = _square("whiten.A", whiten.A)
    N = A.shape[-1]
    B = _param("whiten.B", whiten.B, (N, K), "(N, K)")
    C = _sized("whiten.C", whiten.C, -1, N, "M, N")
    M = C.shape[-2]
    R = _obs_cov(whiten.R, M, "whiten.R")
    y = _param("whiten.y", whiten.y, (T, M), "(T, M)")
    mask = jnp.ones((T, M), bool) if whiten.mask is None else jnp.asarray(whiten.mask)
    if mask.dtype != jnp.bool_ or mask.shape[-2:] != (T, M):
        raise ValueError(f"whiten.mask must be a bool array of shape (..., T, M) = "
                         f"(..., {T}, {M}); got {mask.dtype} {tuple(mask.shape)}")
    u0 = _param("whiten.u0", whiten.u0, (N,), "(N,)")
    a = (jnp.zeros(N, A.dtype) if whiten.state_offset is None
         else _param("whiten.state_offset", whiten.state_offset, (N,), "(N,)"))
    d = (jnp.zeros(M, A.dtype) if whiten.obs_offset is None
         else _param("whiten.obs_offset", whiten.obs_offset, (M,), "(M,)"))
    _batch_shape((A, 2), (B, 2), (C, 2), (R, 2), (y, 2), (mask, 2), (u0, 1), (a, 1), (d, 1))
    return A, B, C, R, y, mask, u0, a, d


def sample_noise(name, num_timesteps, n_shocks, *, whiten=None):
    r"""The shocks ``w_1..w_T`` as a latent ``N(0, I)`` site of shape ``(T, K)``.

    Use it with a joint likelihood: ``w = sample_noise("w", T, K)`` then
    ``numpyro.sample("y", JointLGSS(A, B, C, R, u0, w), obs=y)``.

    With ``whiten=Whitening(A, B, C, R, y, u0, ...)`` the sampler sees standardised shocks
    instead: ``eps ~ N(0, I)`` (site ``name + "_white"``) and
    ``w = mean(theta, y) + L(theta, y) eps`` (a deterministic site ``name``), where the mean and
    the block-triangular factor ``L`` come from the whitening model's shock posterior (see
    :mod:`numpyro_statespace.kernels.whitening`) and the factor
    :math:`\log N(w; 0, I) - \log N(\epsilon; 0, I) + \log|L|` (site ``name + "_jacobian"``)
    keeps the model's density exactly that of ``w ~ N(0, I)``. For a linear Gaussian model the
    posterior of ``eps`` is exactly ``N(0, I)`` and independent of the parameters, which removes
    the shock–parameter coupling that makes NUTS crawl on the plain latent route.

    The factor is an observed site to NumPyro: ``numpyro.infer.util.log_likelihood`` (and
    ArviZ's ``from_numpyro`` with ``log_likelihood=True``) return it beside the data's site,
    so select the data's site by name.
    """
    if whiten is not None and not isinstance(whiten, Whitening):
        raise ValueError(f"whiten must be a Whitening(A, B, C, R, y, u0, ...); got "
                         f"{type(whiten).__name__}")
    if whiten is None or whiten.y is None:
        return numpyro.sample(
            name, dist.Normal(0.0, 1.0).expand((num_timesteps, n_shocks)).to_event(2))
    eps = numpyro.sample(f"{name}_white",
                         dist.Normal(0.0, 1.0).expand((num_timesteps, n_shocks)).to_event(2))
    missing = kernels.may_have_missing(whiten.y, whiten.mask)  # before y becomes a tracer
    eps, (A, B, C, R, y, mask, u0, a, d) = promote_floats(
        (eps, _whitening_args(whiten, num_timesteps, n_shocks)))
    (A, B, C, R, u0, a, d), ok = finite_tree((A, B, C, R, u0, a, d))  # y: NaN is missing
    w, correction = _whitened_noise(eps, A, B, C, R, y, mask, u0, a, d, ok, missing)
    numpyro.factor(f"{name}_jacobian", correction)
    return numpyro.deterministic(name, w)


@partial(jax.jit, static_argnums=11)
def _whitened_noise(eps, A, B, C, R, y, mask, u0, a, d, ok, missing):
    """``w (..., T, K)`` from ``eps`` and the log-density correction of the change of
    variables (``(...)``, one per series of a batch).

    One compiled program, as :func:`_compiled_log_prob` (``missing`` decided before tracing).
    """
    def single(eps, A, B, C, R, y, mask, u0, a, d):
        info = kernels.backward_information(A, B, C, R, y, mask, a, d, missing=missing)
        w, logdet = kernels.whiten_shocks(eps, A, B, info, u0, a)
        return w, 0.5 * (jnp.sum(eps**2) - jnp.sum(w**2)) + logdet

    w, correction = jnp.vectorize(
        single, signature="(t,k),(n,n),(n,k),(m,n),(m,m),(t,m),(t,m),(n),(n),(m)->(t,k),()")(
        eps, A, B, C, R, y, mask, u0, a, d)
    return w, jnp.where(ok & jnp.isfinite(correction), correction, -jnp.inf)


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
    if isinstance(alg, KalmanFilter):
        if not isinstance(prob, LinearStateSpaceProblem) or prob.C is None \
                or prob.u0_prior_mean is None or prob.u0_prior_var is None:
            raise ValueError("KalmanFilter needs a LinearStateSpaceProblem with C, u0_prior_mean "
                             "and u0_prior_var")
        if prob.noise is not None:  # as solve: a given noise sequence contradicts the marginal
            raise ValueError("KalmanFilter integrates the noise out: the problem must have "
                             "noise=None")
        R = jnp.diagonal(R) if prob.diagonal_noise else R  # declared diagonal: univariate update
        return KalmanLGSS(prob.A, prob.B, prob.C, R, prob.u0_prior_mean, prob.u0_prior_var, T)
    if isinstance(alg, ConditionalLikelihood):
        if not isinstance(prob, LinearStateSpaceProblem) or prob.B is not None:
            raise ValueError("from_problem(..., ConditionalLikelihood()) needs a "
                             "LinearStateSpaceProblem with B=None (ConditionalSS integrates "
                             "shocks out; build it directly to include B)")
        return ConditionalSS(prob.A, None, R, prob.u0, prob.C, num_timesteps=T)
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
    B = getattr(prob, "B", None)
    B = jnp.zeros((prob.n_states, 0), prob.u0.dtype) if B is None else B
    if isinstance(prob, LinearStateSpaceProblem):
        return JointLGSS(prob.A, B, prob.C, R, prob.u0, noise)
    if isinstance(prob, QuadraticStateSpaceProblem):
        return JointQuadraticSS(prob.A_0, prob.A_1, prob.A_2, B, prob.C_0, prob.C_1,
                                prob.C_2, R, prob.u0, noise, pruned=prob.pruned)
    if isinstance(prob, StateSpaceProblem):
        t0 = prob.tspan[0]
        tr, ob = prob.transition, prob.observation
        return JointStateSpace(lambda x, w, p, t: tr(x, w, p, t + t0),
                               lambda x, p, t: ob(x, p, t + t0), prob.p, R, prob.u0, noise)
    raise ValueError(f"prob must be a state-space problem; got {type(prob).__name__}")
