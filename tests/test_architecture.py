"""The shape of the code: who may import whom, no import cycle, read-only sessions for GET.

Layers (docs/adr/0018-one-shape-for-every-service.md):

- the kernel (``services``) imports no domain package and nothing of the composition root;
- a domain package (auth, capacity, referral, audit, frontend) imports the kernel, never
  another domain package, and of the composition root only :mod:`canaliza.demo` (the
  demo's reference identities, a leaf that imports the kernel alone);
- the composition root (``canaliza``) is the only package that knows them all;
- no import cycle among production modules, counting every import statement anywhere in
  a module (in a function, under ``TYPE_CHECKING``, in a ``try``): an import moved into a
  function still ties the two modules together, it only hides the cycle.
"""

from __future__ import annotations

import ast
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts
from sqlalchemy import MetaData
from sqlmodel import Field, Session, SQLModel

from canaliza.composition import build_app
from services.db import ServiceDatabase

ROOT = Path(__file__).resolve().parent.parent
KERNEL = "services"
COMPOSITION_ROOT = "canaliza"
DOMAIN = ("auth", "capacity", "referral", "audit", "frontend")
PRODUCTION = (KERNEL, COMPOSITION_ROOT, *DOMAIN)
# What a domain package may take from the composition root: leaves that import the kernel only.
SHARED_LEAVES = {"canaliza.demo"}
NOT_CODE = {"node_modules", "static", "templates", "locale", "__pycache__"}


@dataclass(frozen=True)
class Edge:
    """``source`` imports ``target`` at ``source``'s line ``line``."""

    source: str
    target: str
    line: int

    def __str__(self) -> str:
        return f"{self.source}:{self.line} → {self.target}"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@cache
def production_modules() -> dict[str, Path]:
    """Every production module by dotted name (packages by their ``__init__``)."""
    modules: dict[str, Path] = {}
    for package in PRODUCTION:
        for path in sorted((ROOT / package).rglob("*.py")):
            if NOT_CODE.isdisjoint(path.relative_to(ROOT).parts):
                modules[_module_name(path)] = path
    return modules


def _package_of(module: str, path: Path) -> str:
    """The package a relative import in ``module`` starts from."""
    return module if path.name == "__init__.py" else module.rpartition(".")[0]


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The deepest project module ``name`` denotes (``a.b.C`` → ``a.b`` when C is a class)."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def _targets(node: ast.Import | ast.ImportFrom, module: str, path: Path) -> Iterator[str]:
    modules = production_modules()
    if isinstance(node, ast.Import):
        for alias in node.names:
            target = _resolve(alias.name, modules)
            if target:
                yield target
        return
    if node.level:
        base = _package_of(module, path).split(".")
        base = base[: len(base) - (node.level - 1)]
        source = ".".join([*base, *([node.module] if node.module else [])])
    else:
        source = node.module or ""
    for alias in node.names:
        # ``from pkg import sub`` imports the submodule; ``from mod import name`` the module
        target = _resolve(f"{source}.{alias.name}", modules) or _resolve(source, modules)
        if target:
            yield target


@cache
def import_edges() -> tuple[Edge, ...]:
    """Every import between production modules, wherever the statement stands."""
    edges: list[Edge] = []
    for module, path in production_modules().items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                targets = set(_targets(node, module, path))
            elif isinstance(node, ast.Call):
                targets = _dynamic_target(node)
            else:
                continue
            edges.extend(Edge(module, t, node.lineno) for t in sorted(targets) if t != module)
    return tuple(edges)


