#!/usr/bin/env bash
# Everything a fresh machine needs before Toolsmith builds, runs and sandboxes code.
# Idempotent: each step checks first and does nothing when its part is already there.
# Both README commands call it.
#
# - the Rust toolchain pinned in rust-toolchain.toml (SQLite is compiled in);
# - Debian packages: bubblewrap (the sandbox) and python3 + python3-venv (the interpreter the
#   sandbox runs: Debian's /usr/bin/python3, readable by the sandbox's unprivileged user; uv
#   cannot download a managed CPython here, its builds live on GitHub);
# - project-local Python tools in ./.tools: uv (from PyPI), and a base environment with pytest
#   and ruff made by uv.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf 'setup: %s\n' "$*" >&2; }

UV_VERSION=0.13.8
PYTEST_VERSION=9.2.0
RUFF_VERSION=0.17.5

if ! command -v cargo >/dev/null 2>&1; then
  say "cargo is missing: install Rust with rustup (https://rustup.rs), then re-run."
  exit 1
fi
toolchain=$(sed -n 's/^channel *= *"\(.*\)"/\1/p' rust-toolchain.toml)
if ! rustup toolchain list 2>/dev/null | grep -q "^${toolchain}"; then
  say "installing Rust ${toolchain}"
  rustup toolchain install "${toolchain}" --profile minimal --component rustfmt,clippy
fi

missing=()
command -v bwrap >/dev/null 2>&1 || missing+=(bubblewrap)
[ -x /usr/bin/python3 ] || missing+=(python3)
/usr/bin/python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || missing+=(python3-venv)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    say "missing Debian packages: ${missing[*]}; install them (sudo apt-get install ${missing[*]}) and re-run."
    exit 1
  fi
  say "installing Debian packages: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

mkdir -p .tools
uv=.tools/uv/bin/uv
if ! "$uv" --version 2>/dev/null | grep -q "uv ${UV_VERSION}"; then
  say "installing uv ${UV_VERSION} into .tools/uv"
  rm -rf .tools/uv
  /usr/bin/python3 -m venv .tools/uv
  .tools/uv/bin/pip install -q --disable-pip-version-check "uv==${UV_VERSION}"
fi

py=.tools/py/bin/python
if ! { [ -x "$py" ] \
    && .tools/py/bin/pytest --version 2>&1 | grep -q "pytest ${PYTEST_VERSION}" \
    && .tools/py/bin/ruff --version 2>&1 | grep -q "ruff ${RUFF_VERSION}"; }; then
  say "creating .tools/py (Debian python3 + pytest ${PYTEST_VERSION} + ruff ${RUFF_VERSION}) with uv"
  rm -rf .tools/py
  "$uv" venv --quiet --python /usr/bin/python3 .tools/py
  "$uv" pip install --quiet --python "$py" "pytest==${PYTEST_VERSION}" "ruff==${RUFF_VERSION}"
fi
