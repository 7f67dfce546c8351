#!/usr/bin/env bash
# Everything a fresh machine needs before Toolsmith builds and runs. Idempotent: each step
# checks first and does nothing when its part is already there. Both README commands call it.
#
# Today that is only the Rust toolchain pinned in rust-toolchain.toml (SQLite is compiled in).
# The sandbox (bubblewrap, a managed CPython, uv, ruff, pytest in ./.tools) is added here by
# the sandbox work, so that the two README commands stay the only set-up.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf 'setup: %s\n' "$*" >&2; }

if ! command -v cargo >/dev/null 2>&1; then
  say "cargo is missing: install Rust with rustup (https://rustup.rs), then re-run."
  exit 1
fi
toolchain=$(sed -n 's/^channel *= *"\(.*\)"/\1/p' rust-toolchain.toml)
if ! rustup toolchain list 2>/dev/null | grep -q "^${toolchain}"; then
  say "installing Rust ${toolchain}"
  rustup toolchain install "${toolchain}" --profile minimal --component rustfmt,clippy
fi
