r"""DSGE models in Dynare timing, converted to the Schmitt-Grohé–Uribe form and solved.

A model in Dynare timing is ``n`` equations :math:`\mathbb{E}_t f(v_{t+j}, \ldots, v_t, \ldots,
v_{t-l}, \varepsilon_t;\ p) = 0` in ``n`` endogenous variables ``v``, any lead or lag, shocks
:math:`\varepsilon_t` mean zero with covariance ``shock_cov``. :class:`DynareModel` rewrites it
in the timing of :mod:`.first_order` (``E_t H(y', y, x', x; p) = 0``) as follows.

- Auxiliary variables (Dynare's rule): a lag ``l > 1`` of ``v`` becomes a chain
  ``AUX_LAG_1_v_t = v_{t-1}``, ``AUX_LAG_j_v_t = AUX_LAG_{j-1}_v_{t-1}`` so that
  ``v_{t-l} = AUX_LAG_{l-1}_v_{t-1}``; a lead ``j > 1`` becomes ``AUX_LEAD_1_v_t = v_{t+1}``,
  ... ``v_{t+j} = AUX_LEAD_{j-1}_v_{t+1}``; a shock used at a date other than ``t`` becomes
  ``AUX_EXO_e_t = e_t`` and is then treated as an endogenous variable. As in Dynare, the
  lead auxiliaries hold conditional expectations (``AUX_LEAD_1_v_t = E_t v_{t+1}``), so a lead
  ``j > 1`` inside a nonlinear expression (``1 / c_{t+2}``) is evaluated at
  ``E_{t+1} c_{t+2}``: the same first order, a different ``sigma^2`` term at second order than
  substituting the whole expression (MacroModelling.jl's choice).
- Controls ``y_t``: every endogenous variable at ``t`` (the model's, then the auxiliaries).
- States ``x_t = [w_{t-1} for every variable w that appears lagged; \varepsilon_t]``: the
  lagged variables (names ``"k(-1)"``, ``"k(-2)"`` for an auxiliary lag chain, ``"e(-1)"`` for a
  lagged shock) and then the shocks of date ``t`` (their own names).
- ``H`` stacks the model's equations, the auxiliary definitions, ``x'_{w} - y_w = 0`` for each
  lagged variable and ``x'_\varepsilon = 0``; the shock enters through
  ``eta = [0; I_K]`` and ``Gamma = chol(shock_cov)``, so ``B = eta @ chol(shock_cov)``.

**Deviation from the contract** (briefs/dynare_contract.md): the shocks of date ``t`` are part
of the state vector (``model.state_names`` ends with ``model.exogenous``). This is what makes
every model exactly representable in the package's state-space form at second order (shocks
may enter the equations nonlinearly, e.g. FS2000's ``dA = exp(gam + e_a)``, and observables are
functions of the current state only). The price is ``K`` extra states whose transition rows
are zero. For a model written in SGU form with exogenous states ``z' = rho z + sigma e'``, the
Dynare-timing state ``(k(-1), z(-1), e)`` maps linearly onto SGU's ``(k, z)`` (see the tests).

The state-space form of :meth:`DynareModel.solve` is in deviations from the steady state; the
observation rows are ``observables`` in the given order, and
:meth:`DynareModel.observable_steady_state` gives the levels to add back.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from .first_order import solve_first_order
from .steady_state import newton_steady_state

__all__ = ["DynareModel"]


def _as_residuals(out, n_expected=None):
    """Stack ``equations``' output (a sequence of scalars or a 1-D array) into ``(n,)``."""
    if isinstance(out, (list, tuple)):
        parts = [jnp.asarray(r) for r in out]
        bad = [i for i, r in enumerate(parts) if r.ndim != 0]
        if bad:
            raise ValueError(f"equations must return scalar residuals; entries {bad} have "
                             f"shapes {[tuple(parts[i].shape) for i in bad]}")
        out = jnp.stack(parts) if parts else jnp.zeros((0,))
    out = jnp.asarray(out)
    if out.ndim != 1:
        raise ValueError(f"equations must return a sequence of scalars or a 1-D array; got "
                         f"shape {tuple(out.shape)}")
    return out


