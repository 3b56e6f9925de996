r"""A structural time-series model: components combined with ``+`` into one linear state space.

.. code-block:: python

    model = nss.structural.LocalLinearTrend() + nss.structural.Seasonal(4) \
        + nss.structural.Regression(X) + nss.structural.MeasurementError()
    system = model.system(params, T)              # A, B, C, R, offsets, initialisation
    d = model.distribution(params, T)             # the KalmanLGSS
    model.sample(y)                               # in a NumPyro model: default priors

States are ordered component by component, in the order of the sum; ``model.state_names``
names them (the ``state`` coordinate of ArviZ' groups).
"""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from jax.scipy.linalg import block_diag

from .. import kernels
from .._validation import as_int, as_values
from .components import Component, pacf_to_ar


class StructuralSystem(NamedTuple):
    r"""The linear state space of a structural model (one observable, ``M = 1``).

    ``A (N, N)``, ``B (N, K)``, ``C`` ``(1, N)`` or ``(T, 1, N)`` (a dynamic regression),
    ``R (1, 1)``, ``obs_offset`` ``(T, 1)`` or None, ``diffuse`` an ``(N,)`` NumPy bool mask of
    the states without a stationary distribution, ``u0_mean (N,)``, ``u0_cov (N, N)``: the
    stationary covariance on the other states, zero on the diffuse ones and between the two
    groups, ``ok``: False where a component's parameters leave its domain (an unstable AR or a
    failed stationary covariance).
    """
    A: jnp.ndarray
    B: jnp.ndarray
    C: jnp.ndarray
    R: jnp.ndarray
    obs_offset: jnp.ndarray | None
    diffuse: np.ndarray
    u0_mean: jnp.ndarray
    u0_cov: jnp.ndarray
    ok: jnp.ndarray


