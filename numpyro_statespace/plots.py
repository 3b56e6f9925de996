"""Plots of a fitted state-space model (matplotlib, an optional dependency).

Every function takes the ``InferenceData`` built by :mod:`numpyro_statespace.arviz` (or, for
impulse responses, a :class:`~numpyro_statespace.kernels.ImpulseResponse`), draws one panel
per series, and returns the matplotlib ``Figure``. Pass ``axes`` (one ``Axes`` per panel, any
array shape) to draw into an existing figure. Bands are equal-tailed credible intervals:
quantiles over all ``(chain, draw)`` pairs, so they include parameter uncertainty.

=================================  ===========================================================
function                           draws
=================================  ===========================================================
:func:`plot_observed_fitted`       data against the fit and the posterior predictive
:func:`plot_states`                latent states (or any ``(time, name)`` variable) with bands
:func:`plot_forecast`              fan chart: recent data and nested forecast bands
:func:`plot_impulse_responses`     responses of states or observables to each shock
=================================  ===========================================================

matplotlib is imported inside the functions: ``pip install "numpyro_statespace[examples]"``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = [
    "plot_forecast",
    "plot_impulse_responses",
    "plot_observed_fitted",
    "plot_states",
]

_SAMPLE_DIMS = ("chain", "draw")


def _pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError as err:
        raise ImportError("numpyro_statespace.plots needs matplotlib: "
                          "pip install \"numpyro_statespace[examples]\"") from err
    return plt


def _axes(axes, n, ncols=1, panel_size=(7.0, 2.4)):
    """``(figure, list of n Axes)``: new ones, or the caller's ``axes`` (checked)."""
    plt = _pyplot()
    if axes is None:
        nrows = -(-n // ncols)
        fig, grid = plt.subplots(nrows, ncols, squeeze=False,
                                 figsize=(max(panel_size[0], 3.5 * ncols),
                                          panel_size[1] * nrows),
                                 layout="constrained")
        flat = list(grid.ravel())
        for ax in flat[n:]:
            ax.set_visible(False)
        return fig, flat[:n]
    flat = list(np.ravel(np.asarray(axes, dtype=object)))
    if len(flat) < n:
        raise ValueError(f"axes must hold at least {n} Axes (one per panel); got {len(flat)}")
    return flat[0].figure, flat[:n]


def _group(idata, group, what):
    if group not in idata.groups():
        raise ValueError(f"{what} needs group {group!r} in the InferenceData (groups: "
                         f"{idata.groups()}); add it with numpyro_statespace.arviz")
    return idata[group]


def _variable(ds, var, group):
    if var not in ds:
        raise ValueError(f"variable {var!r} is not in group {group!r} "
                         f"(variables: {list(ds.data_vars)})")
    return ds[var]


def _draws(da):
    """``(draws, time, series)`` NumPy array of a ``(chain, draw, time, series)`` variable,
    with its time values and series names."""
    other = [d for d in da.dims if d not in _SAMPLE_DIMS]
    if len(other) != 2:
        raise ValueError(f"expected a variable with dims (chain, draw, time, series); "
                         f"{da.name!r} has {da.dims}")
    time_dim, series_dim = other
    values = da.stack(sample=_SAMPLE_DIMS).transpose("sample", time_dim, series_dim).values
    return values, _time_values(da, time_dim), [str(s) for s in da[series_dim].values], \
        series_dim


def _time_values(da, dim):
    """Time coordinate values matplotlib can place: periods at their start timestamps."""
    values = da[dim].values
    if values.dtype == object and len(values) and isinstance(values[0], pd.Period):
        return pd.PeriodIndex(values).to_timestamp().values
    return values


def _band(values, prob):
    lo, hi = (1.0 - prob) / 2.0, (1.0 + prob) / 2.0
    return np.nanquantile(values, [lo, 0.5, hi], axis=0)


def _finish(fig, panels, title, own):
    """Title and legend (from the first panel): above and below the panels on a figure made
    here, a small legend inside the first panel on the caller's axes."""
    handles, labels = panels[0].get_legend_handles_labels()
    if own:
        fig.suptitle(title)
        if handles:
            fig.legend(handles, labels, loc="outside lower center", ncols=min(len(labels), 5),
                       fontsize="small", frameon=False)
    elif handles:
        panels[0].legend(loc="best", fontsize="x-small", framealpha=0.7)
    return fig


def plot_observed_fitted(idata, var="y", *, prob=0.9, predictive=True, axes=None):
    """The observed series against the model's fit, one panel per observable.

    Draws whatever ``idata`` holds: the fit ``fitted_obs`` of group ``posterior_states``
    (noiseless observations of the state path given the data, see
    :func:`numpyro_statespace.arviz.add_states`) and, with ``predictive=True``, the wider
    posterior-predictive band of ``var`` (new data from the model, see
    :func:`numpyro_statespace.arviz.add_posterior_predictive`); medians and ``prob`` bands.
    Missing observations show as gaps in the data.

    :param var: the observed site. :return: the ``Figure``.
    """
    observed = _variable(_group(idata, "observed_data", "plot_observed_fitted"), var,
                         "observed_data")
    layers = []
    if predictive and "posterior_predictive" in idata.groups() \
            and var in idata.posterior_predictive:
        layers.append((idata.posterior_predictive[var], "C0", 0.2,
                       "posterior predictive (new data)"))
    if "posterior_states" in idata.groups() and "fitted_obs" in idata.posterior_states:
        layers.append((idata.posterior_states["fitted_obs"], "C1", 0.45, "fit"))
    if not layers:
        raise ValueError("plot_observed_fitted needs fitted_obs in group 'posterior_states' "
                         "(numpyro_statespace.arviz.add_states) or the posterior predictive "
                         f"of {var!r} (add_posterior_predictive)")
    fig = None
    for da, color, alpha, label in layers:
        values, time, names, _ = _draws(da)
        if fig is None:
            fig, panels = _axes(axes, len(names))
            data = observed.transpose(*da.dims[2:]).values
        lo, mid, hi = _band(values, prob)
        for i, ax in enumerate(panels):
            ax.fill_between(time, lo[:, i], hi[:, i], color=color, alpha=alpha, lw=0,
                            label=f"{label}: {prob:.0%} band")
            if label == "fit":
                ax.plot(time, mid[:, i], color=color, lw=1.2, label=f"{label}: median")
    for i, (ax, name) in enumerate(zip(panels, names)):
        ax.plot(time, data[:, i], color="k", lw=0.8, marker=".", ms=3, label="observed")
        ax.set_ylabel(name)
    return _finish(fig, panels, f"{var}: observed and fitted", axes is None)


def plot_states(idata, var=None, *, group="posterior_states", prob=0.9, truth=None,
                axes=None):
    """Latent states (or any ``(chain, draw, time, series)`` variable, e.g. the shocks
    ``"w"`` in ``group="posterior"``) with their posterior median and a ``prob`` band.

    :param var: default ``"state_path"`` when present (draws of the path: the band includes
        state uncertainty), else ``"smoothed_state"``.
    :param truth: optional ``(time, series)`` array drawn on top (e.g. simulated states).
    :return: the ``Figure``, one panel per series.
    """
    ds = _group(idata, group, "plot_states")
    if var is None:
        var = "state_path" if "state_path" in ds else "smoothed_state"
    values, time, names, _ = _draws(_variable(ds, var, group))
    fig, panels = _axes(axes, len(names))
    lo, mid, hi = _band(values, prob)
    if truth is not None:
        truth = np.asarray(truth)
        if truth.shape != values.shape[1:]:
            raise ValueError(f"truth must have shape {values.shape[1:]} (time, series); "
                             f"got {truth.shape}")
    for i, (ax, name) in enumerate(zip(panels, names)):
        ax.fill_between(time, lo[:, i], hi[:, i], color="C1", alpha=0.3, lw=0,
                        label=f"{prob:.0%} credible band")
        ax.plot(time, mid[:, i], color="C1", lw=1.2, label="posterior median")
        if truth is not None:
            ax.plot(time, truth[:, i], color="k", lw=0.8, ls="--", label="truth")
        ax.set_ylabel(name)
    return _finish(fig, panels, f"{var} ({group})", axes is None)


def plot_forecast(idata, var="y", *, probs=(0.5, 0.8, 0.95), history=None, axes=None):
    """Fan chart: the last ``history`` observations (all by default) and the forecast median
    with nested ``probs`` bands from group ``predictions``
    (:func:`numpyro_statespace.arviz.add_forecast`).

    :return: the ``Figure``, one panel per observable.
    """
    forecast = _variable(_group(idata, "predictions", "plot_forecast"), var, "predictions")
    observed = _variable(_group(idata, "observed_data", "plot_forecast"), var, "observed_data")
    values, future, names, series_dim = _draws(forecast)
    time_dim = [d for d in observed.dims if d != series_dim]
    if len(time_dim) != 1:
        raise ValueError(f"observed {var!r} must have dims (time, {series_dim}); got "
                         f"{observed.dims}")
    past = observed.transpose(time_dim[0], series_dim)
    if history is not None:
        past = past.isel({time_dim[0]: slice(-int(history), None)})
    data, time = past.values, _time_values(past, time_dim[0])
    fig, panels = _axes(axes, len(names))
    probs = sorted(probs, reverse=True)
    for i, (ax, name) in enumerate(zip(panels, names)):
        ax.plot(time, data[:, i], color="k", lw=0.9, marker=".", ms=3, label="observed")
        for j, p in enumerate(probs):
            lo, _, hi = _band(values[:, :, i], p)
            ax.fill_between(future, lo, hi, color="C2", alpha=0.15 + 0.2 * j, lw=0,
                            label=f"{p:.0%}")
        ax.plot(future, np.nanmedian(values[:, :, i], axis=0), color="C2", lw=1.4,
                label="forecast median")
        ax.axvline(time[-1], color="0.5", lw=0.6, ls=":")
        ax.set_ylabel(name)
    return _finish(fig, panels, f"{var}: forecast", axes is None)


def _irf_array(responses, kind):
    """``(draws, K, steps, V)`` array with shock names, variable names, horizons."""
    if hasattr(responses, "groups"):  # InferenceData
        ds = _group(responses, "impulse_responses", "plot_impulse_responses")
        da = _variable(ds, f"{kind}_response", "impulse_responses")
        shock_dim, horizon_dim, var_dim = [d for d in da.dims if d not in _SAMPLE_DIMS]
        values = da.stack(sample=_SAMPLE_DIMS).transpose("sample", shock_dim, horizon_dim,
                                                         var_dim).values
        return (values, [str(s) for s in da[shock_dim].values],
                [str(v) for v in da[var_dim].values], da[horizon_dim].values)
    field = {"state": "states", "observable": "observables"}[kind]
    values = np.asarray(getattr(responses, field) if hasattr(responses, field) else responses)
    if values.ndim == 2:        # (steps, V): one shock
        values = values[None]
    if values.ndim == 3:        # (K, steps, V): no draws
        values = values[None]
    if values.ndim != 4:
        raise ValueError(f"impulse responses must have shape ([draws,] [K,] steps, V); got "
                         f"{np.shape(getattr(responses, field, responses))}")
    _, K, steps, V = values.shape
    return values, list(map(str, range(K))), list(map(str, range(V))), np.arange(1, steps + 1)


def plot_impulse_responses(responses, *, kind="state", names=None, shock_names=None, prob=0.9,
                           axes=None):
    """Impulse responses, one panel per (variable, shock): the median and a ``prob`` band.

    :param responses: ``InferenceData`` with group ``impulse_responses``
        (:func:`numpyro_statespace.arviz.add_impulse_responses`), or a
        :class:`~numpyro_statespace.kernels.ImpulseResponse` / array of shape
        ``([draws,] [K,] steps, V)`` (without draws: a line, no band).
    :param kind: ``"state"`` or ``"observable"``.
    :param names, shock_names: labels overriding those found in ``responses``.
    :return: the ``Figure`` (rows: variables, columns: shocks).
    """
    if kind not in ("state", "observable"):
        raise ValueError(f"kind must be 'state' or 'observable'; got {kind!r}")
    values, shocks, variables, horizon = _irf_array(responses, kind)
    _, K, _, V = values.shape
    shocks = list(shock_names) if shock_names is not None else shocks
    variables = list(names) if names is not None else variables
    if len(shocks) != K or len(variables) != V:
        raise ValueError(f"need {K} shock names and {V} {kind} names; got {len(shocks)} and "
                         f"{len(variables)}")
    fig, panels = _axes(axes, V * K, ncols=K)
    for v in range(V):
        for k in range(K):
            ax = panels[v * K + k]
            lo, mid, hi = _band(values[:, k, :, v], prob)
            if values.shape[0] > 1:
                ax.fill_between(horizon, lo, hi, color="C3", alpha=0.3, lw=0,
                                label=f"{prob:.0%} credible band")
            ax.plot(horizon, mid, color="C3", lw=1.4, marker=".", ms=3, label="median")
            ax.axhline(0.0, color="0.5", lw=0.6)
            ax.set_ylabel(variables[v])
            if v == 0:
                ax.set_title(f"shock {shocks[k]}")
            if v == V - 1:
                ax.set_xlabel("horizon")
            ax.xaxis.get_major_locator().set_params(integer=True)
    return _finish(fig, panels, f"impulse responses ({kind})", axes is None)
