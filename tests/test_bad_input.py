"""Bad input is refused early with a ``ValueError`` that names the argument and, for shape
errors, prints both the expected and the actual shape (DESIGN.md, "Numerical contract").

Each case is ``(id, builder, regex, contains)``: ``builder()`` must raise ``ValueError`` whose
message matches ``regex`` (``pytest.raises(match=...)``) and contains every literal string in
``contains`` (the argument name first, then the shapes exactly as Python prints them).

Sizes are chosen pairwise distinct (N=2 states, K=1 shock, M=3 observables, T=5 steps) so that
a transposed argument always has a different shape from the expected one.
"""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _reference import linear_observation, linear_transition

import numpyro_statespace as nss

pytestmark = pytest.mark.workflow

N, K, M, T = 2, 1, 3, 5

A = np.array([[0.9, 0.1], [0.0, 0.5]])
B = np.array([[1.0], [0.5]])
C = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
R = np.array([0.1, 0.2, 0.3])
U0 = np.zeros(N)
M0 = np.zeros(N)
P0 = np.eye(N)
Y = np.linspace(-1.0, 1.0, T * M).reshape(T, M)
W = np.linspace(-1.0, 1.0, T * K).reshape(T, K)
YN = np.linspace(-1.0, 1.0, T * N).reshape(T, N)  # fully observed data, (T, N)

A_0 = np.zeros(N)
A_2 = np.full((N, N, N), 0.01)
C_0 = np.zeros(M)
C_2 = np.full((M, N, N), 0.01)


# -- builders ------------------------------------------------------------------------------


def lin(**kw):
    """A LinearStateSpaceProblem from a complete valid set of arguments, with overrides."""
    args = dict(A=A, B=B, u0=U0, tspan=T, C=C, observables_noise=R, observables=Y,
                u0_prior_mean=M0, u0_prior_var=P0) | kw
    return nss.LinearStateSpaceProblem(args.pop("A"), args.pop("B"), args.pop("u0"),
                                       args.pop("tspan"), **args)


def quad(pruned=False, **kw):
    """A (Pruned)QuadraticStateSpaceProblem from a valid set of arguments, with overrides."""
    args = dict(A_0=A_0, A_1=A, A_2=A_2, B=B, u0=U0, tspan=T, C_0=C_0, C_1=C, C_2=C_2,
                observables_noise=R, observables=Y) | kw
    cls = nss.PrunedQuadraticStateSpaceProblem if pruned else nss.QuadraticStateSpaceProblem
    return cls(args.pop("A_0"), args.pop("A_1"), args.pop("A_2"), args.pop("B"),
               args.pop("u0"), args.pop("tspan"), **args)


P_GEN = {"A": jnp.asarray(A), "B": jnp.asarray(B), "C": jnp.asarray(C)}


def gen(**kw):
    """A generic StateSpaceProblem equivalent to ``lin()``, with overrides."""
    args = dict(transition=linear_transition, observation=linear_observation, u0=U0, tspan=T,
                p=P_GEN, n_shocks=K, observables_noise=R, observables=Y) | kw
    return nss.StateSpaceProblem(args.pop("transition"), args.pop("observation"),
                                 args.pop("u0"), args.pop("tspan"), args.pop("p"), **args)


def shp(*dims):
    """A shape exactly as Python prints a tuple: shp(2) -> '(2,)', shp(2, 3) -> '(2, 3)'."""
    return str(tuple(dims))


def esc(*dims):
    return re.escape(shp(*dims))


# -- the table of bad inputs -----------------------------------------------------------------

