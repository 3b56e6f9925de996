"""Coordinates of the state-space dimensions, for :mod:`numpyro_statespace.arviz`.

Time labels come from the caller (a pandas index, a ``DataFrame``'s index) or default to
``1..T``; the states' ``u_0`` gets one label before them and a forecast the labels after them,
continuing the pandas frequency or the constant step of a numeric index. Names of states,
observables and shocks default to ``0..n-1``. Once attached to an ``InferenceData``, the
coordinates are found there again by :func:`stored_coords`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = [
    "OBS",
    "SHOCK",
    "SS_DIMS",
    "STATE",
    "TIME",
    "TIME0",
    "coordinates",
    "data_layout",
    "dim_labels",
    "forecast_coord",
    "observed_dims",
    "stored_coords",
    "time_coords",
]

TIME, TIME0, OBS, STATE, SHOCK = "time", "time_with_initial", "observable", "state", "shock"
SS_DIMS = (TIME, TIME0, OBS, STATE, SHOCK)


# -- time labels from pandas indexes -------------------------------------------------------
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


def forecast_coord(time, steps, forecast_time):
    """Labels of the ``steps`` forecast steps: ``forecast_time``, else ``time`` continued."""
    if forecast_time is not None:
        return _coord(pd.Index(forecast_time))
    _, tail = _extend(pd.Index(time), 0, steps)
    if tail is None:
        raise ValueError("the time coordinate has no regular spacing to continue (e.g. "
                         "business days with holidays): pass forecast_time, the labels "
                         f"of the {steps} forecast steps")
    return _coord(tail)


# -- the coordinates of to_inference_data ----------------------------------------------------
def data_layout(y, observed, ss_names):
    """``(frame, T, M)``: ``y`` as a ``DataFrame`` (``None`` for an array or no ``y``) and the
    number of steps and observables, from ``y`` or else the first observed ``(T, M)`` site."""
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
    if y is not None:
        _check_data_shape(y_shape, observed, ss_names)
    return frame, y_shape[-2], y_shape[-1]


def _check_data_shape(y_shape, observed, ss_names):
    """Refuse ``y`` whose ``(T, M)`` differs from the state-space sites' (names would be
    attached to the wrong steps, or silently dropped)."""
    for name in ss_names:
        shape = tuple(np.shape(observed[name]["value"]))[-2:]
        if shape != tuple(y_shape[-2:]):
            raise ValueError(f"y has shape (T, M) = {tuple(y_shape[-2:])} but the model's "
                             f"site {name!r} observes {shape}: pass the data the model was "
                             f"run on (the same rows and columns)")


def coordinates(frame, T, M, N, K, *, time, syms, obs_syms, shock_names):
    """``{dim: labels}`` of the five state-space dimensions (``None`` where the size is
    unknown and no names are given); a ``DataFrame`` supplies the time labels and the
    observables' names unless ``time`` and ``obs_syms`` are given."""
    if time is None and frame is not None:
        time = frame.index
    if obs_syms is None and frame is not None:
        obs_syms = [str(c) for c in frame.columns]
    index = _time_index(time, T)
    head, _ = _extend(index, 1, 0)
    return {
        TIME: _coord(index),
        TIME0: _coord(head) if head is not None else np.arange(T + 1),
        OBS: dim_labels(obs_syms, M, "observables", "obs_syms"),
        STATE: dim_labels(syms, N, "states", "syms"),
        SHOCK: dim_labels(shock_names, K, "shocks", "shock_names"),
    }


def dim_labels(labels, n, what, argname):
    """``labels`` checked to have ``n`` entries, or ``0..n-1`` (``None`` if ``n`` is too)."""
    if labels is None:
        return list(range(n)) if n is not None else None
    labels = list(labels)
    if n is not None and len(labels) != n:
        raise ValueError(f"{argname} must name the {n} {what}; got {len(labels)}: {labels}")
    return labels


# -- coordinates found in an InferenceData ---------------------------------------------------
def stored_coords(idata):
    """Coordinates of the state-space dimensions found anywhere in ``idata``."""
    found = {}
    for group in idata.groups():
        ds = idata[group]
        for name in SS_DIMS:
            if name in ds.coords and name not in found:
                found[name] = ds.coords[name].values
    return found


def time_coords(idata, T):
    """``(time, time_with_initial)`` coordinate values stored in ``idata`` (or the defaults)."""
    stored = stored_coords(idata)
    time = stored.get(TIME)
    if time is None or len(time) != T:
        time = np.arange(1, T + 1)
    time0 = stored.get(TIME0)
    if time0 is None or len(time0) != T + 1:
        head, _ = _extend(pd.Index(time), 1, 0)
        time0 = _coord(head) if head is not None else np.arange(T + 1)
    return time, time0


def observed_dims(idata, name, shape):
    """Dims and coords of observed variable ``name`` in ``idata`` (or ``(time, observable)``)."""
    if "observed_data" in idata.groups() and name in idata.observed_data:
        var = idata.observed_data[name]
        if var.shape == shape:
            return list(var.dims), {d: var.coords[d].values for d in var.dims if d in var.coords}
    if len(shape) == 2:
        time, _ = time_coords(idata, shape[0])
        stored = stored_coords(idata).get(OBS)
        obs = list(stored) if stored is not None and len(stored) == shape[1] else None
        return [TIME, OBS], {TIME: time, **({OBS: obs} if obs is not None else {})}
    return None, {}
