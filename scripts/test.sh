#!/usr/bin/env bash
# The whole test suite, as CI runs it: formatting, lints, unit and end-to-end
# tests, doc tests, docs without warnings (rustdoc; the book's links and command
# pages; the getting-started page run as pasted), the demo and a benchmark smoke run.
# Needs git, python3, node/npm, curl and a Rust toolchain; installs the storage
# servers the remote tests use (scripts/servers.sh) and stops them when done.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
mkdir -p target
source scripts/servers.sh
fx="$(mktemp -d)"
trap 'servers_stop; rm -rf "$fx"' EXIT

# Install the servers while cargo builds.
servers_install > target/servers-install.log 2>&1 &
install_pid=$!

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets --quiet -- -D warnings
echo "== starting storage servers on 127.0.0.1"
wait "$install_pid" || { cat target/servers-install.log; exit 1; }
servers_start
trap 'servers_stop; rm -rf "$fx"' EXIT
echo "== cargo test (unit, end-to-end, remotes against the servers, doc)"
cargo test --quiet 2>&1 | tee target/test-output.txt
echo "== cargo doc (no warnings)"
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --quiet
echo "== docs: links and anchors, SUMMARY, a page per command"
python3 scripts/check_docs.py target/debug/dvt
echo "== docs: the getting-started page, run as pasted"
python3 scripts/check_getting_started.py target/debug/dvt
echo "== fixtures match their generator"
python3 fixtures/generate.py "$fx/sample"
diff -r fixtures/sample "$fx/sample"
echo "== demo"
./scripts/demo.sh > target/demo-output.txt 2>&1 || { cat target/demo-output.txt; exit 1; }
tail -1 target/demo-output.txt
echo "== benchmark smoke run"
python3 bench/bench.py --smoke
python3 bench/history.py --commits 30 --no-dvc --runs 1 --work "$fx/history"
python3 bench/repro.py --files 2000 --busy 0.1 --no-dvc --runs 1 --work "$fx/repro"
python3 bench/queue.py --experiments 2 --busy 0.2 --no-dvc --runs 1 --work "$fx/queue"
python3 bench/pointers.py --files 200 --no-dvc --runs 1 --work "$fx/pointers"
python3 bench/gitfiles.py --files 200 --no-dvc --runs 1 --work "$fx/gitfiles"
python3 bench/share.py --smoke --settle 0 --work "$fx/share"
echo "== all checks passed"
passed=$(grep -o '[0-9]* passed' target/test-output.txt | awk '{s+=$1} END {print s+0}')
failed=$(grep -o '[0-9]* failed' target/test-output.txt | awk '{s+=$1} END {print s+0}')
echo "tests: ${passed} passed, ${failed} failed"
