"""How often NumPyro compiles its sampling loop: a one-site model, 2 chains, two ``mcmc.run``
calls, sequential and vectorized chains. numpyro 0.22.0 prints 2 + 2 and 1 + 1: its
``fori_collect`` wraps the cached loop body in a new ``jax.jit`` on every call and passes that
wrapper as a static argument of the jitted loop, and two jit wrappers of one function are not
equal, so every run, and every sequential chain, compiles the whole loop again (see
benchmarks/README.md, NUTS section). Once NumPyro fixes this, the sequential NUTS
figures of ``nuts.py`` lose one compilation per extra chain.

    python benchmarks/numpyro_recompile.py
"""

import logging

import jax
import numpyro
import numpyro.distributions as dist
from numpyro.infer import MCMC, NUTS


class _CountLoopCompilations(logging.Handler):
    count = 0

    def emit(self, record):
        if "XLA compilation of jit(_fori_collect_loop)" in record.getMessage():
            self.count += 1


def model():
    numpyro.sample("x", dist.Normal())


def main():
    counter = _CountLoopCompilations()
    logger = logging.getLogger("jax")
    logger.addHandler(counter)
    logger.setLevel(logging.WARNING)
    logger.propagate = False
    jax.config.update("jax_log_compiles", True)
    print(f"numpyro {numpyro.__version__}, jax {jax.__version__}")
    for chain_method in ("sequential", "vectorized"):
        mcmc = MCMC(NUTS(model), num_warmup=10, num_samples=10, num_chains=2,
                    chain_method=chain_method, progress_bar=False)
        counts = []
        for seed in (0, 1):
            counter.count = 0
            mcmc.run(jax.random.key(seed))
            counts.append(counter.count)
        print(f"{chain_method:10s} chains: sampling loop compiled {counts[0]} + {counts[1]} times "
              f"over two runs")


if __name__ == "__main__":
    main()
