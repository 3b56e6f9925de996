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
