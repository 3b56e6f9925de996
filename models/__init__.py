"""Ready models and their bundled data (the model zoo).

=========================  ====================================================================
module                     contents
=========================  ====================================================================
``reference_data``         loaders for DifferenceEquations.jl's test data (``data/``)
``rbc``                    the structural RBC model (equilibrium conditions, steady state,
                           first-order solution by :mod:`numpyro_statespace.dsge`), Kalman and
                           joint NumPyro models, bundled simulated data
``rbc_reduced_form``       the RBC first-order solution in reduced form with free ``a, rho,
                           sigma`` (Kalman, joint and pruned joint models)
``rbc_second_order``       the pruned second-order RBC (reference matrices), joint likelihood
``fvgq20``                 the FVGQ20 DSGE model (14 states, 6 shocks): problems,
                           distributions, Kalman / joint / pruned joint NumPyro models
``timeseries``             local level, local linear trend, ARMA(p, q), dynamic factor model
``panel``                  a hierarchical panel of series (partially pooled persistence and
                           volatility, per-series missing data), its simulation, sharding helpers
=========================  ====================================================================
"""