CASES = [
    # ---- LinearStateSpaceProblem: shapes -------------------------------------------------
    ("lin-A-not-square", lambda: lin(A=np.ones((2, 3))),
     rf"A must have shape.*{esc(2, 2)}.*{esc(2, 3)}", ("A", shp(2, 2), shp(2, 3))),
    ("lin-A-1d", lambda: lin(A=np.ones(4)),
     r"A must be 2-dimensional.*\(4,\)", ("A", shp(4))),
    ("lin-A-3d", lambda: lin(A=np.ones((2, 2, 2))),
     r"A must be 2-dimensional.*\(2, 2, 2\)", ("A", shp(2, 2, 2))),
    ("lin-u0-too-long", lambda: lin(u0=np.zeros(3)),
     rf"u0 must have shape.*{esc(2)}.*{esc(3)}", ("u0", shp(2), shp(3))),
    ("lin-u0-column-vector", lambda: lin(u0=np.zeros((2, 1))),
     r"u0", ("u0", shp(2), shp(2, 1))),
    ("lin-B-wrong-rows", lambda: lin(B=np.ones((3, 1))),
     rf"B must have shape \(N, K\) with N = 2.*{esc(3, 1)}", ("B", "(N, K)", shp(3, 1))),
    ("lin-B-1d", lambda: lin(B=np.ones(2)),
     rf"B must have shape \(N, K\) with N = 2.*{esc(2)}", ("B", "(N, K)", shp(2))),
    ("lin-B-transposed", lambda: lin(B=np.ones((1, 2))),
     rf"B must have shape \(N, K\).*{esc(1, 2)}", ("B", "(N, K)", shp(1, 2))),
    ("lin-C-transposed", lambda: lin(C=C.T),
     rf"C must have shape \(M, N\) with N = 2.*{esc(2, 3)}", ("C", "(M, N)", shp(2, 3))),
    ("lin-C-1d", lambda: lin(C=np.ones(2), observables=None, observables_noise=None),
     rf"C must have shape \(M, N\).*{esc(2)}", ("C", "(M, N)", shp(2))),
    ("lin-u0_prior_mean-wrong", lambda: lin(u0_prior_mean=np.zeros(3)),
     rf"u0_prior_mean must have shape.*{esc(2)}.*{esc(3)}", ("u0_prior_mean", shp(2), shp(3))),
    ("lin-u0_prior_var-1d", lambda: lin(u0_prior_var=np.ones(2)),
     rf"u0_prior_var must have shape.*{esc(2, 2)}.*{esc(2)}", ("u0_prior_var", shp(2, 2), shp(2))),
    ("lin-u0_prior_var-wrong", lambda: lin(u0_prior_var=np.eye(3)),
     rf"u0_prior_var must have shape.*{esc(2, 2)}.*{esc(3, 3)}",
     ("u0_prior_var", shp(2, 2), shp(3, 3))),
    ("lin-R-wrong-matrix", lambda: lin(observables_noise=np.eye(2)),
     rf"observables_noise must have shape.*{esc(3, 3)}.*{esc(2, 2)}",
     ("observables_noise", shp(3, 3), shp(2, 2))),
    ("lin-R-not-square", lambda: lin(observables_noise=np.ones((3, 2))),
     rf"observables_noise must have shape.*{esc(3, 3)}.*{esc(3, 2)}",
     ("observables_noise", shp(3, 3), shp(3, 2))),
    ("lin-R-wrong-vector", lambda: lin(observables_noise=np.ones(2)),
     rf"observables_noise must have shape.*{esc(3)}.*{esc(2)}",
     ("observables_noise", shp(3), shp(2))),
    ("lin-R-3d", lambda: lin(observables_noise=np.ones((3, 3, 1))),
     rf"observables_noise must be an \(M, M\).*M = 3.*{esc(3, 3, 1)}",
     ("observables_noise", "(M, M)", shp(3, 3, 1))),
    # ---- mismatched T ---------------------------------------------------------------------
    ("lin-observables-T+1-rows", lambda: lin(observables=np.zeros((T + 1, M))),
     rf"observables must have shape.*{esc(T, M)}.*{esc(T + 1, M)}",
     ("observables", shp(T, M), shp(T + 1, M))),
    ("lin-observables-transposed", lambda: lin(observables=Y.T),
     rf"observables must have shape.*{esc(T, M)}.*{esc(M, T)}",
     ("observables", shp(T, M), shp(M, T))),
    ("lin-observables-1d", lambda: lin(observables=np.zeros(T)),
     rf"observables must be time-major.*{esc(T, M)}.*{esc(T)}",
     ("observables", shp(T, M), shp(T))),
    ("lin-observables-vs-tspan-pair", lambda: lin(tspan=(2, T)),
     rf"observables must have shape.*{esc(T - 2, M)}.*{esc(T, M)}",
     ("observables", shp(T - 2, M), shp(T, M))),
    ("lin-noise-T-1-rows", lambda: lin(noise=np.zeros((T - 1, K))),
     rf"noise must have shape.*{esc(T, K)}.*{esc(T - 1, K)}",
     ("noise", shp(T, K), shp(T - 1, K))),
    ("lin-noise-transposed", lambda: lin(noise=np.zeros((K, T))),
     rf"noise must have shape.*{esc(T, K)}.*{esc(K, T)}", ("noise", shp(T, K), shp(K, T))),
    ("lin-noise-with-B-None", lambda: lin(B=None, noise=W),
     r"noise.*B is None", ("noise", "B")),
    # ---- tspan ----------------------------------------------------------------------------
    ("tspan-float-end", lambda: lin(tspan=(0, 2.5), observables=None),
     r"tspan must hold integers.*2\.5", ("tspan", "2.5")),
    ("tspan-string", lambda: lin(tspan="abc", observables=None),
     r"tspan must be an int T or a pair.*'abc'", ("tspan", "abc")),
    ("tspan-reversed", lambda: lin(tspan=(5, 2), observables=None),
     r"tspan must satisfy t0 <= T.*\(5, 2\)", ("tspan", "(5, 2)")),
    ("tspan-negative-int", lambda: lin(tspan=-3, observables=None),
     r"tspan must satisfy t0 <= T", ("tspan",)),
    ("tspan-float-scalar", lambda: lin(tspan=2.5, observables=None),
     r"tspan must be an int T or a pair", ("tspan", "2.5")),
    ("tspan-triple", lambda: lin(tspan=(0, 1, 2), observables=None),
     r"tspan must be an int T or a pair", ("tspan", "(0, 1, 2)")),
    ("tspan-nan", lambda: lin(tspan=(0, float("nan")), observables=None),
     r"tspan must hold integers", ("tspan", "nan")),
    ("tspan-bool", lambda: lin(tspan=True, observables=None),
     r"tspan must be an int T or a pair", ("tspan", "True")),
    # A bool inside the pair should be refused like a bare bool (it is accepted as T = 1).
    ("tspan-bool-in-pair", lambda: lin(tspan=(0, True), observables=None),
     r"tspan", ("tspan", "True")),
    ("tspan-generic-reversed", lambda: gen(tspan=(5, 2), observables=None),
     r"tspan must satisfy t0 <= T", ("tspan", "(5, 2)")),
    # ---- dtypes ---------------------------------------------------------------------------
    ("dtype-A-complex", lambda: lin(A=A.astype(complex)),
     r"A must be real; got complex dtype complex128", ("A", "complex128")),
    ("dtype-A-int-array", lambda: lin(A=np.eye(2, dtype=np.int64)),
     r"A must have a floating dtype; got int64", ("A", "int64")),
    ("dtype-A-jax-int-array", lambda: lin(A=jnp.eye(2, dtype=jnp.int32)),
     r"A must have a floating dtype; got int32", ("A", "int32")),
    ("dtype-A-bool-array", lambda: lin(A=np.eye(2, dtype=bool)),
     r"A must have a floating dtype; got bool", ("A", "bool")),
    ("dtype-A-None", lambda: lin(A=None),
     r"A must be an array of floats; got NoneType", ("A", "NoneType")),
    ("dtype-A-string", lambda: lin(A="eye"),
     r"A must be an array of floats; got str", ("A", "str")),
    ("dtype-B-complex", lambda: lin(B=B + 0j),
     r"B must be real", ("B", "complex")),
    ("dtype-u0-int", lambda: lin(u0=np.zeros(2, dtype=np.int64)),
     r"u0 must have a floating dtype", ("u0", "int64")),
    ("dtype-observables-int", lambda: lin(observables=np.zeros((T, M), dtype=np.int64)),
     r"observables must have a floating dtype", ("observables", "int64")),
    ("dtype-noise-complex", lambda: lin(noise=W + 0j),
     r"noise must be real", ("noise", "complex")),
    ("dtype-R-complex", lambda: lin(observables_noise=R + 0j),
     r"observables_noise must be real", ("observables_noise", "complex")),
    ("dtype-u0_prior_var-int", lambda: lin(u0_prior_var=np.eye(2, dtype=np.int64)),
     r"u0_prior_var must have a floating dtype", ("u0_prior_var", "int64")),
    ("dtype-A_2-int", lambda: quad(A_2=np.zeros((N, N, N), dtype=np.int64)),
     r"A_2 must have a floating dtype", ("A_2", "int64")),
    ("dtype-C_2-complex", lambda: quad(C_2=C_2 + 0j),
     r"C_2 must be real", ("C_2", "complex")),
    # Python lists are converted, but a list that cannot become a float array must still be
    # refused with a message that names the argument (not numpy's anonymous error).
    ("list-A-complex", lambda: lin(A=[[1j, 0], [0, 1]]),
     r"\bA\b", ("A", "complex")),
    ("list-A-ragged", lambda: lin(A=[[1.0, 0.0], [0.0]]),
     r"\bA\b", ("A",)),
    ("list-A-strings", lambda: lin(A=[["a", "b"], ["c", "d"]]),
     r"\bA\b", ("A",)),
    # ---- observables_noise must be a covariance -------------------------------------------
    ("R-negative-variance-vector", lambda: lin(observables_noise=np.array([0.1, -0.2, 0.3])),
     r"observables_noise is a covariance.*non-negative.*-0\.2", ("observables_noise", "-0.2")),
    ("R-negative-std-vector", lambda: lin(observables_noise=-np.sqrt(R)),
     r"observables_noise is a covariance.*non-negative", ("observables_noise",)),
    ("R-negative-diagonal-matrix", lambda: lin(observables_noise=-np.diag(R)),
     r"observables_noise is a covariance.*non-negative", ("observables_noise", "-0.1")),
    ("R-negative-list", lambda: lin(observables_noise=[0.1, 0.2, -0.3]),
     r"observables_noise is a covariance.*non-negative", ("observables_noise", "-0.3")),
    ("R-negative-generic", lambda: gen(observables_noise=np.array([0.1, -0.2, 0.3])),
     r"observables_noise is a covariance.*non-negative", ("observables_noise", "-0.2")),
    ("R-negative-quadratic", lambda: quad(observables_noise=-np.diag(R)),
     r"observables_noise is a covariance.*non-negative", ("observables_noise",)),
    # ---- syms / obs_syms ------------------------------------------------------------------
    ("syms-too-many", lambda: lin(syms=("x", "y", "z")),
     r"syms must hold 2 names; got 3", ("syms", "2", "3")),
    ("syms-too-few", lambda: lin(syms=("x",)),
     r"syms must hold 2 names; got 1", ("syms",)),
    ("obs_syms-too-few", lambda: lin(obs_syms=("y1", "y2")),
     r"obs_syms must hold 3 names; got 2", ("obs_syms", "3", "2")),
    ("obs_syms-without-observation", lambda: lin(C=None, observables=None,
                                                 observables_noise=None, obs_syms=("y",)),
     r"obs_syms must hold 0 names; got 1", ("obs_syms",)),
    ("syms-quadratic", lambda: quad(syms=("x",)),
     r"syms must hold 2 names; got 1", ("syms",)),
    ("obs_syms-generic", lambda: gen(obs_syms=("a", "b", "c", "d")),
     r"obs_syms must hold 3 names; got 4", ("obs_syms",)),
    # A single string is not a list of names: "xy" silently becomes ("x", "y") today.
    ("syms-single-string", lambda: lin(syms="xy"),
     r"syms", ("syms",)),
    ("syms-not-iterable", lambda: lin(syms=3),
     r"syms", ("syms",)),
    # ---- QuadraticStateSpaceProblem / PrunedQuadraticStateSpaceProblem --------------------
    ("quad-A_1-not-square", lambda: quad(A_1=np.ones((2, 3))),
     rf"A_1 must have shape.*{esc(2, 2)}.*{esc(2, 3)}", ("A_1", shp(2, 2), shp(2, 3))),
    ("quad-A_1-1d", lambda: quad(A_1=np.ones(2)),
     r"A_1 must be 2-dimensional.*\(2,\)", ("A_1", shp(2))),
    ("quad-A_0-column", lambda: quad(A_0=np.zeros((N, 1))),
     rf"A_0 must have shape.*{esc(2)}.*{esc(2, 1)}", ("A_0", shp(2), shp(2, 1))),
    ("quad-A_2-kron-matrix", lambda: quad(A_2=np.zeros((N, N * N))),
     rf"A_2 must have shape.*{esc(2, 2, 2)}.*{esc(2, 4)}", ("A_2", shp(2, 2, 2), shp(2, 4))),
    ("quad-A_2-transposed-kron", lambda: quad(A_2=np.zeros((N * N, N))),
     rf"A_2 must have shape.*{esc(2, 2, 2)}.*{esc(4, 2)}", ("A_2", shp(2, 2, 2), shp(4, 2))),
    ("quad-A_2-wrong-size", lambda: quad(A_2=np.zeros((3, 3, 3))),
     rf"A_2 must have shape.*{esc(2, 2, 2)}.*{esc(3, 3, 3)}",
     ("A_2", shp(2, 2, 2), shp(3, 3, 3))),
    ("quad-C_2-(N,N,M)-order", lambda: quad(C_2=np.transpose(C_2, (1, 2, 0))),
     rf"C_2 must have shape \(M, N, N\).*{esc(3, 2, 2)}.*{esc(2, 2, 3)}",
     ("C_2", shp(3, 2, 2), shp(2, 2, 3))),
    ("pruned-C_2-(N,N,M)-order", lambda: quad(pruned=True, C_2=np.transpose(C_2, (1, 2, 0))),
     rf"C_2 must have shape \(M, N, N\).*{esc(3, 2, 2)}.*{esc(2, 2, 3)}",
     ("C_2", shp(3, 2, 2), shp(2, 2, 3))),
    ("quad-C_2-kron-matrix", lambda: quad(C_2=np.zeros((M, N * N))),
     rf"C_2 must have shape.*{esc(3, 2, 2)}.*{esc(3, 4)}", ("C_2", shp(3, 2, 2), shp(3, 4))),
    ("quad-C_1-transposed", lambda: quad(C_1=C.T),
     rf"C_1 must have shape \(M, N\) with N = 2.*{esc(2, 3)}", ("C_1", "(M, N)", shp(2, 3))),
    ("quad-C_0-wrong", lambda: quad(C_0=np.zeros(N)),
     rf"C_0 must have shape.*{esc(3)}.*{esc(2)}", ("C_0", shp(3), shp(2))),
    ("quad-C_2-without-C_1", lambda: quad(C_1=None, C_0=None, observables=None,
                                          observables_noise=None),
     r"C_0 / C_2 were given without C_1", ("C_2", "C_1")),
    ("quad-B-wrong-rows", lambda: quad(B=np.ones((3, 1))),
     rf"B must have shape \(N, K\) with N = 2.*{esc(3, 1)}", ("B", shp(3, 1))),
    ("quad-u0-wrong", lambda: quad(u0=np.zeros(3)),
     rf"u0 must have shape.*{esc(2)}.*{esc(3)}", ("u0", shp(2), shp(3))),
    ("quad-u0-scalar", lambda: quad(u0=0.0),
     r"u0", ("u0", shp(2), "()")),
    ("quad-observables-T-mismatch", lambda: quad(observables=np.zeros((T - 1, M))),
     rf"observables must have shape.*{esc(T, M)}.*{esc(T - 1, M)}",
     ("observables", shp(T, M), shp(T - 1, M))),
    ("pruned-noise-T-mismatch", lambda: quad(pruned=True, noise=np.zeros((T + 2, K))),
     rf"noise must have shape.*{esc(T, K)}.*{esc(T + 2, K)}",
     ("noise", shp(T, K), shp(T + 2, K))),
    ("quad-noise-with-B-None", lambda: quad(B=None, noise=W),
     r"noise.*B is None", ("noise", "B")),
    # ---- generic StateSpaceProblem --------------------------------------------------------
    ("gen-transition-wrong-shape", lambda: gen(transition=lambda x, w, p, t: jnp.zeros(3)),
     rf"transition\(x, w, p, t\) must return shape.*{esc(2)}.*{esc(3)}",
     ("transition", shp(2), shp(3))),
    ("gen-transition-column", lambda: gen(transition=lambda x, w, p, t: x[:, None]),
     rf"transition.*must return shape.*{esc(2)}.*{esc(2, 1)}",
     ("transition", shp(2), shp(2, 1))),
    ("gen-transition-tuple", lambda: gen(transition=lambda x, w, p, t: (x,)),
     r"transition.*must return shape.*\(2,\)", ("transition", shp(2))),
    ("gen-observation-2d", lambda: gen(observation=lambda x, p, t: (p["C"] @ x)[None]),
     rf"observation\(x, p, t\) must return a 1-D array.*{esc(1, 3)}",
     ("observation", shp(1, 3))),
    ("gen-observation-scalar", lambda: gen(observation=lambda x, p, t: x[0]),
     r"observation\(x, p, t\) must return a 1-D array.*\(\)", ("observation", "()")),
    ("gen-n_obs-inconsistent", lambda: gen(n_obs=2),
     rf"observation\(x, p, t\) must return shape \(n_obs,\) = {esc(2)}.*{esc(3)}",
     ("n_obs", shp(2), shp(3))),
    ("gen-n_obs-without-observation", lambda: gen(observation=None, n_obs=3, observables=None,
                                                  observables_noise=None),
     r"n_obs = 3 but observation is None", ("n_obs", "observation")),
    ("gen-transition-not-callable", lambda: gen(transition=A),
     r"transition must be callable; got ndarray", ("transition",)),
    ("gen-observation-not-callable", lambda: gen(observation="C"),
     r"observation must be callable or None; got str", ("observation",)),
    ("gen-n_shocks-negative", lambda: gen(n_shocks=-1),
     r"n_shocks must be a non-negative int; got -1", ("n_shocks",)),
    ("gen-n_shocks-float", lambda: gen(n_shocks=1.0),
     r"n_shocks must be a non-negative int; got 1\.0", ("n_shocks",)),
    ("gen-u0-2d", lambda: gen(u0=np.zeros((1, 2))),
     r"u0 must be 1-dimensional.*\(1, 2\)", ("u0", shp(1, 2))),
    ("gen-u0-int", lambda: gen(u0=np.zeros(2, dtype=np.int32)),
     r"u0 must have a floating dtype", ("u0", "int32")),
    ("gen-observables-T-mismatch", lambda: gen(observables=np.zeros((T + 1, M))),
     rf"observables must have shape.*{esc(T, M)}.*{esc(T + 1, M)}",
     ("observables", shp(T, M), shp(T + 1, M))),
    ("gen-noise-wrong-K", lambda: gen(noise=np.zeros((T, 2))),
     rf"noise must have shape.*{esc(T, K)}.*{esc(T, 2)}", ("noise", shp(T, K), shp(T, 2))),
    # n_shocks disagrees with what transition does with w: JAX's TypeError escapes today.
    ("gen-n_shocks-inconsistent-with-transition", lambda: gen(n_shocks=2),
     r"n_shocks|transition", ("n_shocks",)),
    # Noise for a generic model without shocks: the message talks of B, which this problem
    # type does not have; it should name n_shocks.
    ("gen-noise-with-n_shocks-0", lambda: gen(n_shocks=0, noise=W,
                                              transition=lambda x, w, p, t: p["A"] @ x),
     r"noise", ("noise", "n_shocks")),
    # ---- replace() re-validates -----------------------------------------------------------
    ("replace-observables-T-mismatch", lambda: lin().replace(observables=np.zeros((T + 1, M))),
     rf"observables must have shape.*{esc(T, M)}.*{esc(T + 1, M)}",
     ("observables", shp(T, M), shp(T + 1, M))),
    ("replace-C_2-wrong-order", lambda: quad().replace(C_2=np.zeros((N, N, M))),
     rf"C_2 must have shape.*{esc(3, 2, 2)}.*{esc(2, 2, 3)}",
     ("C_2", shp(3, 2, 2), shp(2, 2, 3))),
    ("replace-tspan-shorter", lambda: lin().replace(tspan=T - 1),
     rf"observables must have shape.*{esc(T - 1, M)}.*{esc(T, M)}",
     ("observables", shp(T - 1, M), shp(T, M))),
]


