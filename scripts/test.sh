#!/usr/bin/env bash
# Set up .venv from the lock file (if needed) and run the whole test suite.
# Used verbatim by the README and by .ci/run. pytest's exit 5 (no tests collected) counts as a failure.
set -euo pipefail
cd "$(dirname "$0")/.."
# sbin holds slurmctld/munged and the tests call sbatch/squeue: a non-login PATH may lack it
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3
if [ ! -x .venv/bin/python ] || ! cmp -s requirements/lock.txt .venv/.lock-installed; then
  "$PY" -m venv .venv
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements/lock.txt
  .venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e . \
    || .venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
  cp requirements/lock.txt .venv/.lock-installed
fi
# The report test opens the HTML report in headless Chromium (Debian's package); install it when we can.
if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
    || echo "chromium could not be installed: the browser test will be skipped" >&2
fi
# The slurm tests submit slurm/*.sbatch to a real single-node Slurm (Debian slurm-wlm + munge); start one when
# we can (root + apt), else those tests skip. HEATTRACK_NO_SLURM=1 leaves it out.
if [ -z "${HEATTRACK_NO_SLURM:-}" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  bash scripts/slurm-single-node.sh >/dev/null 2>&1 \
    || echo "a single-node Slurm could not be started: the slurm tests will be skipped" >&2
fi
set +e
.venv/bin/python -m pytest "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then
  echo "pytest collected no tests: failing" >&2
  exit 1
fi
exit "$rc"
