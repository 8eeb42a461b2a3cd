"""`pytest_tests`: one native `py_test` per test file, each run through pytest."""

def pytest_tests(srcs, deps = [], data = [], size = "large"):
    """Declares `py_test` targets named after each file in `srcs` (without `.py`).

    Args:
      srcs: test files (`test_*.py`).
      deps: `py_library` targets the tests import.
      data: extra runtime files the tests read.
      size: Bazel test size.
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
            python_version = "PY3",
        )
