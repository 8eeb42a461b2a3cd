"""Runs pytest on the test files given as arguments (the `main` of every Bazel `py_test`).

`bazel test --test_filter=EXPR` reaches pytest as `-k EXPR`.
"""
import os
import sys

import pytest

if __name__ == "__main__":
    only = os.environ.get("TESTBRIDGE_TEST_ONLY")
    sys.exit(pytest.main(["-q", "-p", "no:cacheprovider", *(["-k", only] if only else []),
                          *sys.argv[1:]]))
