r"""Dynare's expression grammar: a parser to a small tree, and the tree to a JAX closure.

Precedence, loosest first (as Dynare's preprocessor): ``== !=``, ``< > <= >=``, ``+ -``,
``* /``, unary ``- + !``, ``^`` (so ``-x^2`` is :math:`-(x^2)`; ``a^b^c`` groups left, as in
MATLAB). ``x(+1)``, ``x(1)``, ``x(-2)`` date a variable; a name followed by ``(`` that is one of
:data:`FUNCTIONS` is a call. Nothing is handed to Python's ``eval``: the tree is compiled into
nested closures ``f(v, p, L)`` where the caller's *resolver* decides what a name means (a
variable through the accessor ``v(name, lag)``, a parameter ``p[name]``, a model-local
``L[name]`` or a constant).
"""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp
from jax.scipy import special

from .errors import DynareError


class Num(NamedTuple):
    value: float
    where: object


class Ref(NamedTuple):
    name: str
    lag: int
    where: object
    dated: bool  # written with an explicit (±k)


class Call(NamedTuple):
    name: str
    args: tuple
    where: object


class Unary(NamedTuple):
    op: str
    arg: object
    where: object


class Binary(NamedTuple):
    op: str
    left: object
    right: object
    where: object


def _normcdf(x, mu=0.0, sigma=1.0):
    return special.ndtr((x - mu) / sigma)


def _normpdf(x, mu=0.0, sigma=1.0):
    z = (x - mu) / sigma
    return jnp.exp(-0.5 * z * z) / (sigma * jnp.sqrt(2.0 * jnp.pi))


#: name -> (allowed argument counts, implementation)
FUNCTIONS = {
    "exp": ((1,), jnp.exp), "log": ((1,), jnp.log), "ln": ((1,), jnp.log),
    "log10": ((1,), jnp.log10), "sqrt": ((1,), jnp.sqrt), "cbrt": ((1,), jnp.cbrt),
    "abs": ((1,), jnp.abs), "sign": ((1,), jnp.sign), "erf": ((1,), special.erf),
    "erfc": ((1,), special.erfc), "normcdf": ((1, 3), _normcdf), "normpdf": ((1, 3), _normpdf),
    "min": ((2,), jnp.minimum), "max": ((2,), jnp.maximum),
    "sin": ((1,), jnp.sin), "cos": ((1,), jnp.cos), "tan": ((1,), jnp.tan),
    "asin": ((1,), jnp.arcsin), "acos": ((1,), jnp.arccos), "atan": ((1,), jnp.arctan),
}

_BINARY = {
    "+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b,
    "/": lambda a, b: a / b,
    "==": lambda a, b: jnp.where(a == b, 1.0, 0.0), "!=": lambda a, b: jnp.where(a != b, 1.0, 0.0),
    "<": lambda a, b: jnp.where(a < b, 1.0, 0.0), ">": lambda a, b: jnp.where(a > b, 1.0, 0.0),
    "<=": lambda a, b: jnp.where(a <= b, 1.0, 0.0), ">=": lambda a, b: jnp.where(a >= b, 1.0, 0.0),
}
_LEVELS = (("==", "!="), ("<", ">", "<=", ">="), ("+", "-"), ("*", "/"))


def parse(cur, level=0):
    """The expression at the cursor ``cur`` (:class:`~.lexer.Cursor`), as a tree."""
    if level == len(_LEVELS):
        return _unary(cur)
    left = parse(cur, level + 1)
    while cur.peek().kind == "op" and cur.peek().text in _LEVELS[level]:
        op = cur.next()
        left = Binary(op.text, left, parse(cur, level + 1), op.where)
    return left


def _unary(cur):
    tok = cur.peek()
    if tok.kind == "op" and tok.text in ("-", "+", "!"):
        cur.next()
        arg = _unary(cur)
        if tok.text == "-" and isinstance(arg, Num):
            return Num(-arg.value, tok.where)
        return Unary(tok.text, arg, tok.where)
    return _power(cur)