# -- solve()-time errors ---------------------------------------------------------------------

SOLVE_CASES = [
    ("kalman-missing-C", lambda: nss.solve(lin(C=None, observables=YN,
                                               observables_noise=np.ones(N)),
                                           nss.KalmanFilter()),
     r"KalmanFilter needs C on the problem", ("C", "KalmanFilter")),
    ("kalman-missing-observables", lambda: nss.solve(lin(observables=None), nss.KalmanFilter()),
     r"KalmanFilter needs observables", ("observables",)),
    ("kalman-missing-observables_noise",
     lambda: nss.solve(lin(observables_noise=None), nss.KalmanFilter()),
     r"KalmanFilter needs observables_noise", ("observables_noise",)),
    ("kalman-missing-u0_prior_var",
     lambda: nss.solve(lin(u0_prior_var=None), nss.KalmanFilter()),
     r"KalmanFilter needs u0_prior_var", ("u0_prior_var",)),
    ("kalman-missing-u0_prior_mean",
     lambda: nss.solve(lin(u0_prior_mean=None), nss.KalmanFilter()),
     r"KalmanFilter needs u0_prior_mean", ("u0_prior_mean",)),
    ("kalman-missing-several",
     lambda: nss.solve(lin(observables=None, u0_prior_var=None), nss.KalmanFilter()),
     r"KalmanFilter needs observables, u0_prior_var", ("observables", "u0_prior_var")),
    ("kalman-with-fixed-noise", lambda: nss.solve(lin(noise=W), nss.KalmanFilter()),
     r"KalmanFilter integrates the noise out.*noise=None", ("noise",)),
    ("kalman-on-quadratic", lambda: nss.solve(quad(), nss.KalmanFilter()),
     r"KalmanFilter needs a LinearStateSpaceProblem; got QuadraticStateSpaceProblem",
     ("KalmanFilter", "LinearStateSpaceProblem")),
    ("kalman-on-generic", lambda: nss.solve(gen(), nss.KalmanFilter),
     r"KalmanFilter needs a LinearStateSpaceProblem; got StateSpaceProblem",
     ("KalmanFilter", "StateSpaceProblem")),
    ("conditional-observables-(T,M)-not-(T,N)",
     lambda: nss.solve(lin(noise=np.zeros((T, K))), nss.ConditionalLikelihood()),
     rf"observables must have shape \(T, N\) = {esc(T, N)}; got {esc(T, M)}",
     ("observables", shp(T, N), shp(T, M))),
    ("conditional-quadratic-observables-(T,M)",
     lambda: nss.solve(quad(noise=np.zeros((T, K))), nss.ConditionalLikelihood()),
     rf"observables must have shape \(T, N\).*{esc(T, N)}.*{esc(T, M)}",
     ("observables", shp(T, N), shp(T, M))),
    ("conditional-missing-observables",
     lambda: nss.solve(lin(observables=None, noise=W), nss.ConditionalLikelihood()),
     r"ConditionalLikelihood needs observables and observables_noise", ("observables",)),
    ("conditional-missing-observables_noise",
     lambda: nss.solve(lin(C=None, observables=YN, observables_noise=None, noise=W),
                       nss.ConditionalLikelihood()),
     r"ConditionalLikelihood needs observables and observables_noise", ("observables_noise",)),
    ("conditional-observables-with-nan",
     lambda: nss.solve(lin(C=None, observables=np.where(np.arange(T)[:, None] == 2, np.nan, YN),
                           observables_noise=np.ones(N), noise=W), nss.ConditionalLikelihood()),
     r"ConditionalLikelihood clamps the state to the data, which must be complete",
     ("observables", "NaN")),
    ("direct-observables-without-noise-covariance",
     lambda: nss.solve(lin(observables_noise=None, noise=W), nss.DirectIteration()),
     r"DirectIteration with observables needs observables_noise", ("observables_noise",)),
    ("direct-key-missing-for-noise",
     lambda: nss.solve(lin(u0_prior_var=None), nss.DirectIteration()),
     r"solve needs a PRNG key to draw the noise", ("key",)),
    ("default-alg-key-missing",
     lambda: nss.solve(lin(u0_prior_var=None)),
     r"solve needs a PRNG key", ("key",)),
    ("direct-key-missing-for-observation-noise",
     lambda: nss.solve(lin(observables=None, noise=W), nss.DirectIteration()),
     r"solve needs a PRNG key to add observation noise", ("key", "observables_noise")),
    ("quad-key-missing", lambda: nss.solve(quad(), nss.DirectIteration()),
     r"solve needs a PRNG key", ("key",)),
    ("generic-key-missing", lambda: nss.solve(gen()),
     r"solve needs a PRNG key", ("key",)),
    ("alg-string", lambda: nss.solve(lin(noise=W), "kalman"),
     r"alg must be DirectIteration\(\), KalmanFilter\(\) or ConditionalLikelihood\(\); "
     r"got 'kalman'", ("alg", "'kalman'")),
    ("alg-wrong-object", lambda: nss.solve(lin(noise=W), 3),
     r"alg must be .*; got 3", ("alg",)),
    ("alg-wrong-class", lambda: nss.solve(lin(noise=W), dict),
     r"alg must be", ("alg",)),
    # Not a problem at all: today an AttributeError ('NoneType' has no 'n_shocks') escapes.
    ("prob-not-a-problem", lambda: nss.solve(None, nss.DirectIteration()),
     r"prob", ("prob",)),
]


