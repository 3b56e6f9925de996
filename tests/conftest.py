"""Tests run in float64 (the library itself never changes JAX's global config)."""

import gc
import os
import sys
from importlib.metadata import version
from pathlib import Path

# The suite's time is XLA compiling small programs (each test compiles its own value,
# gradient and forward-mode programs), hardly running them: of ~1,300 CPU seconds, ~1,200 are
# tracing, lowering and compiling (JAX_LOG_COMPILES, 2,700 compilations). XLA's CPU backend
# compiles them about twice as fast with LLVM at -O0 and its older (non-MLIR) fusion emitters
# (measured: test_parallel's largest case 57 -> 28 CPU seconds, same results); the HLO-level
# optimisations (fusion, simplification) still run. Results may differ from the default
# build's in the last bits, which every tolerance here allows. Set before JAX starts; the
# example scripts that test_workflow runs as subprocesses inherit it. An explicit level is
# left alone: `.ci/run` reruns every module not marked `workflow` with
# `XLA_FLAGS=--xla_backend_optimization_level=3` (XLA's default level and emitters: what users
# compile).
_flags = os.environ.get("XLA_FLAGS", "")
if "xla_backend_optimization_level" not in _flags:
    _flags += " --xla_backend_optimization_level=0"
    # an unknown flag aborts XLA: this one is known from jaxlib 0.9 on (checked: 0.9.2, 0.10.2)
    if tuple(int(p) for p in version("jaxlib").split(".")[:2]) >= (0, 9):
        _flags += " --xla_cpu_use_fusion_emitters=false"
# Under pytest-xdist (the default run: one worker per core) each worker keeps XLA's matrix
# products on its own thread, so the workers do not oversubscribe the cores (a 2-3x slowdown
# of compile-heavy tests seen on 2 cores otherwise).
if os.environ.get("PYTEST_XDIST_WORKER"):
    _flags += " --xla_cpu_multi_thread_eigen=false"
os.environ["XLA_FLAGS"] = _flags.strip()
# JAX's persistent compilation cache (JAX_COMPILATION_CACHE_DIR) stays off here: within one
# clean run few programs are compiled twice. Measured on test_kalman_adjoint, test_second_order
# and test_dynare_timing in one process, as one xdist worker runs them (every program cached,
# min compile time 0): 144 hits of 959 compilations, all small, saving ~5 s of compile time
# against ~4 s of reading them back and 815 entries written; 101 CPU seconds without the
# cache, 104 with. The optimised pass of `.ci/run` compiles with other flags, so it could share
# nothing with this run. A developer repeating runs on one machine may set the variable.

import jax  # noqa: E402
import pytest  # noqa: E402

jax.config.update("jax_enable_x64", True)

# `models/` is a top-level folder of the repository, importable from a clean clone.
ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

os.environ.setdefault("MPLBACKEND", "Agg")

# The heaviest modules first (CPU seconds of the default run, measured): with --dist loadscope
# --no-loadscope-reorder (pyproject.toml) pytest-xdist hands whole modules to the workers in
# collection order, so the light ones fill the end and no worker is left alone with a heavy
# module. (xdist's default order is by number of tests: test_bad_input's 140 cases first, the
# NUTS modules last.) test_workflow leads: its example scripts run in the background meanwhile.
HEAVY_FIRST = ("test_workflow.py", "test_gradients.py", "test_inference.py",
               "test_distributions.py", "test_kalman_adjoint.py", "test_steady_state.py",
               "test_parallel.py", "test_dsge.py", "test_whitening.py",
               "test_singular_highprec.py", "test_models.py")


def pytest_collection_modifyitems(config, items):
    rank = {name: i for i, name in enumerate(HEAVY_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(HEAVY_FIRST)))  # stable sort


# Every program XLA:CPU compiles keeps its machine code in memory mappings of its own (code,
# read-only data and data of each kernel object: tens of mappings per program), and JAX keeps a
# program for as long as the function that compiled it lives (a module-level `jax.jit`: for the
# whole process). A pytest-xdist worker that runs module after module so accumulates mappings
# until the kernel's per-process limit (`vm.max_map_count`, 65,530 by default) makes a compile's
# mmap fail and XLA abort the worker ("Fatal Python error: Aborted" in backend_compile_and_load,
# seen at -O3 in test_smoother after a worker's earlier modules). Each module's programs are
# dropped when the module ends, so a worker holds one module's programs at a time; few programs
# are shared between modules (the note on the compilation cache above), and this fixture, set
# up first, is torn down after the module's own fixtures.
@pytest.fixture(autouse=True, scope="module")
def _drop_compiled_programs_after_each_module():
    yield
    jax.clear_caches()
    gc.collect()