class StructuralModel:
    """Components combined with ``+``. See the module docstring."""

    def __init__(self, components):
        comps = tuple(components)
        for c in comps:
            if not isinstance(c, Component):
                raise ValueError(f"a structural model is a sum of components (Level, "
                                 f"LocalLinearTrend, Seasonal, ...); got {type(c).__name__}")
        names = [c.name for c in comps]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"component names must be unique; {dup} repeat: pass name=... "
                             f"to tell them apart")
        self.components = comps
        params = [q.name for c in comps for q in c.params]
        if len(set(params)) != len(params):
            raise ValueError(f"parameter names collide: {params}; rename a component")

    def __add__(self, other):
        if isinstance(other, Component):
            return StructuralModel(self.components + (other,))
        if isinstance(other, StructuralModel):
            return StructuralModel(self.components + other.components)
        return NotImplemented

    def __repr__(self):
        return " + ".join(map(repr, self.components))

    @property
    def state_names(self):
        return tuple(s for c in self.components for s in c.state_names)

    @property
    def num_states(self):
        return len(self.state_names)

    @property
    def params(self):
        """The :class:`.Param` s of all components, in order."""
        return tuple(q for c in self.components for q in c.params)

    @property
    def diffuse(self):
        """``(N,)`` bool: the states without a stationary distribution."""
        return np.array([d for c in self.components for d in _diffuse_flags(c)], bool)

    def system(self, params, num_timesteps):
        """The :class:`StructuralSystem` at ``params`` (a dict of the components' parameters,
        JAX values: differentiable, usable inside a NumPyro model)."""
        T = as_int("num_timesteps", num_timesteps, 1)
        blocks = [c.block(params, T) for c in self.components]
        dtype = jnp.result_type(float, *[jnp.asarray(v) for v in params.values()])
        A = block_diag(*[b.transition for b in blocks if b.transition.size]).astype(dtype)
        B = block_diag(*[b.selection for b in blocks if b.transition.size]).astype(dtype)
        designs = [jnp.asarray(b.design, dtype) for b in blocks if b.transition.size]
        if any(d.ndim == 2 for d in designs):
            C = jnp.concatenate([jnp.broadcast_to(d, (T,) + d.shape[-1:]) for d in designs],
                                axis=-1)[:, None, :]
        else:
            C = jnp.concatenate(designs)[None, :]
        offsets = [b.obs_offset for b in blocks if b.obs_offset is not None]
        obs_offset = sum(offsets)[:, None].astype(dtype) if offsets else None
        variances = [b.obs_var for b in blocks if b.obs_var is not None]
        R = jnp.reshape(sum(variances) if variances else 0.0, (1, 1)).astype(dtype)
        diffuse = self.diffuse
        u0_cov, ok = _stationary_part(A, B, diffuse)
        for b in blocks:
            ok = ok & jnp.asarray(b.ok)
        return StructuralSystem(A, B, C, R, obs_offset, diffuse, jnp.zeros(A.shape[0], dtype),
                                u0_cov, ok)

    def components_of(self, states, params=None, *, static=True):
        """Each component's contribution ``c_{j,t}' u^{(j)}_t`` to the observable.

        :param states: ``(..., T, N)`` states ``u_1..u_T`` (e.g. smoothed means without row 0,
            or simulation-smoother draws).
        :return: a dict ``{component name: (..., T)}``; a static regression's contribution is
            its offset ``X beta`` (``params`` needed; left out with ``static=False``),
            measurement error has none.
        """
        states = jnp.asarray(states)
        T = states.shape[-2]
        out, i = {}, 0
        for c in self.components:
            n = c.num_states
            if n:
                tv = getattr(c, "time_varying", False)
                design = jnp.asarray(c.X if tv else _fixed_design(c, T))
                out[c.name] = jnp.sum(states[..., i:i + n] * design, axis=-1)
            elif hasattr(c, "X") and static:
                if params is None:
                    raise ValueError(f"the static regression {c.name!r} needs params")
                out[c.name] = jnp.broadcast_to(c.block(params, T).obs_offset,
                                               states.shape[:-1])
            i += n
        return out

    # -- NumPyro ---------------------------------------------------------------------------
    def sample_params(self, y=None, *, priors=None):
        """Sample every parameter in a NumPyro model and return the dict ``system`` takes.

        Default priors (override any by name in ``priors``, a dict of distributions):
        standard deviations ``HalfNormal(s)`` with ``s`` the standard deviation of the first
        differences of ``y`` (1 without data); regression coefficients ``Normal(0, 10 s_y /
        rms(x_j))``; damping ``Uniform(0, 1)``; cycle frequency ``Uniform(0, pi)``; an AR
        block's partial autocorrelations ``Uniform(-1, 1)`` (site ``{name}_pacf``), mapped to
        stationary coefficients (deterministic site ``{name}_coeffs``).
        """
        priors = dict(priors or {})
        scale = _data_scale(y)
        out = {}
        for c in self.components:
            for q in c.params:
                if q.kind == "pacf":
                    site = q.name.replace("_coeffs", "_pacf")
                    prior = priors.pop(site, None) or dist.Uniform(-1.0, 1.0).expand(q.shape)
                    out[q.name] = numpyro.deterministic(
                        q.name, pacf_to_ar(numpyro.sample(site, prior.to_event(1)
                                                          if not prior.event_shape else prior)))
                    continue
                prior = priors.pop(q.name, None) or _default_prior(c, q, scale)
                if q.shape and not prior.event_shape:
                    prior = prior.expand(q.shape).to_event(len(q.shape))
                out[q.name] = numpyro.sample(q.name, prior)
        if priors:
            raise ValueError(f"priors for unknown parameters {sorted(priors)}; the model's "
                             f"parameters are {[q.name for q in self.params]}")
        return out

    def distribution(self, params, num_timesteps, *, mask=None, diffuse_var=None, **kwargs):
        """The :class:`~numpyro_statespace.KalmanLGSS` of the model at ``params``.

        Statsmodels' timing (``prior_of="u1"``: the initialisation is that of the first
        observed state): the diffuse states get the exact diffuse initialisation (Koopman &
        Durbin 2003), the others their stationary distribution. With ``diffuse_var`` a
        variance, the diffuse states get ``N(0, diffuse_var)`` instead (an approximate diffuse
        prior). ``kwargs`` go to ``KalmanLGSS`` (e.g. ``loglikelihood_burn``, ``method``).
        """
        from ..distributions import Diffuse, KalmanLGSS
        s = self.system(params, num_timesteps)
        if diffuse_var is None:
            flags = tuple(bool(f) for f in s.diffuse)
            cov = "stationary" if not all(flags) else None
            u0_cov = Diffuse(states=np.asarray(flags), cov=cov) if any(flags) else "stationary"
        else:
            u0_cov = s.u0_cov + jnp.diag(jnp.where(jnp.asarray(s.diffuse), diffuse_var, 0.0))
        return KalmanLGSS(s.A, s.B, s.C, s.R, s.u0_mean, u0_cov, num_timesteps, mask=mask,
                          obs_offset=s.obs_offset, time_varying_C=s.C.ndim == 3,
                          prior_of="u1", **kwargs)

    def forecast(self, params, y, steps, *, X=None, **kwargs):
        """Means and covariances of ``y_{T+1..T+steps}`` (and the states) given ``y`` at
        ``params`` (:meth:`KalmanLGSS.forecast`).

        :param X: the regressors' future values, ``(steps, k)`` for a model with one
            regression, else a dict ``{component name: (steps, k)}``.
        :return: a :class:`~numpyro_statespace.kernels.ForecastResult`.
        """
        y = jnp.asarray(as_values(y), float)
        y = y.reshape(-1, 1) if y.ndim == 1 else y
        steps = as_int("steps", steps, 1)
        regs = [c for c in self.components if hasattr(c, "X")]
        if regs and not isinstance(X, dict):
            if len(regs) > 1 or X is None:
                raise ValueError(f"forecast needs the future regressors: X of shape (steps, k) "
                                 f"for one regression, or a dict over {[c.name for c in regs]}")
            X = {regs[0].name: X}
        future = {c.name: jnp.asarray(as_values(X[c.name]), float) for c in regs}
        for c in regs:
            if future[c.name].shape != (steps, c.X.shape[1]):
                raise ValueError(f"X for {c.name!r} must have shape (steps, k) = "
                                 f"({steps}, {c.X.shape[1]}); got {future[c.name].shape}")
        d = self.distribution(params, y.shape[0], **kwargs)
        offsets = [future[c.name] @ params[c.name] for c in regs if not c.time_varying]
        obs_offset = sum(offsets)[:, None] if offsets else None
        C = None
        if any(c.time_varying for c in regs):
            rows = [future[c.name] if getattr(c, "time_varying", False)
                    else jnp.broadcast_to(_fixed_design(c, 1), (steps, c.num_states))
                    for c in self.components if c.num_states]
            C = jnp.concatenate(rows, axis=-1)[:, None, :]
        return d.forecast(y, steps, obs_offset=obs_offset, C=C)

    def sample(self, y=None, *, num_timesteps=None, priors=None, site="y", **kwargs):
        """In a NumPyro model: sample the parameters (:meth:`sample_params`), guard the
        domain, and observe ``y`` (``(T,)`` or ``(T, 1)``, NaN = missing; ``None`` for prior
        predictive draws with ``num_timesteps``). Returns the ``(T, 1)`` site value."""
        if y is not None:
            y = jnp.asarray(as_values(y), float)
            y = y.reshape(-1, 1) if y.ndim == 1 else y
            num_timesteps = y.shape[0]
        if num_timesteps is None:
            raise ValueError("pass the data y or num_timesteps")
        params = self.sample_params(y, priors=priors)
        d = self.distribution(params, num_timesteps, **kwargs)
        numpyro.factor(f"{site}_domain", jnp.where(self.system(params, num_timesteps).ok,
                                                   0.0, -jnp.inf))
        return numpyro.sample(site, d, obs=y)


