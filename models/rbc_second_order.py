r"""The pruned second-order RBC model (reference matrices of DifferenceEquations.jl), joint.

The second-order perturbation solution of the RBC model (``models/rbc.py``) at
``alpha=0.5, beta=0.95, rho=0.2, delta=0.02`` is, in the pruned form of Andreasen,
Fernández-Villaverde & Rubio-Ramírez (2017),

.. math::
    u^f_t &= A_1 u^f_{t-1} + B w_t, \\
    u_t &= A_0 + A_1 u_{t-1} + \mathrm{quad}(A_2, u^f_{t-1}) + B w_t, \\
    y_t &= C_0 + C_1 u_t + \mathrm{quad}(C_2, u^f_t) + v_t,\quad v_t \sim N(0, \Omega^2 I),

with the reference ``A_0, A_1, A_2, C_0, C_1, C_2`` of ``models.reference_data.rbc()`` and
``B = (0, -sigma)``. The shock scale ``sigma`` is the one parameter that the reference matrices
determine exactly at every value: the perturbation coefficients ``h_xx, g_xx`` (hence
``A_2, C_2``) and ``A_1, C_1`` do not depend on it, ``B`` is proportional to it and the
constants ``A_0 = h_sigma_sigma / 2``, ``C_0`` to its square. So :func:`matrices` rescales the
reference (``sigma_ref = 0.01``) and :func:`joint_model` infers ``sigma`` with the shocks as a
latent ``N(0, 1)`` site.

:func:`second_order` builds the same matrices from the deep parameters ``alpha, beta, rho,
delta, sigma`` with the package's second-order solver (:func:`numpyro_statespace.
solve_second_order` on the equilibrium conditions of ``models/rbc.py``); at the reference
parameters it reproduces the reference matrices (to 1e-12), and :func:`joint_distribution_from`
gives the pruned joint likelihood as a function of the deep parameters.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpyro
import numpyro.distributions as dist

import numpyro_statespace as nss
from numpyro_statespace import kernels

from . import rbc, reference_data

_REF = reference_data.rbc()
#: the reference shock scale and the default observation-noise standard deviation
TRUTH = {"sigma": 0.01, "Omega": 0.01}
NAMES = {"state": ("k", "z"), "observable": ("c", "k"), "shock": ("eps",)}


def matrices(sigma=TRUTH["sigma"]):
    """``(A_0 (2,), A_1 (2, 2), A_2 (2, 2, 2), B (2, 1), C_0 (2,), C_1 (2, 2), C_2 (2, 2, 2))``
    at shock scale ``sigma`` (see the module docstring)."""
    sigma = jnp.asarray(sigma)
    ratio = sigma / TRUTH["sigma"]
    ref = {k: jnp.asarray(_REF[k]) for k in ("A_0", "A_1", "A_2", "B", "C_0", "C_1", "C_2")}
    return (ref["A_0"] * ratio**2, ref["A_1"], ref["A_2"], ref["B"] * ratio,
            ref["C_0"] * ratio**2, ref["C_1"], ref["C_2"])


def second_order(**params):
    """Second-order solution at ``params`` (``alpha, beta, rho, delta, sigma``; missing ones
    from ``models.rbc.TRUTH``).

    :return: :class:`numpyro_statespace.SecondOrderSolution`, states ``(k, z)``, observables
        ``(c, k)``; ``ok`` is also False where the steady state does not exist.
    """
    p = rbc._params(params)
    y_ss, x_ss, valid = rbc.steady_state(p)
    sol = nss.solve_second_order(rbc.equilibrium, y_ss, x_ss, p,
                                 jnp.asarray(rbc.ETA, y_ss.dtype), Gamma=p["sigma"][None],
                                 observables=rbc.OBSERVABLES)
    return sol._replace(ok=sol.ok & valid)


def joint_distribution_from(noise, *, R=None, u0=None, **params):
    """``JointQuadraticSS(..., pruned=True)`` from the deep parameters (:func:`second_order`)
    given ``noise (T, 1)``; ``R`` and ``u0`` as in :func:`joint_distribution`. Returns
    ``(distribution, ok)``."""
    R = TRUTH["Omega"] ** 2 * jnp.eye(2) if R is None else R
    u0 = jnp.zeros(2) if u0 is None else u0
    s = second_order(**params)
    d = nss.JointQuadraticSS(s.A_0, s.A_1, s.A_2, s.B, s.C_0, s.C_1, s.C_2, R, u0, noise,
                             pruned=True)
    return d, s.ok


def problem(num_timesteps=None, *, sigma=TRUTH["sigma"], R=None, noise=None, observables=None):
    """A :class:`numpyro_statespace.PrunedQuadraticStateSpaceProblem`; by default the reference
    noise, observables and ``R = diag(0.01, 0.01)`` of DifferenceEquations.jl's test suite,
    first ``num_timesteps`` rows (all 200 when None)."""
    T = num_timesteps or _REF["noise"].shape[0]
    noise = _REF["noise"][:T] if noise is None else noise
    observables = _REF["observables"][:T] if observables is None else observables
    R = _REF["R"] if R is None else R
    A_0, A_1, A_2, B, C_0, C_1, C_2 = matrices(sigma)
    return nss.PrunedQuadraticStateSpaceProblem(
        A_0, A_1, A_2, B, jnp.zeros(2), (0, T), C_0=C_0, C_1=C_1, C_2=C_2,
        observables_noise=R, noise=noise, observables=observables)


def joint_distribution(noise, *, sigma=TRUTH["sigma"], R=None, u0=None):
    """``JointQuadraticSS(..., pruned=True)`` given ``noise (T, 1)``; ``R`` defaults to
    ``Omega^2 I`` with :data:`TRUTH`'s ``Omega``, ``u0`` to zeros."""
    R = TRUTH["Omega"] ** 2 * jnp.eye(2) if R is None else R
    u0 = jnp.zeros(2) if u0 is None else u0
    A_0, A_1, A_2, B, C_0, C_1, C_2 = matrices(sigma)
    return nss.JointQuadraticSS(A_0, A_1, A_2, B, C_0, C_1, C_2, R, u0, noise, pruned=True)


