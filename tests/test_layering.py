"""The import contract: every module of data/, tflv/ and trainers/ imports only its own layer and
those below it, no modules import each other in a cycle, and the BUILD files' dependencies are
the imports.

The layers, lowest first (docs/architecture.md, "One direction"):

    data → distributions, decoding → vi → layers
         → models (with metrics, summaries, bleu, text_metrics) → trainers

Every import counts, at module level or inside a function (a deferred import is still a
dependency, and two deferred imports still make a cycle). The modules' imports are read with
`ast` from the files, the BUILD files' `py_library` targets likewise (Starlark is Python syntax).
"""
import ast
import pathlib

ROOT = pathlib.Path(__file__).resolve().parent.parent
PACKAGES = ("data", "tflv", "trainers")
# Module-name prefixes of each layer, lowest first; a module may import its layer and those below.
LAYERS = (
    ("data", ("data",)),
    ("distributions", ("tflv.distributions", "tflv.decoding")),
    ("vi", ("tflv.vi",)),
    ("layers", ("tflv.layers",)),
    ("models", ("tflv.models", "tflv.metrics", "tflv.summaries", "tflv.bleu",
                "tflv.text_metrics", "tflv")),
    ("trainers", ("trainers",)),
)
# Targets that gather a package's libraries into one (their own sources import nothing).
AGGREGATES = {"//tflv:tflv"}


def _module_name(path: pathlib.Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, pathlib.Path]:
    return {_module_name(path): path for package in PACKAGES
            for path in sorted((ROOT / package).rglob("*.py"))}


MODULES = _modules()


def _imports(name: str) -> set[str]:
    """The first-party modules `name` imports, anywhere in its file."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the package, up level - 1
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([node.module] if node.module else []))
            for alias in node.names:  # `from tflv import vi` imports the module tflv.vi
                sub = f"{base}.{alias.name}"
                found.add(sub if sub in MODULES else base)
    return {module for module in found if module.split(".")[0] in PACKAGES}


IMPORTS = {name: _imports(name) for name in MODULES}


def layer_of(module: str) -> int:
    """The rank of `module`'s layer (0: data), by its longest matching prefix."""
    best = None
    for rank, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and (
                    best is None or len(prefix) > best[1]):
                best = (rank, len(prefix))
    assert best is not None, f"{module} is in no layer of tests/test_layering.py"
    return best[0]


def test_every_module_is_read():
    assert {"tflv.models.sentence_vae", "tflv.layers.training_step", "trainers.run",
            "data.text_corpus"} <= set(MODULES)
    assert "tflv.vi.schedules" in IMPORTS["tflv.models.sentence_vae"]
    assert "tflv.models.base" in IMPORTS["tflv.models.rnnlm"]
    assert "trainers.run_flags" in IMPORTS["trainers.export"]


def test_no_module_imports_a_higher_layer():
    wrong = [f"{name} ({LAYERS[layer_of(name)][0]}) imports {module} "
             f"({LAYERS[layer_of(module)][0]})"
             for name, modules in IMPORTS.items() for module in sorted(modules)
             if layer_of(module) > layer_of(name)]
    assert not wrong, "\n".join(wrong)


