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

import warnings
from collections.abc import Mapping
from typing import Any, NamedTuple

with warnings.catch_warnings():
    # ArviZ 0.23 announces its 1.0 refactor with a FutureWarning on import, once a day per
    # user cache directory: on every run in a fresh environment (CI, containers). The 0.x API
    # used here is unaffected; only that notice is silenced, nothing ArviZ says later.
    warnings.filterwarnings("ignore", message=r"\s*ArviZ is undergoing a major refactor",
                            category=FutureWarning)
    import arviz as az
import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import pandas as pd
from numpyro import handlers
from numpyro.infer import MCMC, Predictive

from . import kernels
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

TIME, TIME0, OBS, STATE, SHOCK = "time", "time_with_initial", "observable", "state", "shock"
FORECAST_TIME, HORIZON = "forecast_time", "horizon"
_STATE_SPACE = (KalmanLGSS, JointLGSS, JointQuadraticSS, JointStateSpace, ConditionalSS)


# -- where the draws and the model come from -------------------------------------------------
class _Source(NamedTuple):
    model: Any
    args: tuple
    kwargs: dict
    samples: dict          # name -> (chains, draws, ...) NumPy arrays
    mcmc: Any              # the MCMC object, or None for a dict of draws


def _source(posterior, model, model_args, model_kwargs):
    if isinstance(posterior, MCMC):
        model = model if model is not None else getattr(posterior.sampler, "model", None)
        args = tuple(posterior._args) if model_args is None else tuple(model_args)
        kwargs = dict(posterior._kwargs) if model_kwargs is None else dict(model_kwargs)
        samples = jax.device_get(posterior.get_samples(group_by_chain=True))
        mcmc = posterior
    elif isinstance(posterior, Mapping):
        args = tuple(model_args or ())
        kwargs = dict(model_kwargs or {})
        samples = {k: np.asarray(v)[None] for k, v in jax.device_get(dict(posterior)).items()}
        mcmc = None
    else:
        raise ValueError(f"posterior must be a numpyro.infer.MCMC or a dict of draws with a "
                         f"leading sample axis; got {type(posterior).__name__}")
    if model is None:
        raise ValueError("no model: pass model=... (the MCMC kernel was built without one, or "
                         "the posterior is a dict of draws)")
    if not samples:
        raise ValueError("the posterior has no draws")
    src = _Source(model, args, kwargs, {k: np.asarray(v) for k, v in samples.items()}, mcmc)
    if mcmc is None:
        # Keep the model's latent and deterministic sites (Predictive output may also hold
        # observed sites and numpyro.factor terms).
        trace = _inspect(src)
        keep = {name for name, site in trace.items()
                if (site["type"] == "sample" and not site["is_observed"])
                or site["type"] == "deterministic"}
        src = src._replace(samples={k: v for k, v in src.samples.items() if k in keep})
    return src


def _num_chains_draws(src):
    return next(iter(src.samples.values())).shape[:2]


def _trace(src, params):
    """The model's trace with every latent site set to ``params`` (one draw)."""
    model = handlers.seed(handlers.substitute(src.model, data=params), rng_seed=0)
    return handlers.trace(model).get_trace(*src.args, **src.kwargs)


def _observed_sites(trace):
    """Observed sample sites, without ``numpyro.factor`` terms."""
    return {name: site for name, site in trace.items()
            if site["type"] == "sample" and site["is_observed"]
            and not (site.get("infer") or {}).get("is_auxiliary")}


def _unwrap(fn):
    """The state-space distribution inside NumPyro's wrappers (masks, ``to_event``, ...)."""
    while not isinstance(fn, _STATE_SPACE) and hasattr(fn, "base_dist"):
        fn = fn.base_dist
    return fn


def _select_site(trace, site, types, what):
    observed = _observed_sites(trace)
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


def _inspect(src):
    """The model's trace at the first draw, traced abstractly (``jax.eval_shape``: nothing is
    computed or compiled). Only site types, shapes, distribution types and static attributes
    may be read from it; observed values are the data themselves unless the model computes
    them."""
    sites = {}

    def run(params):
        sites.update(_trace(src, params))
        return 0

    jax.eval_shape(run, _first_draw(src))
    return sites


