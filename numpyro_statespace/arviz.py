r"""ArviZ ``InferenceData`` for state-space models: named dimensions, states, predictions.

:func:`to_inference_data` converts a NumPyro run with ArviZ's own converter
(:func:`arviz.from_numpyro` for an ``MCMC``, :func:`arviz.from_dict` for a dict of draws) and
names the dimensions a state-space model has:

=====================  ==============================================================
dimension              coordinate
=====================  ==============================================================
``time``               ``t = 1..T`` of ``y_1..y_T`` (or the index of a ``DataFrame``)
``time_with_initial``  ``t = 0..T`` of the states ``u_0..u_T`` (one period prepended)
``observable``         ``obs_syms`` (or the columns of a ``DataFrame``)
``state``              ``syms``
``shock``              ``shock_names``
``forecast_time``      ``t = T + 1..T + steps`` (the index extended)
``horizon``            ``1..steps`` after an impulse
=====================  ==============================================================

Sites get their dimensions from their shapes: an observed site ``(T, M)`` gets
``("time", "observable")``, a latent or deterministic site ``(T, K)`` (the noise of a joint
likelihood, whitened or not) ``("time", "shock")``, any other site ``(T + 1, N)``
``("time_with_initial", "state")``; ``dims`` passed by the caller take precedence.

The ``add_*`` helpers run the model once per posterior draw (``jax.vmap`` in batches) and add
a group to the ``InferenceData`` (replacing one of the same name):

- :func:`add_states` -> ``posterior_states``: ``state_path`` (a draw of ``u_0..u_T`` given
  ``y`` and the parameters) and ``fitted_obs`` (its noiseless observations); for
  :class:`KalmanLGSS` also ``filtered_state``, ``smoothed_state``, ``smoothed_state_sd``;
- :func:`add_posterior_predictive` -> ``posterior_predictive``: new data for each observed site
  (``numpyro.infer.Predictive``);
- :func:`add_forecast` -> ``predictions``: ``<site>`` (future observations), ``<site>_mean``,
  ``state_path`` (future states);
- :func:`add_impulse_responses` -> ``impulse_responses``: ``state_response``,
  ``observable_response``;
- :func:`add_log_likelihood` -> ``log_likelihood``: per-step terms of each state-space site
  (:func:`to_inference_data` adds it by default), for ``az.loo`` and ``az.waic``.

:func:`forecast_table` summarises group ``predictions`` as a pandas DataFrame.

For example, with ``y`` a DataFrame (``T`` rows, one column per observable)::

    mcmc.run(key, y.to_numpy())                       # the model sees an array
    idata = to_inference_data(mcmc, y=y, syms=("k", "z"), shock_names=("eps",))
    add_states(idata, mcmc, key=jax.random.key(1))
    add_forecast(idata, mcmc, 12, key=jax.random.key(2))
    az.summary(idata); numpyro_statespace.plots.plot_states(idata)

Everything is a draw from the posterior (parameter uncertainty included), so credible bands
are quantiles over ``(chain, draw)``. This module imports ArviZ; ``import numpyro_statespace``
does not import it.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
from numpyro.infer import Predictive

from . import kernels
from ._arviz_coords import (
    OBS,
    SHOCK,
    STATE,
    TIME,
    TIME0,
    coordinates,
    data_layout,
    dim_labels,
    forecast_coord,
    observed_dims,
    stored_coords,
    time_coords,
)
from ._arviz_groups import attach_coords, convert, dataset, replace_group, site_dims
from ._arviz_source import (
    Source,
    Unobserved,
    inspect_model,
    num_chains_draws,
    observed_sites,
    per_draw,
    source,
    trace_at,
)
from ._validation import as_int
from .distributions import (
    ConditionalSS,
    JointLGSS,
    JointQuadraticSS,
    JointStateSpace,
    KalmanLGSS,
)
from .distributions.joint import JointLikelihood
from .kernels.linalg import psd_factor

__all__ = [
    "add_forecast",
    "add_impulse_responses",
    "add_log_likelihood",
    "add_posterior_predictive",
    "add_states",
    "forecast_table",
    "to_inference_data",
]

FORECAST_TIME, HORIZON = "forecast_time", "horizon"
_STATE_SPACE = (KalmanLGSS, JointLGSS, JointQuadraticSS, JointStateSpace, ConditionalSS)


# -- the state-space site of a model ---------------------------------------------------------
def _unwrap(fn):
    """The state-space distribution inside NumPyro's wrappers (masks, ``to_event``, ...)."""
    while not isinstance(fn, _STATE_SPACE) and hasattr(fn, "base_dist"):
        fn = fn.base_dist
    return fn


