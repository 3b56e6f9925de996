r"""Structural time-series components: each one a block of a univariate linear state space.

A component contributes states :math:`\alpha^{(j)}_t`, a transition block :math:`A_j`, a shock
loading :math:`B_j`, a design row :math:`c_j` (time-varying for a dynamic regression) and
possibly an observation offset (a static regression :math:`x_t^\top \beta`) or an
observation-noise variance (measurement error). :class:`.StructuralModel` stacks the blocks:

.. math::
    u_t = \mathrm{diag}(A_1, \ldots, A_J)\, u_{t-1} + \mathrm{diag}(B_1, \ldots, B_J)\, w_t,
    \qquad y_t = \textstyle\sum_j c_{j,t}^\top u^{(j)}_t + d_t + v_t.

The matrices are those of statsmodels' ``UnobservedComponents`` (Harvey 1989; Durbin &
Koopman 2012, ch. 3), with standard deviations as parameters (``*_sigma``: the variance is
its square) so that half-normal priors on them are natural. Every parameter is a JAX value,
so the blocks are differentiable and built inside a NumPyro model.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax.numpy as jnp
import numpy as np

from .._validation import as_float_array, as_int, as_values


class Param(NamedTuple):
    """A parameter of a component: its name, shape and kind (``"scale"``: a standard
    deviation, ``"coef"``: a real coefficient, ``"unit"``: in (0, 1), ``"frequency"``: in
    (0, pi), ``"pacf"``: AR partial autocorrelations in (-1, 1))."""
    name: str
    shape: tuple
    kind: str


class Block(NamedTuple):
    """One component's share of the state space (``n`` states, ``k`` shocks, ``T`` steps).

    ``design`` is ``(n,)`` or ``(T, n)`` (time-varying); ``obs_offset`` ``(T,)`` or None;
    ``obs_var`` a scalar variance or None; ``diffuse`` a tuple of ``n`` bools (a state
    without a stationary distribution); ``ok`` False where the parameters leave the
    component's declared domain (an unstable AR block).
    """
    transition: jnp.ndarray
    selection: jnp.ndarray
    design: jnp.ndarray
    obs_offset: jnp.ndarray | None
    obs_var: jnp.ndarray | None
    diffuse: tuple
    ok: jnp.ndarray | bool = True


class Component:
    """Base class: subclasses set ``name``, ``state_names``, ``params`` and ``block``."""

    name: str
    state_names: tuple
    params: tuple
    num_shocks: int

    @property
    def num_states(self):
        return len(self.state_names)

    def block(self, p, num_timesteps):  # pragma: no cover - abstract
        raise NotImplementedError

    def __add__(self, other):
        from .model import StructuralModel
        return StructuralModel((self,)) + other

    def __repr__(self):
        return f"{type(self).__name__}(name={self.name!r})"

    def _get(self, p, param):
        if param.name not in p:
            raise ValueError(f"parameter {param.name!r} of component {self.name!r} is missing; "
                             f"the model's parameters are given as a dict with keys "
                             f"{[q.name for q in self.params]} (of this component)")
        x = jnp.asarray(p[param.name])
        if x.shape != param.shape:
            raise ValueError(f"parameter {param.name!r} must have shape {param.shape}; "
                             f"got {tuple(x.shape)}")
        return x


def _name(name):
    if not isinstance(name, str) or not name:
        raise ValueError(f"name must be a non-empty string; got {name!r}")
    return name


def _scale_param(name, stochastic):
    return (Param(f"{name}_sigma", (), "scale"),) if stochastic else ()


class Level(Component):
    r"""Local level (random walk): :math:`\mu_t = \mu_{t-1} + \sigma \eta_t`; diffuse.
    ``stochastic=False`` gives a constant (an intercept)."""

    def __init__(self, *, stochastic=True, name="level"):
        self.name = _name(name)
        self.stochastic = bool(stochastic)
        self.state_names = (self.name,)
        self.params = _scale_param(self.name, self.stochastic)
        self.num_shocks = int(self.stochastic)

    def block(self, p, num_timesteps):
        sel = (self._get(p, self.params[0]).reshape(1, 1) if self.stochastic
               else jnp.zeros((1, 0)))
        return Block(jnp.ones((1, 1)), sel, jnp.ones(1), None, None, (True,))


class LocalLinearTrend(Component):
    r"""Level and slope, :math:`\mu_t = \mu_{t-1} + \nu_{t-1} + \sigma_\mu \eta_t`,
    :math:`\nu_t = \nu_{t-1} + \sigma_\nu \zeta_t`; both diffuse. Parameters
    ``{name}_level_sigma`` and ``{name}_slope_sigma``."""

    smooth = False

    def __init__(self, *, name="trend"):
        self.name = _name(name)
        self.state_names = (f"{self.name}_level", f"{self.name}_slope")
        self.params = (() if self.smooth else (Param(f"{self.name}_level_sigma", (), "scale"),)
                       ) + (Param(f"{self.name}_slope_sigma", (), "scale"),)
        self.num_shocks = len(self.params)

    def block(self, p, num_timesteps):
        sig = jnp.stack([self._get(p, q) for q in self.params])
        sel = jnp.diag(sig) if not self.smooth else jnp.stack([0.0 * sig, sig])
        return Block(jnp.array([[1.0, 1.0], [0.0, 1.0]]), sel.reshape(2, -1),
                     jnp.array([1.0, 0.0]), None, None, (True, True))


class SmoothTrend(LocalLinearTrend):
    r"""Local linear trend without level shocks (an integrated random walk): only
    ``{name}_slope_sigma``."""

    smooth = True


class Seasonal(Component):
    r"""Dummy-variable seasonal of period ``s``:
    :math:`\gamma_t = -\sum_{j=1}^{s-1} \gamma_{t-j} + \sigma \omega_t` (``s - 1`` diffuse
    states; ``stochastic=False`` for fixed seasonal effects)."""

    def __init__(self, period, *, stochastic=True, name="seasonal"):
        self.name = _name(name)
        self.period = as_int("period", period, 1)
        if self.period < 2:
            raise ValueError(f"period must be at least 2; got {period!r}")
        self.stochastic = bool(stochastic)
        self.state_names = tuple(f"{self.name}[{j}]" for j in range(self.period - 1))
        self.params = _scale_param(self.name, self.stochastic)
        self.num_shocks = int(self.stochastic)

    def block(self, p, num_timesteps):
        n = self.period - 1
        A = np.eye(n, k=-1)
        A[0, :] = -1.0
        sel = jnp.zeros((n, self.num_shocks))
        if self.stochastic:
            sel = sel.at[0, 0].set(self._get(p, self.params[0]))
        design = np.zeros(n)
        design[0] = 1.0
        return Block(jnp.asarray(A), sel, jnp.asarray(design), None, None, (True,) * n)


class TrigSeasonal(Component):
    r"""Trigonometric seasonal of period ``s`` with ``harmonics`` pairs (default
    ``floor(s / 2)``): for :math:`\lambda_j = 2\pi j / s`,

    .. math:: \begin{pmatrix}\gamma_{j,t}\\ \gamma^*_{j,t}\end{pmatrix} =
        \begin{pmatrix}\cos\lambda_j & \sin\lambda_j\\ -\sin\lambda_j & \cos\lambda_j
        \end{pmatrix}\begin{pmatrix}\gamma_{j,t-1}\\ \gamma^*_{j,t-1}\end{pmatrix}
        + \sigma \omega_{j,t}

    and :math:`y_t` loads on each :math:`\gamma_{j,t}` (statsmodels' ``freq_seasonal``; one
    variance shared by all ``2 h`` states, all diffuse). ``period`` may be fractional."""

    def __init__(self, period, harmonics=None, *, stochastic=True, name="freq_seasonal"):
        self.name = _name(name)
        self.period = float(period)
        if not self.period > 1:
            raise ValueError(f"period must exceed 1; got {period!r}")
        h = math.floor(self.period / 2) if harmonics is None else harmonics
        self.harmonics = as_int("harmonics", h, 1)
        self.stochastic = bool(stochastic)
        self.state_names = tuple(f"{self.name}_{kind}{j}" for j in range(1, self.harmonics + 1)
                                 for kind in ("cos", "sin"))
        self.params = _scale_param(self.name, self.stochastic)
        self.num_shocks = 2 * self.harmonics if self.stochastic else 0

    def block(self, p, num_timesteps):
        n = 2 * self.harmonics
        A = np.zeros((n, n))
        for j in range(1, self.harmonics + 1):
            lam = 2 * np.pi * j / self.period
            A[2 * j - 2:2 * j, 2 * j - 2:2 * j] = [[np.cos(lam), np.sin(lam)],
                                                   [-np.sin(lam), np.cos(lam)]]
        sel = (self._get(p, self.params[0]) * jnp.eye(n) if self.stochastic
               else jnp.zeros((n, 0)))
        design = np.tile([1.0, 0.0], self.harmonics)
        return Block(jnp.asarray(A), sel, jnp.asarray(design), None, None, (True,) * n)


class Cycle(Component):
    r"""Damped stochastic cycle:

    .. math:: \begin{pmatrix}c_t\\ c^*_t\end{pmatrix} = \rho
        \begin{pmatrix}\cos\lambda & \sin\lambda\\ -\sin\lambda & \cos\lambda\end{pmatrix}
        \begin{pmatrix}c_{t-1}\\ c^*_{t-1}\end{pmatrix} + \sigma \kappa_t

    Parameters ``{name}_sigma``, ``{name}_damping`` (:math:`\rho \in (0, 1)`; absent with
    ``damped=False``, :math:`\rho = 1`) and ``{name}_frequency`` (:math:`\lambda \in (0, \pi)`;
    absent when ``period`` fixes :math:`\lambda = 2\pi / \text{period}`). A damped cycle starts
    from its stationary distribution, an undamped one diffuse (statsmodels initialises every
    cycle diffuse)."""

    def __init__(self, *, period=None, damped=True, stochastic=True, name="cycle"):
        self.name = _name(name)
        self.damped, self.stochastic = bool(damped), bool(stochastic)
        if self.damped and not self.stochastic:
            raise ValueError("a damped cycle without shocks dies out: pass stochastic=True or "
                             "damped=False")
        self.frequency = None if period is None else 2 * np.pi / float(period)
        self.state_names = (self.name, f"{self.name}_aux")
        self.params = (_scale_param(self.name, self.stochastic)
                       + ((Param(f"{self.name}_damping", (), "unit"),) if self.damped else ())
                       + ((Param(f"{self.name}_frequency", (), "frequency"),)
                          if period is None else ()))
        self.num_shocks = 2 if self.stochastic else 0

    def block(self, p, num_timesteps):
        named = {q.name: self._get(p, q) for q in self.params}
        lam = named.get(f"{self.name}_frequency", self.frequency)
        rho = named.get(f"{self.name}_damping", 1.0)
        c, s = jnp.cos(lam), jnp.sin(lam)
        A = rho * jnp.array([[c, s], [-s, c]])
        sel = (named[f"{self.name}_sigma"] * jnp.eye(2) if self.stochastic
               else jnp.zeros((2, 0)))
        return Block(A, sel, jnp.array([1.0, 0.0]), None, None, (not self.damped,) * 2)


class Autoregressive(Component):
    r"""AR(p) in companion form, :math:`a_t = \sum_{i=1}^p \phi_i a_{t-i} + \sigma \epsilon_t`,
    started from its stationary distribution. Parameters ``{name}_coeffs`` ``(p,)`` and
    ``{name}_sigma``; the NumPyro helper samples partial autocorrelations ``{name}_pacf`` in
    (-1, 1) and maps them to stationary coefficients (:func:`pacf_to_ar`). A non-stationary
    ``{name}_coeffs`` given directly sets the block's ``ok`` to False."""

    def __init__(self, order, *, name="ar"):
        self.name = _name(name)
        self.order = as_int("order", order, 1)
        self.state_names = tuple(f"{self.name}[{j}]" for j in range(self.order))
        self.params = (Param(f"{self.name}_coeffs", (self.order,), "pacf"),
                       Param(f"{self.name}_sigma", (), "scale"))
        self.num_shocks = 1

    def block(self, p, num_timesteps):
        phi, sigma = (self._get(p, q) for q in self.params)
        n = self.order
        A = jnp.asarray(np.eye(n, k=-1)).at[0, :].set(phi)
        sel = jnp.zeros((n, 1)).at[0, 0].set(sigma)
        design = np.zeros(n)
        design[0] = 1.0
        ok = jnp.max(jnp.abs(jnp.linalg.eigvals(A))) < 1.0
        return Block(A, sel, jnp.asarray(design), None, None, (False,) * n, ok)