def _diffuse_flags(c):
    """A component's ``diffuse`` flags without building its block (no parameters needed)."""
    dummy = {q.name: jnp.full(q.shape, 0.5) for q in c.params}
    if c.num_states == 0:
        return ()
    T = c.X.shape[0] if hasattr(c, "X") else 1
    return c.block(dummy, T).diffuse


def _fixed_design(c, T):
    dummy = {q.name: jnp.full(q.shape, 0.5) for q in c.params}
    return c.block(dummy, T).design


def _stationary_part(A, B, diffuse):
    """The stationary covariance of the non-diffuse states (a block of the block-diagonal
    system), embedded in ``(N, N)`` zeros, and its ``ok`` flag."""
    N = A.shape[0]
    idx = np.flatnonzero(~diffuse)
    if idx.size == 0:
        return jnp.zeros((N, N), A.dtype), jnp.array(True)
    As, Bs = A[np.ix_(idx, idx)], B[idx]
    P, ok = kernels.stationary_covariance(As, Bs @ Bs.T)
    return jnp.zeros((N, N), A.dtype).at[np.ix_(idx, idx)].set(P), ok


def _data_scale(y):
    """The standard deviation of the first differences of ``y`` (NaN skipped; 1 without
    data). JAX operations: ``y`` is traced inside a sampler."""
    if y is None:
        return 1.0
    y = jnp.reshape(jnp.asarray(y), (-1,))
    s = jnp.nanstd(jnp.diff(y))
    return jnp.where(jnp.isfinite(s) & (s > 0), s, 1.0)


def _default_prior(c, q, scale):
    if q.kind == "scale":
        return dist.HalfNormal(scale)
    if q.kind == "coef":
        rms = np.sqrt(np.mean(np.asarray(c.X) ** 2, axis=0))
        return dist.Normal(0.0, 10.0 * scale / jnp.asarray(np.where(rms > 0, rms, 1.0))
                           ).to_event(1)
    if q.kind == "unit":
        return dist.Uniform(0.0, 1.0)
    if q.kind == "frequency":
        return dist.Uniform(0.0, jnp.pi)
    raise ValueError(f"no default prior for {q.name!r} ({q.kind}); pass priors={{...}}")
