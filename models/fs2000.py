r"""Schorfheide (2000)'s cash-in-advance model (Dynare's ``fs2000.mod``), in Dynare timing.

Ported from MacroModelling.jl's ``models/FS2000.jl`` (MIT, ``thorek1/MacroModelling.jl``): 16
endogenous variables, two shocks (technology ``e_a``, money growth ``e_m``, each ``N(0, 1)`` and
scaled by ``z_e_a``, ``z_e_m``), nine parameters, and the observables
``log_gy_obs = log(dA_t y_t / y_{t-1})`` (output growth) and
``log_gp_obs = log(P_t m_{t-1} / (P_{t-1} dA_t))`` (inflation). The closed-form steady state is
MacroModelling.jl's ``FS2000_custom_steady_state_function`` (itself Schorfheide's, via Dynare's
``fs2000_steadystate.m``). The Euler equation's ``c_{t+2}``, ``P_{t+2}`` become auxiliary
variables (``AUX_LEAD_1_c = E_t c_{t+1}``), Dynare's rule; MacroModelling.jl notes that its own
treatment of these leads differs from Dynare's at second order in the ``sigma^2`` terms.

Data: ``data/FS2000_data.csv`` (192 quarters of ``gy_obs``, ``gp_obs``; from MacroModelling.jl's
``test/data``, MIT); the observables are their logs, as in its ``test/test_estimation.jl``.

Priors (``test/test_estimation.jl``), translated exactly. MacroModelling.jl's
``Beta(mu, sigma, μσ = true)`` is the beta distribution with that mean and standard deviation:
``nu = mu (1 - mu) / sigma^2 - 1``, ``Beta(mu nu, (1 - mu) nu)``. Its
``InverseGamma(mu, sigma, μσ = true)`` has shape ``(mu / sigma)^2 + 2`` and scale
``mu ((mu / sigma)^2 + 1)``; with ``sigma = Inf`` that is shape 2 and scale ``mu``: the inverse
gamma with mean ``mu`` and infinite variance (NumPyro's ``InverseGamma(2, mu)``, rate = scale).

=======  =========================  ======  ===========================
name     prior                      calib.  meaning
=======  =========================  ======  ===========================
alp      Beta, mean 0.356, sd 0.02  0.356   capital share
bet      Beta, mean 0.993, sd 0.002 0.993   discount factor
gam      Normal(0.0085, 0.003)      0.0085  mean technology growth
mst      Normal(1.0002, 0.007)      1.0002  mean money growth
rho      Beta, mean 0.129, sd 0.223 0.129   money growth persistence
psi      Beta, mean 0.65, sd 0.05   0.65    leisure weight
del      Beta, mean 0.01, sd 0.005  0.01    depreciation
z_e_a    InverseGamma(2, 0.035449)  0.035449  sd of the technology shock
z_e_m    InverseGamma(2, 0.008862)  0.008862  sd of the money shock
=======  =========================  ======  ===========================

NumPyro models (``y`` the ``(T, 2)`` data in levels of the logs, columns ``OBSERVABLES``):
:func:`kalman_model` (first order, Kalman filter, no measurement error, stationary initial
covariance), :func:`joint_model` (pruned second order, the shocks a latent site whitened by the
first-order part, a small measurement error: the joint likelihood needs one),
:func:`inversion_model` (pruned second order or first order, the inversion filter: shocks
recovered exactly, no measurement error). All start at the deterministic steady state
(``u_0 = 0``); MacroModelling.jl starts its second-order filters at the stochastic steady state.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist

import numpyro_statespace as nss
from numpyro_statespace import kernels

from . import reference_data

PARAMETERS = ("alp", "bet", "gam", "mst", "rho", "psi", "del", "z_e_a", "z_e_m")
#: MacroModelling.jl's calibration (``@parameters FS2000``)
CALIBRATION = {"alp": 0.356, "bet": 0.993, "gam": 0.0085, "mst": 1.0002, "rho": 0.129,
               "psi": 0.65, "del": 0.01, "z_e_a": 0.035449, "z_e_m": 0.008862}
ENDOGENOUS = ("P", "R", "W", "c", "d", "dA", "e", "gp_obs", "gy_obs", "k", "l", "log_gp_obs",
              "log_gy_obs", "m", "n", "y")
EXOGENOUS = ("e_a", "e_m")
#: the data's columns, in this order
OBSERVABLES = ("log_gy_obs", "log_gp_obs")
#: MacroModelling.jl's posterior means with the Kalman filter (``test/test_estimation.jl``,
#: checked there to rtol 1e-2), in ``PARAMETERS`` order
MACROMODELLING_POSTERIOR_MEAN = (0.40248024934137033, 0.9905235783816697, 0.004618184988033483,
                                 1.014268215459915, 0.8459140293740781, 0.6851143053372912,
                                 0.0025570276255960107, 0.01373547787288702,
                                 0.003343985776134218)
#: standard deviation of the measurement error of :func:`joint_model` (both observables): 3 %
#: and 5 % of the data's own (0.011, 0.006), so 0.1 % and 0.25 % of their variance
JOINT_MEASUREMENT_SD = 3e-4


def equations(v, p):
    """The 16 equilibrium conditions (MacroModelling.jl's ``@model FS2000``), residual form."""
    alp, bet, gam, mst = p["alp"], p["bet"], p["gam"], p["mst"]
    rho, psi, dl = p["rho"], p["psi"], p["del"]
    tech = gam + p["z_e_a"] * v("e_a")            # log technology growth at t
    k_1, n = v("k", -1), v("n")
    return [
        v("dA") - jnp.exp(tech),
        jnp.log(v("m")) - (1 - rho) * jnp.log(mst) - rho * jnp.log(v("m", -1))
        - p["z_e_m"] * v("e_m"),
        -v("P") / (v("c", 1) * v("P", 1) * v("m"))
        + bet * v("P", 1) * (alp * jnp.exp(-alp * (gam + jnp.log(v("e", 1))))
                             * v("k") ** (alp - 1) * v("n", 1) ** (1 - alp)
                             + (1 - dl) * jnp.exp(-(gam + jnp.log(v("e", 1)))))
        / (v("c", 2) * v("P", 2) * v("m", 1)),
        v("W") - v("l") / n,
        -(psi / (1 - psi)) * (v("c") * v("P") / (1 - n)) + v("l") / n,
        v("R") - v("P") * (1 - alp) * jnp.exp(-alp * tech) * k_1 ** alp * n ** (-alp) / v("W"),
        1 / (v("c") * v("P")) - bet * v("P") * (1 - alp) * jnp.exp(-alp * tech) * k_1 ** alp
        * n ** (1 - alp) / (v("m") * v("l") * v("c", 1) * v("P", 1)),
        v("c") + v("k") - jnp.exp(-alp * tech) * k_1 ** alp * n ** (1 - alp)
        - (1 - dl) * jnp.exp(-tech) * k_1,
        v("P") * v("c") - v("m"),
        v("m") - 1 + v("d") - v("l"),
        v("e") - jnp.exp(p["z_e_a"] * v("e_a")),
        v("y") - k_1 ** alp * n ** (1 - alp) * jnp.exp(-alp * tech),
        v("gy_obs") - v("dA") * v("y") / v("y", -1),
        v("gp_obs") - (v("P") / v("P", -1)) * v("m", -1) / v("dA"),
        v("log_gy_obs") - jnp.log(v("gy_obs")),
        v("log_gp_obs") - jnp.log(v("gp_obs")),
    ]


def steady_state(p):
    """Closed-form steady state (MacroModelling.jl's ``FS2000_custom_steady_state_function``)."""
    alp, bet, gam, mst, psi, dl = (p[k] for k in ("alp", "bet", "gam", "mst", "psi", "del"))
    dA = jnp.exp(gam)
    gst = 1 / dA
    khst = ((1 - gst * bet * (1 - dl)) / (alp * gst ** alp * bet)) ** (1 / (alp - 1))
    xist = (((khst * gst) ** alp - (1 - gst * (1 - dl)) * khst) / mst) ** (-1)
    nust = psi * mst ** 2 / ((1 - alp) * (1 - psi) * bet * gst ** alp * khst ** alp)
    n = xist / (nust + xist)
    P = xist + nust
    k = khst * n
    l = psi * mst * n / ((1 - psi) * (1 - n))
    y = k ** alp * n ** (1 - alp) * gst ** alp
    gp_obs = mst / dA
    return {"P": P, "R": mst / bet, "W": l / n, "c": mst / P, "d": l - mst + 1, "dA": dA,
            "e": jnp.ones_like(dA), "gp_obs": gp_obs, "gy_obs": dA, "k": k, "l": l,
            "log_gp_obs": jnp.log(gp_obs), "log_gy_obs": gam * jnp.ones_like(dA), "m": mst,
            "n": n, "y": y}


MODEL = nss.DynareModel(equations, ENDOGENOUS, EXOGENOUS, PARAMETERS,
                        steady_state=steady_state, observables=OBSERVABLES)


def beta_mean_sd(mean, sd):
    """MacroModelling.jl's ``Beta(mean, sd, μσ = true)``."""
    nu = mean * (1 - mean) / sd ** 2 - 1
    return dist.Beta(mean * nu, (1 - mean) * nu)


def inverse_gamma_mean(mean):
    """MacroModelling.jl's ``InverseGamma(mean, Inf, μσ = true)``: shape 2, scale ``mean``."""
    return dist.InverseGamma(2.0, mean)


def priors():
    """Name -> NumPyro distribution, MacroModelling.jl's ``test/test_estimation.jl`` priors."""
    return {"alp": beta_mean_sd(0.356, 0.02), "bet": beta_mean_sd(0.993, 0.002),
            "gam": dist.Normal(0.0085, 0.003), "mst": dist.Normal(1.0002, 0.007),
            "rho": beta_mean_sd(0.129, 0.223), "psi": beta_mean_sd(0.65, 0.05),
            "del": beta_mean_sd(0.01, 0.005), "z_e_a": inverse_gamma_mean(0.035449),
            "z_e_m": inverse_gamma_mean(0.008862)}


def prior_inverse_mass(num_draws=4000, seed=0):
    """An initial inverse mass matrix for NUTS (``NUTS(..., inverse_mass_matrix=...)``): each
    parameter's prior variance in the unconstrained space NUTS moves in, keyed by the tuple of
    the nine sites (the other sites of a model, such as the joint route's shocks, keep the
    identity). The identity's unit scale is hundreds of times the scale of ``gam`` and ``mst``
    (prior s.d. 0.003 and 0.007), so warm-up's first trees run long until its first mass
    window ends; the prior's scales are known before any draw. Estimated from ``num_draws``
    prior draws (fixed ``seed``)."""
    names = tuple(sorted(PARAMETERS))
    key = jax.random.key(seed)
    variances = []
    for i, (name, prior) in enumerate(sorted(priors().items())):
        draws = prior.sample(jax.random.fold_in(key, i), (num_draws,))
        variances.append(jnp.var(dist.biject_to(prior.support).inv(draws)))
    return {names: jnp.stack(variances)}


def load_data():
    """``(192, 2)`` float64: ``log(gy_obs), log(gp_obs)`` (columns :data:`OBSERVABLES`)."""
    return np.log(np.loadtxt(reference_data.DATA_DIR / "FS2000_data.csv", delimiter=",",
                             skiprows=1))


def sample_parameters():
    """The nine parameters as NumPyro sites with their priors (a dict name -> value)."""
    return {k: numpyro.sample(k, d) for k, d in priors().items()}


def deviations(p, y):
    """The data in deviations from the steady state of the observables at ``p``."""
    return y - MODEL.observable_steady_state(p)


def _guarded(sol):
    nss.dsge.log_prob_guard("solution", sol.ok)
    return sol


def kalman_model(y, T=None):
    """First order, Kalman filter: two shocks, two observables, no measurement error, the
    stationary covariance of the state as the prior of ``u_0``."""
    T = y.shape[0] if T is None else T
    p = sample_parameters()
    sol = _guarded(MODEL.solve(p, order=1))
    n = sol.A.shape[0]
    d = nss.KalmanLGSS(sol.A, sol.B, sol.C, jnp.zeros(2), jnp.zeros(n), "stationary", T)
    numpyro.sample("y", d, obs=None if y is None else deviations(p, y))


def inversion_model(y, order=2, T=None):
    """Inversion filter (shocks recovered exactly, no measurement error) at ``order`` 1 or 2
    (pruned), from ``u_0 = 0``."""
    T = y.shape[0] if T is None else T
    p = sample_parameters()
    sol = _guarded(MODEL.solve(p, order=order))
    if order == 1:
        d = nss.InversionFilterLGSS(sol.A, sol.B, sol.C, jnp.zeros(sol.A.shape[0]), T)
    else:
        d = nss.InversionFilterSS(sol.A_0, sol.A_1, sol.A_2, sol.B, sol.C_0, sol.C_1, sol.C_2,
                                  jnp.zeros(sol.A_1.shape[0]), T, pruned=True)
    numpyro.sample("y", d, obs=None if y is None else deviations(p, y))


def joint_model(y, T=None, measurement_sd=JOINT_MEASUREMENT_SD):
    """Pruned second order, joint likelihood given the shocks, which are a latent site
    whitened by the model's first-order part, with a measurement error of standard deviation
    ``measurement_sd`` on both observables (the joint likelihood needs one).

    The whitening model is the first-order part (``A_1, B, C_1``) with constant offsets that
    include the stationary mean of the quadratic terms, ``A_0 + E quad(A_2, uf)`` and
    ``C_0 + E quad(C_2, uf)``: any such choice leaves the model's density exact (the
    change of variables is accounted for), and this one centres the whitened shocks closer to
    their posterior (at the calibration, their posterior means move from up to 3 to about 1
    posterior standard deviation away from zero).
    """
    T = y.shape[0] if T is None else T
    p = sample_parameters()
    sol = _guarded(MODEL.solve(p, order=2))
    n = sol.A_1.shape[0]
    u0 = jnp.zeros(n)
    R = jnp.full(2, measurement_sd ** 2)
    y_dev = None if y is None else deviations(p, y)
    S, _ = kernels.stationary_covariance(sol.A_1, sol.B @ sol.B.T)
    a = sol.A_0 + jnp.einsum("ijk,jk->i", sol.A_2, S)
    d = sol.C_0 + jnp.einsum("ijk,jk->i", sol.C_2, S)
    whiten = nss.Whitening(sol.A_1, sol.B, sol.C_1, R, y_dev, u0, state_offset=a, obs_offset=d)
    w = nss.sample_noise("w", T, 2, whiten=whiten)
    dist_y = nss.JointQuadraticSS(sol.A_0, sol.A_1, sol.A_2, sol.B, sol.C_0, sol.C_1, sol.C_2,
                                  R, u0, w, pruned=True)
    numpyro.sample("y", dist_y, obs=y_dev)