class Regression(Component):
    r"""Regression on exogenous variables ``X`` ``(T, k)``.

    Static (default): :math:`d_t = x_t^\top \beta` is an observation offset with parameter
    ``{name}`` ``(k,)`` (statsmodels' ``exog`` with ``mle_regression=True``). Time-varying:
    :math:`\beta_t = \beta_{t-1} + \mathrm{diag}(\sigma) \eta_t` are diffuse states loaded by
    a time-varying design row :math:`x_t` (parameter ``{name}_sigma`` ``(k,)``).
    ``X`` fixes ``T``: the model's ``num_timesteps`` must equal ``len(X)``. ``names`` label
    the coefficients (default: a DataFrame's columns, else ``0..k-1``).
    """

    def __init__(self, X, *, time_varying=False, names=None, name="beta"):
        self.name = _name(name)
        if names is None and hasattr(X, "columns"):
            names = list(X.columns)  # a DataFrame names its regressors
        X = as_float_array("X", np.asarray(as_values(X), float) if hasattr(X, "index") else X)
        if X.ndim == 1:
            X = X[:, None]
        if X.ndim != 2:
            raise ValueError(f"X must be (T, k) regressors; got shape {tuple(X.shape)}")
        if not bool(jnp.all(jnp.isfinite(X))):
            raise ValueError("X must be finite: regressors cannot be missing (impute them or "
                             "drop those steps)")
        self.X = X
        k = X.shape[1]
        self.time_varying = bool(time_varying)
        labels = tuple(str(s) for s in names) if names is not None else tuple(range(k))
        if len(labels) != k:
            raise ValueError(f"names must hold k = {k} names; got {len(labels)}")
        if self.time_varying:
            self.state_names = tuple(f"{self.name}[{s}]" for s in labels)
            self.params = (Param(f"{self.name}_sigma", (k,), "scale"),)
            self.num_shocks = k
        else:
            self.state_names = ()
            self.params = (Param(self.name, (k,), "coef"),)
            self.num_shocks = 0

    def block(self, p, num_timesteps):
        if self.X.shape[0] != num_timesteps:
            raise ValueError(f"X of component {self.name!r} has {self.X.shape[0]} rows; the "
                             f"model has num_timesteps = {num_timesteps}")
        k = self.X.shape[1]
        if self.time_varying:
            sel = jnp.diag(self._get(p, self.params[0]))
            return Block(jnp.eye(k), sel, self.X, None, None, (True,) * k)
        beta = self._get(p, self.params[0])
        return Block(jnp.zeros((0, 0)), jnp.zeros((0, 0)), jnp.zeros(0), self.X @ beta, None, ())


class MeasurementError(Component):
    r"""Irregular term :math:`v_t \sim N(0, \sigma^2)`: the observation noise ``R``."""

    def __init__(self, *, name="irregular"):
        self.name = _name(name)
        self.state_names = ()
        self.params = (Param(f"{self.name}_sigma", (), "scale"),)
        self.num_shocks = 0

    def block(self, p, num_timesteps):
        s = self._get(p, self.params[0])
        return Block(jnp.zeros((0, 0)), jnp.zeros((0, 0)), jnp.zeros(0), None, s ** 2, ())


def pacf_to_ar(pacf):
    r"""AR coefficients :math:`\phi` of a stationary AR(p) from partial autocorrelations in
    (-1, 1) (Durbin–Levinson; Barndorff-Nielsen & Schou 1973, Monahan 1984): every ``pacf``
    in the open cube gives a stationary model and every stationary model has one."""
    pacf = jnp.asarray(pacf)
    phi = pacf[:1]
    for k in range(1, pacf.shape[-1]):
        phi = jnp.concatenate([phi - pacf[k] * phi[::-1], pacf[k:k + 1]])
    return phi