def _select_site(trace, site, types, what):
    """The observed ``site`` (default: the first) whose distribution is one of ``types``."""
    observed = observed_sites(trace)
    kinds = {name: type(_unwrap(s["fn"])).__name__ for name, s in observed.items()}
    names = [site] if site is not None else list(observed)
    for name in names:
        if name in observed and isinstance(_unwrap(observed[name]["fn"]), types):
            _single_series(observed, name, what)
            return name
    wanted = ", ".join(t.__name__ for t in types)
    raise ValueError(f"{what} needs an observed site whose distribution is one of ({wanted}); "
                     f"{'site ' + repr(site) + ' is not one' if site else 'none found'} "
                     f"(observed sites: {kinds or 'none'})")


def _single_series(sites, name, what):
    """Refuse a batched state-space site (a plate over series) in the ``add_*`` helpers."""
    shape = tuple(np.shape(sites[name]["value"]))
    if len(shape) > 2:
        raise ValueError(f"{what} works on one series; site {name!r} holds {shape[:-2]} series "
                         f"of shape (T, M) = {shape[-2:]} (a plate over series). Run it per "
                         f"series: a model for one series with the posterior draws of the "
                         f"shared parameters")


def _sizes(fn):
    """``(N, K)`` of a state-space distribution (``None`` where unknown)."""
    family = getattr(_unwrap(fn), "family", None)
    return (None, None) if family is None else (family.n_states, family.n_shocks)


# -- conversion -------------------------------------------------------------------------------
def to_inference_data(posterior, *, y=None, time=None, syms=None, obs_syms=None,
                      shock_names=None, model=None, model_args=None, model_kwargs=None,
                      coords=None, dims=None, log_likelihood="per_step", **kwargs):
    """``InferenceData`` of a state-space model with named dimensions and coordinates.

    :param posterior: a ``numpyro.infer.MCMC`` after ``run`` (converted by
        :func:`arviz.from_numpyro`), or a dict of draws with a leading sample axis, e.g. from
        ``Predictive(guide, params=..., num_samples=...)`` after SVI (one chain, converted by
        :func:`arviz.from_dict`; ``model`` and the model's arguments are then required).
    :param y: the data, used for names only: a ``pandas.DataFrame`` gives the ``time``
        coordinate (its index) and the ``observable`` coordinate (its columns). The model
        itself must have been run on an array (``df.to_numpy()``).
    :param time: ``T`` time labels (a pandas index or array); overrides the DataFrame's index.
        Default: ``1..T``.
    :param syms: names of the ``N`` states. :param obs_syms: names of the ``M`` observables.
    :param shock_names: names of the ``K`` shocks. Unnamed dimensions get ``0..n-1``.
    :param model, model_args, model_kwargs: the model and its arguments, for a dict of draws
        (an ``MCMC`` supplies those of its ``run``, as for ArviZ's converter).
    :param coords, dims: extra ArviZ coordinates and dimensions; they take precedence.
    :param log_likelihood: ``"per_step"`` (default): group ``log_likelihood`` holds, for each
        unbatched state-space site, its per-step terms ``(chain, draw, time)`` (see
        :func:`add_log_likelihood`: ``az.loo`` and ``az.waic`` then work); ``True``: ArviZ's
        own (one number per draw and series); ``False``: none.
    :param kwargs: passed to :func:`arviz.from_numpyro` or :func:`arviz.from_dict`.
    :return: ``arviz.InferenceData``. The state-space coordinates (``time``,
        ``time_with_initial``, ``state``, ``observable``, ``shock``) are also attached to the
        ``observed_data`` group, so that the ``add_*`` helpers find them.
    """
    if log_likelihood not in ("per_step", True, False):
        raise ValueError(f"log_likelihood must be 'per_step', True or False; "
                         f"got {log_likelihood!r}")
    src = source(posterior, model, model_args, model_kwargs)
    trace = inspect_model(src)
    observed = observed_sites(trace)
    ss_names = [n for n, s in observed.items() if isinstance(_unwrap(s["fn"]), _STATE_SPACE)]
    N, K = _sizes(observed[ss_names[0]]["fn"]) if ss_names else (None, None)
    frame, T, M = data_layout(y, observed, ss_names)
    labels = coordinates(frame, T, M, N, K, time=time, syms=syms, obs_syms=obs_syms,
                         shock_names=shock_names)
    n_state = N if N is not None else (len(labels[STATE]) if labels[STATE] else None)
    n_shock = K if K is not None else (len(labels[SHOCK]) if labels[SHOCK] else None)
    auto_dims, n_shock = site_dims(trace, observed, T, M, n_state, n_shock)
    if labels[SHOCK] is None and n_shock is not None:
        labels[SHOCK] = list(range(n_shock))
    all_coords = {k: v for k, v in labels.items() if v is not None}
    all_coords.update(coords or {})
    idata = convert(src, observed, all_coords, {**auto_dims, **(dims or {})}, log_likelihood,
                    kwargs)
    attach_coords(idata, all_coords)
    if log_likelihood == "per_step" and _pointwise_sites(trace):
        add_log_likelihood(idata, src)
    return idata


