"""`pytest_tests`: one native `py_test` per test file, each run through pytest."""

def pytest_tests(srcs, deps = [], data = [], size = "large", shard_counts = {}):
    """Declares `py_test` targets named after each file in `srcs` (without `.py`).

    Args:
      srcs: test files (`test_*.py`).
      deps: `py_library` targets the tests import.
      data: extra runtime files the tests read.
      size: Bazel test size.
      shard_counts: `{file: N}`, files whose tests run in N shards, each with its own time
        limit (`tests/pytest_main.py` keeps shard i's tests).
    """
    for src in srcs:
        native.py_test(
            name = src[:-3],
            srcs = [src, "//tests:pytest_main.py"],
            main = "//tests:pytest_main.py",
            args = ["$(location %s)" % src],
            deps = deps + ["//tests:helpers"],
            data = data,
            size = size,
            shard_count = shard_counts.get(src, 1),
            python_version = "PY3",
        )
