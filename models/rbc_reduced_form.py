"""The RBC model of DifferenceEquations.jl's test suite in reduced form, with free parameters.

The first-order solution (states: capital ``k`` and technology ``z``; observables ``c`` and
``k``) has the structure

    A = [[a, 6.2094], [0, rho]],  B = [[0], [-sigma]],  C (fixed, from the reference),

and the pruned second-order solution adds the reference ``A_0, A_2, C_0, C_2``. The reference
values are ``a = 0.95684, rho = 0.2, sigma = 0.01``. These NumPyro models put priors on
``a, rho, sigma`` and use the Kalman (marginal) likelihood or the joint likelihood with the
shocks as a latent site. (The structural model, with deep parameters and a perturbation solver,
is ``models/rbc.py``.)
"""

from __future__ import annotations

import jax.numpy as jnp
import numpyro
import numpyro.distributions as dist

import numpyro_statespace as nss

from . import reference_data

_REF = reference_data.rbc()
TRUTH = {"a": float(_REF["A"][0, 0]), "rho": 0.2, "sigma": 0.01}
#: observation-noise variances of these models (s.d. 0.01 on both observables): a diagonal
#: covariance given as its variances, which takes the Kalman filter's univariate update
R = 1e-4 * jnp.ones(2)
NAMES = {"state": ("k", "z"), "observable": ("c", "k_obs"), "shock": ("eps_z",)}


def matrices(a, rho, sigma):
    """First-order ``A (2, 2)``, ``B (2, 1)`` and ``C (2, 2)`` at the given parameters."""
    zero = jnp.zeros_like(a)
    A = jnp.array([[a, zero + _REF["A"][0, 1]], [zero, rho]])
    B = jnp.array([[zero], [-sigma]])
    return A, B, jnp.asarray(_REF["C"])


def second_order_terms():
    """The reference ``A_0 (2,)``, ``A_2 (2, 2, 2)``, ``C_0 (2,)``, ``C_2 (2, 2, 2)``."""
    return tuple(jnp.asarray(_REF[k]) for k in ("A_0", "A_2", "C_0", "C_2"))


def priors():
    """Sample ``a, rho, sigma`` from their priors (inside a NumPyro model)."""
    a = numpyro.sample("a", dist.Uniform(0.5, 0.999))
    rho = numpyro.sample("rho", dist.Uniform(0.0, 0.9))
    sigma = numpyro.sample("sigma", dist.HalfNormal(0.05))
    return a, rho, sigma


def kalman_model(y=None, num_timesteps=None, known_u0=False):
    """Marginal likelihood; ``u_0`` from the stationary distribution, or ``u_0 = 0`` exactly
    with ``known_u0=True`` (the joint models' assumption). NaN in ``y`` = missing."""
    T = y.shape[0] if y is not None else num_timesteps
    A, B, C = matrices(*priors())
    u0_cov = jnp.zeros((2, 2)) if known_u0 else "stationary"
    numpyro.sample("y", nss.KalmanLGSS(A, B, C, R, jnp.zeros(2), u0_cov, T), obs=y)


def joint_model(y=None, num_timesteps=None, whiten=False):
    """Joint likelihood with the shocks ``w (T, 1)`` as a latent ``N(0, 1)`` site; ``u_0 = 0``.

    ``whiten=True`` samples the shocks whitened by their posterior under this (linear) model
    (site ``w_white``; ``w`` stays a deterministic site), see :func:`nss.sample_noise`.
    """
    T = y.shape[0] if y is not None else num_timesteps
    A, B, C = matrices(*priors())
    u0 = jnp.zeros(2)
    w = nss.sample_noise("w", T, 1, whiten=nss.Whitening(A, B, C, R, y, u0) if whiten else None)
    numpyro.sample("y", nss.JointLGSS(A, B, C, R, u0, w), obs=y)


def pruned_joint_model(y=None, num_timesteps=None, whiten=False):
    """Pruned second-order model, joint likelihood with latent shocks; ``u_0 = 0``.

    ``whiten=True`` whitens the shocks by the first-order part (``A_1, B, C_1`` with offsets
    ``A_0, C_0``); the likelihood stays the exact pruned second-order one.
    """
    T = y.shape[0] if y is not None else num_timesteps
    A, B, C = matrices(*priors())
    A_0, A_2, C_0, C_2 = second_order_terms()
    whitening = nss.Whitening(A, B, C, R, y, jnp.zeros(2), state_offset=A_0, obs_offset=C_0)
    w = nss.sample_noise("w", T, 1, whiten=whitening if whiten else None)
    numpyro.sample("y", nss.JointQuadraticSS(A_0, A, A_2, B, C_0, C, C_2, R, jnp.zeros(2), w,
                                             pruned=True), obs=y)


def simulate(key, num_timesteps, model=kalman_model, params=None):
    """Data ``(T, 2)`` from ``model`` at ``params`` (default: :data:`TRUTH`)."""
    params = {k: jnp.asarray(v) for k, v in (params or TRUTH).items()}
    conditioned = numpyro.handlers.condition(numpyro.handlers.seed(model, key), data=params)
    return numpyro.handlers.trace(conditioned).get_trace(num_timesteps=num_timesteps)["y"]["value"]