def _params(cases):
    return [pytest.param(build, regex, contains, id=cid) for cid, build, regex, contains in cases]


def _check_message(msg, contains):
    """The argument name (``contains[0]``) as a whole word, then every other literal part."""
    name, *parts = contains
    assert re.search(rf"(?<!\w){re.escape(name)}(?!\w)", msg), \
        f"message does not name {name!r}: {msg!r}"
    for part in parts:
        assert part in msg, f"message lacks {part!r}: {msg!r}"


def test_case_ids_are_unique():
    ids = [c[0] for c in CASES + SOLVE_CASES]
    assert len(ids) == len(set(ids))
    assert len(ids) >= 45


@pytest.mark.parametrize("build, regex, contains", _params(CASES))
def test_constructor_refuses_bad_input(build, regex, contains):
    with pytest.raises(ValueError, match=regex) as info:
        build()
    _check_message(str(info.value), contains)


@pytest.mark.parametrize("build, regex, contains", _params(SOLVE_CASES))
def test_solve_refuses_bad_input(build, regex, contains):
    with pytest.raises(ValueError, match=regex) as info:
        build()
    _check_message(str(info.value), contains)


def test_shape_message_example_from_design():
    """The canonical example: a (2, 3) matrix where (2, 2) is needed."""
    with pytest.raises(ValueError) as info:
        nss.LinearStateSpaceProblem(np.ones((2, 3)), None, np.zeros(2), 3)
    msg = str(info.value)
    assert "A" in msg and "(2, 2)" in msg and "(2, 3)" in msg
    assert msg.index("(2, 2)") < msg.index("(2, 3)"), "expected shape first, then the actual"