def _power(cur):
    base = _primary(cur)
    while cur.at("^"):
        op = cur.next()
        tok = cur.peek()
        exponent = _unary(cur) if tok.kind == "op" and tok.text in "-+" else _primary(cur)
        base = Binary("^", base, exponent, op.where)
    return base


def _primary(cur):
    tok = cur.next()
    if tok.kind == "num":
        return Num(float(tok.text), tok.where)
    if tok.kind == "op" and tok.text == "(":
        inner = parse(cur)
        cur.expect(")", "to close the parenthesis")
        return inner
    if tok.kind != "name":
        found = tok.text or "the end of the file"
        raise DynareError(f"expected a number, a name or '(', found '{found}'", tok.where,
                          "Check the expression's syntax")
    if not cur.at("("):
        return Ref(tok.text, 0, tok.where, False)
    if tok.text in FUNCTIONS:
        cur.next()
        args = [parse(cur)]
        while cur.accept(","):
            args.append(parse(cur))
        cur.expect(")", f"to close the call of {tok.text}")
        arities = FUNCTIONS[tok.text][0]
        if len(args) not in arities:
            raise DynareError(f"{tok.text} takes {' or '.join(map(str, arities))} argument(s), "
                              f"got {len(args)}", tok.where)
        return Call(tok.text, tuple(args), tok.where)
    return Ref(tok.text, _lag(cur, tok), tok.where, True)


def _lag(cur, name_tok):
    cur.expect("(")
    sign = -1 if cur.accept("-") else 1
    if sign == 1:
        cur.accept("+")
    tok = cur.next()
    if tok.kind != "num" or not tok.text.isdigit() or not cur.at(")"):
        raise DynareError(f"'{name_tok.text}(' is neither a supported function nor a date "
                          f"like {name_tok.text}(-1) or {name_tok.text}(+1)", name_tok.where,
                          "Supported functions: " + ", ".join(sorted(FUNCTIONS)))
    cur.next()
    return sign * int(tok.text)


def compile_expr(node, resolve):
    """A closure ``f(v, p, L)`` computing ``node``; ``resolve(ref)`` gives the closure of a
    :class:`Ref` (it raises for names it does not know)."""
    if isinstance(node, Num):
        value = node.value
        return lambda v, p, L: value
    if isinstance(node, Ref):
        return resolve(node)
    if isinstance(node, Call):
        fn = FUNCTIONS[node.name][1]
        args = [compile_expr(a, resolve) for a in node.args]
        if len(args) == 1:
            (a,) = args
            return lambda v, p, L: fn(a(v, p, L))
        return lambda v, p, L: fn(*(a(v, p, L) for a in args))
    if isinstance(node, Unary):
        a = compile_expr(node.arg, resolve)
        if node.op == "-":
            return lambda v, p, L: -a(v, p, L)
        if node.op == "!":
            return lambda v, p, L: jnp.where(a(v, p, L) == 0, 1.0, 0.0)
        return a
    a = compile_expr(node.left, resolve)
    if node.op == "^":
        if isinstance(node.right, Num) and node.right.value.is_integer():
            # an integer power (lax.integer_pow): exact, and defined for negative bases
            k = int(node.right.value)
            return lambda v, p, L: a(v, p, L) ** k
        b = compile_expr(node.right, resolve)
        return lambda v, p, L: jnp.power(a(v, p, L), b(v, p, L))
    b = compile_expr(node.right, resolve)
    fn = _BINARY[node.op]
    return lambda v, p, L: fn(a(v, p, L), b(v, p, L))


def references(node):
    """Every :class:`Ref` in ``node``, depth first."""
    if isinstance(node, Ref):
        yield node
    elif isinstance(node, Call):
        for a in node.args:
            yield from references(a)
    elif isinstance(node, Unary):
        yield from references(node.arg)
    elif isinstance(node, Binary):
        yield from references(node.left)
        yield from references(node.right)