def _first_draw(src):
    return {k: v[0, 0] for k, v in src.samples.items()}


def _sizes(fn):
    """``(N, K)`` of a state-space distribution (``None`` where unknown)."""
    family = getattr(_unwrap(fn), "family", None)
    return (None, None) if family is None else (family.n_states, family.n_shocks)


def _per_draw(src, fn, key=None, batch_size=256):
    """``fn(params, key)`` for every draw, as ``(chains, draws, ...)`` NumPy arrays.

    ``fn`` must return a dict of arrays; it runs under ``jax.vmap`` in batches of
    ``batch_size`` draws (bounding memory).
    """
    C, D = _num_chains_draws(src)
    S = C * D
    flat = {k: jnp.asarray(v.reshape((S,) + v.shape[2:])) for k, v in src.samples.items()}
    keys = jax.random.split(key, S) if key is not None else jnp.zeros((S,))

    def one(xs):
        params, k = xs
        return fn(params, k if key is not None else None)

    out = jax.jit(lambda xs: jax.lax.map(one, xs, batch_size=min(batch_size, S)))((flat, keys))
    return {k: np.asarray(v).reshape((C, D) + v.shape[1:]) for k, v in out.items()}


# -- coordinates ------------------------------------------------------------------------------
def _is_frame(y):
    return hasattr(y, "columns") and hasattr(y, "index") and hasattr(y, "to_numpy")


def _time_index(time, T):
    """``time`` (or ``1..T``) as a pandas Index of length ``T``."""
    index = pd.RangeIndex(1, T + 1, name=None) if time is None else pd.Index(time)
    if len(index) != T:
        raise ValueError(f"time must have T = {T} entries (one per observation y_1..y_T); "
                         f"got {len(index)}")
    return index


def _extend(index, before, after):
    """``(index of before + len(index) entries, index of the after entries after it)``; the
    pandas frequency (or the constant step of a numeric index) continues the sequence.

    Without a regular spacing (business days with holidays, irregular numbers) the entries
    before repeat the first step (labels for ``u_0``) and the entries after are ``None``: a
    forecast's dates cannot be guessed. ``(None, None)`` for other indexes (strings)."""
    freq = None
    if isinstance(index, (pd.DatetimeIndex, pd.PeriodIndex)):
        freq = index.freq
        if freq is None and isinstance(index, pd.DatetimeIndex) and len(index) >= 3:
            freq = pd.DatetimeIndex(index, freq="infer").freq
        if freq is None:
            return _first_step_before(index, before), None
        if isinstance(index, pd.PeriodIndex):
            head = pd.period_range(end=index[0], periods=before + 1, freq=freq)[:-1]
            tail = pd.period_range(start=index[-1], periods=after + 1, freq=freq)[1:]
        else:
            head = pd.date_range(end=index[0], periods=before + 1, freq=freq)[:-1]
            tail = pd.date_range(start=index[-1], periods=after + 1, freq=freq)[1:]
        return head.append(index), tail
    if pd.api.types.is_numeric_dtype(index.dtype) and not pd.api.types.is_bool_dtype(index.dtype):
        values = np.asarray(index)
        step = values[1] - values[0] if len(values) > 1 else 1
        if len(values) > 2 and not np.allclose(np.diff(values), step):
            return _first_step_before(index, before), None
        head = values[0] - step * np.arange(before, 0, -1)
        tail = values[-1] + step * np.arange(1, after + 1)
        return pd.Index(np.concatenate([head, values])), pd.Index(tail)
    return None, None


def _first_step_before(index, before):
    """``index`` preceded by ``before`` entries spaced as its first two (``None`` when it has
    fewer than two)."""
    if len(index) < 2:
        return None
    step = index[1] - index[0]
    return pd.Index([index[0] - k * step for k in range(before, 0, -1)]).append(index)