# -- valid input is accepted ----------------------------------------------------------------


def test_int_lists_become_floats():
    prob = nss.LinearStateSpaceProblem([[1, 0], [0, 1]], [[1], [0]], [0, 0], 3,
                                       C=[[1, 0]], observables_noise=[1],
                                       observables=[[1], [2], [3]],
                                       u0_prior_mean=[0, 0], u0_prior_var=[[1, 0], [0, 1]])
    for name in ("A", "B", "C", "u0", "observables_noise", "observables", "u0_prior_mean",
                 "u0_prior_var"):
        x = getattr(prob, name)
        assert jnp.issubdtype(x.dtype, jnp.floating), name
    np.testing.assert_array_equal(prob.A, np.eye(2))
    np.testing.assert_array_equal(prob.observables, [[1.0], [2.0], [3.0]])
    assert prob.observables_noise.shape == (1, 1)


def test_scalar_python_ints_in_lists_for_quadratic():
    prob = nss.QuadraticStateSpaceProblem([0, 0], [[1, 0], [0, 1]],
                                          [[[0, 0], [0, 0]], [[0, 0], [0, 0]]], None, [1, 2], 2)
    assert prob.A_2.dtype == jnp.float64 and prob.A_2.shape == (2, 2, 2)
    np.testing.assert_array_equal(prob.u0, [1.0, 2.0])