def joint_model(y=None, num_timesteps=None, *, Omega=TRUTH["Omega"], whiten=False):
    """``sigma ~ LogNormal(log 0.01, 0.5)``, shocks ``w (T, 1)`` latent, ``u_0 = 0``.

    :param y: ``(T, 2)`` observations of ``c`` and ``k`` (deviations); :param Omega: observation
        noise standard deviation (fixed); :param whiten: sample the shocks whitened by their
        posterior under the first-order part (``A_1, B, C_1`` with offsets ``A_0, C_0``).
    """
    T = y.shape[0] if y is not None else num_timesteps
    sigma = numpyro.sample("sigma", dist.LogNormal(jnp.log(TRUTH["sigma"]), 0.5))
    R = Omega**2 * jnp.eye(2)
    whitening = None
    if whiten:
        A_0, A_1, _, B, C_0, C_1, _ = matrices(sigma)
        whitening = nss.Whitening(A_1, B, C_1, R, y, jnp.zeros(2), state_offset=A_0,
                                  obs_offset=C_0)
    w = nss.sample_noise("w", T, 1, whiten=whitening)
    numpyro.sample("y", joint_distribution(w, sigma=sigma, R=R), obs=y)


def simulate(key, num_timesteps, *, sigma=TRUTH["sigma"], Omega=TRUTH["Omega"]):
    """``(y (T, 2), w (T, 1))`` from the pruned model at ``sigma``, ``u_0 = 0``."""
    kw, kv = jax.random.split(key)
    w = jax.random.normal(kw, (num_timesteps, 1))
    A_0, A_1, A_2, B, C_0, C_1, C_2 = matrices(sigma)
    u, uf, _ = kernels.quadratic_states(A_0, A_1, A_2, B, jnp.zeros(2), w, True)
    z = kernels.quadratic_observations(C_0, C_1, C_2, u, uf)[1:]
    return z + Omega * jax.random.normal(kv, z.shape), w
