"""Building the ``InferenceData`` groups, for :mod:`numpyro_statespace.arviz`.

The model's sites get their dimensions from their shapes (:func:`site_dims`), ArviZ's own
converters build the ``InferenceData`` (:func:`convert`), and the ``add_*`` helpers add or
replace one group each (:func:`dataset`, :func:`replace_group`).
"""

from __future__ import annotations

import warnings

with warnings.catch_warnings():
    # ArviZ 0.23 announces its 1.0 refactor with a FutureWarning on import, once a day per
    # user cache directory: on every run in a fresh environment (CI, containers). The 0.x API
    # used here is unaffected; only that notice is silenced, nothing ArviZ says later.
    warnings.filterwarnings("ignore", message=r"\s*ArviZ is undergoing a major refactor",
                            category=FutureWarning)
    import arviz as az
import numpy as np
import numpyro

from ._arviz_coords import OBS, SHOCK, SS_DIMS, STATE, TIME, TIME0
from ._arviz_source import observed_data

__all__ = ["attach_coords", "convert", "dataset", "replace_group", "site_dims"]


def site_dims(trace, observed, T, M, n_state, n_shock):
    """``(dims, n_shock)``: the state-space dims of the model's sites, read from their shapes,
    and the number of shocks (from the noise site where ``n_shock`` is ``None``).

    An observed site ``(..., T, M)`` gets ``(time, observable)``, a latent or deterministic
    site ``(..., T, K)`` (the noise, whitened or not) ``(time, shock)`` and a site
    ``(..., T + 1, N)`` ``(time_with_initial, state)``, after the dims of any plates."""
    dims = {}
    for name, site in trace.items():
        if site["type"] not in ("sample", "deterministic"):
            continue
        shape = tuple(np.shape(site["value"]))
        if site["type"] == "sample" and site["is_observed"]:
            if shape[-2:] == (T, M) and name in observed:
                dims[name] = _leading_dims(site, name, len(shape)) + [TIME, OBS]
        elif len(shape) >= 2 and shape[-2] == T and (
                shape[-1] == n_shock if n_shock is not None else site["type"] == "sample"):
            # the noise w (T, K), sampled or deterministic (whitened shocks)
            dims[name] = _leading_dims(site, name, len(shape)) + [TIME, SHOCK]
            n_shock = shape[-1]
        elif n_state is not None and shape[-2:] == (T + 1, n_state):
            dims[name] = _leading_dims(site, name, len(shape)) + [TIME0, STATE]
    return dims, n_shock


def _leading_dims(site, name, ndim):
    """Names of the dimensions in front of a ``(T, .)`` site's last two (series in a plate):
    the plate's name where one indexes it, else ArviZ's default ``name_dim_i``."""
    lead = [f"{name}_dim_{i}" for i in range(ndim - 2)]
    for frame in site.get("cond_indep_stack", ()):
        if frame.dim is not None and -len(lead) <= frame.dim < 0:
            lead[frame.dim] = frame.name
    return lead


def convert(src, observed, coords, dims, log_likelihood, kwargs):
    """The ``InferenceData`` of ArviZ's converter: :func:`arviz.from_numpyro` for an ``MCMC``
    (ArviZ's own log-likelihood only with ``log_likelihood=True``), :func:`arviz.from_dict`
    for a dict of draws."""
    if src.mcmc is not None:
        return az.from_numpyro(src.mcmc, coords=coords, dims=dims,
                               log_likelihood=log_likelihood is True, **kwargs)
    obs_data = observed_data(src, observed)
    return az.from_dict(posterior=dict(src.samples), observed_data=obs_data or None,
                        coords=coords, dims=dims, **kwargs)


def attach_coords(idata, coords):
    """Attach the state-space coordinates missing from ``observed_data`` (or ``posterior``
    without data), so that the ``add_*`` helpers find them."""
    group = "observed_data" if "observed_data" in idata.groups() else "posterior"
    extra = {k: v for k, v in coords.items() if k in SS_DIMS and k not in idata[group].coords}
    return replace_group(idata, group, idata[group].assign_coords(extra))


def replace_group(idata, group, dataset):
    if group in idata.groups():
        del idata[group]
    idata.add_groups({group: dataset})
    return idata


def dataset(data, coords, dims):
    return az.dict_to_dataset(data, library=numpyro, coords=coords, dims=dims)
