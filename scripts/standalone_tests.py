#!/usr/bin/env python3
"""Prints `--test NAME` for every integration-test target that `cargo test` does not run.

Each package runs its integration tests in one binary, `tests/suite.rs`; every file in it is
also a target of its own (`test = false` in the package's Cargo.toml), so that
`cargo test -p PACKAGE --test NAME` runs one file. Those targets are built by nothing else:
CI lints them with `cargo clippy --workspace $(python3 scripts/standalone_tests.py)` so they
keep building on their own.
"""

import json
import subprocess
import sys

metadata = json.loads(
    subprocess.run(
        ["cargo", "metadata", "--no-deps", "--format-version", "1"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
)
names = sorted(
    {
        target["name"]
        for package in metadata["packages"]
        for target in package["targets"]
        if target["kind"] == ["test"] and not target["test"]
    }
)
if not names:
    sys.exit("no integration test is a target of its own: has the suite layout changed?")
print(" ".join(f"--test {name}" for name in names))
