r"""The FVGQ20 DSGE model (Fernández-Villaverde & Guerrón-Quintana 2020) as a benchmark-size model.

14 states, 6 shocks, 6 observables, 232 periods: the first-order (``A, B, C``) and second-order
(``A_0, A_1, A_2, C_0, C_1, C_2``) perturbation solutions of DifferenceEquations.jl's test suite
(``models.reference_data.fvgq20()``), at the calibration they were computed for.

So that there is something to infer, the models carry two scale parameters that the reference
matrices determine exactly:

- ``shock_scale`` multiplies ``B``; in the second-order solution the constants ``A_0`` and
  ``C_0`` (the ``sigma^2`` terms ``h_sigma_sigma / 2``, ``g_sigma_sigma / 2``) scale with its
  square and ``A_1, A_2, C_1, C_2`` do not depend on it;
- ``obs_sd`` is the standard deviation of the observation noise, ``R = obs_sd^2 I_6`` (the
  reference likelihoods use ``R = 1e-3 I_6``; the model's own measurement-error standard
  deviations ``D`` are ``sqrt(1e-5)``).

Three NumPyro models: :func:`kalman_model` (marginal likelihood, stationary start),
:func:`joint_model` (linear, shocks latent) and :func:`pruned_joint_model` (pruned second order,
shocks latent); the latter two take ``whiten=True`` to sample whitened shocks.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist

import numpyro_statespace as nss

from . import reference_data

N_STATES, N_SHOCKS, N_OBS, NUM_TIMESTEPS = 14, 6, 6, 232
#: ``R`` of the reference likelihoods
R_REF = 1e-3 * np.eye(N_OBS)
_CACHE = {}


def reference():
    """The reference matrices and data (a cached ``reference_data.fvgq20()``; NumPy arrays)."""
    if "ref" not in _CACHE:
        _CACHE["ref"] = reference_data.fvgq20()
    return _CACHE["ref"]


def first_order(shock_scale=1.0):
    """``(A (14, 14), B (14, 6), C (6, 14))`` with ``B`` multiplied by ``shock_scale``."""
    ref = reference()
    return jnp.asarray(ref["A"]), jnp.asarray(ref["B"]) * shock_scale, jnp.asarray(ref["C"])


def second_order(shock_scale=1.0):
    """``(A_0 (14,), A_1, A_2 (14, 14, 14), B, C_0 (6,), C_1, C_2 (6, 14, 14))`` at
    ``shock_scale`` (``B`` times it, ``A_0`` and ``C_0`` times its square)."""
    ref = reference()
    s = jnp.asarray(shock_scale)
    return (jnp.asarray(ref["A_0"]) * s**2, jnp.asarray(ref["A_1"]), jnp.asarray(ref["A_2"]),
            jnp.asarray(ref["B"]) * s, jnp.asarray(ref["C_0"]) * s**2, jnp.asarray(ref["C_1"]),
            jnp.asarray(ref["C_2"]))


def _data(noise, observables, T):
    ref = reference()
    T = NUM_TIMESTEPS if T is None else T
    noise = ref["noise"][:T] if noise is None else noise
    observables = ref["observables"][:T] if observables is None else observables
    return noise, observables, T


def linear_problem(num_timesteps=None, *, shock_scale=1.0, R=R_REF, noise=None, observables=None):
    """:class:`numpyro_statespace.LinearStateSpaceProblem` with the reference data (first
    ``num_timesteps`` rows, default all 232), ``u0 = 0``, ``R = 1e-3 I``."""
    noise, observables, T = _data(noise, observables, num_timesteps)
    A, B, C = first_order(shock_scale)
    return nss.LinearStateSpaceProblem(A, B, jnp.zeros(N_STATES), (0, T), C=C,
                                       observables_noise=R, noise=noise, observables=observables)


def pruned_problem(num_timesteps=None, *, shock_scale=1.0, R=R_REF, noise=None,
                   observables=None):
    """:class:`numpyro_statespace.PrunedQuadraticStateSpaceProblem` with the reference data."""
    noise, observables, T = _data(noise, observables, num_timesteps)
    A_0, A_1, A_2, B, C_0, C_1, C_2 = second_order(shock_scale)
    return nss.PrunedQuadraticStateSpaceProblem(
        A_0, A_1, A_2, B, jnp.zeros(N_STATES), (0, T), C_0=C_0, C_1=C_1, C_2=C_2,
        observables_noise=R, noise=noise, observables=observables)


def kalman_distribution(num_timesteps=NUM_TIMESTEPS, *, shock_scale=1.0, R=R_REF):
    """``KalmanLGSS`` of the first-order model, ``u_0`` from the stationary distribution."""
    A, B, C = first_order(shock_scale)
    return nss.KalmanLGSS(A, B, C, R, jnp.zeros(N_STATES), "stationary", num_timesteps)


def joint_distribution(noise, *, shock_scale=1.0, R=R_REF):
    """``JointLGSS`` of the first-order model given ``noise (T, 6)``, ``u_0 = 0``."""
    A, B, C = first_order(shock_scale)
    return nss.JointLGSS(A, B, C, R, jnp.zeros(N_STATES), noise)


def pruned_joint_distribution(noise, *, shock_scale=1.0, R=R_REF):
    """``JointQuadraticSS(pruned=True)`` given ``noise (T, 6)``, ``u_0 = 0``."""
    A_0, A_1, A_2, B, C_0, C_1, C_2 = second_order(shock_scale)
    return nss.JointQuadraticSS(A_0, A_1, A_2, B, C_0, C_1, C_2, R, jnp.zeros(N_STATES), noise,
                                pruned=True)


def priors():
    """``shock_scale ~ LogNormal(0, 0.5)``, ``obs_sd ~ LogNormal(log sqrt(1e-3), 1)``."""
    s = numpyro.sample("shock_scale", dist.LogNormal(0.0, 0.5))
    obs_sd = numpyro.sample("obs_sd", dist.LogNormal(0.5 * jnp.log(1e-3), 1.0))
    return s, obs_sd**2 * jnp.eye(N_OBS)


def _T(y, num_timesteps):
    return y.shape[0] if y is not None else (num_timesteps or NUM_TIMESTEPS)


def kalman_model(y=None, num_timesteps=None):
    """Marginal likelihood of ``y (T, 6)``; NaN entries are missing."""
    s, R = priors()
    numpyro.sample("y", kalman_distribution(_T(y, num_timesteps), shock_scale=s, R=R), obs=y)


def joint_model(y=None, num_timesteps=None, whiten=False):
    """Linear model, shocks ``w (T, 6)`` latent (``whiten=True``: whitened by their posterior,
    see ``nss.sample_noise``)."""
    s, R = priors()
    A, B, C = first_order(s)
    whitening = nss.Whitening(A, B, C, R, y, jnp.zeros(N_STATES)) if whiten else None
    w = nss.sample_noise("w", _T(y, num_timesteps), N_SHOCKS, whiten=whitening)
    numpyro.sample("y", joint_distribution(w, shock_scale=s, R=R), obs=y)


def pruned_joint_model(y=None, num_timesteps=None, whiten=False):
    """Pruned second-order model, shocks ``w (T, 6)`` latent (``whiten=True``: whitened by the
    first-order part ``A_1, B, C_1`` with offsets ``A_0, C_0``)."""
    s, R = priors()
    whitening = None
    if whiten:
        A_0, A_1, _, B, C_0, C_1, _ = second_order(s)
        whitening = nss.Whitening(A_1, B, C_1, R, y, jnp.zeros(N_STATES), state_offset=A_0,
                                  obs_offset=C_0)
    w = nss.sample_noise("w", _T(y, num_timesteps), N_SHOCKS, whiten=whitening)
    numpyro.sample("y", pruned_joint_distribution(w, shock_scale=s, R=R), obs=y)
