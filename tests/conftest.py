"""Tests run in float64 (the library itself never changes JAX's global config)."""

import os
import sys
from pathlib import Path

# Under pytest-xdist (the default run: one worker per core) each worker keeps XLA to one thread,
# so the workers do not oversubscribe the cores (a 2-3x slowdown of compile-heavy tests seen
# on 2 cores otherwise).
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "")
                               + " --xla_cpu_multi_thread_eigen=false"
                               " intra_op_parallelism_threads=1").strip()

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)

# `models/` is a top-level folder of the repository, importable from a clean clone.
ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

os.environ.setdefault("MPLBACKEND", "Agg")

# The heaviest modules first: pytest-xdist (--dist loadscope) hands whole modules to workers in
# collection order, so a heavy module collected last (test_workflow.py, alphabetically) keeps
# one worker busy for minutes after the other has run out of work.
HEAVY_FIRST = ("test_workflow.py", "test_inference.py", "test_parallel.py", "test_gradients.py",
               "test_kalman_adjoint.py", "test_dsge.py", "test_steady_state.py")


def pytest_collection_modifyitems(config, items):
    rank = {name: i for i, name in enumerate(HEAVY_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(HEAVY_FIRST)))  # stable sort
