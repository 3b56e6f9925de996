#!/usr/bin/env bash
# Issue 6's GPU comparison, prepared for the device machine: one call, under 8 minutes.
#
#   here, once:   bash benchmarks/gpu.sh fetch      # the peers' wheels into benchmarks/wheels
#   on a device:  run(command="bash benchmarks/gpu.sh", carry=["benchmarks/wheels"],
#                     timeout_s=540)                 # then give_back
#
# The device machine has JAX with CUDA and NumPyro but no network: dynamax, tfp-nightly and
# their small pure dependencies travel as wheels; dynamax imports fastprogress only for
# progress bars (and fastprogress pulls a web framework), so it gets a stand-in module.
# Extra arguments go to benchmarks/gpu.py (e.g. --sizes 1000,100000).
set -euo pipefail
cd "$(dirname "$0")/.."
WHEELS=benchmarks/wheels

if [ "${1:-}" = fetch ]; then
  python -m pip download --no-deps -d "$WHEELS" dynamax tfp-nightly dm-tree gast decorator
  exit 0
fi

SITE=$(mktemp -d)
python -m pip install --quiet --no-index --no-deps --target "$SITE" "$WHEELS"/*.whl
mkdir -p "$SITE/fastprogress"
touch "$SITE/fastprogress/__init__.py"
cat > "$SITE/fastprogress/fastprogress.py" <<'PY'
def progress_bar(iterable, *args, **kwargs):
    return iterable
PY
export PYTHONPATH="$PWD:$SITE${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
timeout --signal=INT 480 python benchmarks/gpu.py "$@"
