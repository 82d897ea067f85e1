"""The kernel never imports a domain package; domain packages never import each other."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOMAIN = {"auth", "capacity", "referral", "audit", "frontend"}
COMPOSERS = {"services/launcher.py", "services/seed"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_kernel_imports_no_domain_package():
    offenders = []
    for path in (ROOT / "services").rglob("*.py"):
        rel = path.relative_to(ROOT).as_posix()
        if any(rel == c or rel.startswith(c + "/") for c in COMPOSERS):
            continue
        bad = _imports(path) & DOMAIN
        if bad:
            offenders.append(f"{rel}: {sorted(bad)}")
    assert offenders == []


def test_domain_packages_do_not_import_each_other():
    offenders = []
    for package in DOMAIN:
        for path in (ROOT / package).rglob("*.py") if (ROOT / package).exists() else []:
            bad = (_imports(path) & DOMAIN) - {package}
            if bad:
                offenders.append(f"{path.relative_to(ROOT)}: {sorted(bad)}")
    assert offenders == []
