"""Builds tflv's API reference from the docstrings (pdoc), with offline math, and checks it.

    python docs/build.py [--output build/docs] [--cache build/docs-cache]   # or: make docs

Three steps:

1. KaTeX, the math renderer, comes from the npm registry's `katex` package (`npm pack`, pinned to
   `KATEX_VERSION`, kept in `--cache`); its `dist/` files go to `OUTPUT/_static/katex/`, so the
   pages typeset `$…$` / `$$…$$` math with no network (pdoc's own `--math` loads MathJax from a CDN).
2. pdoc renders `tflv` and `data` (every public submodule) with the templates in `docs/api/`:
   `math.html.jinja2` loads that KaTeX, `index.html.jinja2` puts `overview.md` on the landing page.
3. Checks, each a build failure with the name, page or link at fault:
   - every public name of `PACKAGES` (its `__all__`, else the classes, functions and submodules
     it defines or imports from its own package) has an anchor on the page pdoc gives its module;
   - every relative link of every page reaches an existing page and anchor;
   - a backticked dotted name under `tflv.` or `data.` in a docstring that pdoc could not
     link (a reference to a name that does not exist, or no longer does) is reported.

Open `OUTPUT/index.html`; serve the folder (`python -m http.server -d build/docs`) for KaTeX's
web fonts, which browsers refuse to load from `file://` pages.
"""
from __future__ import annotations

import argparse
import html.parser
import importlib
import inspect
import os
import pathlib
import posixpath
import re
import shutil
import subprocess
import sys
import tarfile
import types
import urllib.parse
import warnings

ROOT = pathlib.Path(__file__).resolve().parent.parent
TEMPLATES = ROOT / "docs" / "api"
KATEX_VERSION = "0.19.1"
# pdoc renders these roots and all their public submodules.
MODULES = ("tflv", "data")
# Packages whose every public name must be in the reference.
PACKAGES = ("tflv.distributions", "tflv.layers", "tflv.vi", "tflv.models", "tflv.metrics", "data")


def fetch_katex(cache: pathlib.Path) -> pathlib.Path:
    """The pinned `katex` npm tarball, packed by `npm pack` into `cache` once."""
    tarball = cache / f"katex-{KATEX_VERSION}.tgz"
    if not tarball.exists():
        if shutil.which("npm") is None:
            sys.exit("docs/build.py: npm is needed to fetch KaTeX (Debian: apt-get install npm)")
        cache.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ, npm_config_cache=str(cache / "npm"), npm_config_update_notifier="false",
                   npm_config_fund="false", npm_config_audit="false")
        subprocess.run(["npm", "pack", f"katex@{KATEX_VERSION}", "--silent",
                        "--pack-destination", str(cache)], check=True, env=env,
                       stdout=subprocess.DEVNULL)
    return tarball


def install_katex(tarball: pathlib.Path, static: pathlib.Path) -> None:
    """Copies KaTeX's stylesheet, script, auto-render extension and web fonts to `static`."""
    wanted = re.compile(r"package/dist/(katex\.min\.(css|js)|contrib/auto-render\.min\.js|fonts/.+)$")
    with tarfile.open(tarball) as archive:
        for member in archive.getmembers():
            match = wanted.match(member.name)
            if member.isfile() and match:
                target = static / match.group(1)
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(archive.extractfile(member).read())
    for required in ("katex.min.css", "katex.min.js", "contrib/auto-render.min.js"):
        if not (static / required).exists():
            sys.exit(f"docs/build.py: {tarball} has no dist/{required}")


def render(output: pathlib.Path) -> list[str]:
    """Renders the reference into `output`; returns pdoc's warnings (import or parse problems)."""
    import pdoc
    import pdoc.render

    pdoc.render.configure(docformat="google", math=True, search=True, show_source=True,
                          template_directory=TEMPLATES,
                          footer_text=f"tflv {importlib.import_module('tflv').__version__}")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pdoc.pdoc(*MODULES, output_directory=output)
    # pdoc cannot evaluate string annotations of a NamedTuple's or dataclass's generated
    # __init__ (its globals lack `tf`); it then shows the annotation as written, which is right.
    return [f"{w.category.__name__}: {w.message}" for w in caught
            if "pdoc" in pathlib.Path(w.filename).parts
            and not str(w.message).startswith("Error parsing type annotation")]


def public_names(package: str) -> list[tuple[str, object]]:
    """`(name, object)` of `package`'s public API: `__all__`, else what it defines or imports
    from inside itself (classes, functions, submodules)."""
    module = importlib.import_module(package)
    if hasattr(module, "__all__"):
        return [(name, getattr(module, name)) for name in module.__all__]
    names = []
    for name, value in vars(module).items():
        if name.startswith("_"):
            continue
        origin = value.__name__ if isinstance(value, types.ModuleType) else getattr(value, "__module__", "")
        if (inspect.isclass(value) or inspect.isfunction(value) or isinstance(value, types.ModuleType)) \
                and (origin == package or (origin or "").startswith(package + ".")):
            names.append((name, value))
    return names


