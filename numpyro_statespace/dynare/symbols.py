"""Names of a ``.mod`` file and what they mean where: the resolvers of the expression compiler.

A name in an expression is, by the first rule that applies: a model-local (``#``) variable
(model block only), a variable assigned earlier in the same block (``steady_state_model``,
``initval``), an endogenous variable (through the accessor ``v(name, lag)``; a
``predetermined_variables`` name ``x`` is Dynare's ``x(-1)``), an exogenous shock, a parameter
(``p[name]``), a constant assigned in the preamble without a declaration (a MATLAB variable,
fixed at its value), or one of ``inf``, ``nan``, ``pi``. Anything else is undeclared: a
:class:`~.errors.DynareError` at its place.
"""

from __future__ import annotations

import math

import jax.numpy as jnp

from . import expressions
from .errors import DynareError

_BUILTIN = {"inf": math.inf, "Inf": math.inf, "nan": math.nan, "NaN": math.nan, "pi": math.pi}


class Symbols:
    """Declared names of a :class:`~.blocks.ModFile` (duplicates refused)."""

    def __init__(self, mod):
        self.file = mod.file
        seen = {}
        for kind, entries in (("endogenous", mod.endogenous), ("exogenous", mod.exogenous),
                              ("parameter", mod.parameters)):
            for name, where in entries:
                if name in seen:
                    raise DynareError(f"'{name}' is declared twice (as {seen[name]} and {kind})",
                                      where, "Declare each name once")
                seen[name] = kind
        self.kind = seen
        self.endogenous = tuple(n for n, _ in mod.endogenous)
        self.exogenous = tuple(n for n, _ in mod.exogenous)
        self.parameters = tuple(n for n, _ in mod.parameters)
        for name, where in mod.predetermined:
            if seen.get(name) != "endogenous":
                raise DynareError(f"predetermined variable '{name}' is not an endogenous "
                                  "variable", where, "Declare it with 'var' first")
        self.predetermined = frozenset(n for n, _ in mod.predetermined)
        self.constants = {}  # preamble values: parameters and undeclared MATLAB variables

    def undeclared(self, ref, context):
        return DynareError(f"'{ref.name}' is not declared ({context})", ref.where,
                           "Declare it in 'var', 'varexo' or 'parameters', or check the "
                           "spelling")

    def constant(self, ref):
        if ref.name in self.constants:
            value = self.constants[ref.name]
            return lambda v, p, L: value
        if ref.name in _BUILTIN and ref.name not in self.kind:
            value = _BUILTIN[ref.name]
            return lambda v, p, L: value
        return None

    def undated(self, ref, what):
        if ref.dated:
            raise DynareError(f"{what} '{ref.name}' cannot carry a date ({ref.name}("
                              f"{ref.lag:+d}))", ref.where, "Only variables have leads and lags")

    # -- resolvers: each maps a Ref to a closure (v, p, L) -> value -------------------------

    def model_resolver(self, local_names):
        local_names = set(local_names)

        def resolve(ref):
            name, lag = ref.name, ref.lag
            if name in local_names:
                self.undated(ref, "the model-local variable")
                return lambda v, p, L: L[name]
            kind = self.kind.get(name)
            if kind == "endogenous":
                lag = lag - 1 if name in self.predetermined else lag
                return lambda v, p, L: v(name, lag)
            if kind == "exogenous":
                return lambda v, p, L: v(name, lag)
            if kind == "parameter":
                self.undated(ref, "the parameter")
                return lambda v, p, L: p[name]
            const = self.constant(ref)
            if const is None:
                raise self.undeclared(ref, "used in the model block")
            self.undated(ref, "the constant")
            return const
        return resolve

    def block_resolver(self, assigned, block, *, with_parameters=True):
        """For ``steady_state_model`` / ``initval`` / ``shocks`` (``assigned``: the names
        given a value earlier in the block, read from ``L``)."""
        def resolve(ref):
            name = ref.name
            self.undated(ref, f"'{name}' in the {block} block")
            if name in assigned:
                return lambda v, p, L: L[name]
            kind = self.kind.get(name)
            if kind == "parameter" and with_parameters:
                return lambda v, p, L: p[name]
            if kind == "exogenous":
                return lambda v, p, L: 0.0
            const = self.constant(ref)
            if const is not None:
                return const
            if kind == "endogenous":
                raise DynareError(f"'{name}' is used in the {block} block before it is given "
                                  "a value", ref.where, "Assign it earlier in the block")
            raise self.undeclared(ref, f"used in the {block} block")
        return resolve

    def preamble_resolver(self):
        def resolve(ref):
            self.undated(ref, f"'{ref.name}' outside the model block")
            const = self.constant(ref)
            if const is not None:
                return const
            if self.kind.get(ref.name) == "parameter":
                raise DynareError(f"parameter '{ref.name}' is used before it is given a value",
                                  ref.where, "Assign it earlier in the file")
            raise self.undeclared(ref, "used outside the model block")
        return resolve

    def evaluate_constant(self, node):
        """A float from an expression of the preamble's values."""
        return float(expressions.compile_expr(node, self.preamble_resolver())(None, None, {}))


def calibrate(mod, symbols):
    """Run the preamble's assignments in order: parameters and MATLAB constants -> floats."""
    for a in mod.assignments:
        value = symbols.evaluate_constant(a.expr)
        if symbols.kind.get(a.name) in ("endogenous", "exogenous"):
            raise DynareError(f"'{a.name}' is a variable and cannot be assigned outside a "
                              "block", a.where, "Give its steady state in initval or "
                              "steady_state_model")
        symbols.constants[a.name] = value
    return {n: symbols.constants.get(n, math.nan) for n in symbols.parameters}


def sequence(assignments, symbols, block, *, with_parameters=True):
    """The closures of a block of assignments, each reading the earlier ones from ``L``."""
    out, assigned = [], set()
    for a in assignments:
        fn = expressions.compile_expr(a.expr, symbols.block_resolver(
            frozenset(assigned), block, with_parameters=with_parameters))
        out.append((a.name, fn))
        assigned.add(a.name)
    return out


def run_sequence(closures, p):
    L = {}
    for name, fn in closures:
        L[name] = jnp.asarray(fn(None, p, L)) if p is not None else fn(None, p, L)
    return L
