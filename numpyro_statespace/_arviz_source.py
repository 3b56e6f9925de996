"""Where the draws and the model come from, for :mod:`numpyro_statespace.arviz`.

A :class:`Source` bundles the model, the arguments it was run with and the posterior draws as
``(chains, draws, ...)`` NumPy arrays; :func:`trace_at` reruns the model at one draw and
:func:`per_draw` maps a function of one draw over all of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
from numpyro import handlers
from numpyro.infer import MCMC

__all__ = [
    "Source",
    "Unobserved",
    "first_draw",
    "inspect_model",
    "num_chains_draws",
    "observed_data",
    "observed_sites",
    "per_draw",
    "run_arguments",
    "source",
    "trace_at",
]


class Source(NamedTuple):
    model: Any
    args: tuple
    kwargs: dict
    samples: dict          # name -> (chains, draws, ...) NumPy arrays
    mcmc: Any              # the MCMC object, or None for a dict of draws


def run_arguments(mcmc, model_args=None, model_kwargs=None):
    """``(args, kwargs)`` the model of ``mcmc`` was run with; those given take precedence.

    NumPyro offers no public accessor for the arguments of ``MCMC.run``: it keeps them as
    ``_args`` and ``_kwargs`` for ArviZ, whose public ``arviz.from_numpyro(mcmc)`` reads the
    same two attributes. This is the only place that reads them, so that
    ``to_inference_data(mcmc)`` works as ``arviz.from_numpyro(mcmc)`` does; where they cannot
    be found (an ``MCMC`` not run yet, a NumPyro that stores them elsewhere) the caller is
    asked for them."""
    missing = object()
    args = getattr(mcmc, "_args", missing) if model_args is None else tuple(model_args)
    kwargs = getattr(mcmc, "_kwargs", missing) if model_kwargs is None else dict(model_kwargs)
    if args is missing or kwargs is missing:
        raise ValueError("cannot find the arguments of the MCMC run (run the MCMC first): pass "
                         "model_args=(...) and model_kwargs={...}, those given to mcmc.run")
    return tuple(args), dict(kwargs)


def source(posterior, model, model_args, model_kwargs):
    """A :class:`Source` from an ``MCMC`` or a dict of draws (checked)."""
    if isinstance(posterior, MCMC):
        model = model if model is not None else getattr(posterior.sampler, "model", None)
        args, kwargs = run_arguments(posterior, model_args, model_kwargs)
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
    src = Source(model, args, kwargs, {k: np.asarray(v) for k, v in samples.items()}, mcmc)
    if mcmc is None:
        # Keep the model's latent and deterministic sites (Predictive output may also hold
        # observed sites and numpyro.factor terms).
        trace = inspect_model(src)
        keep = {name for name, site in trace.items()
                if (site["type"] == "sample" and not site["is_observed"])
                or site["type"] == "deterministic"}
        src = src._replace(samples={k: v for k, v in src.samples.items() if k in keep})
    return src


def num_chains_draws(src):
    return next(iter(src.samples.values())).shape[:2]


def first_draw(src):
    return {k: v[0, 0] for k, v in src.samples.items()}


def trace_at(src, params):
    """The model's trace with every latent site set to ``params`` (one draw)."""
    model = handlers.seed(handlers.substitute(src.model, data=params), rng_seed=0)
    return handlers.trace(model).get_trace(*src.args, **src.kwargs)


def inspect_model(src):
    """The model's trace at the first draw, traced abstractly (``jax.eval_shape``: nothing is
    computed or compiled). Only site types, shapes, distribution types and static attributes
    may be read from it; observed values are the data themselves unless the model computes
    them."""
    sites = {}

    def run(params):
        sites.update(trace_at(src, params))
        return 0

    jax.eval_shape(run, first_draw(src))
    return sites


def observed_sites(trace):
    """Observed sample sites, without ``numpyro.factor`` terms."""
    return {name: site for name, site in trace.items()
            if site["type"] == "sample" and site["is_observed"]
            and not (site.get("infer") or {}).get("is_auxiliary")}


def observed_data(src, observed):
    """``{name: NumPy array}`` of the observed sites of :func:`inspect_model`'s trace (the
    model is rerun at the first draw where it computes its observations)."""
    if any(isinstance(s["value"], jax.core.Tracer) for s in observed.values()):
        observed = observed_sites(trace_at(src, first_draw(src)))
    return {n: np.asarray(s["value"]) for n, s in observed.items()}


def per_draw(src, fn, key=None, batch_size=256):
    """``fn(params, key)`` for every draw, as ``(chains, draws, ...)`` NumPy arrays.

    ``fn`` must return a dict of arrays; it runs under ``jax.vmap`` in batches of
    ``batch_size`` draws (bounding memory).
    """
    C, D = num_chains_draws(src)
    S = C * D
    flat = {k: jnp.asarray(v.reshape((S,) + v.shape[2:])) for k, v in src.samples.items()}
    keys = jax.random.split(key, S) if key is not None else jnp.zeros((S,))

    def one(xs):
        params, k = xs
        return fn(params, k if key is not None else None)

    out = jax.jit(lambda xs: jax.lax.map(one, xs, batch_size=min(batch_size, S)))((flat, keys))
    return {k: np.asarray(v).reshape((C, D) + v.shape[1:]) for k, v in out.items()}


class Unobserved(numpyro.primitives.Messenger):
    """Turn the observed sites ``sites`` into sampled ones (their ``obs`` is dropped)."""

    def __init__(self, fn, sites):
        self.sites = frozenset(sites)
        super().__init__(fn)

    def process_message(self, msg):
        if msg["type"] == "sample" and msg["name"] in self.sites and msg["is_observed"]:
            msg["value"] = None
            msg["is_observed"] = False