def expected_anchor(package: str, name: str, value: object) -> tuple[str, str | None]:
    """(page, anchor) where pdoc documents `package.name`: a submodule is its own page; a name in
    `__all__` is on the package's page (pdoc then documents only the submodules `__all__` lists);
    else a class or function is on its defining module's page."""
    if isinstance(value, types.ModuleType):
        return value.__name__.replace(".", "/") + ".html", None
    if hasattr(importlib.import_module(package), "__all__"):
        return package.replace(".", "/") + ".html", name
    return value.__module__.replace(".", "/") + ".html", value.__qualname__


class _Page(html.parser.HTMLParser):
    """Collects a page's ids, relative links and unlinked `<code>` texts."""

    def __init__(self):
        super().__init__()
        self.ids: set[str] = set()
        self.links: list[str] = []
        self.unlinked_code: list[str] = []
        self._in_link = 0
        self._code: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.add(attrs["id"])
        if tag == "a":
            self._in_link += 1
            if "name" in attrs:
                self.ids.add(attrs["name"])
            href = attrs.get("href") or ""
            if href and not urllib.parse.urlparse(href).scheme and not href.startswith("//"):
                self.links.append(href)
        elif tag == "code" and not self._in_link:
            self._code = []

    def handle_endtag(self, tag):
        if tag == "a":
            self._in_link = max(0, self._in_link - 1)
        elif tag == "code" and self._code is not None:
            self.unlinked_code.append("".join(self._code))
            self._code = None

    def handle_data(self, data):
        if self._code is not None:
            self._code.append(data)


def check(output: pathlib.Path) -> list[str]:
    """Every problem of the built reference, one line each (see the module docstring)."""
    pages = {}
    for path in sorted(output.rglob("*.html")):
        parser = _Page()
        parser.feed(path.read_text(encoding="utf-8"))
        pages[path.relative_to(output).as_posix()] = parser
    problems = []
    for package in PACKAGES:
        for name, value in public_names(package):
            page, anchor = expected_anchor(package, name, value)
            if page not in pages:
                problems.append(f"{package}.{name}: no page {page}")
            elif anchor is not None and anchor not in pages[page].ids:
                problems.append(f"{package}.{name}: no anchor #{anchor} on {page}")
    dotted = re.compile(r"^(tflv|data)(\.[A-Za-z_]\w*)+$")
    for page, parser in pages.items():
        for href in parser.links:
            target, _, anchor = href.partition("#")
            target = posixpath.normpath(posixpath.join(posixpath.dirname(page), target)) if target else page
            if target not in pages:
                if not (output / target).exists():
                    problems.append(f"{page}: link {href!r} reaches no file")
            elif (anchor and urllib.parse.unquote(anchor) not in pages[target].ids
                  and _ours(target, urllib.parse.unquote(anchor))):
                problems.append(f"{page}: link {href!r} reaches no anchor on {target}")
        for text in parser.unlinked_code:
            name = text.rstrip("()").strip()
            if dotted.match(name) and not _resolves(name):
                problems.append(f"{page}: `{name}` names nothing")
    return problems


def _ours(page: str, anchor: str) -> bool:
    """Whether `page#anchor` (`Class.member`) is tflv's own member rather than one a Keras / TFP
    base class documents in an inherited docstring (pdoc links those but does not render them)."""
    module_name = page.removesuffix(".html").replace("/", ".")
    owner_name, _, member = anchor.rpartition(".")
    try:
        owner = importlib.import_module(module_name)
        for part in owner_name.split("."):
            owner = getattr(owner, part)
    except (ImportError, AttributeError):
        return True
    if not inspect.isclass(owner) or not member:
        return True
    for base in owner.__mro__:
        if member in vars(base):
            return base.__module__.split(".")[0] in MODULES
    return True


def _resolves(dotted: str) -> bool:
    """Whether `dotted` names an importable module or an attribute path inside one."""
    parts = dotted.split(".")
    for split in range(len(parts), 0, -1):
        try:
            value = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        for attribute in parts[split:]:
            if not hasattr(value, attribute):
                return False
            value = getattr(value, attribute)
        return True
    return False


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=pathlib.Path, default=ROOT / "build" / "docs",
                        help="folder to write the site to (emptied first)")
    parser.add_argument("--cache", type=pathlib.Path, default=ROOT / "build" / "docs-cache",
                        help="folder keeping the KaTeX tarball between builds")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.path.insert(0, str(ROOT))
    if args.output.exists():
        shutil.rmtree(args.output)
    args.output.mkdir(parents=True)
    install_katex(fetch_katex(args.cache), args.output / "_static" / "katex")
    problems = [f"pdoc: {w}" for w in render(args.output)] + check(args.output)
    for problem in problems:
        print(f"docs/build.py: {problem}", file=sys.stderr)
    if problems:
        print(f"docs/build.py: {len(problems)} problem(s); the reference in {args.output} is incomplete",
              file=sys.stderr)
        return 1
    print(f"docs/build.py: wrote {len(list(args.output.rglob('*.html')))} pages to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
