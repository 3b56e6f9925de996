"""Why a model cannot initialise: :func:`diagnose` names the site and the check that fails.

NumPyro reports only "Cannot find valid initial parameters" when every initial draw gives a
non-finite log density. ``diagnose`` runs the model once at given (or prior-drawn) parameters
and checks, site by site: prior support of the latent parameters, ``numpyro.factor`` terms
(e.g. the Blanchard–Kahn flag of :func:`numpyro_statespace.dsge.log_prob_guard`), and for the
state-space likelihoods their matrices (finite entries, stationarity of ``A`` under
``u0_cov="stationary"``, positive semi-definite ``R`` and ``u0_cov``) and the value of the
likelihood.
"""

from __future__ import annotations

import warnings
from typing import NamedTuple

import jax.numpy as jnp
import numpy as np
import numpyro
from numpyro import handlers

from .distributions import ConditionalSS, KalmanLGSS
from .distributions.joint import JointLikelihood

__all__ = ["Diagnosis", "diagnose"]

_SS = (KalmanLGSS, JointLikelihood, ConditionalSS)


class Diagnosis(NamedTuple):
    """``ok``: no problem found; ``problems``: one sentence each; ``params``: the latent
    values the model was checked at."""
    ok: bool
    problems: tuple
    params: dict

    def __str__(self):
        if self.ok:
            return "no problem found: the log density is finite at these parameters"
        return "\n".join(f"- {p}" for p in self.problems)


def _fmt(x):
    x = np.asarray(x)
    return f"{x.item():.4g}" if x.size == 1 else np.array2string(x, precision=4, threshold=8)


def _unwrap(fn):
    while not isinstance(fn, _SS) and hasattr(fn, "base_dist"):
        fn = fn.base_dist
    return fn


def _psd_problem(name, site, S):
    S = np.asarray(S, float)
    if S.size == 0 or not np.all(np.isfinite(S)):
        return None
    eig = np.linalg.eigvalsh(0.5 * (S + np.swapaxes(S, -1, -2)))
    tol = np.sqrt(np.finfo(float).eps) * max(np.max(np.abs(eig)), 1e-300)
    if np.min(eig) < -tol:
        return (f"site {site!r}: {name} is not positive semi-definite (smallest eigenvalue "
                f"{np.min(eig):.4g}); it is a covariance, variances on the diagonal")
    return None


def _state_space_problems(site, d):
    out = []
    fields = [f for f in ("A", "A_1", "B", "C", "R", "u0_mean", "u0_cov", "u0")
              if getattr(d, f, None) is not None]
    for f in fields:
        if not np.all(np.isfinite(np.asarray(getattr(d, f)))):
            out.append(f"site {site!r}: {f} has non-finite entries (NaN or inf) at these "
                       f"parameters: {_fmt(getattr(d, f))}")
    if isinstance(d, KalmanLGSS) and d.stationary and float(np.min(d._prior_ok)) == 0.0:
        radius = np.max(np.abs(np.linalg.eigvals(np.asarray(d.A))))
        out.append(f"site {site!r}: u0_cov='stationary' needs a stable A, but A has spectral "
                   f"radius {radius:.6g} >= 1 (no stationary distribution): restrict the "
                   f"parameters of A to the stationary region, or give u0_cov explicitly "
                   f"(e.g. a diffuse prior for unit roots)")
    for f in ("R", "u0_cov"):
        if getattr(d, f, None) is not None and not (f == "u0_cov" and getattr(d, "stationary",
                                                                               False)):
            p = _psd_problem(f, site, getattr(d, f))
            if p:
                out.append(p)
    return out


def diagnose(model, *args, params=None, rng_seed=0, **kwargs):
    """Run ``model(*args, **kwargs)`` once and say which site makes its log density
    non-finite, and why.

    :param params: values of latent sites (a dict; missing ones are drawn from their priors
        with ``rng_seed``), e.g. ``mcmc.last_state`` ``z`` or an initial guess.
    :return: a :class:`Diagnosis` (``print`` it).
    """
    problems = []
    try:
        seeded = handlers.seed(handlers.substitute(model, data=params or {}), rng_seed)
        # NumPyro's argument validation would stop at the first invalid parameter with a
        # generic message; the checks below say what is wrong with it
        with numpyro.validation_enabled(False):
            trace = handlers.trace(seeded).get_trace(*args, **kwargs)
    except Exception as err:  # the model itself refuses the values: that is the answer
        return Diagnosis(False, (f"the model raised {type(err).__name__}: {err}",), params or {})
    latent = {}
    for name, site in trace.items():
        if site["type"] != "sample":
            continue
        fn, value = site["fn"], site["value"]
        if not site["is_observed"]:
            latent[name] = value
        with warnings.catch_warnings():  # out-of-support values are what we look for
            warnings.simplefilter("ignore", UserWarning)
            lp = np.asarray(jnp.sum(fn.log_prob(value)))
        if site["is_observed"] and (site.get("infer") or {}).get("is_auxiliary") \
                or type(fn).__name__ == "Unit":
            if not np.isfinite(lp):
                problems.append(f"factor {name!r} is {lp} (a numpyro.factor guard, e.g. "
                                f"nss.dsge.log_prob_guard: the Blanchard-Kahn conditions fail "
                                f"or the solution is not determinate at these parameters)")
            continue
        d = _unwrap(fn)
        if isinstance(d, _SS):
            found = _state_space_problems(name, d)
            problems += found
            if not found and not np.isfinite(lp):
                problems.append(f"site {name!r}: the likelihood is {lp} although the matrices "
                                f"pass the checks (an innovation covariance C P C' + R that "
                                f"is not positive definite, or an overflowing path)")
        elif not np.isfinite(lp):
            where = "observed data" if site["is_observed"] else "value"
            problems.append(f"site {name!r}: log density {lp} at {where} {_fmt(value)} "
                            f"({type(fn).__name__}: outside its support?)")
    return Diagnosis(not problems, tuple(problems), latent)
