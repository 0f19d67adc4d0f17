#!/usr/bin/env bash
# Install the package with its test extras into a virtual environment (.venv, or $VENV) and run the whole test suite.
# pip honours $PIP_CONSTRAINT (scripts/test_minimum_versions.sh uses it to pin the oldest declared versions).
# pytest's exit code 5 ("no tests collected") is turned into a failure: a suite that runs nothing has not passed.
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${VENV:-.venv}"
python3 -m venv "$venv"
# pip's "Location ... is ignored" warnings on some machines are harmless; filter them, keep pip's exit status.
"$venv/bin/python" -m pip install --quiet -e ".[dev]" 2> >(grep -v "is ignored" >&2)
set +e
"$venv/bin/python" -m pytest -q "$@"
status=$?
set -e
if [ "$status" -eq 5 ]; then
  echo "pytest collected no tests: failing the run." >&2
  exit 1
fi
exit "$status"
