"""Numerical failure contract under a fuzz of parameter draws.

For ``NDRAWS = 10_000`` random parameter sets per family -- a stable base model with zero to
three corruptions each: an unstable or unit-root ``A``, an indefinite covariance, zero and tiny
(down to 1e-300) or huge (up to 1e300) variances and scales, single entries set to NaN, +-inf
or +-1e300, an all-zero matrix -- ``log_prob`` and its gradient with respect to every
parameter are evaluated in ONE compiled call per family (``jit(vmap(value_and_grad))``), and

* ``log_prob`` is finite or ``-inf`` (never NaN, never ``+inf``);
* the gradient never contains NaN; where ``log_prob`` is ``-inf`` it is finite everywhere;
* a NaN or infinite parameter gives ``-inf``; so does an indefinite ``R`` in the joint
  likelihoods, and an unstable ``A`` with ``u0_cov="stationary"``;
* the named failures (``NAMED``: an indefinite ``R``, a NaN in ``A``, a huge start, an
  exploding quadratic, an unstable ``A`` with ``u0_cov="stationary"``) give ``-inf``;
* every uncorrupted draw is finite (the fuzz is not vacuous; an unpruned quadratic model
  whose path truly explodes is excepted).

Magnitudes beyond the library's overflow guards (see ``kernels/guards.py``; e.g. parameters
above 1e77 or innovation variances below 1e-246 in float64) count as numerical failure, so
some draws with finite but absurd parameters give ``-inf`` by design.

Families: ``KalmanLGSS`` (given ``u0_cov``, ``"stationary"``, and ``R`` as the variances of a
diagonal covariance, which takes the filter's univariate update), ``JointLGSS``,
``JointQuadraticSS`` (pruned and not), ``ConditionalSS``. The outcome counts are printed (run
with ``-s``); ``python tests/test_fuzz.py [ndraws]`` prints them and writes
``benchmarks/results/fuzz.json``.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import numpyro_statespace as nss

NDRAWS = 10_000
N, M, K, T = 3, 2, 2, 20
SEED = 20240607

# parameter names of each family and which of them are covariances / transition matrices
FAMILIES = {
    "kalman": ("A", "B", "C", "R", "m0", "P0"),
    "kalman_stationary": ("A", "B", "C", "R", "m0"),
    "kalman_diagonal_R": ("A", "B", "C", "R", "m0", "P0"),  # R as (M,) variances
    "joint_linear": ("A", "B", "C", "R", "u0", "noise"),
    "joint_quadratic": ("A_0", "A", "A_2", "B", "C_0", "C", "C_2", "R", "u0", "noise"),
    "joint_quadratic_pruned": ("A_0", "A", "A_2", "B", "C_0", "C", "C_2", "R", "u0", "noise"),
    "conditional": ("A", "B", "C", "R", "u0"),
}
COVARIANCES = ("R", "P0")
GENERIC = ("nan", "posinf", "neginf", "huge_entry", "scale_huge", "scale_tiny", "zero")
SCALES_HUGE = (1e20, 1e100, 1e150, 1e200, 1e300)
SCALES_TINY = (1e-20, 1e-100, 1e-150, 1e-200, 1e-300)


def _log_prob(fam, th, y):
    kw = dict(validate_args=False)
    if fam in ("kalman", "kalman_diagonal_R"):  # (variances: the filter's univariate update)
        d = nss.KalmanLGSS(th["A"], th["B"], th["C"], th["R"], th["m0"], th["P0"], T, **kw)
    elif fam == "kalman_stationary":
        d = nss.KalmanLGSS(th["A"], th["B"], th["C"], th["R"], th["m0"], "stationary", T, **kw)
    elif fam == "joint_linear":
        d = nss.JointLGSS(th["A"], th["B"], th["C"], th["R"], th["u0"], th["noise"], **kw)
    elif fam.startswith("joint_quadratic"):
        d = nss.JointQuadraticSS(th["A_0"], th["A"], th["A_2"], th["B"], th["C_0"], th["C"],
                                 th["C_2"], th["R"], th["u0"], th["noise"],
                                 pruned=fam.endswith("pruned"), **kw)
    else:
        d = nss.ConditionalSS(th["A"], th["B"], th["R"], th["u0"], th["C"], num_timesteps=T,
                              **kw)
    return d.log_prob(y)


def _base(fam, rng):
    """A stable, well-posed model of the family."""
    G = rng.standard_normal((N, N))
    A = rng.uniform(0.0, 0.95) * G / np.max(np.abs(np.linalg.eigvals(G)))
    Mf = N if fam == "conditional" else M
    F = rng.standard_normal((Mf, Mf))
    H = rng.standard_normal((N, N))
    th = dict(A=A, B=rng.standard_normal((N, K)), R=F @ F.T / Mf + 0.1 * np.eye(Mf),
              m0=rng.standard_normal(N), P0=H @ H.T / N + 0.1 * np.eye(N),
              u0=rng.standard_normal(N), noise=rng.standard_normal((T, K)),
              A_0=0.1 * rng.standard_normal(N), A_2=0.01 * rng.standard_normal((N, N, N)),
              C_0=0.1 * rng.standard_normal(M), C_2=0.01 * rng.standard_normal((M, N, N)))
    if fam.startswith("joint_quadratic"):  # a second-order model that stays bounded for T steps
        th["B"] = 0.3 * th["B"]
    th["C"] = np.eye(N) + 0.1 * rng.standard_normal((N, N)) if fam == "conditional" \
        else rng.standard_normal((M, N))
    if fam == "kalman_diagonal_R":
        th["R"] = np.diag(th["R"]).copy()
    return {k: th[k] for k in FAMILIES[fam]}


def _corrupt(fam, th, rng):
    """Apply one random corruption in place; returns its label."""
    names = FAMILIES[fam]
    kinds = list(GENERIC) + ["unstable", "unit_root", "indefinite", "zero_variance"]
    kind = kinds[rng.integers(len(kinds))]
    if kind in ("unstable", "unit_root"):
        G = th["A"] if np.all(np.isfinite(th["A"])) and np.any(th["A"] != 0) \
            else rng.standard_normal((N, N))
        rho = 1.0 if kind == "unit_root" else 10 ** rng.uniform(0.0, 2.0)
        th["A"] = rho * G / np.max(np.abs(np.linalg.eigvals(G)))
        return f"{kind}:A"
    if kind in ("indefinite", "zero_variance"):
        name = [n for n in names if n in COVARIANCES][rng.integers(sum(n in COVARIANCES
                                                                      for n in names))]
        S = th[name]
        if S.ndim == 1:  # variances of a diagonal covariance
            z = rng.random(len(S)) < 0.5
            z[rng.integers(len(S))] = True
            th[name] = np.where(z, -10 ** rng.uniform(-3, 1) if kind == "indefinite" else 0.0, S)
        elif kind == "indefinite":
            lam = np.min(np.linalg.eigvalsh(np.nan_to_num(0.5 * (S + S.T))))
            th[name] = S - (lam + 10 ** rng.uniform(-3, 1)) * np.eye(len(S))
        else:  # zero variance of some coordinates (rows and columns): singular PSD
            z = rng.random(len(S)) < 0.5
            z[rng.integers(len(S))] = True
            th[name] = np.where(z[:, None] | z[None, :], 0.0, S)
        return f"{kind}:{name}"
    name = names[rng.integers(len(names))]
    x = np.array(th[name], float)
    idx = tuple(rng.integers(s) for s in x.shape)
    if kind == "nan":
        x[idx] = np.nan
    elif kind == "posinf":
        x[idx] = np.inf
    elif kind == "neginf":
        x[idx] = -np.inf
    elif kind == "huge_entry":
        x[idx] = rng.choice([-1.0, 1.0]) * rng.choice(SCALES_HUGE)
    elif kind == "scale_huge":
        x = x * rng.choice(SCALES_HUGE)
    elif kind == "scale_tiny":
        x = x * rng.choice(SCALES_TINY)
    else:
        x = np.zeros_like(x)
    th[name] = x
    return f"{kind}:{name}"


def fuzz_draws(fam, ndraws, seed=SEED):
    """Stacked parameters ``{name: (ndraws, ...)}``, data ``y`` and per-draw corruption labels."""
    rng = np.random.default_rng([seed, list(FAMILIES).index(fam)])
    with np.errstate(all="ignore"):  # corruptions overflow on purpose
        return _stack_draws(fam, ndraws, rng)


def _stack_draws(fam, ndraws, rng):
    draws, labels = [], []
    for _ in range(ndraws):
        th = _base(fam, rng)
        n_corrupt = rng.choice(4, p=[0.2, 0.4, 0.3, 0.1])
        labels.append(tuple(_corrupt(fam, th, rng) for _ in range(n_corrupt)))
        draws.append(th)
    stacked = {k: np.stack([d[k] for d in draws]) for k in FAMILIES[fam]}
    y = rng.standard_normal((T, N if fam == "conditional" else M))
    return stacked, y, labels


def _nan_entry(x):
    x = np.array(x, float)
    x[0, 1] = np.nan
    return x


def _huge_start(fam, th):
    """``u0`` (``m0``) beyond the state bound 1e154 with ``A = 0``: finite predictions in the
    conditional likelihood, whose cotangent overflowed (found by this fuzz)."""
    return dict(th, A=np.zeros((N, N)), **{"m0" if fam.startswith("kalman") else "u0":
                                           np.full(N, 1e300)})


# Named failures, appended to the draws of their family (the same compiled call): each must
# give -inf with a finite gradient. (case, families, the change of the family's base model)
NAMED = [
    ("R=-I", ("kalman", "joint_linear", "conditional"),
     lambda fam, th: dict(th, R=-np.eye(len(th["R"])))),
    ("NaN in A", ("kalman", "joint_linear", "conditional"),
     lambda fam, th: dict(th, A=_nan_entry(th["A"]))),
    ("huge u0, A = 0", ("kalman", "joint_linear", "conditional"), _huge_start),
    # the unpruned second-order path overflows within T steps
    ("exploding quadratic", ("joint_quadratic",),
     lambda fam, th: dict(th, A_2=np.abs(th["A_2"]) * 100, u0=np.ones(N))),
] + [(f"unstable A (radius {r})", ("kalman_stationary",),
      lambda fam, th, r=r: dict(th, A=r * th["A"] / np.max(np.abs(np.linalg.eigvals(th["A"])))))
     for r in (1.05, 1.5, 1.0 + 1e-3)]


def with_named(fam, stacked, labels):
    """The draws followed by the named failures of ``fam`` (labels ``named:<case>``)."""
    base = _base(fam, np.random.default_rng([SEED, 1]))
    named = [(case, change(fam, dict(base))) for case, fams, change in NAMED if fam in fams]
    stacked = {k: np.concatenate([v, [th[k] for _, th in named]]) if named else v
               for k, v in stacked.items()}
    return stacked, labels + [(f"named:{case}",) for case, _ in named]


_COMPILED = {}


def _value_and_grad(fam):
    if fam not in _COMPILED:
        _COMPILED[fam] = jax.jit(jax.vmap(jax.value_and_grad(lambda th, y: _log_prob(fam, th, y)),
                                          in_axes=(0, None)))
    return _COMPILED[fam]


def run_family(fam, ndraws=NDRAWS, named=False):
    """Evaluate the fuzz (``named``: and the named failures); returns ``(values, grad_has_nan,
    grad_all_finite, labels, params)``."""
    stacked, y, labels = fuzz_draws(fam, ndraws)
    if named:
        stacked, labels = with_named(fam, stacked, labels)
        ndraws = len(labels)
    values, grads = _value_and_grad(fam)({k: jnp.asarray(v) for k, v in stacked.items()},
                                         jnp.asarray(y))
    leaves = [np.asarray(g).reshape(ndraws, -1) for g in jax.tree.leaves(grads)]
    g = np.concatenate(leaves, axis=1)
    return (np.asarray(values), np.isnan(g).any(axis=1), np.isfinite(g).all(axis=1), labels,
            stacked)


def outcome_counts(values, grad_nan, grad_finite):
    return dict(
        finite=int(np.sum(np.isfinite(values))),
        minus_inf=int(np.sum(values == -np.inf)),
        plus_inf=int(np.sum(values == np.inf)),
        nan=int(np.sum(np.isnan(values))),
        grad_nan=int(np.sum(grad_nan)),
        grad_inf_with_finite_value=int(np.sum(~grad_finite & ~grad_nan & np.isfinite(values))),
    )


def _explodes(stacked, bound=1e100):
    """Per draw: does the unpruned quadratic state path leave ``|u| < bound`` (NumPy)?"""
    out = np.zeros(len(stacked["u0"]), bool)
    u = stacked["u0"]
    with np.errstate(all="ignore"):
        for t in range(stacked["noise"].shape[1]):
            u = (stacked["A_0"] + np.einsum("bij,bj->bi", stacked["A"], u)
                 + np.einsum("bijk,bj,bk->bi", stacked["A_2"], u, u)
                 + np.einsum("bij,bj->bi", stacked["B"], stacked["noise"][:, t]))
            out |= ~np.all(np.abs(u) < bound, axis=1)
    return out


def check_contract(fam, values, grad_nan, grad_finite, labels, stacked):
    """The failure contract; returns a list of violations (empty when it holds)."""
    problems = []

    def bad(mask, what):
        idx = np.flatnonzero(mask)
        if idx.size:
            examples = [(int(i), float(values[i]), labels[i]) for i in idx[:5]]
            problems.append(f"{fam}: {idx.size} draws {what}, e.g. {examples}")

    bad(np.isnan(values), "with NaN log_prob")
    bad(values == np.inf, "with +inf log_prob")
    bad(grad_nan, "with NaN in the gradient")
    bad((values == -np.inf) & ~grad_finite, "with -inf log_prob and a non-finite gradient")
    clean = np.array([len(lab) == 0 for lab in labels])
    if fam == "joint_quadratic":  # an unpruned second-order model may truly explode
        clean &= ~_explodes(stacked)
    bad(clean & ~np.isfinite(values), "uncorrupted but not finite")
    named = np.array([lab[:1] != () and lab[0].startswith("named:") for lab in labels])
    bad(named & (values != -np.inf), "named failures but not -inf")

    # expectations read off the final parameters (a later corruption may undo an earlier one)
    with np.errstate(all="ignore"):
        nonfinite_param = np.any([~np.isfinite(v).reshape(len(labels), -1).all(axis=1)
                                  for v in stacked.values()], axis=0)
        bad(nonfinite_param & (values != -np.inf), "with a NaN/inf parameter but not -inf")
        R = stacked["R"] if stacked["R"].ndim == 3 else np.stack([np.diag(r) for r in stacked["R"]])
        finite_R = np.isfinite(R).all(axis=(1, 2))
        R = np.where(finite_R[:, None, None], R, 0.0)
        min_eig_R = np.linalg.eigvalsh(0.5 * (R + np.swapaxes(R, 1, 2)))[:, 0]
        scale_R = np.max(np.abs(R), axis=(1, 2))
        indefinite_R = finite_R & (min_eig_R < -1e-8 * scale_R)
        if fam.startswith("joint"):
            bad(indefinite_R & (values != -np.inf), "with an indefinite R but not -inf")
        if fam == "kalman_stationary":
            finite_A = np.isfinite(stacked["A"]).all(axis=(1, 2))
            A = np.where(finite_A[:, None, None], stacked["A"], 0.0)
            rho = np.max(np.abs(np.linalg.eigvals(A)), axis=1)
            bad(finite_A & (rho > 1 + 1e-8) & (values != -np.inf),
                "stationary with an unstable A but not -inf")
    return problems


@pytest.mark.parametrize("fam", list(FAMILIES))
def test_fuzz_failure_contract(fam):
    values, grad_nan, grad_finite, labels, stacked = run_family(fam, named=True)
    counts = outcome_counts(values, grad_nan, grad_finite)
    print(f"\nfuzz {fam} ({NDRAWS} draws and {len(values) - NDRAWS} named failures): {counts}")
    problems = check_contract(fam, values, grad_nan, grad_finite, labels, stacked)
    assert not problems, "\n".join(problems)
    assert counts["finite"] + counts["minus_inf"] == len(values)
    # both outcomes occur: the fuzz reaches the failure paths and the working ones
    assert counts["finite"] > NDRAWS // 10 and counts["minus_inf"] > NDRAWS // 10, counts


def main(ndraws=NDRAWS):
    jax.config.update("jax_enable_x64", True)
    results, failed = {}, []
    for fam in FAMILIES:
        values, grad_nan, grad_finite, labels, stacked = run_family(fam, ndraws)
        counts = outcome_counts(values, grad_nan, grad_finite)
        by_kind = Counter()
        for lab, v in zip(labels, values):
            for c in set(lab) or {"none"}:
                by_kind[(c.split(":")[0], "finite" if np.isfinite(v) else str(v))] += 1
        results[fam] = dict(counts, by_corruption={f"{k}/{o}": n for (k, o), n in
                                                   sorted(by_kind.items())})
        failed += check_contract(fam, values, grad_nan, grad_finite, labels, stacked)
        print(f"{fam:24s} {counts}")
    out = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "fuzz.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(dict(ndraws=ndraws, N=N, M=M, K=K, T=T, seed=SEED,
                                   families=results, violations=failed), indent=1))
    print("\n".join(failed) if failed else "contract holds", f"\nwrote {out}")
    return not failed


if __name__ == "__main__":
    sys.exit(0 if main(int(sys.argv[1]) if len(sys.argv) > 1 else NDRAWS) else 1)
