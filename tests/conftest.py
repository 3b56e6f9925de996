"""Tests run in float64 (the library itself never changes JAX's global config)."""

import os
import sys
from pathlib import Path

# XLA's multi-threaded Eigen pool on CPU has been seen to hang while NumPy reads back a vmapped
# result (see examples/_common.py); single-threaded Eigen costs nothing measurable here.
os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false")

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)

# `models/` is a top-level folder of the repository, importable from a clean clone.
ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

os.environ.setdefault("MPLBACKEND", "Agg")