def test_1d_observables_noise_is_diagonal_covariance():
    prob = lin(observables_noise=np.array([0.1, 0.0, 0.3]))  # a zero variance is allowed
    assert prob.observables_noise.shape == (M, M)
    np.testing.assert_allclose(prob.observables_noise, np.diag([0.1, 0.0, 0.3]))
    q = quad(observables_noise=[1, 2, 3])
    np.testing.assert_allclose(q.observables_noise, np.diag([1.0, 2.0, 3.0]))
    g = gen(observables_noise=R)
    np.testing.assert_allclose(g.observables_noise, np.diag(R))


def test_full_covariance_with_negative_off_diagonal_is_accepted():
    Rm = np.array([[1.0, -0.5, 0.0], [-0.5, 1.0, 0.0], [0.0, 0.0, 0.0]])
    prob = lin(observables_noise=Rm)
    np.testing.assert_array_equal(prob.observables_noise, Rm)


@pytest.mark.parametrize("tspan, expected", [
    (T, (0, T)),
    (np.int64(T), (0, T)),
    ((0, T), (0, T)),
    ([0, T], (0, T)),
    ((3, 3 + T), (3, 3 + T)),
    ((0, float(T)), (0, T)),
])
def test_tspan_forms(tspan, expected):
    prob = lin(tspan=tspan)
    assert prob.tspan == expected
    assert all(type(t) is int for t in prob.tspan)
    assert prob.num_timesteps == T


