#!/usr/bin/env bash
# Locked environments: uv where it can be had (fast), pip otherwise (always there).
#
#   requirements/env.sh lock                      # the lock files, from pyproject.toml and
#                                                 # the Seldon and IBM runtime-requirements.txt
#   requirements/env.sh sync VENV LOCK [--editable]  # VENV holds exactly LOCK (+ this project)
#
# `make lock` and `make install` call it; so does mlops_helpers.seldon_kind.runtime.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
UV_VERSION=0.13.9
PACKAGING_VERSION=25.0  # requirements/environment.py reads markers and requirements with it
# One uv per user and version, shared by every clone (a second clone, a room's attendees and
# CI's next run skip its install); .tools/uv where no cache folder can be made.
UV_HOME=${MLOPS_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mlops-workshop}/uv-$UV_VERSION
mkdir -p "$(dirname "$UV_HOME")" 2>/dev/null || UV_HOME=.tools/uv
UV=$UV_HOME/bin/uv
PROJECT_LOCK=requirements/project.lock.txt
SELDON_REQUIREMENTS=scenarios/seldon_kind/runtime-requirements.txt
SELDON_LOCK=requirements/seldon-runtime.lock.txt
# the watson_openscale agent image: Python 3.12 and the scikit-learn of IBM's runtime
WATSON_PINS=scenarios/watson_openscale/image-pins.txt
WATSON_LOCK=requirements/watson-image.lock.txt
IBM_REQUIREMENTS=scenarios/watson_openscale/runtime-requirements.txt
IBM_LOCK=requirements/ibm-runtime.lock.txt

# uv installed from PyPI into $UV_HOME; prints nothing when that fails (then pip is used).
# Built in a private folder and renamed into place, so two installs at once cannot mix.
find_uv() {
  local pins="uv==$UV_VERSION packaging==$PACKAGING_VERSION" building
  if [ "$(cat "$UV_HOME/.pins" 2>/dev/null)" != "$pins" ]; then
    building="$UV_HOME.building.$$"
    rm -rf "$building"
    # shellcheck disable=SC2086  # two requirements, split on purpose
    if "$PYTHON" -m venv "$building" >&2 &&
        "$building/bin/python" -m pip install -qq $pins >&2; then
      echo "$pins" > "$building/.pins"
      rm -rf "$UV_HOME.old.$$"
      if [ -e "$UV_HOME" ]; then mv "$UV_HOME" "$UV_HOME.old.$$" 2>/dev/null || true; fi
      # rename(2): fails, rather than nesting, if another install got there first; use that one
      "$PYTHON" -c 'import os, sys; os.rename(sys.argv[1], sys.argv[2])' \
        "$building" "$UV_HOME" 2>/dev/null || true
      rm -rf "$building" "$UV_HOME.old.$$"
    else
      rm -rf "$building"
      echo "uv could not be installed; falling back to pip (slower)" >&2
      return 0
    fi
  fi
  echo "$UV"
}

# uv does not read pip's configuration: give it the indexes and wheel folders pip uses here
# (local mirrors, a company index). Every file is hash-checked against the lock, so taking a
# pinned version from whichever index has it is safe.
pip_setting() { "$PYTHON" -m pip config get "global.$1" 2>/dev/null || true; }
export_uv_indexes() {
  local index extra links
  index=$(pip_setting index-url)
  extra=$(pip_setting extra-index-url)
  links=$(pip_setting find-links)
  if [ -n "$index" ]; then export UV_DEFAULT_INDEX=$index; fi
  if [ -n "$extra" ]; then export UV_EXTRA_INDEX_URL=$extra; fi
  if [ -n "$links" ]; then export UV_FIND_LINKS=$links; fi
  export UV_INDEX_STRATEGY=unsafe-best-match
}

lock() {
  local uv
  uv=$(find_uv)
  if [ -z "$uv" ]; then
    echo "make lock needs uv (pip cannot write a universal, hashed lock)" >&2
    exit 1
  fi
  export_uv_indexes
  # Universal: the same pins on Linux and macOS, Python 3.11 and 3.12.
  # rfc3987-syntax (jsonschema's optional "iri" format check, via jupyter-events'
  # jsonschema[format-nongpl]) builds a Lark grammar when imported: about 1.2 s of CPU in
  # every process that imports jsonschema (each papermill run, pytest, Jupyter server).
  # Nothing here validates IRIs, and jsonschema skips that check without it: left out.
  local common=(--universal --python-version 3.11 --generate-hashes --quiet
                --no-emit-package rfc3987-syntax --custom-compile-command "make lock")
  "$uv" pip compile pyproject.toml --all-extras "${common[@]}" -o "$PROJECT_LOCK"
  "$uv" pip compile "$SELDON_REQUIREMENTS" "${common[@]}" -o "$SELDON_LOCK"
  "$uv" pip compile pyproject.toml "$WATSON_PINS" --extra ibm --extra mlflow \
      --python-version 3.12 --python-platform linux --generate-hashes --quiet \
      --no-emit-package rfc3987-syntax --custom-compile-command "make lock" -o "$WATSON_LOCK"
  "$uv" pip compile "$IBM_REQUIREMENTS" "${common[@]}" -o "$IBM_LOCK"
  "$UV_HOME/bin/python" requirements/environment.py
  echo "wrote $PROJECT_LOCK ($(grep -c '==' "$PROJECT_LOCK") pins)," \
       "$SELDON_LOCK ($(grep -c '==' "$SELDON_LOCK") pins) and environment.yml's pip list"
}

sync() {
  local venv=$1 lockfile=$2 editable=${3:-}
  local python=$venv/bin/python uv
  uv=$(find_uv)
  if [ -n "$uv" ]; then
    # --seed: pip stays available in the environment, for whoever uses it there
    if [ ! -x "$python" ]; then "$uv" venv --quiet --seed --python "$PYTHON" "$venv"; fi
    export_uv_indexes
    # sync also removes what the lock no longer names. No --compile-bytecode: compiling all
    # 1.3 GB up front costs minutes on 2 cores; Python writes .pyc files for what is imported.
    "$uv" pip sync --quiet --python "$python" "$lockfile"
    if [ "$editable" = --editable ]; then
      "$uv" pip install --quiet --python "$python" --no-deps -e .
    fi
  else
    if [ ! -x "$python" ]; then "$PYTHON" -m venv "$venv"; fi
    "$python" -m pip install --quiet --require-hashes --no-deps -r "$lockfile"
    if [ "$editable" = --editable ]; then
      "$python" -m pip install --quiet --no-deps -e .
    fi
  fi
}

case "${1:-}" in
  lock) lock ;;
  sync) [ $# -ge 3 ] || { echo "usage: $0 sync VENV LOCK [--editable]" >&2; exit 2; }
        sync "$2" "$3" "${4:-}" ;;
  *) echo "usage: $0 lock | sync VENV LOCK [--editable]" >&2; exit 2 ;;
esac
