#!/usr/bin/env bash
# Run the whole test suite with the oldest declared version of every dependency: scripts/minimum_versions.txt pins
# each lower bound of pyproject.toml, installed into .venv-minimum. The bounds are tested, not guessed.
# Installing takes about 2 minutes (torch 2.2 comes from PyPI with its CUDA libraries, about 3 GB), testing about 3.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.venv-minimum PIP_CONSTRAINT="$PWD/scripts/minimum_versions.txt" bash scripts/test.sh "$@"
