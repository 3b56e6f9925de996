"""A read :class:`~.blocks.ModFile` to the pieces of a Dynare-timing model: the equations
``equations(v, p)``, the steady state, the shock and measurement-error covariances (JAX
functions of the parameter mapping ``p``), the calibration and the ``initval`` guess."""

from __future__ import annotations

import math
from typing import Callable, NamedTuple

import jax.numpy as jnp

from . import expressions
from . import symbols as _symbols
from .errors import DynareError


class Compiled(NamedTuple):
    symbols: object
    calibration: dict        # parameter -> float (NaN when the file gives none)
    equations: Callable      # (v, p) -> list of residuals
    steady_state: Callable   # p -> dict endogenous -> value, or None
    guess: dict              # endogenous -> float from initval
    shock_cov: Callable      # p -> (K, K)
    measurement_cov: Callable  # p -> (M, M) over the varobs
    observables: tuple


def compile_mod(mod):
    """The :class:`Compiled` pieces of ``mod`` (all name errors raised here, at load)."""
    sym = _symbols.Symbols(mod)
    calibration = _symbols.calibrate(mod, sym)
    _check_calibrated(mod, sym, calibration)
    if not mod.equations:
        raise DynareError("the file has no model block", None,
                          "Add 'model; ... end;' with one equation per endogenous variable")
    if len(mod.equations) != len(sym.endogenous):
        raise DynareError(f"the model block has {len(mod.equations)} equations for "
                          f"{len(sym.endogenous)} endogenous variables", mod.model_where,
                          "Declare one endogenous variable per equation")
    observables = _observables(mod, sym)
    return Compiled(sym, calibration, _equations(mod, sym), _steady_state(mod, sym),
                    _guess(mod, sym), *_covariances(mod, sym, observables), observables)


def _check_calibrated(mod, sym, calibration):
    """A parameter without a value is refused where the model uses it (Dynare would give NaN);
    an unused one keeps NaN, as in Dynare."""
    used = {}
    trees = [a.expr for a in mod.locals + (mod.steady_state_model or []) + mod.initval]
    trees += [t for eq in mod.equations for t in (eq.lhs, eq.rhs) if t is not None]
    trees += [e.expr for e in mod.shocks]
    for tree in trees:
        for ref in expressions.references(tree):
            used.setdefault(ref.name, ref.where)
    for name in sym.parameters:
        if math.isnan(calibration[name]) and name in used:
            raise DynareError(f"parameter '{name}' is used but never given a value",
                              used[name], f"Add '{name} = ...;' after the parameters "
                              "declaration (parameters set by a MATLAB *_steadystate.m file are outside "
                              "the subset)")


def _equations(mod, sym):
    local_fns = []
    for i, a in enumerate(mod.locals):
        if sym.kind.get(a.name):
            raise DynareError(f"model-local variable '{a.name}' has the name of a declared "
                              f"{sym.kind[a.name]}", a.where, "Rename it")
        resolve = sym.model_resolver(n.name for n in mod.locals[:i])
        local_fns.append((a.name, expressions.compile_expr(a.expr, resolve)))
    resolve = sym.model_resolver(a.name for a in mod.locals)
    residuals = []
    for eq in mod.equations:
        lhs = expressions.compile_expr(eq.lhs, resolve)
        if eq.rhs is None:
            residuals.append(lhs)
        else:
            rhs = expressions.compile_expr(eq.rhs, resolve)
            residuals.append(lambda v, p, L, lhs=lhs, rhs=rhs: lhs(v, p, L) - rhs(v, p, L))

    def equations(v, p):
        L = {}
        for name, fn in local_fns:
            L[name] = fn(v, p, L)
        return [jnp.asarray(r(v, p, L)) for r in residuals]
    return equations


def _steady_state(mod, sym):
    if mod.steady_state_model is None:
        return None
    closures = _symbols.sequence(mod.steady_state_model, sym, "steady_state_model")
    missing = [n for n in sym.endogenous if n not in {a.name for a in mod.steady_state_model}]
    if missing and not mod.linear:
        raise DynareError(f"steady_state_model gives no value to {missing}",
                          mod.steady_state_model[0].where if mod.steady_state_model else None,
                          "Assign every endogenous variable in the block")

    def steady_state(p):
        L = _symbols.run_sequence(closures, p)
        # a linear model's variables are deviations: those not given are zero
        zero = jnp.zeros_like(jnp.asarray(p[sym.parameters[0]])) if sym.parameters else 0.0
        return {n: L.get(n, zero) for n in sym.endogenous}
    return steady_state


def _guess(mod, sym):
    for a in mod.initval:
        if sym.kind.get(a.name) not in ("endogenous", "exogenous"):
            raise DynareError(f"initval assigns '{a.name}', which is not a variable", a.where,
                              "Give values to endogenous (or exogenous) variables only")
    closures = _symbols.sequence(mod.initval, sym, "initval")
    values = _symbols.run_sequence(closures, dict(sym.constants))
    return {n: float(values[n]) for n in sym.endogenous if n in values}


def _observables(mod, sym):
    seen = []
    for name, where in mod.varobs:
        if sym.kind.get(name) != "endogenous":
            raise DynareError(f"varobs '{name}' is not an endogenous variable", where,
                              "Observe variables declared with 'var'")
        seen.append(name)
    return tuple(seen)


def _covariances(mod, sym, observables):
    """``(shock_cov(p), measurement_cov(p))``: unlisted shocks have variance 0, as in Dynare."""
    shocks = {n: i for i, n in enumerate(sym.exogenous)}
    obs = {n: i for i, n in enumerate(observables)}
    entries = []
    for e in mod.shocks:
        for n in e.names:
            if n not in shocks and n not in obs:
                raise DynareError(f"'{n}' in the shocks block is neither a shock nor a varobs "
                                  "variable (measurement error)", e.where,
                                  "Declare it in 'varexo' or list it in 'varobs'")
        group = "shock" if all(n in shocks for n in e.names) else "obs"
        if group == "obs" and not all(n in obs for n in e.names):
            raise DynareError(f"the shocks entry {e.names} mixes shocks and observables",
                              e.where, "Give shock and measurement-error entries separately")
        index = shocks if group == "shock" else obs
        fn = expressions.compile_expr(e.expr, sym.block_resolver(frozenset(), "shocks"))
        entries.append((group, e.kind, tuple(index[n] for n in e.names), fn))

    def build(group, size):
        def cov(p):
            dtype = jnp.result_type(float)
            S = jnp.zeros((size, size), dtype)
            later = []
            for g, kind, idx, fn in entries:
                if g != group:
                    continue
                value = jnp.asarray(fn(None, p, {}), dtype)
                if kind == "stderr":
                    S = S.at[idx[0], idx[0]].set(value**2)
                elif kind == "variance":
                    S = S.at[idx[0], idx[0]].set(value)
                else:
                    later.append((kind, idx, value))
            for kind, (i, j), value in later:  # after the variances a correlation scales
                if kind == "correlation":
                    value = value * jnp.sqrt(S[i, i] * S[j, j])
                S = S.at[i, j].set(value).at[j, i].set(value)
            return S
        return cov
    return build("shock", len(sym.exogenous)), build("obs", len(observables))


def parameter_values(calibration, overrides, names):
    """``{name: jnp value}`` for every parameter: ``overrides`` over ``calibration``."""
    unknown = set(overrides) - set(names)
    if unknown:
        raise ValueError(f"unknown parameters {sorted(unknown)}; the file declares "
                         f"{list(names)}")
    p = dict(calibration)
    p.update(overrides)
    return {n: jnp.asarray(p[n]) for n in names}
