"""Runs pytest on the test files given as arguments (the `main` of every Bazel `py_test`)."""
import sys

import pytest

if __name__ == "__main__":
    sys.exit(pytest.main(["-q", "-p", "no:cacheprovider", *sys.argv[1:]]))
