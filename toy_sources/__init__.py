"""Information theory of toy correlated sources.

Exact closed forms (:mod:`toy_sources.bounds`, :mod:`toy_sources.gaussian`), exact
finite-block-length Slepian–Wolf limits of the DSBS (:mod:`toy_sources.finite_length`), joint pmfs
with named variables (:mod:`toy_sources.pmf`), source models (:mod:`toy_sources.sources`),
numerical solvers (:mod:`toy_sources.solvers`), sample estimators
(:mod:`toy_sources.estimators`) and working codes (:mod:`toy_sources.codes`).
All information quantities are in bits.
"""

__version__ = "0.1.0"
