"""Runs pytest on the test files given as arguments (the `main` of every Bazel `py_test`).

`bazel test --test_filter=EXPR` reaches pytest as `-k EXPR`. A target declared with
`shard_count = N` (`pytest_tests(shard_counts=...)`) runs, in shard i, the collected tests whose
position is i modulo N (Bazel's `TEST_TOTAL_SHARDS` / `TEST_SHARD_INDEX` protocol), so each shard
has its own time limit; a shard left without tests passes.
"""
import os
import sys

import pytest


class Shard:
    """Keeps the collected tests of one shard: those at positions `index` modulo `total`."""

    def __init__(self, index: int, total: int):
        self.index, self.total = index, total

    def pytest_collection_modifyitems(self, config, items):
        kept = [item for i, item in enumerate(items) if i % self.total == self.index]
        config.hook.pytest_deselected(items=[item for item in items if item not in kept])
        items[:] = kept


if __name__ == "__main__":
    only = os.environ.get("TESTBRIDGE_TEST_ONLY")
    plugins = []
    total = int(os.environ.get("TEST_TOTAL_SHARDS", "1"))
    if total > 1:
        plugins.append(Shard(int(os.environ["TEST_SHARD_INDEX"]), total))
        if os.environ.get("TEST_SHARD_STATUS_FILE"):  # tells Bazel this runner shards
            open(os.environ["TEST_SHARD_STATUS_FILE"], "w").close()
    code = pytest.main(["-q", "-p", "no:cacheprovider", *(["-k", only] if only else []),
                        *sys.argv[1:]], plugins=plugins)
    sys.exit(0 if total > 1 and code == pytest.ExitCode.NO_TESTS_COLLECTED else code)
