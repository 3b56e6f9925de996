"""Statements and blocks of a ``.mod`` file, read into a :class:`ModFile` (no maths yet).

Read: ``var``, ``varexo``, ``parameters`` (with TeX names and ``(long_name=...)`` options),
``predetermined_variables``, parameter assignments, ``model;`` / ``model(linear);`` with
``#`` model-local variables and ``[name=...]`` equation tags, ``steady_state_model``,
``initval``, ``shocks`` (``var e; stderr x;``, ``var e = v;``, ``var e1, e2 = c;``,
``corr e1, e2 = r;``), ``varobs``, ``estimated_params``. Commands (``stoch_simul``,
``estimation``, ...) are read for ``order=`` and otherwise ignored with a note; other
statements of the MATLAB preamble (``close all;``) are ignored with a note too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

from . import expressions
from .errors import DynareError
from .lexer import Cursor

#: prior shapes of ``estimated_params`` (Dynare's names and its numeric codes)
PRIOR_SHAPES = {"beta_pdf": "beta", "gamma_pdf": "gamma", "normal_pdf": "normal",
                "inv_gamma_pdf": "inv_gamma", "inv_gamma1_pdf": "inv_gamma",
                "uniform_pdf": "uniform", "1": "beta", "2": "gamma", "3": "normal",
                "4": "inv_gamma", "5": "uniform"}
_OTHER_SHAPES = {"inv_gamma2_pdf", "weibull_pdf", "6", "8"}
_IGNORED_BLOCKS = {"endval", "histval", "estimated_params_init", "estimated_params_bounds",
                   "planner_objective", "homotopy_setup", "conditional_forecast_paths",
                   "filter_initial_state", "irf_calibration", "moment_calibration"}
_REFUSED_BLOCKS = {"observation_trends": "deterministic trends in the observables",
                   "varexo_det": "deterministic exogenous variables",
                   "optim_weights": "optimal policy", "ramsey_model": "optimal policy",
                   "external_function": "external functions"}
_ORDER_COMMANDS = {"stoch_simul", "estimation", "extended_path", "identification",
                   "dynare_sensitivity", "shock_decomposition"}


class Equation(NamedTuple):
    lhs: object
    rhs: object  # None for an equation written as an expression (= 0)
    tags: dict
    where: object


class Assignment(NamedTuple):
    name: str
    expr: object
    where: object


class ShockEntry(NamedTuple):
    kind: str  # "stderr" | "variance" | "covariance" | "correlation"
    names: tuple
    expr: object
    where: object


class EstimatedParam(NamedTuple):
    kind: str  # "param" | "stderr"
    name: str
    init: object  # expression trees or None
    lower: object
    upper: object
    shape: str  # "beta" | "gamma" | "normal" | "inv_gamma" | "uniform" | None
    hyper: tuple  # (p1, p2, p3, p4) expression trees or None
    where: object


@dataclass
class ModFile:
    """The statements of one ``.mod`` file, in order, as read (see the module docstring)."""
    file: str
    endogenous: list = field(default_factory=list)   # (name, where)
    exogenous: list = field(default_factory=list)
    parameters: list = field(default_factory=list)
    predetermined: list = field(default_factory=list)
    assignments: list = field(default_factory=list)  # preamble: Assignment
    linear: bool = False
    model_where: object = None
    locals: list = field(default_factory=list)       # Assignment
    equations: list = field(default_factory=list)    # Equation
    steady_state_model: list = None                  # Assignment, or None without the block
    initval: list = field(default_factory=list)      # Assignment
    shocks: list = field(default_factory=list)       # ShockEntry
    varobs: list = field(default_factory=list)       # (name, where)
    estimated: list = field(default_factory=list)    # EstimatedParam
    order: int = 1
    notes: list = field(default_factory=list)


def read(tokens, file="<string>"):
    """A :class:`ModFile` from the tokens of one file."""
    cur = Cursor(tokens)
    mod = ModFile(file)
    while cur.peek().kind != "end":
        if cur.accept(";"):
            continue
        tok = cur.peek()
        if tok.kind != "name" and not cur.at("["):
            raise DynareError(f"a statement cannot start with '{tok.text}'", tok.where,
                              "Check the previous statement's syntax (a missing ';'?)")
        _statement(cur, mod)
    return mod


def _statement(cur, mod):
    tok = cur.peek()
    word = tok.text
    if word in ("var", "varexo", "parameters", "predetermined_variables") and \
            not cur.at("=", 1):
        cur.next()
        _declaration(cur, mod, word)
    elif word == "model" and not cur.at("=", 1):
        cur.next()
        _model(cur, mod, tok)
    elif word in ("steady_state_model", "initval") and not cur.at("=", 1):
        cur.next()
        _options(cur, mod, word)
        cur.expect(";")
        block = _assignments(cur, word)
        if word == "initval":
            mod.initval.extend(block)
        else:
            mod.steady_state_model = block
    elif word == "shocks" and not cur.at("=", 1):
        cur.next()
        _options(cur, mod, word)
        cur.expect(";")
        _shocks(cur, mod)
    elif word == "varobs" and not cur.at("=", 1):
        cur.next()
        rest = cur.skip_statement()
        mod.varobs.extend((t.text, t.where) for t in rest if t.kind == "name")
    elif word == "estimated_params" and not cur.at("=", 1):
        cur.next()
        cur.expect(";")
        _estimated_params(cur, mod)
    elif word in _REFUSED_BLOCKS and not cur.at("=", 1):
        raise DynareError(f"'{word}' ({_REFUSED_BLOCKS[word]}) is outside the supported subset",
                          tok.where, "Remove it, or use Dynare for this model")
    elif word in _IGNORED_BLOCKS and not cur.at("=", 1):
        cur.next()
        cur.skip_statement()
        _skip_block(cur, word)
        mod.notes.append(f"{tok.where}: block '{word}' ignored")
    elif cur.at("=", 1):
        _assignment(cur, mod, tok)
    elif cur.at("["):  # [a, b] = f(...): MATLAB, not Dynare
        cur.skip_statement()
        mod.notes.append(f"{tok.where}: MATLAB statement ignored")
    else:
        cur.next()
        if cur.at("("):
            options = _options(cur, mod, word)
            if word in _ORDER_COMMANDS and "order" in options:
                mod.order = _order(options["order"])
        cur.skip_statement()
        mod.notes.append(f"{tok.where}: '{word}' ignored")


def _assignment(cur, mod, tok):
    """``name = expr;``: a parameter's value, or a MATLAB variable of the preamble (one whose
    right-hand side is not a Dynare expression is native MATLAB: ignored with a note)."""
    start = cur.i
    cur.next()
    cur.next()
    try:
        expr = expressions.parse(cur)
        cur.expect(";", f"after the assignment to {tok.text}")
    except DynareError:
        if tok.text in {n for n, _ in mod.parameters}:
            raise
        cur.i = start
        cur.skip_statement()
        mod.notes.append(f"{tok.where}: MATLAB statement '{tok.text} = ...' ignored")
        return
    mod.assignments.append(Assignment(tok.text, expr, tok.where))


def _order(tok):
    if tok.kind != "num" or tok.text not in ("1", "2"):
        raise DynareError(f"order={tok.text} is outside the supported subset", tok.where,
                          "Use order=1 or order=2")
    return int(tok.text)


def _options(cur, mod, word):
    """``(name=value, flag, ...)`` after a keyword: a dict name -> first value token (or None)."""
    options = {}
    if not cur.accept("("):
        return options
    depth = 1
    key = None
    while depth:
        tok = cur.next()
        if tok.kind == "end":
            raise DynareError(f"'(' after '{word}' is never closed", tok.where)
        if tok.kind == "op" and tok.text in "([":
            depth += 1
        elif tok.kind == "op" and tok.text in ")]":
            depth -= 1
        elif depth == 1 and tok.kind == "name" and key is None:
            key = tok.text
            options[key] = None
        elif depth == 1 and tok.kind == "op" and tok.text == ",":
            key = None
        elif depth == 1 and key is not None and options[key] is None and tok.text != "=":
            options[key] = tok
    return options


def _declaration(cur, mod, word):
    target = {"var": mod.endogenous, "varexo": mod.exogenous, "parameters": mod.parameters,
              "predetermined_variables": mod.predetermined}[word]
    if cur.at("("):
        options = _options(cur, mod, word)
        mod.notes.append(f"{cur.peek().where}: options {sorted(options)} of '{word}' ignored")
    while not cur.accept(";"):
        if cur.accept(","):
            continue
        tok = cur.name(f"a name in the '{word}' declaration")
        target.append((tok.text, tok.where))
        if cur.at("("):  # (long_name='...', ...)
            _options(cur, mod, word)


def _skip_block(cur, word):
    while not (cur.at("end") and cur.at(";", 1)):
        if cur.peek().kind == "end":
            raise DynareError(f"block '{word}' without 'end;'", cur.peek().where,
                              "Close it with 'end;'")
        cur.next()
    cur.next()
    cur.next()


def _block_end(cur, word, opened):
    if cur.peek().kind == "end":
        raise DynareError(f"block '{word}' without 'end;'", opened, "Close it with 'end;'")
    if cur.at("end"):
        cur.next()
        cur.expect(";", f"after 'end' of the '{word}' block")
        return True
    return False


def _model(cur, mod, tok):
    options = _options(cur, mod, "model")
    cur.expect(";", "after 'model'")
    mod.linear = mod.linear or "linear" in options
    mod.model_where = tok.where
    other = sorted(set(options) - {"linear"})
    if other:
        mod.notes.append(f"{tok.where}: model options {other} ignored")
    tags = {}
    while not _block_end(cur, "model", tok.where):
        if cur.accept("#"):
            name = cur.name("a model-local variable name after '#'")
            cur.expect("=")
            mod.locals.append(Assignment(name.text, expressions.parse(cur), name.where))
            cur.expect(";", f"after the model-local variable {name.text}")
        elif cur.at("["):
            tags.update(_tags(cur))
        else:
            start = cur.peek().where
            lhs = expressions.parse(cur)
            rhs = expressions.parse(cur) if cur.accept("=") else None
            cur.expect(";", "at the end of the equation")
            mod.equations.append(Equation(lhs, rhs, tags, start))
            tags = {}


def _tags(cur):
    open_tok = cur.expect("[")
    tags = {}
    while not cur.accept("]"):
        if cur.accept(","):
            continue
        key = cur.name("a tag name")
        if key.text in ("static", "dynamic"):
            raise DynareError(f"the [{key.text}] equation tag (different static and dynamic "
                              "equations) is outside the supported subset", key.where,
                              "Write one equation valid in both, or give the steady state in "
                              "steady_state_model")
        value = None
        if cur.accept("="):
            value = cur.next().text.strip("'\"")
        tags[key.text] = value
        if cur.peek().kind == "end":
            raise DynareError("equation tag without ']'", open_tok.where)
    return tags


def _assignments(cur, word):
    opened = cur.peek().where
    out = []
    while not _block_end(cur, word, opened):
        if cur.at("["):
            raise DynareError(f"'[a, b] = f(...)' in '{word}' is outside the supported subset",
                              cur.peek().where, "Assign one variable per statement")
        name = cur.name(f"a variable name in the '{word}' block")
        cur.expect("=", f"after {name.text} in the '{word}' block")
        out.append(Assignment(name.text, expressions.parse(cur), name.where))
        cur.expect(";", f"after the assignment to {name.text}")
    return out


def _shocks(cur, mod):
    opened = cur.peek().where
    while not _block_end(cur, "shocks", opened):
        kw = cur.name("'var', 'stderr' or 'corr' in the shocks block")
        if kw.text not in ("var", "corr"):
            raise DynareError(f"'{kw.text}' in a shocks block is outside the supported subset",
                              kw.where, "Use 'var e; stderr s;', 'var e = v;', "
                              "'var e1, e2 = c;' or 'corr e1, e2 = r;'")
        names = [cur.name("a shock name").text]
        if cur.accept(","):
            names.append(cur.name("a second shock name").text)
        if cur.accept("="):
            kind = ("correlation" if kw.text == "corr" else
                    "covariance" if len(names) == 2 else "variance")
            mod.shocks.append(ShockEntry(kind, tuple(names), expressions.parse(cur), kw.where))
            cur.expect(";")
            continue
        cur.expect(";", f"after 'var {names[0]}'")
        nxt = cur.name("'stderr'")
        if nxt.text != "stderr":
            raise DynareError(f"'{nxt.text}' (deterministic shocks) is outside the supported "
                              "subset", nxt.where, "Give 'stderr' for a stochastic shock")
        mod.shocks.append(ShockEntry("stderr", tuple(names), expressions.parse(cur), kw.where))
        cur.expect(";")


def _estimated_params(cur, mod):
    opened = cur.peek().where
    while not _block_end(cur, "estimated_params", opened):
        start = cur.peek()
        kind = "param"
        if cur.at("stderr") and cur.peek(1).kind == "name":
            cur.next()
            kind = "stderr"
        elif cur.at("corr") and cur.peek(1).kind == "name":
            raise DynareError("estimated correlations ('corr') are outside the supported subset",
                              start.where, "Fix the correlation in the shocks block instead")
        name = cur.name("a parameter name")
        fields = []
        while cur.accept(","):
            fields.append(_field(cur))
        cur.expect(";", f"at the end of the estimated_params line of {name.text}")
        mod.estimated.append(_estimated_entry(kind, name, fields))


def _field(cur):
    tok = cur.peek()
    if tok.kind == "name" and tok.text.lower() in PRIOR_SHAPES.keys() | _OTHER_SHAPES:
        cur.next()
        return tok
    if tok.kind == "op" and tok.text in (",", ";"):  # an empty field
        return None
    return expressions.parse(cur)


def _estimated_entry(kind, name, fields):
    """Dynare's three layouts: ``shape, p1, p2[, p3, p4, jscale]`` after the name, after
    ``init``, or after ``init, lb, ub`` (``init, lb, ub`` alone: no prior)."""
    shape_at = next((i for i, f in enumerate(fields) if hasattr(f, "kind")), None)
    if shape_at is None and len(fields) >= 6 and isinstance(fields[3], expressions.Num):
        # the numeric prior codes of older files: NAME, INIT, LB, UB, CODE, P1, P2, ...
        code = fields[3]
        fields[3] = type(name)("num", f"{code.value:g}", code.where)
        shape_at = 3
    if shape_at is None:
        if len(fields) not in (1, 3):
            raise DynareError(f"cannot read the estimated_params line of {name.text}",
                              name.where, "Write NAME, INIT, LB, UB, SHAPE, P1, P2[, P3, P4]")
        init, lower, upper = (fields + [None, None])[:3] if len(fields) == 1 else fields
        return EstimatedParam(kind, name.text, init, lower, upper, None, (), name.where)
    if shape_at not in (0, 1, 3):
        raise DynareError(f"cannot read the estimated_params line of {name.text}", name.where,
                          "Write NAME, INIT, LB, UB, SHAPE, P1, P2[, P3, P4]")
    head, shape_tok, hyper = fields[:shape_at], fields[shape_at], fields[shape_at + 1:]
    shape = PRIOR_SHAPES.get(shape_tok.text.lower())
    if shape is None:
        raise DynareError(f"the prior shape {shape_tok.text} is outside the supported subset",
                          shape_tok.where, "Use beta_pdf, gamma_pdf, normal_pdf, inv_gamma_pdf "
                          "or uniform_pdf")
    if len(hyper) < 2:
        raise DynareError(f"the {shape_tok.text} prior of {name.text} needs its mean and "
                          "standard deviation", shape_tok.where)
    init = head[0] if head else None
    lower, upper = (head[1], head[2]) if len(head) == 3 else (None, None)
    hyper = tuple(hyper[:4]) + (None,) * (4 - len(hyper[:4]))
    return EstimatedParam(kind, name.text, init, lower, upper, shape, hyper, name.where)