def _dynamic_target(node: ast.AST) -> set[str]:
    """``importlib.import_module("a.b")`` with a literal name (a computed one cannot be
    followed: the composition root finds the domain packages that way, by design)."""
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute | ast.Name)
        and (node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id)
        == "import_module"
        and node.args
        and isinstance(node.args[0], ast.Constant)
        and isinstance(node.args[0].value, str)
    ):
        target = _resolve(node.args[0].value, production_modules())
        return {target} if target else set()
    return set()


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components with more than one module, sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0

    def visit(root: str) -> None:
        # iterative, so a long import chain never hits the recursion limit
        nonlocal counter
        work: list[tuple[str, Iterator[str]]] = []

        def enter(node: str) -> None:
            nonlocal counter
            index[node] = low[node] = counter
            counter += 1
            stack.append(node)
            on_stack.add(node)
            work.append((node, iter(sorted(graph.get(node, ())))))

        enter(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    enter(child)
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


def _cycle_report(component: list[str], edges: tuple[Edge, ...]) -> str:
    members = set(component)
    inside = sorted({str(e) for e in edges if e.source in members and e.target in members})
    return " ↔ ".join(component) + "\n    " + "\n    ".join(inside)


def _top(module: str) -> str:
    return module.split(".")[0]


# --- the analysis itself ------------------------------------------------------------------


def test_the_analysis_sees_every_kind_of_import() -> None:
    """Relative, function-level, submodule and literal ``import_module`` imports resolve."""
    modules = production_modules()
    assert {"services.db", "canaliza.launcher", "canaliza.seed"} <= set(modules)
    source = ast.parse(
        "from . import generator\n"
        "from .loader import Credentials\n"
        "def f():\n"
        "    import services.db\n"
        "    from services.settings import get_settings\n"
        "    importlib.import_module('canaliza.launcher')\n"
    )
    path = modules["canaliza.seed"]
    found = {
        t
        for node in ast.walk(source)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for t in _targets(node, "canaliza.seed", path)
    }
    found |= {t for node in ast.walk(source) for t in _dynamic_target(node)}
    assert found == {
        "canaliza.launcher",
        "canaliza.seed.generator",
        "canaliza.seed.loader",
        "services.db",
        "services.settings",
    }


def test_tarjan_finds_cycles_and_only_cycles() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": {"e"}, "e": {"d"}, "f": {"a"}}
    assert strongly_connected(graph) == [["a", "b", "c"], ["d", "e"]]
    assert strongly_connected({"a": {"b"}, "b": set()}) == []


# --- the rules ----------------------------------------------------------------------------


def test_no_import_cycle_among_production_modules() -> None:
    edges = import_edges()
    graph: dict[str, set[str]] = {}
    for edge in edges:
        graph.setdefault(edge.source, set()).add(edge.target)
    cycles = [_cycle_report(c, edges) for c in strongly_connected(graph)]
    assert cycles == [], "import cycles:\n" + "\n".join(cycles)


def _offending(forbidden: Callable[[str, str], bool]) -> list[str]:
    """Every import ``source → target`` (dotted names) that ``forbidden`` refuses."""
    return [str(e) for e in import_edges() if forbidden(e.source, e.target)]


def test_kernel_imports_no_domain_package_and_not_the_composition_root() -> None:
    outside = {*DOMAIN, COMPOSITION_ROOT}
    assert _offending(lambda src, dst: _top(src) == KERNEL and _top(dst) in outside) == []


def test_domain_packages_import_the_kernel_never_each_other() -> None:
    def across_domains(src: str, dst: str) -> bool:
        return {_top(src), _top(dst)} <= set(DOMAIN) and _top(src) != _top(dst)

    assert _offending(across_domains) == []


def test_only_the_composition_root_knows_them_all() -> None:
    """Domain packages take from the composition root only its shared leaves."""

    def up_to_the_root(src: str, dst: str) -> bool:
        return _top(src) in DOMAIN and _top(dst) == COMPOSITION_ROOT and dst not in SHARED_LEAVES

    assert _offending(up_to_the_root) == []


def test_shared_leaves_import_the_kernel_only() -> None:
    assert _offending(lambda src, dst: src in SHARED_LEAVES and _top(dst) != KERNEL) == []


# --- read-only sessions -------------------------------------------------------------------

READ_METHODS = {"GET", "HEAD"}


def _is_read_only_session(call: Any) -> bool:
    """``db.read_only`` of any :class:`ServiceDatabase` (a bound method)."""
    owner = getattr(call, "__self__", None)
    return isinstance(owner, ServiceDatabase) and getattr(call, "__name__", "") == "read_only"


def _depends_on_read_only(dependant: Dependant) -> bool:
    seen: set[int] = set()
    todo = [dependant]
    while todo:
        current = todo.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if _is_read_only_session(current.call):
            return True
        todo.extend(current.dependencies)
    return False


def _write_routes_on_read_only(app: FastAPI) -> list[str]:
    """Routes whose methods are not all GET/HEAD and whose dependencies (the effective tree,
    router-level dependencies included) reach ``db.read_only``."""
    flagged = []
    for context in iter_route_contexts(app.routes):
        if not isinstance(context.original_route, APIRoute):
            continue
        methods = set(context.methods or ())
        dependant: Dependant | None = context.dependant
        if methods - READ_METHODS and dependant is not None and _depends_on_read_only(dependant):
            endpoint = context.endpoint
            where = f"{endpoint.__module__}.{endpoint.__qualname__}" if endpoint else "?"
            flagged.append(f"{' '.join(sorted(methods))} {context.path} ({where})")
    return flagged


_SAMPLE_DB = ServiceDatabase("sample", MetaData())
_SampleReadSession = Annotated[Session, Depends(_SAMPLE_DB.read_only, scope="function")]


def _sample_read_only_session(session: _SampleReadSession) -> Session:
    return session  # one level down, as a package's own dependency would be


def _sample_app() -> FastAPI:
    app = FastAPI()

    @app.post("/wrong")
    def wrong(session: Annotated[Session, Depends(_sample_read_only_session)]) -> None:
        """A write route handed a read-only session (through another dependency)."""

    @app.get("/right")
    def right(session: _SampleReadSession) -> None:
        """A read route with a read-only session."""

    @app.api_route("/both", methods=["GET", "POST"])
    def both(session: _SampleReadSession) -> None:
        """GET and POST on one route: POST makes it a write route."""

    return app


def test_the_read_only_check_sees_a_write_route_on_a_read_session() -> None:
    """The check below, on deliberately wrong routes (so it cannot pass vacuously)."""
    flagged = _write_routes_on_read_only(_sample_app())
    assert [line.split(" (")[0] for line in flagged] == ["POST /wrong", "GET POST /both"]


def test_only_get_and_head_routes_use_the_read_only_session() -> None:
    app = build_app("all")
    assert any(isinstance(c.original_route, APIRoute) for c in iter_route_contexts(app.routes))
    offenders = _write_routes_on_read_only(app)
    assert offenders == [], "write routes on a read-only session:\n" + "\n".join(offenders)


def _builtin_factories(models: list[type[SQLModel]]) -> list[str]:
    """Fields of table models whose ``default_factory`` is not a Python function (a builtin
    or a class such as ``list``): each construction would parse its text signature again
    (``services.db.empty_list``)."""
    return [
        f"{model.__module__}.{model.__qualname__}.{name}"
        for model in models
        for name, info in model.model_fields.items()
        if info.default_factory is not None
        and not isinstance(info.default_factory, types.FunctionType)
    ]


def _table_models() -> list[type[SQLModel]]:
    build_app("all")  # every domain package's models imported
    found: list[type[SQLModel]] = []
    todo = list(SQLModel.__subclasses__())
    while todo:
        model = todo.pop()
        todo.extend(model.__subclasses__())
        if getattr(model, "__table__", None) is not None and model.__module__.split(".")[0] in (
            KERNEL,
            *DOMAIN,
        ):
            found.append(model)
    return found


def test_table_models_default_factories_are_python_functions() -> None:
    class Wrong(SQLModel):
        tags: list[str] = Field(default_factory=list)

    assert _builtin_factories([Wrong]) == [f"{__name__}.{Wrong.__qualname__}.tags"]
    models = _table_models()
    assert {m.__module__.split(".")[0] for m in models} >= {"audit", "capacity", "referral"}
    assert _builtin_factories(models) == []