class _Params(Mapping):
    """Read-only parameter mapping that names unknown parameters in its error."""

    def __init__(self, values, names):
        self._values, self._names = values, names

    def __getitem__(self, key):
        if key not in self._values:
            raise ValueError(f"equations use parameter {key!r}, which is not in parameters="
                             f"{self._names}")
        return self._values[key]

    def __iter__(self):
        return iter(self._values)

    def __len__(self):
        return len(self._values)


def _names(arg, value):
    if isinstance(value, str):
        value = (value,)
    value = tuple(value)
    bad = [v for v in value if not isinstance(v, str)]
    if bad:
        raise ValueError(f"{arg} must be a sequence of names (str); got {bad!r}")
    dup = sorted({v for v in value if value.count(v) > 1})
    if dup:
        raise ValueError(f"{arg} has repeated names {dup}")
    return value


class DynareModel:
    r"""A DSGE model in Dynare timing (see the module docstring for the conversion).

    :param equations: ``equations(v, p)`` returning the ``n`` residuals (a sequence of JAX
        scalars or a 1-D array), with ``v("k", -1)`` for :math:`k_{t-1}`, ``v("c")`` for
        :math:`c_t`, ``v("c", 1)`` for :math:`\mathbb{E}_t c_{t+1}`, ``v("e_z")`` for a shock
        (any integer date), and ``p["alpha"]`` for a parameter. Pure JAX.
    :param endogenous: the ``n`` endogenous variable names (order kept).
    :param exogenous: the ``K`` shock names.
    :param parameters: parameter names; ``p`` must have exactly these keys.
    :param steady_state: ``p -> mapping name -> value`` for every endogenous variable
        (closed form), or ``None`` for Newton's method from ``steady_state_guess``.
    :param steady_state_guess: mapping name -> float, Newton's start (missing names start at
        0).
    :param observables: endogenous names observed, in order (default: all endogenous).
    :param steady_state_tol: largest ``max |f(steady state)|`` accepted: above it
        :meth:`steady_state` raises (eagerly) or :meth:`solve` returns ``ok`` False (traced).
        Default: ``sqrt(eps) * max(1, max |steady state|)`` of the dtype (1.5e-8 in float64
        for a steady state of order one).
    """

    def __init__(self, equations: Callable, endogenous, exogenous, parameters, *,
                 steady_state=None, steady_state_guess=None, observables=None,
                 steady_state_tol=None):
        self.equations = equations
        self.endogenous = _names("endogenous", endogenous)
        self.exogenous = _names("exogenous", exogenous)
        self.parameters = _names("parameters", parameters)
        clash = sorted(set(self.endogenous) & set(self.exogenous))
        if clash:
            raise ValueError(f"names {clash} are both endogenous and exogenous")
        reserved = [v for v in self.endogenous + self.exogenous if v.startswith("AUX_")]
        if reserved:
            raise ValueError(f"names starting with 'AUX_' are reserved for auxiliary "
                             f"variables; got {reserved}")
        self._steady_state_fn = steady_state
        guess = dict(steady_state_guess or {})
        unknown = sorted(set(guess) - set(self.endogenous))
        if unknown:
            raise ValueError(f"steady_state_guess has unknown names {unknown}; endogenous are "
                             f"{self.endogenous}")
        self._guess = np.array([float(guess.get(k, 0.0)) for k in self.endogenous])
        obs = self.endogenous if observables is None else _names("observables", observables)
        unknown = sorted(set(obs) - set(self.endogenous))
        if unknown:
            raise ValueError(f"observables {unknown} are not endogenous variables "
                             f"{self.endogenous}")
        self.observable_names = obs
        self.steady_state_tol = None if steady_state_tol is None else float(steady_state_tol)
        self._build(self._incidence())

    # -- structure -----------------------------------------------------------------------------
    def _incidence(self):
        """``{name: set of dates}`` used by ``equations``, found by tracing it abstractly."""
        seen = {}
        known = set(self.endogenous) | set(self.exogenous)

        def v(name, lag=0):
            if not isinstance(lag, numbers.Integral) or isinstance(lag, bool):
                raise ValueError(f"v({name!r}, lag): lag must be an int; got {lag!r}")
            if name not in known:
                raise ValueError(f"equations use variable {name!r}, which is neither in "
                                 f"endogenous={self.endogenous} nor exogenous={self.exogenous}")
            seen.setdefault(name, set()).add(int(lag))
            return jnp.ones((), jnp.result_type(float))

        p = {k: jnp.ones((), jnp.result_type(float)) for k in self.parameters}
        out = jax.eval_shape(
            lambda p: _as_residuals(self.equations(v, _Params(p, self.parameters))), p)
        n = len(self.endogenous)
        if out.shape != (n,):
            raise ValueError(f"equations returned {out.shape[0]} residuals for {n} endogenous "
                             f"variables {self.endogenous}; they must be equal")
        return seen

    def _build(self, seen):
        exo_aux = [e for e in self.exogenous if seen.get(e, {0}) - {0}]
        dates = {w: set(seen.get(w, ())) for w in self.endogenous}
        for e in exo_aux:
            dates["AUX_EXO_" + e] = seen[e] - {0} | {0}
        base = list(self.endogenous) + ["AUX_EXO_" + e for e in exo_aux]
        controls, aux_eqs = list(base), []
        self._lead_name, self._lag_name = {}, {}
        for w in base:
            # a chain of auxiliary controls, each the previous one a period ahead (behind)
            for kind, sign, names in (("lead", 1, self._lead_name), ("lag", -1, self._lag_name)):
                farthest = max([sign * d for d in dates[w] if sign * d > 0], default=0)
                prev = w
                for j in range(1, farthest):
                    name = f"AUX_{kind.upper()}_{j}_{w}"
                    controls.append(name)
                    aux_eqs.append((kind, name, prev))
                    names[(w, j + 1)] = name
                    prev = name
        # A variable is a state when it appears at t-1 after the substitutions.
        lagged = {w for w in base if any(d < 0 for d in dates[w])}
        lagged |= {prev for kind, _, prev in aux_eqs if kind == "lag"}
        lagged |= set(self._lag_name.values())
        self._states = [w for w in controls if w in lagged]
        self._controls = controls
        self._aux_eqs = aux_eqs
        self._exo_aux = exo_aux
        self._y_index = {w: i for i, w in enumerate(controls)}
        self._x_index = {w: i for i, w in enumerate(self._states)}
        self.state_names = tuple(self._state_label(w) for w in self._states) + self.exogenous
        self._obs_index = tuple(self._y_index[w] for w in self.observable_names)

    def _state_label(self, w):
        """Name of ``w_{t-1}`` in terms of the model's variables."""
        depth, base = 1, w
        if w.startswith("AUX_LAG_"):
            j, base = w[len("AUX_LAG_"):].split("_", 1)
            depth = int(j) + 1
        if base.startswith("AUX_EXO_"):
            base = base[len("AUX_EXO_"):]
        return f"{base}(-{depth})"

    @property
    def n_states(self):
        """``n_x``: lagged variables plus shocks."""
        return len(self._states) + len(self.exogenous)

    # -- H in SGU timing -------------------------------------------------------------------------
    def _accessor(self, yp, y, x):
        n_s = len(self._states)

        def v(name, lag=0):
            if name in self.exogenous:
                if lag == 0:
                    return x[n_s + self.exogenous.index(name)]
                name = "AUX_EXO_" + name
            if lag == 0:
                return y[self._y_index[name]]
            if lag == 1:
                return yp[self._y_index[name]]
            if lag == -1:
                return x[self._x_index[name]]
            if lag > 1:
                return yp[self._y_index[self._lead_name[(name, lag)]]]
            return x[self._x_index[self._lag_name[(name, -lag)]]]

        return v

    def H(self, y_next, y, x_next, x, p):
        """Residuals ``H(y', y, x', x; p)`` ``(n_y + n_x,)`` of the SGU-timing form."""
        n_s = len(self._states)
        v = self._accessor(y_next, y, x)
        f = _as_residuals(self.equations(v, _Params(p, self.parameters)))
        yi, xi = self._y_index, self._x_index
        aux = []
        for e in self._exo_aux:
            aux.append(y[yi["AUX_EXO_" + e]] - x[n_s + self.exogenous.index(e)])
        for kind, name, prev in self._aux_eqs:
            other = y_next[yi[prev]] if kind == "lead" else x[xi[prev]]
            aux.append(y[yi[name]] - other)
        links = [x_next[xi[w]] - y[yi[w]] for w in self._states]
        dtype = f.dtype
        extra = jnp.stack(aux + links).astype(dtype) if aux + links else jnp.zeros((0,), dtype)
        parts = [f, extra, x_next[n_s:].astype(dtype)]
        return jnp.concatenate(parts)

    # -- parameters and steady state ---------------------------------------------------------
    def _params(self, p):
        if not isinstance(p, Mapping):
            raise ValueError(f"p must be a mapping name -> value; got {type(p).__name__}")
        missing = sorted(set(self.parameters) - set(p))
        unknown = sorted(set(p) - set(self.parameters))
        if missing or unknown:
            raise ValueError(f"p must have exactly the parameters {self.parameters}; missing "
                             f"{missing}, unknown {unknown}")
        return {k: jnp.asarray(p[k], jnp.result_type(float)) for k in self.parameters}

    def _static_residual(self, vbar, p):
        """The model's equations at a constant path ``vbar`` (endogenous order), shocks zero."""
        vals = dict(zip(self.endogenous, vbar))

        def v(name, lag=0):
            return vals[name] if name in vals else jnp.zeros((), vbar.dtype)

        return _as_residuals(self.equations(v, _Params(p, self.parameters)))

    def _steady_state_vector(self, p):
        """``(vbar (n,), residual)`` in the order of ``endogenous``."""
        if self._steady_state_fn is None:
            x0 = jnp.asarray(self._guess, jnp.result_type(float))
            return newton_steady_state(lambda v: self._static_residual(v, p), x0)
        ss = self._steady_state_fn(p)
        if not isinstance(ss, Mapping):
            raise ValueError(f"steady_state(p) must return a mapping name -> value; got "
                             f"{type(ss).__name__}")
        missing = sorted(set(self.endogenous) - set(ss))
        unknown = sorted(set(ss) - set(self.endogenous))
        if missing or unknown:
            raise ValueError(f"steady_state(p) must give every endogenous variable; missing "
                             f"{missing}, unknown {unknown}")
        vbar = jnp.stack([jnp.asarray(ss[k], jnp.result_type(float)) for k in self.endogenous])
        r = self._static_residual(vbar, p)
        resid = jnp.where(jnp.all(jnp.isfinite(r)), jnp.max(jnp.abs(r)), jnp.inf)
        return vbar, resid

    def _tol(self, vbar):
        if self.steady_state_tol is not None:
            return self.steady_state_tol
        eps = jnp.finfo(vbar.dtype).eps
        return jnp.sqrt(eps) * jnp.maximum(1.0, jnp.max(jnp.abs(vbar)))

    def _check(self, vbar, resid, p):
        tol = self._tol(vbar)
        if isinstance(resid, jax.core.Tracer) or isinstance(tol, jax.core.Tracer):
            return
        if float(resid) <= float(tol):
            return
        r = np.asarray(self._static_residual(vbar, p))
        how = "steady_state(p)" if self._steady_state_fn is not None else \
            "Newton's method from steady_state_guess"
        raise ValueError(f"the steady state from {how} does not solve the equations: residuals "
                         f"{np.array2string(r, precision=3)} (max {float(resid):.3g} > "
                         f"steady_state_tol = {float(tol):.3g}) at "
                         f"{dict(zip(self.endogenous, np.asarray(vbar).tolist()))}")

    def steady_state(self, p):
        """Mapping name -> steady-state value of each endogenous variable.

        Raises ``ValueError`` with the residuals when they exceed ``steady_state_tol`` (when
        called on concrete values; under tracing :meth:`solve` sets ``ok`` False instead).
        """
        p = self._params(p)
        vbar, resid = self._steady_state_vector(p)
        self._check(vbar, resid, p)
        return dict(zip(self.endogenous, vbar))

    def observable_steady_state(self, p):
        """``(M,)`` steady-state levels of the observables, in ``observable_names`` order."""
        ss = self.steady_state(p)
        return jnp.stack([ss[k] for k in self.observable_names])

    # -- solution ----------------------------------------------------------------------------
    def sgu_arguments(self, p, shock_cov=None):
        """``(H, y_ss, x_ss, p, eta, Gamma, observables, ss_ok, residual)``: the arguments for
        :func:`solve_first_order` / ``solve_second_order`` (``p`` as checked arrays)."""
        p = self._params(p)
        vbar, resid = self._steady_state_vector(p)
        self._check(vbar, resid, p)
        ss = dict(zip(self.endogenous, vbar))
        for e in self._exo_aux:
            ss["AUX_EXO_" + e] = jnp.zeros((), vbar.dtype)
        for kind, name, _ in self._aux_eqs:
            ss[name] = ss[name.split("_", 3)[3]]
        y_ss = jnp.stack([ss[w] for w in self._controls])
        K = len(self.exogenous)
        x_ss = jnp.concatenate([jnp.stack([ss[w] for w in self._states]) if self._states
                                else jnp.zeros((0,), vbar.dtype), jnp.zeros((K,), vbar.dtype)])
        eta = jnp.concatenate([jnp.zeros((len(self._states), K), vbar.dtype),
                               jnp.eye(K, dtype=vbar.dtype)])
        if shock_cov is None:
            Gamma = jnp.eye(K, dtype=vbar.dtype)
        else:
            shock_cov = jnp.asarray(shock_cov, vbar.dtype)
            if shock_cov.shape != (K, K):
                raise ValueError(f"shock_cov must have shape (K, K) = ({K}, {K}) for the shocks "
                                 f"{self.exogenous}; got {tuple(shock_cov.shape)}")
            Gamma = jnp.linalg.cholesky(0.5 * (shock_cov + shock_cov.T))
        ss_ok = resid <= self._tol(vbar)
        return self.H, y_ss, x_ss, p, eta, Gamma, self._obs_index, ss_ok, resid

    def solve(self, p, order=1, *, shock_cov=None, **kwargs):
        """First- or second-order solution and its state space (deviations from the steady
        state; rows of ``C`` are ``observable_names``; states ``state_names``).

        :param p: mapping parameter name -> value (traced values allowed).
        :param order: 1 (:class:`FirstOrderSolution`) or 2 (``SecondOrderSolution``).
        :param shock_cov: ``(K, K)`` covariance of the shocks (default identity).
        :param kwargs: passed to the solver.
        """
        H, y_ss, x_ss, p, eta, Gamma, obs, ss_ok, resid = self.sgu_arguments(p, shock_cov)
        if order == 1:
            sol = solve_first_order(H, y_ss, x_ss, p, eta, Gamma=Gamma, observables=obs,
                                    **kwargs)
        elif order == 2:
            from .second_order import solve_second_order

            sol = solve_second_order(H, y_ss, x_ss, p, eta, Gamma=Gamma, observables=obs,
                                     **kwargs)
        else:
            raise ValueError(f"order must be 1 or 2; got {order!r}")
        return sol._replace(ok=sol.ok & ss_ok, steady_state_residual=resid)

    def solution_and_gradient(self, order=2, *, shock_cov=None, **kwargs):
        """A jitted ``theta -> (solution, gradient)``: the solution at the parameter vector
        ``theta`` (``(P,)``, in :attr:`parameters` order) and the reverse-mode gradient of the
        sum of its state-space arrays (``A``/``A_0, A_1, A_2``, ``B``, ``C``/``C_0, C_1, C_2``),
        a scalar that depends on every array. The kernel ``benchmarks/dsge.py`` times: a
        likelihood's gradient costs this plus the filter's."""
        names = self.parameters
        fields = ("A", "B", "C") if order == 1 else ("A_0", "A_1", "A_2", "B", "C_0", "C_1",
                                                      "C_2")

        def total(theta):
            sol = self.solve(dict(zip(names, theta)), order, shock_cov=shock_cov, **kwargs)
            return sum(jnp.sum(getattr(sol, k)) for k in fields), sol

        def value(theta):
            (_, sol), grad = jax.value_and_grad(total, has_aux=True)(theta)
            return sol, grad

        return jax.jit(value)
