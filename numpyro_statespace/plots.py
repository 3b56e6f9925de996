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
:func:`plot_diagnostics`           standardised one-step residuals: series, density, Q-Q, ACF
:func:`plot_components`            contributions of a structural model's components
=================================  ===========================================================

matplotlib is imported inside the functions: ``pip install "numpyro_statespace[examples]"``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = [
    "plot_components",
    "plot_diagnostics",
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


def _acf(x, lags):
    """Sample autocorrelations ``1..lags`` of ``x`` (NaN-free), statsmodels' ``acf`` estimator
    (deviations from the mean, divided by ``n`` at every lag)."""
    d = x - x.mean()
    denom = np.sum(d * d)
    return np.array([np.sum(d[k:] * d[:-k]) / denom for k in range(1, lags + 1)])


def plot_diagnostics(residuals, *, variable=0, lags=10, time=None, axes=None):
    """Standardised one-step residual diagnostics, as statsmodels' ``plot_diagnostics``.

    Four panels: the residuals over time; their histogram with a kernel density estimate and
    the ``N(0, 1)`` density; a normal Q-Q plot; the correlogram (lags ``1..lags``, with
    ``+-1.96 / sqrt(n)`` bounds). Under the model the residuals are independent ``N(0, 1)``.

    :param residuals: ``(T,)`` or ``(T, M)`` (NaN = missing, left out), a pandas Series or
        DataFrame (its index is the time axis), e.g.
        :func:`numpyro_statespace.residuals.standardized_residuals` at a posterior draw or
        point estimate. :param variable: column of a ``(T, M)`` input (index or name).
    :return: the ``Figure``.
    """
    residuals, label, time = _residual_series(residuals, variable, time)
    x = residuals[np.isfinite(residuals)]
    if x.size < max(3, lags + 1):
        raise ValueError(f"plot_diagnostics needs more than lags = {lags} observed residuals; "
                         f"got {x.size}")
    fig, (ax_t, ax_h, ax_q, ax_c) = _axes(axes, 4, ncols=2, panel_size=(7.0, 3.0))
    ax_t.plot(np.asarray(time), residuals, color="C0", lw=0.9)
    ax_t.axhline(0.0, color="0.5", lw=0.6)
    ax_t.set_title("standardized residuals")
    grid = np.linspace(min(x.min(), -3.0), max(x.max(), 3.0), 200)
    _density_panel(ax_h, x, grid)
    _qq_panel(ax_q, x, grid)
    _correlogram_panel(ax_c, x, lags)
    if axes is None:
        fig.suptitle(f"residual diagnostics {label}".strip())
    return fig


def _residual_series(residuals, variable, time):
    """``(residuals (T,), label, time values)`` of one series of ``residuals``."""
    if hasattr(residuals, "columns"):
        names = list(residuals.columns)
        col = names.index(variable) if variable in names else variable
        time = residuals.index if time is None else time
        residuals, label = residuals.to_numpy()[:, col], str(names[col])
    elif hasattr(residuals, "index") and hasattr(residuals, "to_numpy"):
        time = residuals.index if time is None else time
        residuals, label = residuals.to_numpy(), str(residuals.name or "")
    else:
        residuals = np.asarray(residuals, float)
        if residuals.ndim == 2:
            residuals = residuals[:, variable]
        label = str(variable)
    residuals = np.asarray(residuals, float)
    if residuals.ndim != 1:
        raise ValueError(f"residuals must be (T,) or (T, M); got shape {residuals.shape}")
    if time is None:
        time = np.arange(1, residuals.size + 1)
    elif isinstance(time, pd.PeriodIndex):
        time = time.to_timestamp()
    return residuals, label, time


def _density_panel(ax, x, grid):
    """Histogram, kernel density estimate and the ``N(0, 1)`` density of ``x``."""
    from scipy import stats
    ax.hist(x, bins="auto", density=True, color="C0", alpha=0.4, label="histogram")
    ax.plot(grid, stats.gaussian_kde(x)(grid), color="C1", label="KDE")
    ax.plot(grid, stats.norm.pdf(grid), color="C2", label="N(0, 1)")
    ax.set_title("histogram and estimated density")
    ax.legend(fontsize="x-small")


def _qq_panel(ax, x, grid):
    """Normal Q-Q plot of ``x`` with the 45-degree line."""
    from scipy import stats
    theoretical = stats.norm.ppf((np.arange(1, x.size + 1) - 0.5) / x.size)
    ax.plot(theoretical, np.sort(x), ".", color="C0", ms=3)
    ax.plot(grid, grid, color="C3", lw=0.8)
    ax.set_title("normal Q-Q")
    ax.set_xlabel("theoretical quantiles")
    ax.set_ylabel("sample quantiles")


def _correlogram_panel(ax, x, lags):
    """Autocorrelations ``1..lags`` of ``x`` with ``+-1.96 / sqrt(n)`` bounds."""
    acf = _acf(x, lags)
    ax.vlines(np.arange(1, lags + 1), 0.0, acf, color="C0")
    ax.plot(np.arange(1, lags + 1), acf, "o", color="C0", ms=3)
    bound = 1.96 / np.sqrt(x.size)
    ax.axhspan(-bound, bound, color="C0", alpha=0.15, lw=0)
    ax.axhline(0.0, color="0.5", lw=0.6)
    ax.set_title("correlogram")
    ax.set_xlabel("lag")


def plot_components(idata, model, *, var="state_path", group="posterior_states", prob=0.9,
                    axes=None):
    """Contributions of a structural model's components to the observable, one panel each.

    :param model: the :class:`~numpyro_statespace.structural.StructuralModel` whose states
        ``idata`` holds (``state_path`` or ``smoothed_state`` of
        :func:`numpyro_statespace.arviz.add_states`); a static regression's contribution
        ``X beta`` uses the posterior draws of its coefficients.
    :return: the ``Figure`` (median and ``prob`` band of each component over time).
    """
    da = _variable(_group(idata, group, "plot_components"), var, group)
    time_dim, state_dim = [d for d in da.dims if d not in _SAMPLE_DIMS]
    states = da.stack(sample=_SAMPLE_DIMS).transpose("sample", time_dim, state_dim).values
    if states.shape[-1] != model.num_states:
        raise ValueError(f"{var} has {states.shape[-1]} states; the model has "
                         f"{model.num_states} ({model.state_names})")
    time = _time_values(da, time_dim)[1:]
    parts = model.components_of(states[:, 1:], params=None, static=False)
    for c in model.components:
        if hasattr(c, "X") and not c.time_varying:
            if c.name not in idata.posterior:
                raise ValueError(f"the regression {c.name!r} needs its coefficients in the "
                                 f"posterior group")
            beta = idata.posterior[c.name].stack(sample=_SAMPLE_DIMS).transpose("sample", ...)
            parts[c.name] = beta.values @ np.asarray(c.X).T
    fig, panels = _axes(axes, len(parts))
    for ax, (name, values) in zip(panels, parts.items()):
        lo, mid, hi = _band(np.asarray(values), prob)
        ax.fill_between(time, lo, hi, color="C0", alpha=0.3, lw=0,
                        label=f"{prob:.0%} credible band")
        ax.plot(time, mid, color="C0", lw=1.2, label="median")
        ax.set_ylabel(name)
    return _finish(fig, panels, "structural components", axes is None)