def _reads_flags(name: str) -> bool:
    """Whether module `name` imports absl.flags (anywhere in its file)."""
    for node in ast.walk(ast.parse(MODULES[name].read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module == "absl" and any(
                alias.name == "flags" for alias in node.names):
            return True
        if isinstance(node, ast.Import) and any(a.name == "absl.flags" for a in node.names):
            return True
    return False


def test_nothing_below_trainers_reads_flags():
    wrong = [name for name in MODULES if not name.startswith("trainers") and _reads_flags(name)]
    assert not wrong, f"these modules import absl.flags (only trainers/ defines flags): {wrong}"


def test_the_run_module_reads_no_flag():
    # trainers.run takes its settings as arguments: nothing it imports, directly or through
    # other modules, defines or reads a flag (trainers.run_flags maps the flags to it)
    assert _reads_flags("trainers.flags") and _reads_flags("trainers.run_flags") is False
    reached, todo = set(), ["trainers.run"]
    while todo:
        for module in IMPORTS[todo.pop()] - reached:
            reached.add(module)
            todo.append(module)
    assert "trainers.run_record" in reached
    assert sorted(m for m in reached if _reads_flags(m)) == []


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of `graph` with more than one node or a self-loop
    (Tarjan's algorithm)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in sorted(graph.get(node, ())):
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1 or node in graph.get(node, ()):
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_cycles_finds_a_deferred_cycle_and_no_chain():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []


def test_no_modules_import_each_other_in_a_cycle():
    # A package's __init__ that imports its own modules is no cycle: `from tflv.models import
    # serving` names the module, not the package.
    graph = {name: {m for m in modules if m != name} for name, modules in IMPORTS.items()}
    found = cycles(graph)
    assert not found, f"import cycles: {found}"


# -- BUILD files -----------------------------------------------------------------------------

def _evaluate(node, package_dir: pathlib.Path, subpackages: list[pathlib.Path]):
    """A BUILD expression: a string, a list of them, or `glob(include, exclude=…)` (files of
    the package, not of its subpackages)."""
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.List):
        return [_evaluate(item, package_dir, subpackages) for item in node.elts]
    if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "glob":
        include = _evaluate(node.args[0], package_dir, subpackages)
        exclude = next((_evaluate(k.value, package_dir, subpackages) for k in node.keywords
                        if k.arg == "exclude"), [])
        files = {p for pattern in include for p in package_dir.glob(pattern) if p.is_file()}
        files -= {p for pattern in exclude for p in package_dir.glob(pattern)}
        return sorted(str(p.relative_to(package_dir)) for p in files
                      if not any(sub in p.parents for sub in subpackages))
    raise AssertionError(f"{package_dir / 'BUILD'}: cannot read {ast.dump(node)}")


def _label(dep: str, package: str) -> str:
    if dep.startswith(":"):
        return f"//{package}{dep}"
    if ":" not in dep:
        return f"{dep}:{dep.rsplit('/', 1)[-1]}"
    return dep


def build_libraries() -> dict[str, dict]:
    """Every `py_library` of data/, tflv/ and trainers/: label → {modules, deps, package}."""
    build_files = sorted(p for package in PACKAGES for p in (ROOT / package).rglob("BUILD"))
    assert build_files, "no BUILD files (under Bazel, tests/BUILD's data must list them)"
    libraries = {}
    for build in build_files:
        package_dir = build.parent
        package = str(package_dir.relative_to(ROOT))
        subpackages = [b.parent for b in build_files
                       if b.parent != package_dir and package_dir in b.parents]
        for node in ast.walk(ast.parse(build.read_text(encoding="utf-8"), str(build))):
            if not (isinstance(node, ast.Call) and getattr(node.func, "id", None) == "py_library"):
                continue
            args = {k.arg: _evaluate(k.value, package_dir, subpackages) for k in node.keywords
                    if k.arg in ("name", "srcs", "deps")}
            modules = {_module_name(package_dir / src) for src in args.get("srcs", [])}
            libraries[f"//{package}:{args['name']}"] = {
                "modules": modules, "package": package,
                "deps": {_label(dep, package) for dep in args.get("deps", [])}}
    return libraries


def test_build_targets_cover_every_module_once():
    owners = {}
    for label, library in build_libraries().items():
        for module in library["modules"]:
            owners.setdefault(module, []).append(label)
    assert {m: labels for m, labels in owners.items() if len(labels) > 1} == {}
    assert sorted(set(MODULES) - set(owners)) == []


def test_build_deps_are_the_imports_and_follow_the_layers():
    libraries = build_libraries()
    owner = {module: label for label, library in libraries.items()
             for module in library["modules"]}
    problems = []
    for label, library in sorted(libraries.items()):
        needed = {owner[m] for name in library["modules"] for m in IMPORTS[name]} - {label}
        declared = library["deps"]
        for dep in sorted(needed - declared):
            users = sorted(name for name in library["modules"]
                           if any(owner[m] == dep for m in IMPORTS[name]))
            problems.append(f"{label} lacks {dep} (imported by {', '.join(users)})")
        if label not in AGGREGATES:
            problems += [f"{label} declares {dep}, which none of its modules imports"
                         for dep in sorted(declared - needed)]
        rank = max(layer_of(m) for m in library["modules"])
        problems += [f"{label} ({LAYERS[rank][0]}) depends on {dep}, a higher layer"
                     for dep in sorted(declared) if dep in libraries and
                     min(layer_of(m) for m in libraries[dep]["modules"]) > rank]
    assert not problems, "\n".join(problems)


def test_the_layer_order_refuses_an_upward_import():
    # what test_no_module_imports_a_higher_layer flags: a layer reaching into a model, a model
    # into the trainer, the data into the library; and what it allows: the reverse
    assert layer_of("tflv.layers.heads") < layer_of("tflv.models.base")
    assert layer_of("tflv.models.rnnlm") < layer_of("trainers.run")
    assert layer_of("data.vocab") < layer_of("tflv.distributions.hmm") < layer_of("tflv.vi.elbo")
    assert layer_of("tflv.metrics") == layer_of("tflv.models") > layer_of("tflv.layers")
