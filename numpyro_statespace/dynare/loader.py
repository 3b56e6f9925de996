r"""``load(path_or_text)``: a ``.mod`` file to a :class:`DynareFile` (model, priors, likelihoods).

The pipeline is macro processing and comments (:mod:`.macro`), tokens (:mod:`.lexer`),
statements (:mod:`.blocks`), names and closures (:mod:`.symbols`, :mod:`.compile`) and the
priors (:mod:`.priors`); the result wraps a :class:`numpyro_statespace.DynareModel`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import jax
import jax.numpy as jnp
import numpy as np

from . import blocks, macro
from . import compile as _compile
from . import priors as _priors
from .errors import DynareError
from .lexer import tokenize


def load(source, *, defines=None):
    """Read a ``.mod`` file (a path, or the text itself when it contains a newline or ``;``).

    :param defines: macro variables set before the file (as Dynare's ``-DNAME=value``).
    :return: :class:`DynareFile`.
    """
    text, file = source, "<string>"
    if isinstance(source, os.PathLike) or ("\n" not in source and ";" not in source):
        file = os.fspath(source)
        if not os.path.exists(file):
            raise ValueError(f"no .mod file at {file!r} (pass a path or the file's text)")
        with open(file, "rb") as fh:
            raw = fh.read()
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:  # older .mod files are often Latin-1
            text = raw.decode("latin-1")
    expanded, _ = macro.preprocess(text, file, defines)
    mod = blocks.read(tokenize(expanded, file), file)
    return DynareFile(mod)


class DynareFile:
    """A read ``.mod`` file.

    Attributes: ``model`` (:class:`numpyro_statespace.DynareModel`), ``observables`` (the
    ``varobs`` names), ``priors`` (site name -> NumPyro distribution: a parameter's own name,
    ``stderr_<shock>`` for a shock's standard deviation), ``order`` (from ``stoch_simul`` /
    ``estimation``, default 1), ``calibration`` (parameter -> value of the file), ``notes``
    (statements read and ignored), ``file``, ``mod`` (the statements as read:
    :class:`~.blocks.ModFile`).
    """

    def __init__(self, mod):
        from numpyro_statespace import DynareModel

        self.mod = mod
        self._jit_cache = {}
        self.file = mod.file
        self.order = mod.order
        self.notes = list(mod.notes)
        self.compiled = c = _compile.compile_mod(mod)
        self.calibration = dict(c.calibration)
        self.parameter_names = c.symbols.parameters
        self.shock_names = c.symbols.exogenous
        self.observables = c.observables
        self.priors = self._priors()
        self.model = DynareModel(
            c.equations, c.symbols.endogenous, c.symbols.exogenous, c.symbols.parameters,
            steady_state=c.steady_state,
            steady_state_guess=None if c.steady_state is not None else c.guess,
            observables=c.observables or None)

    def __repr__(self):
        return (f"DynareFile({self.file!r}: {len(self.model_endogenous)} endogenous, "
                f"{len(self.shock_names)} shocks, {len(self.parameter_names)} parameters, "
                f"varobs {list(self.observables)}, {len(self.priors)} priors, order "
                f"{self.order})")

    @property
    def model_endogenous(self):
        """The endogenous variables declared in the file (without auxiliary variables)."""
        return self.compiled.symbols.endogenous

    # -- parameters ---------------------------------------------------------------------

    def parameters(self, p=None):
        """``{name: value}`` for every parameter and ``stderr_<shock>``: ``p`` (a mapping, may
        hold traced values) over the file's calibration."""
        p = dict(p or {})
        stderr = {k: p.pop(k) for k in list(p) if k.startswith("stderr_")
                  and k[len("stderr_"):] in self.shock_names + self.observables}
        values = _compile.parameter_values(self.calibration, p, self.parameter_names)
        values.update(stderr)
        return values

    def shock_cov(self, p=None):
        """``(K, K)`` covariance of the shocks: ``stderr_<shock>`` entries of ``p`` replace
        the shocks block's standard deviations, its correlations kept (as Dynare's
        estimation does)."""
        p = self.parameters(p)
        return _with_stderr(self.compiled.shock_cov(p), self.shock_names, p)

    def measurement_cov(self, p=None):
        """``(M, M)`` covariance of the measurement errors of the ``varobs`` (zero unless the
        shocks block or ``stderr_<varobs>`` gives them)."""
        p = self.parameters(p)
        return _with_stderr(self.compiled.measurement_cov(p), self.observables, p)

    def _priors(self):
        out = {}
        sym = self.compiled.symbols
        for e in self.mod.estimated:
            site = e.name if e.kind == "param" else f"stderr_{e.name}"
            if e.kind == "param" and sym.kind.get(e.name) != "parameter":
                raise DynareError(f"estimated_params names '{e.name}', which is not a "
                                  "declared parameter", e.where,
                                  "Declare it in 'parameters' (or write 'stderr " + e.name + "')")
            if e.kind == "stderr" and e.name not in self.shock_names + self.observables:
                raise DynareError(f"'stderr {e.name}': '{e.name}' is neither a shock nor a "
                                  "varobs variable", e.where, "Declare it in 'varexo'")
            if e.shape is None:
                self.notes.append(f"{e.where}: '{e.name}' has no prior (maximum likelihood)")
                continue
            hyper = [None if h is None else sym.evaluate_constant(h) for h in e.hyper]
            out[site] = _priors.dynare_prior(e.shape, *hyper, name=e.name, where=e.where)
        return out

    # -- solutions and likelihoods --------------------------------------------------------

    def solve(self, p=None, order=None):
        """``model.solve`` at ``p`` (over the calibration) with the file's shock covariance;
        ``order`` defaults to the file's. Jitted once per order (an eager solve runs hundreds
        of small operations), so a steady state that fails shows as ``ok`` False here;
        ``model.steady_state(p)`` reports its residual."""
        order = self.order if order is None else order
        solve = self._jitted(("solve", order), lambda q: self.model.solve(
            self.model_parameters(q), order, shock_cov=self.shock_cov(q)))
        return solve(self.parameters(p))

    def _jitted(self, key, fn):
        if key not in self._jit_cache:
            self._jit_cache[key] = jax.jit(fn)
        return self._jit_cache[key]

    def model_parameters(self, p=None):
        """The declared parameters of :meth:`parameters` (without ``stderr_*`` entries)."""
        p = self.parameters(p)
        return {n: p[n] for n in self.parameter_names}

    def resid(self, p=None, steady_state=None):
        """Dynare's ``resid``: each equation's residual at the steady state (shocks zero), as
        ``[(where, tag name or None, residual)]`` in the file's order; ``steady_state``
        (name -> value) defaults to ``model.steady_state`` at ``p``."""
        q = self.model_parameters(p)
        ss = self.model.steady_state(q) if steady_state is None else steady_state
        shocks = set(self.shock_names)
        values = self.compiled.equations(
            lambda n, lag=0: jnp.asarray(0.0 if n in shocks else ss[n]), q)
        return [(eq.where, eq.tags.get("name"), float(r))
                for eq, r in zip(self.mod.equations, values)]

    def observable_steady_state(self, p=None):
        """``(M,)`` steady-state levels of the ``varobs``."""
        return self.model.observable_steady_state(self.model_parameters(p))

    def data(self, data):
        """``(T, M)`` array of ``data``: an array with the ``varobs`` in order, or a mapping
        (dict, DataFrame) holding a column per ``varobs`` name."""
        if not self.observables:
            raise DynareError("the file has no varobs statement", None,
                              "Add 'varobs y1 y2 ...;' naming the observed variables")
        if isinstance(data, Mapping) or hasattr(data, "columns"):
            columns = list(data.keys())
            for name, where in self.mod.varobs:
                if name not in columns:
                    raise DynareError(f"varobs variable '{name}' is not in the data "
                                      f"(columns: {columns})", where,
                                      "Add the column, or remove the name from varobs")
            return jnp.stack([jnp.asarray(np.asarray(data[n], dtype=float))
                              for n in self.observables], axis=-1)
        y = jnp.asarray(data)
        if y.ndim != 2 or y.shape[1] != len(self.observables):
            raise ValueError(f"data must have shape (T, {len(self.observables)}) (varobs "
                             f"{list(self.observables)}); got {tuple(y.shape)}")
        return y

    def log_likelihood(self, data, p=None, order=None, *, noise=None):
        """``log p(data)`` at ``p`` in levels (the observables' steady state is subtracted).

        ``order=1``: the Kalman filter from the stationary distribution (marginal likelihood,
        as Dynare's ``lik_init=1``). ``order=2``: the pruned second-order model's density of
        ``data`` given the shocks ``noise (T, K)`` (standard normal; the observation needs
        measurement error). ``-inf`` where the solution is not ``ok``.
        """
        from . import likelihood
        order = self.order if order is None else order
        y = self.data(data)  # checked here, before any solve
        if order == 2 and noise is None:
            raise ValueError("order=2 gives the density of the data given the shocks: pass "
                             f"noise=(T, {len(self.shock_names)}) standard-normal shocks")
        fn = self._jitted(("log_likelihood", order), lambda y, q, w: likelihood.log_likelihood(
            self, y, q, order, w))
        return fn(y, self.parameters(p), noise)

    def numpyro_model(self, data=None, order=None, *, route="whitened", num_timesteps=None):
        """A NumPyro model (no arguments) with the ``estimated_params`` priors and ``data``.

        First order: the Kalman likelihood. Second order (``route="whitened"``): the shocks
        are a latent ``(T, K)`` site ``w``, sampled whitened by their first-order posterior
        (``nss.Whitening``) and the pruned model's joint density of the data given them.
        ``route="inversion"`` (first or second order): the inversion filter
        (``nss.InversionFilterLGSS`` / ``nss.InversionFilterSS``), shocks recovered exactly
        (as many shocks as ``varobs``; measurement errors are not used).
        """
        from . import likelihood
        return likelihood.numpyro_model(self, data, order, route, num_timesteps)


def _with_stderr(S, names, p):
    """``S`` with the standard deviations ``p["stderr_<name>"]`` where given, correlations
    kept: ``diag(sd') C diag(sd')`` with ``C`` the correlation of ``S`` (unit diagonal)."""
    if not any(f"stderr_{n}" in p for n in names):
        return S
    var = jnp.diag(S)
    positive = var > 0
    # double where: the square root's derivative stays finite at a zero variance
    sd = jnp.where(positive, jnp.sqrt(jnp.where(positive, var, 1.0)), 0.0)
    safe = jnp.where(positive, sd, 1.0)
    corr = S / (safe[:, None] * safe[None, :])
    corr = jnp.where(jnp.eye(len(names), dtype=bool), 1.0, corr)
    new = jnp.stack([jnp.asarray(p[f"stderr_{n}"], S.dtype) if f"stderr_{n}" in p else sd[i]
                     for i, n in enumerate(names)])
    return corr * new[:, None] * new[None, :]
