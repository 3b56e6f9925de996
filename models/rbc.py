r"""The RBC model of DifferentiableStateSpaceModels.jl, solved by the package's perturbation solver.

Equilibrium conditions (states :math:`x = (k, z)`, controls :math:`y = (c, q)`, all in levels;
Schmitt-Grohé–Uribe timing, :math:`k_{t+1}` chosen at ``t``):

.. math::
    \frac{1}{c_t} &= \frac{\beta}{c_{t+1}}\left(\alpha e^{z_{t+1}} k_{t+1}^{\alpha-1}
        + 1 - \delta\right) \\
    c_t + k_{t+1} &= (1 - \delta) k_t + q_t \\
    q_t &= e^{z_t} k_t^{\alpha} \\
    z_{t+1} &= \rho z_t - \sigma \varepsilon_{t+1}

(the shock enters through the loading :math:`\eta = (0, -1)^\top` and :math:`\Gamma = \sigma`,
so ``B = (0, -sigma)``). Steady state, with :math:`r = (1/\beta - 1 + \delta)/\alpha`:
:math:`\bar k = r^{1/(\alpha-1)}`, :math:`\bar q = r^{\alpha/(\alpha-1)}`,
:math:`\bar c = \bar q - \delta\bar k`, :math:`\bar z = 0`.

The state-space form (deviations from the steady state) is ``A = h_x``, ``B = eta sigma`` and
``C`` the rows of ``[g_x; I]`` of the observables ``c`` and ``k``; at the reference parameters
(``alpha=0.5, beta=0.95, rho=0.2, delta=0.02, sigma=0.01``) these are the RBC matrices of
DifferenceEquations.jl's test suite (``models.reference_data.rbc()``). Observation noise:
``y_t = C u_t + v_t``, ``v_t ~ N(0, diag(Omega^2))`` with ``Omega`` a standard deviation.

NumPyro models (:func:`kalman_model`, :func:`joint_model`) put priors on ``alpha`` and ``beta``
and fix the others at :data:`TRUTH`; :func:`simulated_data` is their bundled 200-period data.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist

import numpyro_statespace as nss
from numpyro_statespace import dsge, kernels

from . import reference_data

#: reference ("true") parameters; ``Omega`` is the observation-noise standard deviation
TRUTH = {"alpha": 0.5, "beta": 0.95, "rho": 0.2, "delta": 0.02, "sigma": 0.01, "Omega": 0.01}
PARAMETERS = ("alpha", "beta", "rho", "delta", "sigma")
NAMES = {"state": ("k", "z"), "control": ("c", "q"), "observable": ("c", "k"),
         "shock": ("eps",)}
#: shock loading of the state transition, ``(n_x, K) = (2, 1)``
ETA = np.array([[0.0], [-1.0]])
#: observables as indices into ``[y; x] = (c, q, k, z)``
OBSERVABLES = (0, 2)
#: length of the bundled data
NUM_TIMESTEPS = 200
_DATA_SEED = 20240605


def equilibrium(y_next, y, x_next, x, p):
    """The residuals ``H(y', y, x', x; p)`` (4,) of the equilibrium conditions."""
    alpha, beta, rho, delta = p["alpha"], p["beta"], p["rho"], p["delta"]
    c, q = y[0], y[1]
    c_next = y_next[0]
    k, z = x[0], x[1]
    k_next, z_next = x_next[0], x_next[1]
    return jnp.stack([
        1.0 / c - beta / c_next * (alpha * jnp.exp(z_next) * k_next ** (alpha - 1) + 1 - delta),
        c + k_next - (1 - delta) * k - q,
        q - jnp.exp(z) * k ** alpha,
        z_next - rho * z,
    ])


def steady_state(p):
    """``(y_ss (2,), x_ss (2,), valid)``; ``valid`` is False where no steady state exists
    (``1/beta - 1 + delta <= 0``), and the values there are finite stand-ins."""
    alpha, beta, delta = p["alpha"], p["beta"], p["delta"]
    r = (1.0 / beta - 1.0 + delta) / alpha
    valid = (r > 0) & (alpha > 0) & (alpha < 1)
    # Double-where: keep the power's derivative finite where the branch is not taken.
    r = jnp.where(valid, r, 1.0)
    a = jnp.where(valid, alpha, 0.5)
    k = r ** (1.0 / (a - 1.0))
    q = r ** (a / (a - 1.0))
    c = q - delta * k
    valid = valid & (c > 0)
    return jnp.stack([c, q]), jnp.stack([k, jnp.zeros_like(k)]), valid


def _params(params):
    p = dict(TRUTH)
    unknown = set(params) - set(TRUTH)
    if unknown:
        raise ValueError(f"unknown RBC parameters {sorted(unknown)}; expected a subset of "
                         f"{sorted(TRUTH)}")
    p.update(params)
    return {k: jnp.asarray(v) for k, v in p.items()}


def first_order(**params):
    """First-order solution at ``params`` (missing ones from :data:`TRUTH`).

    :return: :class:`numpyro_statespace.dsge.FirstOrderSolution` with ``A (2, 2)``,
        ``B (2, 1)``, ``C (2, 2)`` (rows: observables ``c``, ``k``), ``g_x``, ``h_x`` and ``ok``
        (False where the steady state does not exist or Blanchard–Kahn fails).
    """
    p = _params(params)
    y_ss, x_ss, valid = steady_state(p)
    sol = dsge.solve_first_order(equilibrium, y_ss, x_ss, p, eta=jnp.asarray(ETA, y_ss.dtype),
                                 Gamma=p["sigma"][None], observables=OBSERVABLES)
    return sol._replace(ok=sol.ok & valid)


def observation_cov(Omega):
    """``R = diag(Omega^2, Omega^2)`` (``Omega`` a standard deviation)."""
    return jnp.eye(2) * jnp.square(Omega)


def priors():
    """``alpha ~ U(0.2, 0.8)``, ``beta ~ U(0.5, 0.99)`` (inside a NumPyro model)."""
    return {"alpha": numpyro.sample("alpha", dist.Uniform(0.2, 0.8)),
            "beta": numpyro.sample("beta", dist.Uniform(0.5, 0.99))}


def _solve_in_model():
    sol = first_order(**priors())
    dsge.log_prob_guard("determinacy", sol.ok)
    return sol


def kalman_model(y=None, num_timesteps=None):
    """Marginal (Kalman) likelihood; ``u_0`` from the stationary distribution.

    :param y: ``(T, 2)`` observations of ``c`` and ``k`` (deviations), NaN = missing.
    :param num_timesteps: ``T`` when ``y`` is None (prior predictive).
    """
    T = y.shape[0] if y is not None else num_timesteps
    sol = _solve_in_model()
    R = observation_cov(TRUTH["Omega"])
    numpyro.sample("y", nss.KalmanLGSS(sol.A, sol.B, sol.C, R, jnp.zeros(2), "stationary", T),
                   obs=y)


def joint_model(y=None, num_timesteps=None, whiten=False):
    """Joint likelihood with the shocks ``w (T, 1)`` as a latent ``N(0, 1)`` site; ``u_0 = 0``.

    ``whiten=True`` samples the shocks whitened by their posterior under the model at the
    proposed ``alpha, beta`` (``nss.Whitening``; site ``w_white``, ``w`` deterministic): the
    same joint density, without the shock–parameter coupling that slows NUTS down.
    """
    T = y.shape[0] if y is not None else num_timesteps
    sol = _solve_in_model()
    R = observation_cov(TRUTH["Omega"])
    u0 = jnp.zeros(2)
    whitening = nss.Whitening(sol.A, sol.B, sol.C, R, y, u0) if whiten else None
    w = nss.sample_noise("w", T, 1, whiten=whitening)
    numpyro.sample("y", nss.JointLGSS(sol.A, sol.B, sol.C, R, u0, w), obs=y)


def kalman_log_likelihood(y, **params):
    """``log p(y)`` of the linear model (Kalman filter, stationary start) at ``params``;
    ``-inf`` (with finite gradients) where :func:`first_order` is not ``ok``.

    :param y: ``(T, 2)``; ``params``: any of :data:`TRUTH`'s keys (the rest from it).
    """
    p = _params(params)
    sol = first_order(**{k: p[k] for k in PARAMETERS})
    y = jnp.asarray(y)
    d = nss.KalmanLGSS(sol.A, sol.B, sol.C, observation_cov(p["Omega"]), jnp.zeros(2),
                       "stationary", y.shape[0])
    return jnp.where(sol.ok, d.log_prob(y), -jnp.inf)


def simulate(key, num_timesteps, **params):
    """``(T, 2)`` observations from the linear model at ``params`` (default :data:`TRUTH`),
    starting at ``u_0 = 0``; JAX random numbers from ``key``."""
    p = _params(params)
    sol = first_order(**{k: p[k] for k in PARAMETERS})
    kw, kv = jax.random.split(key)
    w = jax.random.normal(kw, (num_timesteps, 1))
    v = jax.random.normal(kv, (num_timesteps, 2)) * p["Omega"]
    u, _ = kernels.linear_states(sol.A, sol.B, jnp.zeros(2), w)
    return u[1:] @ sol.C.T + v


def simulated_data():
    """The bundled data: ``(200, 2)`` float64 NumPy array (``c``, ``k``) at :data:`TRUTH`.

    Simulated deterministically with NumPy (``default_rng`` with a fixed seed) from the
    reference matrices, which equal :func:`first_order` at :data:`TRUTH` to ~1e-12, so the data
    do not depend on JAX's precision settings. ``u_0 = 0``.
    """
    ref = reference_data.rbc()
    rng = np.random.default_rng(_DATA_SEED)
    w = rng.standard_normal((NUM_TIMESTEPS, 1))
    v = rng.standard_normal((NUM_TIMESTEPS, 2)) * TRUTH["Omega"]
    u = np.zeros(2)
    y = np.empty((NUM_TIMESTEPS, 2))
    for t in range(NUM_TIMESTEPS):  # NumPy data generation, not library code
        u = ref["A"] @ u + ref["B"] @ w[t]
        y[t] = ref["C"] @ u + v[t]
    return y
