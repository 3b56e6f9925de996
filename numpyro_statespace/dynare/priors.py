r"""Dynare's priors, in Dynare's parameterisation, as NumPyro distributions.

``estimated_params`` gives each prior by its mean :math:`\mu` and standard deviation
:math:`\sigma` (``P1``, ``P2``) and optional ``P3``, ``P4``; the shapes are converted exactly as
Dynare's ``matlab/distributions/*_specification.m`` and ``set_prior.m`` do:

- ``beta_pdf`` on :math:`[a, b]` (``P3, P4``; default :math:`[0, 1]`): with
  :math:`m = (\mu - a)/(b - a)`, :math:`s^2 = \sigma^2/(b - a)^2`,
  :math:`\alpha = (1 - m) m^2 / s^2 - m`, :math:`\beta = \alpha (1/m - 1)` and
  :math:`(x - a)/(b - a) \sim \mathrm{Beta}(\alpha, \beta)`.
- ``gamma_pdf`` shifted by :math:`a` (``P3``, default 0): scale :math:`\theta = \sigma^2 /
  (\mu - a)`, shape :math:`k = (\mu - a)/\theta`, :math:`x - a \sim \mathrm{Gamma}(k, \theta)`.
- ``normal_pdf``: :math:`N(\mu, \sigma^2)` (truncation by ``P3, P4`` is refused).
- ``inv_gamma_pdf`` (type 1, for a standard deviation): density
  :math:`p(x) = \frac{2}{\Gamma(\nu/2)} (s/2)^{\nu/2} x^{-\nu-1} e^{-s/(2x^2)}`, i.e.
  :math:`x^2 \sim \text{InverseGamma}(\nu/2, s/2)`; :math:`\nu` solves Dynare's ``ig1fun``
  :math:`\log(2\mu^2) - \log((\sigma^2 + \mu^2)(\nu - 2)) + 2(\log\Gamma(\nu/2) -
  \log\Gamma((\nu-1)/2)) = 0` and :math:`s = (\sigma^2 + \mu^2)(\nu - 2)`; for
  :math:`\sigma = \infty`, :math:`\nu = 2` and :math:`s = 2\mu^2/\pi`.
- ``uniform_pdf`` on ``[P3, P4]`` when both are given, otherwise on
  :math:`\mu \mp \sqrt{3}\sigma`.

The ``LB, UB`` of an ``estimated_params`` line are bounds for Dynare's mode finder, not part
of the prior density, and are not applied here.
"""

from __future__ import annotations

import math

import numpyro.distributions as dist
from numpyro.distributions import transforms

from .errors import DynareError


def _ig1fun(nu, mu2, sigma2):
    return (math.log(2 * mu2) - math.log((sigma2 + mu2) * (nu - 2))
            + 2 * (math.lgamma(nu / 2) - math.lgamma((nu - 1) / 2)))


def inverse_gamma1_parameters(mean, sd):
    """``(s, nu)`` of Dynare's inverse gamma (type 1) with this mean and standard deviation
    (bisection on ``ig1fun`` to relative width 1e-14, as Dynare's own solver)."""
    mu2 = mean * mean
    if math.isinf(sd):
        return 2 * mu2 / math.pi, 2.0
    sigma2 = sd * sd
    lo, hi = 2.0, max(4.0, 2 * math.sqrt(2 * (2 + mu2 / sigma2)))
    while _ig1fun(hi, mu2, sigma2) > 0:  # ig1fun decreases in nu from +inf at nu = 2
        lo, hi = hi, 2 * hi
        if hi > 1e12:
            raise ValueError(f"no inverse gamma with mean {mean} and sd {sd}")
    while hi / lo - 1 > 1e-14:
        mid = 0.5 * (lo + hi)
        if _ig1fun(mid, mu2, sigma2) > 0:
            lo = mid
        else:
            hi = mid
    nu = 0.5 * (lo + hi)
    return (sigma2 + mu2) * (nu - 2), nu


def _finite(x):
    return x is not None and not math.isnan(x)


def dynare_prior(shape, mean, sd, p3=None, p4=None, *, name="", where=None):
    """The NumPyro distribution of a Dynare prior (see the module docstring).

    :param shape: ``"beta" | "gamma" | "normal" | "inv_gamma" | "uniform"``;
    :param mean, sd: ``P1, P2``; :param p3, p4: ``P3, P4`` (None or NaN: Dynare's defaults).
    """
    def refuse(msg, hint):
        raise DynareError(f"the {shape} prior of {name}: {msg}", where, hint)

    if shape == "uniform":
        lo, hi = (p3, p4) if _finite(p3) and _finite(p4) else (
            mean - math.sqrt(3) * sd, mean + math.sqrt(3) * sd)
        return dist.Uniform(lo, hi)
    if not sd > 0:
        refuse(f"standard deviation {sd} is not positive", "Give P2 > 0")
    if shape == "normal":
        if (_finite(p3) and not math.isinf(p3)) or (_finite(p4) and not math.isinf(p4)):
            refuse("a truncated normal (P3, P4) is outside the supported subset",
                   "Drop P3, P4 or use a beta prior on a bounded interval")
        return dist.Normal(mean, sd)
    if shape == "beta":
        lo = p3 if _finite(p3) else 0.0
        hi = p4 if _finite(p4) else 1.0
        m, s2 = (mean - lo) / (hi - lo), sd * sd / (hi - lo) ** 2
        if not 0 < m < 1 or s2 >= (1 - m) * m:
            largest = math.sqrt((1 - m) * m) * (hi - lo) if 0 < m < 1 else 0.0
            refuse(f"mean {mean} and sd {sd} define no beta on [{lo}, {hi}]",
                   f"Give a mean inside the bounds and sd < {largest:.4g}")
        a = (1 - m) * m * m / s2 - m
        base = dist.Beta(a, a * (1 / m - 1))
        if lo == 0.0 and hi == 1.0:
            return base
        return dist.TransformedDistribution(base, transforms.AffineTransform(lo, hi - lo))
    if shape == "gamma":
        lo = p3 if _finite(p3) else 0.0
        if math.isinf(sd) or mean <= lo:
            refuse(f"mean {mean} must exceed the shift {lo} and sd be finite",
                   "Give P1 > P3 and a finite P2")
        theta = sd * sd / (mean - lo)
        base = dist.Gamma((mean - lo) / theta, 1.0 / theta)
        if lo == 0.0:
            return base
        return dist.TransformedDistribution(base, transforms.AffineTransform(lo, 1.0))
    if shape == "inv_gamma":
        if _finite(p3) and p3 != 0:
            refuse("a shifted inverse gamma (P3 != 0) is outside the supported subset",
                   "Drop P3")
        if not mean > 0:
            refuse(f"mean {mean} is not positive", "Give P1 > 0")
        s, nu = inverse_gamma1_parameters(mean, sd)
        return dist.TransformedDistribution(dist.InverseGamma(nu / 2, s / 2),
                                            transforms.PowerTransform(0.5))
    refuse("unknown shape", "Use beta_pdf, gamma_pdf, normal_pdf, inv_gamma_pdf or uniform_pdf")
