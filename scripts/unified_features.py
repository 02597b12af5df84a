#!/usr/bin/env python3
"""Checks that `cargo run --example quickstart` builds its dependencies as `cargo test --workspace` does.

A fresh clone's first two commands are the quickstart and the test suite. When a dependency is
built with other features by the second (tokio's `test-util` asked for by one crate's tests, say),
it and everything on top of it are compiled twice. The root package's dev-dependencies list what
the rest of the workspace's tests ask for; this compares cargo's unit graphs of both commands
(`--unit-graph`, unstable: run with RUSTC_BOOTSTRAP=1, nothing is built) and names each
dependency the quickstart builds with features the suite's build does not reuse.

Exit status 0 when every dependency unit of the quickstart is one the suite needs as it is, 1
(with the list) otherwise.
"""

import json
import os
import subprocess
import sys


def units(args):
    env = dict(os.environ, RUSTC_BOOTSTRAP="1")
    out = subprocess.run(
        ["cargo", *args, "--unit-graph", "-Z", "unstable-options"],
        check=True,
        capture_output=True,
        env=env,
        text=True,
    ).stdout
    graph = {}
    for unit in json.loads(out)["units"]:
        if unit["pkg_id"].startswith("path+"):
            continue  # the workspace's own crates are built again for their tests anyway
        key = (unit["pkg_id"], unit["target"]["name"], unit["mode"])
        graph.setdefault(key, set()).add(tuple(sorted(unit["features"])))
    return graph


def main():
    quickstart = units(["build", "--example", "quickstart"])
    suite = units(["test", "--workspace", "--no-run"])
    misses = []
    for key, feature_sets in sorted(quickstart.items()):
        theirs = suite.get(key, set())
        for features in sorted(feature_sets - theirs):
            name = key[0].rsplit("#", 1)[-1]
            wanted = [sorted(set(t) - set(features)) for t in theirs]
            misses.append(f"{name} ({key[2]}): the suite builds it with more features: {wanted}")
    if misses:
        print("dependencies the quickstart builds and the test suite builds again:")
        for miss in misses:
            print("  " + miss)
        print("add the features to the root package's [dev-dependencies] (see the comment there)")
        return 1
    print(f"the quickstart's {len(quickstart)} dependency units are all reused by the test suite")
    return 0


if __name__ == "__main__":
    sys.exit(main())