def _coord(index):
    """A pandas index as xarray coordinate values (a PeriodIndex stays periods: xarray keeps
    it as its index)."""
    if isinstance(index, pd.PeriodIndex):
        return index
    return np.asarray(index)


def _check_data_shape(y_shape, observed, ss_names):
    """Refuse ``y`` whose ``(T, M)`` differs from the state-space sites' (names would be
    attached to the wrong steps, or silently dropped)."""
    for name in ss_names:
        shape = tuple(np.shape(observed[name]["value"]))[-2:]
        if shape != tuple(y_shape[-2:]):
            raise ValueError(f"y has shape (T, M) = {tuple(y_shape[-2:])} but the model's "
                             f"site {name!r} observes {shape}: pass the data the model was "
                             f"run on (the same rows and columns)")


def _names(names, n, what, argname):
    if names is None:
        return list(range(n)) if n is not None else None
    names = list(names)
    if n is not None and len(names) != n:
        raise ValueError(f"{argname} must name the {n} {what}; got {len(names)}: {names}")
    return names


def _stored_coords(idata):
    """Coordinates of the state-space dimensions found anywhere in ``idata``."""
    found = {}
    for group in idata.groups():
        ds = idata[group]
        for name in (TIME, TIME0, OBS, STATE, SHOCK):
            if name in ds.coords and name not in found:
                found[name] = ds.coords[name].values
    return found


def _time_coords(idata, T):
    """``(time, time_with_initial)`` coordinate values stored in ``idata`` (or the defaults)."""
    stored = _stored_coords(idata)
    time = stored.get(TIME)
    if time is None or len(time) != T:
        time = np.arange(1, T + 1)
    time0 = stored.get(TIME0)
    if time0 is None or len(time0) != T + 1:
        head, _ = _extend(pd.Index(time), 1, 0)
        time0 = _coord(head) if head is not None else np.arange(T + 1)
    return time, time0


def _replace_group(idata, group, dataset):
    if group in idata.groups():
        del idata[group]
    idata.add_groups({group: dataset})
    return idata


def _dataset(data, coords, dims):
    return az.dict_to_dataset(data, library=numpyro, coords=coords, dims=dims)


def _leading_dims(site, name, ndim):
    """Names of the dimensions in front of a ``(T, .)`` site's last two (series in a plate):
    the plate's name where one indexes it, else ArviZ's default ``name_dim_i``."""
    lead = [f"{name}_dim_{i}" for i in range(ndim - 2)]
    for frame in site.get("cond_indep_stack", ()):
        if frame.dim is not None and -len(lead) <= frame.dim < 0:
            lead[frame.dim] = frame.name
    return lead


