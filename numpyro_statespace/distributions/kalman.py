"""The marginal likelihood of a linear Gaussian model (Kalman filter), :class:`KalmanLGSS`,
and the Bayesian workflow around it (filter, smoother, simulation smoother, forecasts)."""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpyro.distributions as dist
from numpyro.distributions import constraints
from numpyro.distributions.batch_util import vmap_over
from numpyro.distributions.util import validate_sample

from .. import _kalman_routes as routes
from .. import families, kernels
from ..families import declared_diagonal, filter_form
from .._validation import as_float_array, as_int, promote_floats
from ._common import (
    _compiled_log_prob,
    _gaussian,
    _LinearMoments,
    _psd_factor,
    _require_unbatched,
)
from .priors import Diffuse, _diffuse_cov, _diffuse_flags, _stationary_priors
from .validators import (
    _batch_shape,
    _check_value,
    _loading,
    _obs_cov,
    _offset,
    _param,
    _promote_fields,
    _sized,
    _square,
    _validate_concrete,
    positive_semidefinite,
    real_or_missing,
)

__all__ = ["KalmanLGSS"]


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
        self.B = _loading(B, N, self.A.dtype)
        self.time_varying_C = bool(time_varying_C)
        self.C = self._design(C, N)
        M = self.C.shape[-2]
        # R given as variances is diagonal by declaration (families.declared_diagonal): the
        # filter's univariate update.
        self._diagonal_R = declared_diagonal(R)
        self.R = _obs_cov(R, M)
        self.u0_mean = _param("u0_mean", u0_mean, (N,), "(N,)")
        if method not in ("auto", "sequential", "parallel"):
            raise ValueError(f"method must be 'auto', 'sequential' or 'parallel'; got {method!r}")
        self.method = method
        self._mask, self.num_timesteps = self._steps(mask, num_timesteps, N, M)
        T = self.num_timesteps
        self.state_offset = _offset("state_offset", state_offset, N, T, "N")
        self.obs_offset = _offset("obs_offset", obs_offset, M, T, "M")
        u0_cov = self._set_spec(u0_cov, prior_of, loglikelihood_burn, N)
        # one dtype before the stationary covariance is computed from A and B
        _promote_fields(self, ("A", "B", "C", "R", "u0_mean", "u0_cov", "state_offset",
                               "obs_offset"))
        self.arg_constraints = self._set_prior(u0_cov)
        batch_shape = _batch_shape((self.A, 2), (self.B, 2),
                                   (self.C, 3 if self.time_varying_C else 2),
                                   (self.R, 2), (self.u0_mean, 1), (self.u0_cov, 2),
                                   (self._mask, 2), (self.state_offset, 2), (self.obs_offset, 2),
                                   (self._prior_ok, 0))
        super().__init__(batch_shape, (T, M), validate_args=validate_args)

    def _design(self, C, N):
        """``C`` checked: ``(..., M, N)``, or ``(..., T, M, N)`` when time-varying."""
        if not self.time_varying_C:
            return _sized("C", C, -1, N, "M, N")
        C = as_float_array("C", C)
        if C.ndim < 3 or C.shape[-1] != N:
            raise ValueError(f"C must have shape (..., T, M, N) with N = {N} when "
                             f"time_varying_C=True; got {tuple(C.shape)}")
        return C

    def _steps(self, mask, num_timesteps, N, M):
        """``(mask, T)`` checked against each other and a time-varying ``C``; ``T`` defaults
        to the mask's (or the time-varying ``C``'s) number of steps."""
        if num_timesteps is None and mask is None and self.time_varying_C:
            num_timesteps = self.C.shape[-3]
        if mask is not None:
            mask = jnp.asarray(mask)
            if mask.dtype != jnp.bool_ or mask.ndim < 2 or mask.shape[-1] != M:
                raise ValueError(f"mask must be a bool array of shape (..., T, M) with M = {M}; "
                                 f"got {mask.dtype} {tuple(mask.shape)}")
        if num_timesteps is None:
            if mask is None:
                raise ValueError("KalmanLGSS needs num_timesteps (T) or a mask of shape (T, M): "
                                 "pass num_timesteps=y.shape[-2]")
            num_timesteps = mask.shape[-2]
        T = as_int("num_timesteps", num_timesteps)
        if mask is not None and mask.shape[-2] != T:
            raise ValueError(f"mask must have shape (..., T, M) = (..., {T}, {M}); "
                             f"got {tuple(mask.shape)}")
        if self.time_varying_C and self.C.shape[-3] != T:
            raise ValueError(f"C must have shape (..., T, M, N) = (..., {T}, {M}, "
                             f"{N}) when time_varying_C=True; got {tuple(self.C.shape)}")
        return mask, T

    def _set_spec(self, u0_cov, prior_of, loglikelihood_burn, N):
        """Store the static options (:class:`._kalman_routes.Spec`, ``stationary``) and an
        explicit ``u0_cov``; returns ``u0_cov`` with ``"diffuse"`` spelled ``Diffuse()``."""
        T = self.num_timesteps
        if prior_of not in ("u0", "u1"):
            raise ValueError(f"prior_of must be 'u0' or 'u1'; got {prior_of!r}")
        burn = as_int("loglikelihood_burn", loglikelihood_burn)
        if burn >= T:
            raise ValueError(f"loglikelihood_burn must be less than num_timesteps = "
                             f"{T}; got {burn}")
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
        if self._general and self.method == "parallel":
            raise ValueError("method='parallel' takes no time-varying C, diffuse states, "
                             "prior_of='u1' or loglikelihood_burn: use method='sequential'")
        return u0_cov

    def _set_prior(self, u0_cov):
        """Store a prior covariance derived from ``A`` and ``B`` (stationary, diffuse) and its
        flag ``_prior_ok``; returns the instance's argument constraints."""
        constraints_ = dict(KalmanLGSS.arg_constraints)
        for name in ("state_offset", "obs_offset"):
            if getattr(self, name) is not None:
                constraints_[name] = constraints.real_matrix
        if self.time_varying_C:
            constraints_["C"] = constraints.independent(constraints.real, 3)
        diffuse = isinstance(u0_cov, Diffuse)
        # a prior covariance computed from A and B (shares their batch axes under vmap)
        self._derived_prior = self.stationary or (diffuse and isinstance(u0_cov.cov, str))
        if diffuse:
            flags = _diffuse_flags(u0_cov, self.A.shape[-1])
            self.u0_cov, self._prior_ok = _diffuse_cov(u0_cov, flags, self.A, self.B)
        elif self.stationary:
            self.u0_cov, prior_ok = _stationary_priors(self.A, self.B)
            # a float 1/0, not a bool: jax.grad over the distribution accepts float leaves only
            self._prior_ok = prior_ok.astype(self.A.dtype)
        else:
            self._prior_ok = jnp.ones((), self.A.dtype)
        if self._derived_prior:
            # computed from A and B, not an argument to check: an unstable A gives -inf
            constraints_["u0_cov"] = constraints.dependent(is_discrete=False, event_dim=2)
        return constraints_

    @property
    def family(self):
        """The model as a :class:`.families.Linear` with this distribution's arrays."""
        return families.Linear(self.A, self.B, self.C)

    def validate_args(self, strict=True):
        _validate_concrete(self, strict)

    @property
    def _general(self):
        """Options that the fast likelihood kernels do not take (see :mod:`._kalman_routes`)."""
        return routes.is_general(self._spec, self.time_varying_C)

    @validate_sample
    def log_prob(self, value):
        options = (routes.uses_parallel(self.method),)
        if self._general and not self.time_varying_C:  # the head-and-tail route
            # before any jnp call: inside a trace that would turn a NumPy `value` into a tracer
            options += (kernels.may_have_missing(value, self._mask),)
        return _compiled_log_prob(self, _check_value(self, value), options)

    def _log_prob(self, value, parallel, missing=True):
        mask = jnp.ones(self.event_shape, bool) if self._mask is None else self._mask

        def single(A, B, C, R, m0, P0, y, mask, prior_ok, c=None, d=None):
            ll = routes.kalman_log_likelihood(self._spec, self.time_varying_C, parallel, missing,
                                              A, B, C, filter_form(R, self._diagonal_R), m0, P0,
                                              c, d, y, mask)
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
        _require_unbatched(self, what)

    def _args(self, y):
        self._unbatched("this method")
        y = _check_value(self, y)
        R = filter_form(self.R, self._diagonal_R)
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