def add_log_likelihood(idata, posterior, *, sites=None, model=None, model_args=None,
                       model_kwargs=None, batch_size=256):
    """Add per-step log-likelihood terms as group ``log_likelihood``: for each state-space
    site (unbatched: one series) ``(chain, draw, time)``,
    :func:`numpyro_statespace.residuals.pointwise_log_likelihood` at every draw.

    For :class:`KalmanLGSS` the terms are the one-step-ahead predictive densities
    ``log p(y_t | y_1..y_{t-1}, theta)``: ``az.loo`` on them treats each step as an
    observation given the past (exact leave-future-out needs refits, Bürkner, Gabry & Vehtari
    2020). :return: ``idata``, modified in place.
    """
    src = posterior if isinstance(posterior, Source) else source(
        posterior, model, model_args, model_kwargs)
    trace = inspect_model(src)
    candidates = _pointwise_sites(trace)
    sites = candidates if sites is None else list(sites)
    bad = [n for n in sites if n not in candidates]
    if bad or not sites:
        raise ValueError(f"add_log_likelihood needs observed, unbatched KalmanLGSS or Joint* "
                         f"sites; {bad or 'none found'} (candidates: {candidates})")

    def fn(params, _):
        from .residuals import pointwise_log_likelihood
        tr = trace_at(src, params)
        return {n: pointwise_log_likelihood(tr[n]["fn"], tr[n]["value"]) for n in sites}

    data = per_draw(src, fn, None, batch_size)
    T = data[sites[0]].shape[-1]
    time, _ = time_coords(idata, T)
    return replace_group(idata, "log_likelihood",
                         dataset(data, {TIME: time}, {n: [TIME] for n in sites}))


def _pointwise_sites(trace):
    return [n for n, s in observed_sites(trace).items()
            if isinstance(_unwrap(s["fn"]), (KalmanLGSS, JointLikelihood))
            and not _unwrap(s["fn"]).batch_shape and np.ndim(s["value"]) == 2]


# -- groups -----------------------------------------------------------------------------------
def _state_names(idata, syms, N):
    if syms is not None:
        return dim_labels(syms, N, "states", "syms")
    stored = stored_coords(idata).get(STATE)
    return list(stored) if stored is not None and len(stored) == N else list(range(N))


