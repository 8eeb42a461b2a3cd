"""Every `>>>` example in a docstring of `tflv/` and `data/` runs, and prints what it shows.

One test per module that has examples. Each runs with the standard library's `doctest` in the
module's namespace (as `python -m doctest` would), with ELLIPSIS and NORMALIZE_WHITESPACE. The
number of examples doctest finds must equal the number of `>>>` lines in the file, so an example
doctest cannot see (in a comment, or in the docstring of an object imported from elsewhere) fails
instead of being silently skipped.
"""
import doctest
import importlib
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent


def _modules_with_examples() -> list[str]:
    names = []
    for package in ("tflv", "data"):
        for path in sorted((ROOT / package).rglob("*.py")):
            if ">>>" in path.read_text(encoding="utf-8"):
                relative = path.relative_to(ROOT).with_suffix("")
                parts = relative.parts[:-1] if relative.name == "__init__" else relative.parts
                names.append(".".join(parts))
    return names


def test_examples_exist():
    assert len(_modules_with_examples()) >= 10


@pytest.mark.parametrize("module_name", _modules_with_examples())
def test_docstring_examples_run(module_name):
    module = importlib.import_module(module_name)
    tests = doctest.DocTestFinder(exclude_empty=True).find(module, module_name)
    source = pathlib.Path(module.__file__).read_text(encoding="utf-8")
    found = sum(len(test.examples) for test in tests)
    expected = sum(line.lstrip().startswith(">>>") for line in source.splitlines())
    assert found == expected, f"{module.__file__}: doctest sees {found} of {expected} `>>>` examples"
    report = []
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for test in tests:
        runner.run(test, out=report.append)
    assert runner.failures == 0, "".join(report)
