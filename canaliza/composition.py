"""Which services this checkout has, and the app that serves them.

Only the composition root knows the domain packages, and it finds them by name: each
defines ``<package>.main.service()`` returning its :class:`~services.app.ServiceSpec`.
The launcher and the seed loader both build their app here.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable

import typer
from fastapi import FastAPI

from services.app import Hook, ServiceSpec, create_app

# The frontend is not a data service, but it is served like one.
DOMAIN_PACKAGES = ("auth", "capacity", "referral", "audit", "frontend")


def has_module(name: str) -> bool:
    """Whether ``name`` can be imported (without importing it)."""
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:  # the parent package does not exist
        return False


def available_packages() -> list[str]:
    """Domain packages present in this checkout that define a service."""
    return [p for p in DOMAIN_PACKAGES if has_module(f"{p}.main")]


def load_spec(package: str) -> ServiceSpec:
    module = importlib.import_module(f"{package}.main")
    factory: Callable[[], ServiceSpec] = module.service
    return factory()


def load_specs(names: list[str]) -> list[ServiceSpec]:
    return [load_spec(n) for n in names]


def build_app(target: str = "all", *, extra_startup: list[Hook] | None = None) -> FastAPI:
    """The ASGI app for ``target`` (``all`` or one package name); ``extra_startup`` hooks run
    after every service's own."""
    names = available_packages() if target == "all" else [target]
    unknown = [n for n in names if n not in DOMAIN_PACKAGES]
    if unknown:
        raise typer.BadParameter(f"unknown service {unknown[0]!r}")
    return create_app(
        load_specs(names),
        title="Canaliza" if target == "all" else f"Canaliza — {target}",
        extra_startup=extra_startup,
    )