def _state_paths(d, y, key):
    """State-space distribution ``d`` and its data ``y`` -> dict of ``(T + 1, N)`` arrays."""
    if isinstance(d, KalmanLGSS):
        smoothed = d.smooth(y)
        out = {"filtered_state": d.filter(y).filtered_means,
               "smoothed_state": smoothed.smoothed_means,
               "smoothed_state_sd": jnp.sqrt(jnp.clip(
                   jnp.diagonal(smoothed.smoothed_covs, axis1=-2, axis2=-1), 0.0))}
        if key is not None:
            out["state_path"] = d.posterior_sample(key, y, 1)[0]
        path = out.get("state_path", out["smoothed_state"])
        # C_t u_t + d_t: a time-varying C (dynamic regression) and observation offsets
        C = d.C if d.C.ndim == 3 else d.C[None]
        offset = 0.0 if getattr(d, "obs_offset", None) is None else d.obs_offset
        out["fitted_obs"] = jnp.einsum("tmn,tn->tm", C, path[1:]) + offset
        return out
    u, *_, valid = d.family.states(d.u0, d.noise)
    return {"state_path": kernels.reported_path(u, valid), "fitted_obs": d.mean_path()}


def add_states(idata, posterior, *, key=None, site=None, syms=None, model=None,
               model_args=None, model_kwargs=None, batch_size=256):
    """Add the posterior of the latent states ``u_0..u_T`` as group ``posterior_states``.

    For each posterior draw the model is run and its state-space likelihood (the observed
    ``site``, default: the first one) gives the states, all with dims
    ``(chain, draw, time_with_initial, state)``:

    - :class:`KalmanLGSS`: ``filtered_state`` and ``smoothed_state`` (means given the draw's
      parameters), ``smoothed_state_sd``, and with a ``key`` ``state_path``, one
      simulation-smoother draw of the path per posterior draw (so quantiles of ``state_path``
      are credible bands that include parameter uncertainty);
    - :class:`JointLGSS`, :class:`JointQuadraticSS`, :class:`JointStateSpace`:
      ``state_path``, the path implied by the draw's noise and parameters;

    and ``fitted_obs`` ``(chain, draw, time, observable)``, the noiseless observations
    ``z_1..z_T`` of ``state_path`` (of ``smoothed_state`` without a key): the model's fit.

    :param idata: from :func:`to_inference_data` (its ``time`` and ``state`` coordinates are
        reused). :param posterior: the same ``MCMC`` or dict of draws.
    :param key: ``jax.random`` key for ``state_path`` draws (KalmanLGSS only; without it only
        the moments are stored).
    :param syms: state names (default: those stored in ``idata``).
    :param batch_size: draws per vectorised batch.
    :return: ``idata``, modified in place.
    """
    src = source(posterior, model, model_args, model_kwargs)
    trace = inspect_model(src)
    name = _select_site(trace, site, (KalmanLGSS, JointLGSS, JointQuadraticSS, JointStateSpace),
                        "add_states")

    def fn(params, k):
        s = trace_at(src, params)[name]
        return _state_paths(_unwrap(s["fn"]), s["value"], k)

    data = per_draw(src, fn, key, batch_size)
    T1, N = data["state_path" if "state_path" in data else "smoothed_state"].shape[2:]
    _, time0 = time_coords(idata, T1 - 1)
    obs_dims, obs_coords = observed_dims(idata, name, data["fitted_obs"].shape[2:])
    coords = {TIME0: time0, STATE: _state_names(idata, syms, N), **obs_coords}
    dims = {k: [TIME0, STATE] for k in data if k != "fitted_obs"}
    dims["fitted_obs"] = obs_dims
    return replace_group(idata, "posterior_states", dataset(data, coords, dims))


def add_posterior_predictive(idata, posterior, *, key, sites=None, model=None,
                             model_args=None, model_kwargs=None):
    """Add draws of the observed sites given each posterior draw (``numpyro.infer.Predictive``)
    as group ``posterior_predictive``, with the dims of ``observed_data``.

    The observed values are dropped for the prediction (missing entries are filled in, too),
    so the model's arguments need not change. :param key: ``jax.random`` key.
    :param sites: observed site names (default: all). :return: ``idata``, modified in place.
    """
    src = source(posterior, model, model_args, model_kwargs)
    trace = inspect_model(src)
    observed = list(observed_sites(trace))
    sites = observed if sites is None else list(sites)
    unknown = set(sites) - set(observed)
    if unknown:
        raise ValueError(f"sites {sorted(unknown)} are not observed sites of the model "
                         f"(observed: {observed})")
    C, D = num_chains_draws(src)
    flat = {k: v.reshape((C * D,) + v.shape[2:]) for k, v in src.samples.items()}
    pred = Predictive(Unobserved(src.model, sites), posterior_samples=flat,
                      return_sites=sites)(key, *src.args, **src.kwargs)
    data, dims, coords = {}, {}, {}
    for name in sites:
        value = np.asarray(pred[name])
        data[name] = value.reshape((C, D) + value.shape[1:])
        d, c = observed_dims(idata, name, value.shape[1:])
        if d is not None:
            dims[name] = d
            coords.update(c)
    return replace_group(idata, "posterior_predictive", dataset(data, coords, dims))


