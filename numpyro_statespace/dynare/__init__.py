"""Dynare ``.mod`` files to this package's models: ``nss.dynare.load(path_or_text)``.

A pure-Python reader for the subset of Dynare's language that estimated models use (see
:mod:`.blocks` for the statements, :mod:`.expressions` for the maths, :mod:`.priors` for the
prior shapes); the result (:class:`DynareFile`) holds a :class:`numpyro_statespace.DynareModel`,
the ``varobs``, the ``estimated_params`` priors, and gives solutions, log-likelihoods and a
NumPyro model. Anything outside the subset is a :class:`DynareError` (a ``ValueError``) citing
``file:line:col`` and what to do.
"""

from .errors import DynareError, Location
from .loader import DynareFile, load
from .priors import dynare_prior, inverse_gamma1_parameters

__all__ = ["DynareError", "DynareFile", "Location", "dynare_prior",
           "inverse_gamma1_parameters", "load"]
