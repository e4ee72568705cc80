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
# Where this script can install services (root + apt) it must: a browser or Slurm that fails to come up fails
# the run with its log, instead of silently skipping their tests. Without root/apt those tests skip (and say so).
# HEATTRACK_NO_SLURM=1 / HEATTRACK_NO_BROWSER=1 leave one out on purpose.
CAN_INSTALL=0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then CAN_INSTALL=1; fi
LOG=$(mktemp -d)
# The report tests drive Debian's Chromium with Playwright.
if [ -z "${HEATTRACK_NO_BROWSER:-}" ] && [ "$CAN_INSTALL" = 1 ] && ! command -v chromium >/dev/null 2>&1; then
  if ! (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >"$LOG/chromium.log" 2>&1; then
    tail -n 40 "$LOG/chromium.log" >&2
    echo "chromium could not be installed (log above): failing instead of skipping the browser tests" >&2
    exit 1
  fi
fi
# The slurm tests submit slurm/*.sbatch to a real single-node Slurm (Debian slurm-wlm + munge).
if [ -z "${HEATTRACK_NO_SLURM:-}" ] && [ "$CAN_INSTALL" = 1 ]; then
  if ! bash scripts/slurm-single-node.sh >"$LOG/slurm.log" 2>&1; then
    tail -n 40 "$LOG/slurm.log" >&2
    echo "a single-node Slurm could not be started (log above): failing instead of skipping the slurm tests" >&2
    exit 1
  fi
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
