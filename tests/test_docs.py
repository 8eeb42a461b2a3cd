"""The documentation. The API reference: `docs/build.py` (what `make docs` runs) builds it without a problem, and a
real headless Chromium, reading it from a local HTTP server with no network, shows typeset math
(KaTeX's output, no `katex-error`) on the landing page and reaches `HMM` by following links from
it: index → `tflv.distributions` → `tflv.distributions.hmm` → `#HMM`.

Chromium is Debian's `chromium` package (.ci/run installs it); without it the test is skipped,
except under CI (`CI` set), where it fails.

docs/architecture.md: every file it names exists, every name it puts in a file's table row is
defined there, and it places every package of tflv/, data/ and trainers/.
"""
import functools
import html.parser
import http.server
import importlib
import importlib.util
import inspect
import os
import pathlib
import re
import shutil
import subprocess
import sys
import threading
import urllib.parse

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--virtual-time-budget=10000", "--dump-dom"]


def _chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        if shutil.which(name):
            return shutil.which(name)
    if os.environ.get("CI"):
        pytest.fail("Chromium is not installed (Debian: apt-get install chromium; .ci/run does it)")
    pytest.skip("Chromium is not installed (Debian: apt-get install chromium)")


class _Links(html.parser.HTMLParser):
    """(href, text) of every `<a>`, and every element's id and class."""

    def __init__(self):
        super().__init__()
        self.links, self.ids, self.classes = [], set(), []
        self._href, self._text = None, []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.ids.add(attrs.get("id"))
        self.classes.extend((attrs.get("class") or "").split())
        if tag == "a":
            self._href, self._text = attrs.get("href"), []

    def handle_data(self, data):
        if self._href is not None:
            self._text.append(data)

    def handle_endtag(self, tag):
        if tag == "a" and self._href is not None:
            self.links.append((self._href, "".join(self._text).strip()))
            self._href = None


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The built reference, served on 127.0.0.1; yields its base URL."""
    output = tmp_path_factory.mktemp("docs")
    cache = ROOT / "build" / "docs-cache" if os.access(ROOT, os.W_OK) else tmp_path_factory.mktemp("cache")
    build = subprocess.run([sys.executable, str(ROOT / "docs" / "build.py"), "--output", str(output),
                            "--cache", str(cache)], cwd=ROOT, capture_output=True, text=True,
                           env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=300)
    assert build.returncode == 0, build.stderr[-5000:]
    handler = functools.partial(_QuietHandler, directory=str(output))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def _render(url: str, tmp_path) -> _Links:
    """The DOM Chromium builds for `url` once its scripts ran, parsed."""
    result = subprocess.run([_chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}", url],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    page = _Links()
    page.feed(result.stdout)
    return page


def _follow(url: str, page: _Links, text: str) -> str:
    """The URL of the link on `page` whose text is `text`."""
    hrefs = [href for href, label in page.links if label == text]
    assert hrefs, f"no link {text!r} on {url}; links: {[label for _, label in page.links][:80]}"
    return urllib.parse.urljoin(url, hrefs[0])


def test_reference_renders_math_and_reaches_hmm(site, tmp_path):
    index = _render(site + "index.html", tmp_path)
    # KaTeX replaced the $…$ and $$…$$ sources by typeset HTML (+ MathML), and none failed to parse.
    assert index.classes.count("katex-display") >= 3, sorted(set(index.classes))
    assert index.classes.count("katex") >= 10
    assert "katex-error" not in index.classes

    url = _follow(site + "index.html", index, "tflv.distributions")
    distributions = _render(url, tmp_path)
    url = _follow(url, distributions, "hmm")
    hmm = _render(url, tmp_path)
    assert "HMM" in hmm.ids and "HMM.log_prob" in hmm.ids and "HMM.viterbi" in hmm.ids
    assert "katex-display" in hmm.classes and "katex-error" not in hmm.classes  # p(x, z) typeset
    # The landing page's HMM link lands on the same class.
    assert urllib.parse.urljoin(site, "tflv/distributions/hmm.html#HMM") == _follow(site, index, "HMM")


def test_build_check_reports_what_is_broken(tmp_path):
    """`docs/build.py`'s check, on a hand-made site: a link to no page, a link to no anchor, a
    backticked name that names nothing, a public name with no page — and not a name that exists."""
    spec = importlib.util.spec_from_file_location("docs_build", ROOT / "docs" / "build.py")
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    (tmp_path / "tflv").mkdir()
    (tmp_path / "index.html").write_text(
        '<a href="tflv/gone.html">x</a> <a href="tflv/page.html#Missing">y</a> '
        '<a href="tflv/page.html#Here">z</a>')
    (tmp_path / "tflv" / "page.html").write_text(
        '<section id="Here"><code>tflv.vi.no_such_bound</code> <code>tflv.vi.iwae_bound</code> '
        '<code>data.Corpus.dataset()</code></section>')
    problems = build.check(tmp_path)
    assert "index.html: link 'tflv/gone.html' reaches no file" in problems
    assert "index.html: link 'tflv/page.html#Missing' reaches no anchor on tflv/page.html" in problems
    assert "tflv/page.html: `tflv.vi.no_such_bound` names nothing" in problems
    assert "tflv.distributions.HMM: no page tflv/distributions/hmm.html" in problems
    assert not [p for p in problems if "#Here" in p or "iwae_bound`" in p or "Corpus.dataset" in p]


# -- docs/architecture.md ------------------------------------------------------------------------

ARCHITECTURE = ROOT / "docs" / "architecture.md"
_PATH = re.compile(r"^(?!\.\./)[\w.\-]+(/[\w.\-]*)+$|^[\w\-]+\.(py|md|txt|lock|ini|bzl)$|^(BUILD|WORKSPACE|Makefile)$")


def _code_spans(text: str) -> list[str]:
    """The contents of the `code spans` of Markdown `text` (fenced blocks excluded)."""
    text = re.sub(r"^```.*?^```", "", text, flags=re.M | re.S)
    return re.findall(r"`([^`\n]+)`", text)


def test_architecture_names_only_files_that_exist():
    named = [span for span in _code_spans(ARCHITECTURE.read_text(encoding="utf-8")) if _PATH.match(span)]
    assert len(named) >= 60, named
    missing = [path for path in named if not (ROOT / path).exists()]
    assert not missing, f"docs/architecture.md names files that do not exist: {missing}"


def _load(path: str):
    """The module of a file the architecture names: the library's by import, any other (tests/,
    bench/, examples/, which Bazel's runfiles do not make a package) from its file."""
    name = path.removesuffix(".py").removesuffix("/__init__").replace("/", ".")
    if name.split(".")[0] in ("tflv", "data", "trainers"):
        return importlib.import_module(name)
    spec = importlib.util.spec_from_file_location("architecture_" + name.replace(".", "_"),
                                                  ROOT / path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_architecture_names_what_each_file_defines():
    """In each table row that names Python files, every bare identifier in backticks is defined
    there: a module attribute, or a member of a class the module defines."""
    sys.path.insert(0, str(ROOT))
    wrong = []
    for line in ARCHITECTURE.read_text(encoding="utf-8").splitlines():
        spans = _code_spans(line)
        files = [span for span in spans if span.endswith(".py") and "/" in span]
        if not line.startswith("|") or not files:
            continue
        modules = [_load(f) for f in files]
        scopes = modules + [value for module in modules for value in vars(module).values()
                            if inspect.isclass(value) and value.__module__ == module.__name__]
        for name in spans:
            if re.fullmatch(r"[A-Za-z_]\w*", name) and not any(hasattr(scope, name) for scope in scopes):
                wrong.append(f"{name} ({', '.join(files)})")
    assert not wrong, f"docs/architecture.md names what its files do not define: {wrong}"


def test_architecture_covers_every_package():
    text = ARCHITECTURE.read_text(encoding="utf-8")
    packages = sorted({path.parent.relative_to(ROOT).as_posix() + "/"
                       for root in ("tflv", "data", "trainers")
                       for path in (ROOT / root).rglob("__init__.py")})
    unplaced = [package for package in packages if package not in text]
    assert not unplaced, f"docs/architecture.md does not place the packages {unplaced}"