def test_tspan_zero_length_without_data():
    prob = lin(tspan=0, observables=None)
    assert prob.tspan == (0, 0) and prob.num_timesteps == 0


def test_valid_problems_solve():
    sol = nss.solve(lin())
    assert np.isfinite(float(sol.logpdf))
    assert sol.u.shape == (T + 1, N) and sol.P.shape == (T + 1, N, N)
    sol = nss.solve(lin(noise=W), nss.DirectIteration)  # a class is accepted as alg
    assert sol.u.shape == (T + 1, N) and sol.z.shape == (T + 1, M)
    sol = nss.solve(quad(pruned=True), key=jax.random.key(0))
    assert sol.W.shape == (T, K) and np.isfinite(float(sol.logpdf))
    sol = nss.solve(gen(noise=W))
    assert sol.z.shape == (T + 1, M)
    sol = nss.solve(lin(C=None, observables=YN, observables_noise=np.ones(N), noise=W),
                    nss.ConditionalLikelihood())
    assert np.isfinite(float(sol.logpdf))


def test_generic_n_obs_inferred_and_checked_consistently():
    prob = gen()
    assert prob.n_obs == M
    assert gen(n_obs=M).n_obs == M
    assert gen(n_obs=0).n_obs == M  # DifferenceEquations.jl's default, as in DESIGN.md
    assert gen(observation=None, observables=None, observables_noise=None).n_obs == 0


def test_traced_observables_noise_is_not_value_checked():
    """Inside jit/grad the variances are unknown: construction must not fail on tracers."""

    def loglik(r):
        return nss.solve(lin(observables_noise=r)).logpdf

    val = jax.jit(loglik)(jnp.asarray(R))
    assert np.isfinite(float(val))
    g = jax.grad(loglik)(jnp.asarray(R))
    assert g.shape == (M,) and np.all(np.isfinite(np.asarray(g)))


def test_float32_arrays_accepted():
    """Accepted, and among float64 arrays promoted: the scans need one dtype (a float32 u0
    carry against float64 inputs failed inside lax.scan)."""
    prob = lin(A=A.astype(np.float32), B=B.astype(np.float32), u0=np.zeros(2, np.float32))
    assert prob.A.dtype == prob.B.dtype == prob.u0.dtype == jnp.float64
    assert np.isfinite(float(nss.solve(prob).logpdf))