def _forecast_draw(d, y, steps, key):
    """One path ``u_{T+1..T+steps}``, ``y_{T+1..T+steps}`` given ``y``: the forecast means
    (:meth:`KalmanLGSS.forecast`, offsets included) plus a deviation that starts from the
    filtered ``u_T``'s spread and is driven by new shocks and measurement noise."""
    details = d.filter(y)
    P_T = details.filtered_covs[-1]
    moments = d.forecast(y, steps)
    k0, kw, kv = jax.random.split(key, 3)
    N, K = d.B.shape[-2:]
    M = d.R.shape[-1]
    dtype = P_T.dtype
    dev_T = psd_factor(P_T) @ jax.random.normal(k0, (N,), dtype)
    w = jax.random.normal(kw, (steps, K), dtype)
    dev = kernels.linear_states(d.A, d.B, dev_T, w)[0][1:]
    v = jax.random.normal(kv, (steps, M), dtype) @ psd_factor(d.R).T
    u = moments.state_means + dev
    return u, moments.obs_means + dev @ d.C.T + v, moments.obs_means


def add_forecast(idata, posterior, steps, *, key, site=None, syms=None, forecast_time=None,
                 model=None, model_args=None, model_kwargs=None, batch_size=256):
    """Add ``steps``-ahead forecasts of a :class:`KalmanLGSS` site as group ``predictions``.

    For each posterior draw, ``u_T`` is drawn from its filtered distribution and the model is
    simulated forward, so the variables are draws from the posterior predictive of the future
    (parameter, state and noise uncertainty included):

    - ``<site>`` ``(chain, draw, forecast_time, observable)``: future observations;
    - ``<site>_mean``: their mean given the draw's parameters (``KalmanLGSS.forecast``);
    - ``state_path`` ``(chain, draw, forecast_time, state)``: future states.

    ``forecast_time`` continues the ``time`` coordinate (pandas frequency or constant step;
    ``T + 1..T + steps`` for the default ``1..T``). A ``time`` without a regular spacing
    (business days with holidays) needs the labels: ``forecast_time``, ``steps`` of them.
    :param key: ``jax.random`` key.
    :return: ``idata``, modified in place.
    """
    steps = as_int("steps", steps, 1)
    if forecast_time is not None and len(forecast_time) != steps:
        raise ValueError(f"forecast_time must have steps = {steps} entries; "
                         f"got {len(forecast_time)}")
    src = source(posterior, model, model_args, model_kwargs)
    trace = inspect_model(src)
    name = _select_site(trace, site, (KalmanLGSS,), "add_forecast")
    T, M = np.shape(trace[name]["value"])
    time, _ = time_coords(idata, T)
    future = forecast_coord(time, steps, forecast_time)

    def fn(params, k):
        s = trace_at(src, params)[name]
        u, yf, mean = _forecast_draw(_unwrap(s["fn"]), s["value"], steps, k)
        return {name: yf, f"{name}_mean": mean, "state_path": u}

    data = per_draw(src, fn, key, batch_size)
    N = data["state_path"].shape[-1]
    obs_dims, obs_coords = observed_dims(idata, name, (T, M))
    obs_name = obs_dims[1] if obs_dims else OBS
    coords = {FORECAST_TIME: future, STATE: _state_names(idata, syms, N)}
    if obs_name in obs_coords:
        coords[obs_name] = obs_coords[obs_name]
    dims = {name: [FORECAST_TIME, obs_name], f"{name}_mean": [FORECAST_TIME, obs_name],
            "state_path": [FORECAST_TIME, STATE]}
    return replace_group(idata, "predictions", dataset(data, coords, dims))