def _single_series(sites, name, what):
    """Refuse a batched state-space site (a plate over series) in the ``add_*`` helpers."""
    shape = tuple(np.shape(sites[name]["value"]))
    if len(shape) > 2:
        raise ValueError(f"{what} works on one series; site {name!r} holds {shape[:-2]} series "
                         f"of shape (T, M) = {shape[-2:]} (a plate over series). Run it per "
                         f"series: a model for one series with the posterior draws of the "
                         f"shared parameters")


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
        (an ``MCMC`` supplies its own, which ArviZ's converter uses).
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
    src = _source(posterior, model, model_args, model_kwargs)
    trace = _inspect(src)
    observed = _observed_sites(trace)
    ss_names = [n for n, s in observed.items() if isinstance(_unwrap(s["fn"]), _STATE_SPACE)]
    N, K = _sizes(observed[ss_names[0]]["fn"]) if ss_names else (None, None)

    # T and M: the DataFrame, else the first observed site with a (T, M) value.
    frame = y if y is not None and _is_frame(y) else None
    if y is not None and frame is None and hasattr(y, "to_frame"):
        frame = y.to_frame()  # a Series: one observable named by the Series
    if y is not None and frame is None and not hasattr(y, "shape") and not isinstance(
            y, (list, tuple)):
        raise ValueError(f"y must be the data: a pandas DataFrame (T rows, one column per "
                         f"observable), a Series or a (T, M) array; got {type(y).__name__}")
    if y is not None:
        y_shape = np.shape(frame.to_numpy() if frame is not None else y)
    else:
        shapes = [np.shape(observed[n]["value"]) for n in ss_names + list(observed)]
        y_shape = next((s for s in shapes if len(s) >= 2), None)
    if y_shape is None or len(y_shape) < 2:
        raise ValueError("cannot tell T and M: pass y (T, M), or observe a (T, M) site in the "
                         "model")
    T, M = y_shape[-2], y_shape[-1]
    if y is not None:
        _check_data_shape(y_shape, observed, ss_names)
    if time is None and frame is not None:
        time = frame.index
    if obs_syms is None and frame is not None:
        obs_syms = [str(c) for c in frame.columns]
    index = _time_index(time, T)
    head, _ = _extend(index, 1, 0)
    names = {
        TIME: _coord(index),
        TIME0: _coord(head) if head is not None else np.arange(T + 1),
        OBS: _names(obs_syms, M, "observables", "obs_syms"),
        STATE: _names(syms, N, "states", "syms"),
        SHOCK: _names(shock_names, K, "shocks", "shock_names"),
    }
    n_state = N if N is not None else (len(names[STATE]) if names[STATE] else None)
    n_shock = K if K is not None else (len(names[SHOCK]) if names[SHOCK] else None)

    auto_dims = {}
    for name, site in trace.items():
        if site["type"] not in ("sample", "deterministic"):
            continue
        shape = tuple(np.shape(site["value"]))
        if site["type"] == "sample" and site["is_observed"]:
            if shape[-2:] == (T, M) and name in observed:
                auto_dims[name] = _leading_dims(site, name, len(shape)) + [TIME, OBS]
        elif len(shape) >= 2 and shape[-2] == T and (
                shape[-1] == n_shock if n_shock is not None else site["type"] == "sample"):
            # the noise w (T, K), sampled or deterministic (whitened shocks)
            auto_dims[name] = _leading_dims(site, name, len(shape)) + [TIME, SHOCK]
            n_shock = shape[-1]
        elif n_state is not None and shape[-2:] == (T + 1, n_state):
            auto_dims[name] = _leading_dims(site, name, len(shape)) + [TIME0, STATE]
    if names[SHOCK] is None and n_shock is not None:
        names[SHOCK] = list(range(n_shock))
    if names[STATE] is None and n_state is not None:
        names[STATE] = list(range(n_state))
    all_coords = {k: v for k, v in names.items() if v is not None}
    all_coords.update(coords or {})
    all_dims = {**auto_dims, **(dims or {})}

    if log_likelihood not in ("per_step", True, False):
        raise ValueError(f"log_likelihood must be 'per_step', True or False; "
                         f"got {log_likelihood!r}")
    if src.mcmc is not None:
        idata = az.from_numpyro(src.mcmc, coords=all_coords, dims=all_dims,
                                log_likelihood=log_likelihood is True, **kwargs)
    else:
        if any(isinstance(s["value"], jax.core.Tracer) for s in observed.values()):
            observed = _observed_sites(_trace(src, _first_draw(src)))  # computed observations
        obs_data = {n: np.asarray(s["value"]) for n, s in observed.items()}
        idata = az.from_dict(posterior={k: v for k, v in src.samples.items()},
                             observed_data=obs_data or None, coords=all_coords, dims=all_dims,
                             **kwargs)
    group = "observed_data" if "observed_data" in idata.groups() else "posterior"
    extra = {k: v for k, v in all_coords.items()
             if k in (TIME, TIME0, OBS, STATE, SHOCK) and k not in idata[group].coords}
    _replace_group(idata, group, idata[group].assign_coords(extra))
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
    src = posterior if isinstance(posterior, _Source) else _source(
        posterior, model, model_args, model_kwargs)
    trace = _inspect(src)
    candidates = _pointwise_sites(trace)
    sites = candidates if sites is None else list(sites)
    bad = [n for n in sites if n not in candidates]
    if bad or not sites:
        raise ValueError(f"add_log_likelihood needs observed, unbatched KalmanLGSS or Joint* "
                         f"sites; {bad or 'none found'} (candidates: {candidates})")

    def fn(params, _):
        from .residuals import pointwise_log_likelihood
        tr = _trace(src, params)
        return {n: pointwise_log_likelihood(tr[n]["fn"], tr[n]["value"]) for n in sites}

    data = _per_draw(src, fn, None, batch_size)
    T = data[sites[0]].shape[-1]
    time, _ = _time_coords(idata, T)
    return _replace_group(idata, "log_likelihood",
                          _dataset(data, {TIME: time}, {n: [TIME] for n in sites}))


def _pointwise_sites(trace):
    return [n for n, s in _observed_sites(trace).items()
            if isinstance(_unwrap(s["fn"]), (KalmanLGSS, JointLikelihood))
            and not _unwrap(s["fn"]).batch_shape and np.ndim(s["value"]) == 2]


# -- groups -----------------------------------------------------------------------------------
def _state_names(idata, syms, N):
    if syms is not None:
        return _names(syms, N, "states", "syms")
    stored = _stored_coords(idata).get(STATE)
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
    src = _source(posterior, model, model_args, model_kwargs)
    trace = _inspect(src)
    name = _select_site(trace, site, (KalmanLGSS, JointLGSS, JointQuadraticSS, JointStateSpace),
                        "add_states")

    def fn(params, k):
        s = _trace(src, params)[name]
        return _state_paths(_unwrap(s["fn"]), s["value"], k)

    data = _per_draw(src, fn, key, batch_size)
    T1, N = data["state_path" if "state_path" in data else "smoothed_state"].shape[2:]
    _, time0 = _time_coords(idata, T1 - 1)
    obs_dims, obs_coords = _observed_dims(idata, name, data["fitted_obs"].shape[2:])
    coords = {TIME0: time0, STATE: _state_names(idata, syms, N), **obs_coords}
    dims = {k: [TIME0, STATE] for k in data if k != "fitted_obs"}
    dims["fitted_obs"] = obs_dims
    return _replace_group(idata, "posterior_states", _dataset(data, coords, dims))


class _unobserved(numpyro.primitives.Messenger):
    """Turn the observed sites ``sites`` into sampled ones (their ``obs`` is dropped)."""

    def __init__(self, fn, sites):
        self.sites = frozenset(sites)
        super().__init__(fn)

    def process_message(self, msg):
        if msg["type"] == "sample" and msg["name"] in self.sites and msg["is_observed"]:
            msg["value"] = None
            msg["is_observed"] = False


def _observed_dims(idata, name, shape):
    """Dims and coords of observed variable ``name`` in ``idata`` (or ``(time, observable)``)."""
    if "observed_data" in idata.groups() and name in idata.observed_data:
        var = idata.observed_data[name]
        if var.shape == shape:
            return list(var.dims), {d: var.coords[d].values for d in var.dims if d in var.coords}
    if len(shape) == 2:
        time, _ = _time_coords(idata, shape[0])
        stored = _stored_coords(idata).get(OBS)
        obs = list(stored) if stored is not None and len(stored) == shape[1] else None
        return [TIME, OBS], {TIME: time, **({OBS: obs} if obs is not None else {})}
    return None, {}


def add_posterior_predictive(idata, posterior, *, key, sites=None, model=None,
                             model_args=None, model_kwargs=None):
    """Add draws of the observed sites given each posterior draw (``numpyro.infer.Predictive``)
    as group ``posterior_predictive``, with the dims of ``observed_data``.

    The observed values are dropped for the prediction (missing entries are filled in, too),
    so the model's arguments need not change. :param key: ``jax.random`` key.
    :param sites: observed site names (default: all). :return: ``idata``, modified in place.
    """
    src = _source(posterior, model, model_args, model_kwargs)
    trace = _inspect(src)
    observed = list(_observed_sites(trace))
    sites = observed if sites is None else list(sites)
    unknown = set(sites) - set(observed)
    if unknown:
        raise ValueError(f"sites {sorted(unknown)} are not observed sites of the model "
                         f"(observed: {observed})")
    C, D = _num_chains_draws(src)
    flat = {k: v.reshape((C * D,) + v.shape[2:]) for k, v in src.samples.items()}
    pred = Predictive(_unobserved(src.model, sites), posterior_samples=flat,
                      return_sites=sites)(key, *src.args, **src.kwargs)
    data, dims, coords = {}, {}, {}
    for name in sites:
        value = np.asarray(pred[name])
        data[name] = value.reshape((C, D) + value.shape[1:])
        d, c = _observed_dims(idata, name, value.shape[1:])
        if d is not None:
            dims[name] = d
            coords.update(c)
    return _replace_group(idata, "posterior_predictive", _dataset(data, coords, dims))


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
    src = _source(posterior, model, model_args, model_kwargs)
    trace = _inspect(src)
    name = _select_site(trace, site, (KalmanLGSS,), "add_forecast")

    def fn(params, k):
        s = _trace(src, params)[name]
        u, yf, mean = _forecast_draw(_unwrap(s["fn"]), s["value"], steps, k)
        return {name: yf, f"{name}_mean": mean, "state_path": u}

    data = _per_draw(src, fn, key, batch_size)
    T, M = np.shape(trace[name]["value"])
    N = data["state_path"].shape[-1]
    time, _ = _time_coords(idata, T)
    if forecast_time is not None:
        future = _coord(pd.Index(forecast_time))
    else:
        _, tail = _extend(pd.Index(time), 0, steps)
        if tail is None:
            raise ValueError("the time coordinate has no regular spacing to continue (e.g. "
                             "business days with holidays): pass forecast_time, the labels "
                             f"of the {steps} forecast steps")
        future = _coord(tail)
    obs_dims, obs_coords = _observed_dims(idata, name, (T, M))
    obs_name = obs_dims[1] if obs_dims else OBS
    coords = {FORECAST_TIME: future, STATE: _state_names(idata, syms, N)}
    if obs_name in obs_coords:
        coords[obs_name] = obs_coords[obs_name]
    dims = {name: [FORECAST_TIME, obs_name], f"{name}_mean": [FORECAST_TIME, obs_name],
            "state_path": [FORECAST_TIME, STATE]}
    return _replace_group(idata, "predictions", _dataset(data, coords, dims))


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
    src = _source(posterior, model, model_args, model_kwargs)
    trace = _inspect(src)
    name = _select_site(trace, site, (KalmanLGSS, JointLGSS, JointQuadraticSS),
                        "add_impulse_responses")
    if not _unwrap(trace[name]["fn"]).family.has_impulse_response:
        raise ValueError(f"impulse responses of {type(_unwrap(trace[name]['fn'])).__name__} "
                         f"need pruned=True")

    def fn(params, _):
        irf = _unwrap(_trace(src, params)[name]["fn"]).impulse_response(steps)
        return {"state_response": irf.states, "observable_response": irf.observables}

    data = _per_draw(src, fn, None, batch_size)
    K, _, N = data["state_response"].shape[2:]
    M = data["observable_response"].shape[-1]
    stored = _stored_coords(idata)
    obs_dims, obs_coords = _observed_dims(idata, name, np.shape(trace[name]["value"]))
    obs_name = obs_dims[1] if obs_dims else OBS
    shocks = stored.get(SHOCK)
    coords = {SHOCK: list(shocks) if shocks is not None and len(shocks) == K else list(range(K)),
              HORIZON: np.arange(1, steps + 1), STATE: _state_names(idata, syms, N),
              obs_name: obs_coords.get(obs_name, list(range(M)))}
    dims = {"state_response": [SHOCK, HORIZON, STATE],
            "observable_response": [SHOCK, HORIZON, obs_name]}
    return _replace_group(idata, "impulse_responses", _dataset(data, coords, dims))


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
