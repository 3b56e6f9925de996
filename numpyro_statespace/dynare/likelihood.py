"""Likelihoods and the NumPyro model of a :class:`~.loader.DynareFile`.

First order: ``KalmanLGSS`` of the deviations of the data from the observables' steady state,
started at the stationary distribution (Dynare's ``lik_init=1``). Second order: the pruned
model (``JointQuadraticSS(pruned=True)``) given standard-normal shocks; in the NumPyro model
the shocks are a latent site, sampled whitened by their first-order posterior
(``route="whitened"``), or recovered exactly by the inversion filter (``route="inversion"``,
first or second order: as many shocks as observables, no measurement error).
"""

from __future__ import annotations

import jax.numpy as jnp

from .errors import DynareError


def _order(dfile, order):
    order = dfile.order if order is None else order
    if order not in (1, 2):
        raise ValueError(f"order must be 1 or 2; got {order!r}")
    return order


def _state_space(dfile, data, p, order):
    """``(sol, y, R)``: the solution at ``p``, the data in deviations and ``R``."""
    y = dfile.data(data)  # checked before the (costly) solve
    p_all = dfile.parameters(p)
    sol = dfile.solve(p_all, order)
    y = y - dfile.observable_steady_state(p_all)
    return sol, y, dfile.measurement_cov(p_all)


def _joint(sol, R, noise):
    import numpyro_statespace as nss
    N = sol.A_1.shape[0]
    return nss.JointQuadraticSS(sol.A_0, sol.A_1, sol.A_2, sol.B, sol.C_0, sol.C_1, sol.C_2,
                                R, jnp.zeros(N, sol.A_1.dtype), noise, pruned=True)


def _kalman(sol, R, T):
    import numpyro_statespace as nss
    N = sol.A.shape[0]
    return nss.KalmanLGSS(sol.A, sol.B, sol.C, R, jnp.zeros(N, sol.A.dtype), "stationary", T)


def _inversion(sol, order, T):
    """The inversion filter (shocks recovered exactly from the data, no measurement error)
    from the deterministic steady state."""
    import numpyro_statespace as nss
    if order == 1:
        return nss.InversionFilterLGSS(sol.A, sol.B, sol.C, jnp.zeros(sol.A.shape[0]), T)
    return nss.InversionFilterSS(sol.A_0, sol.A_1, sol.A_2, sol.B, sol.C_0, sol.C_1, sol.C_2,
                                 jnp.zeros(sol.A_1.shape[0]), T, pruned=True)


def log_likelihood(dfile, data, p, order, noise):
    order = _order(dfile, order)
    sol, y, R = _state_space(dfile, data, p, order)
    if order == 1:
        value = _kalman(sol, R, y.shape[0]).log_prob(y)
    else:
        value = _joint(sol, R, noise).log_prob(y)
    return jnp.where(sol.ok, value, -jnp.inf)


def numpyro_model(dfile, data, order, route, num_timesteps):
    import numpyro

    import numpyro_statespace as nss
    from numpyro_statespace.dsge import log_prob_guard

    order = _order(dfile, order)
    if not dfile.priors:
        raise DynareError("the file has no estimated_params block with priors", None,
                          "Add 'estimated_params; NAME, SHAPE, MEAN, SD; ... end;'")
    if route not in ("whitened", "inversion"):
        raise ValueError(f"route must be 'whitened' or 'inversion'; got {route!r}")
    if route == "inversion" and len(dfile.shock_names) != len(dfile.observables):
        raise DynareError(f"the inversion route needs as many shocks as varobs; the file has "
                          f"{len(dfile.shock_names)} shocks and {len(dfile.observables)} "
                          "varobs", None, "Use route='whitened' (with measurement error)")
    y = None if data is None else dfile.data(data)
    T = y.shape[0] if y is not None else num_timesteps
    if T is None:
        raise ValueError("pass data or num_timesteps")
    calibrated = jnp.diag(dfile.measurement_cov()) > 0
    estimated = jnp.array([f"stderr_{n}" in dfile.priors for n in dfile.observables])
    if order == 2 and route == "whitened" and not jnp.all(calibrated | estimated):
        raise DynareError("a second-order likelihood needs measurement error on every varobs "
                          "variable", None, "Add 'var y_obs; stderr s;' to the shocks block "
                          "(or an estimated 'stderr y_obs' prior) for each observable")
    priors = dict(dfile.priors)

    def model():
        p = {name: numpyro.sample(name, prior) for name, prior in priors.items()}
        p_all = dfile.parameters(p)
        sol = dfile.solve(p_all, order)
        log_prob_guard("determinacy", sol.ok)
        R = dfile.measurement_cov(p_all)
        offset = dfile.observable_steady_state(p_all)
        y_dev = None if y is None else y - offset
        if route == "inversion":
            d = _inversion(sol, order, T)
        elif order == 1:
            d = _kalman(sol, R, T)
        else:
            N = sol.A_1.shape[0]
            whitening = None if y is None else nss.Whitening(
                sol.A_1, sol.B, sol.C_1, R, y_dev, jnp.zeros(N, sol.A_1.dtype),
                state_offset=sol.A_0, obs_offset=sol.C_0)
            w = nss.sample_noise("w", T, sol.B.shape[1], whiten=whitening)
            d = _joint(sol, R, w)
        if y is None:
            numpyro.deterministic("y", numpyro.sample("y_dev", d) + offset)
        else:
            numpyro.sample("y", d, obs=y_dev)
    return model