def add_impulse_responses(idata, posterior, steps, *, site=None, syms=None, model=None,
                          model_args=None, model_kwargs=None, batch_size=256):
    """Add impulse responses to each one-standard-deviation shock as group
    ``impulse_responses``: ``state_response (chain, draw, shock, horizon, state)`` and
    ``observable_response (chain, draw, shock, horizon, observable)``, horizon ``1..steps``
    (the shock hits at horizon 1).

    Linear models (:class:`KalmanLGSS`, :class:`JointLGSS`) and pruned
    :class:`JointQuadraticSS` (responses from ``u_0 = 0``, see
    :func:`kernels.impulse_response_pruned`). :return: ``idata``, modified in place.
    """
    steps = as_int("steps", steps, 1)
    src = source(posterior, model, model_args, model_kwargs)
    trace = inspect_model(src)
    name = _select_site(trace, site, (KalmanLGSS, JointLGSS, JointQuadraticSS),
                        "add_impulse_responses")
    if not _unwrap(trace[name]["fn"]).family.has_impulse_response:
        raise ValueError(f"impulse responses of {type(_unwrap(trace[name]['fn'])).__name__} "
                         f"need pruned=True")

    def fn(params, _):
        irf = _unwrap(trace_at(src, params)[name]["fn"]).impulse_response(steps)
        return {"state_response": irf.states, "observable_response": irf.observables}

    data = per_draw(src, fn, None, batch_size)
    K, _, N = data["state_response"].shape[2:]
    M = data["observable_response"].shape[-1]
    stored = stored_coords(idata)
    obs_dims, obs_coords = observed_dims(idata, name, np.shape(trace[name]["value"]))
    obs_name = obs_dims[1] if obs_dims else OBS
    shocks = stored.get(SHOCK)
    coords = {SHOCK: list(shocks) if shocks is not None and len(shocks) == K else list(range(K)),
              HORIZON: np.arange(1, steps + 1), STATE: _state_names(idata, syms, N),
              obs_name: obs_coords.get(obs_name, list(range(M)))}
    dims = {"state_response": [SHOCK, HORIZON, STATE],
            "observable_response": [SHOCK, HORIZON, obs_name]}
    return replace_group(idata, "impulse_responses", dataset(data, coords, dims))


def forecast_table(idata, var="y", *, prob=0.9):
    """The forecasts of group ``predictions`` (:func:`add_forecast`) as a pandas DataFrame.

    Rows: ``forecast_time``; columns ``(observable, stat)`` with ``stat`` in ``mean``,
    ``median``, ``sd``, ``lower``, ``upper`` (the equal-tailed ``prob`` interval over all
    draws: parameter, state and noise uncertainty); with one observable the columns are just
    the stats. :return: ``pandas.DataFrame``.
    """
    if "predictions" not in idata.groups() or var not in idata.predictions:
        raise ValueError(f"forecast_table needs variable {var!r} in group 'predictions': run "
                         f"add_forecast first")
    if not 0 < prob < 1:
        raise ValueError(f"prob must lie in (0, 1); got {prob!r}")
    da = idata.predictions[var]
    time_dim, obs_dim = [d for d in da.dims if d not in ("chain", "draw")]
    x = da.stack(sample=("chain", "draw")).transpose("sample", time_dim, obs_dim).values
    lo, hi = (1 - prob) / 2, (1 + prob) / 2
    stats = {"mean": np.nanmean(x, 0), "median": np.nanmedian(x, 0), "sd": np.nanstd(x, 0),
             "lower": np.nanquantile(x, lo, 0), "upper": np.nanquantile(x, hi, 0)}
    index = pd.Index(da[time_dim].values, name=time_dim)
    observables = [str(o) for o in da[obs_dim].values]
    if len(observables) == 1:
        return pd.DataFrame({k: v[:, 0] for k, v in stats.items()}, index=index)
    columns = pd.MultiIndex.from_product([observables, list(stats)],
                                         names=[obs_dim, "stat"])
    values = np.stack([stats[k] for k in stats], axis=-1).reshape(len(index), -1)
    return pd.DataFrame(values, index=index, columns=columns)
