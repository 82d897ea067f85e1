"""One OpenAPI document for services that run apart (served by the gateway).

In one process (``canaliza serve all``) FastAPI builds a single document from every
router. Behind the gateway each service has its own ``/openapi.json``; the gateway
fetches them and merges them here, so ``/openapi.json`` and ``/docs`` describe the
platform the same way in both topologies.

Paths are united (the health routes every service has are identical and kept once).
Component schemas with the same name and the same content are kept once; a name two
services use for different schemas is prefixed with the service (``Capacity…``), and
every ``$ref`` of that service is rewritten to match.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

SCHEMA_REF = "#/components/schemas/"


def _rewrite_refs(node: Any, renames: Mapping[str, str]) -> Any:
    """A copy of ``node`` with ``$ref``s to renamed schemas pointing at the new names."""
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str) and value.startswith(SCHEMA_REF):
                name = value.removeprefix(SCHEMA_REF)
                out[key] = SCHEMA_REF + renames.get(name, name)
            else:
                out[key] = _rewrite_refs(value, renames)
        return out
    if isinstance(node, list):
        return [_rewrite_refs(v, renames) for v in node]
    return node


def _prefix(service: str) -> str:
    return "".join(part.capitalize() for part in service.replace("-", "_").split("_"))


def merge_openapi(
    specs: Mapping[str, Mapping[str, Any]],
    *,
    title: str = "Canaliza",
    version: str = "0.1.0",
    description: str = "",
    missing: list[str] | None = None,
) -> dict[str, Any]:
    """Merge the services' documents (in the order given) into one."""
    merged: dict[str, Any] = {
        "openapi": next((str(s["openapi"]) for s in specs.values() if s.get("openapi")), "3.1.0"),
        "info": {"title": title, "version": version},
        "paths": {},
        "components": {"schemas": {}},
        "tags": [],
    }
    notes = [description] if description else []
    if missing:
        notes.append(
            "Servicios que no respondieron al armar este documento (sus rutas faltan): "
            + ", ".join(missing)
            + "."
        )
    if notes:
        merged["info"]["description"] = "\n\n".join(notes)
    schemas: dict[str, Any] = merged["components"]["schemas"]
    tags_seen: set[str] = set()
    for service, spec in specs.items():
        own: dict[str, Any] = dict((spec.get("components") or {}).get("schemas") or {})
        # Rename the schemas that clash, until renaming makes no further clash (a schema
        # identical by text may differ once the schemas it refers to are renamed).
        renames: dict[str, str] = {}
        while True:
            rewritten = {n: _rewrite_refs(s, renames) for n, s in own.items()}
            clashes = {
                n
                for n, s in rewritten.items()
                if n not in renames and n in schemas and schemas[n] != s
            }
            if not clashes:
                break
            for name in clashes:
                new = f"{_prefix(service)}{name}"
                while new in schemas or new in own:
                    new = f"{_prefix(service)}_{new}"
                renames[name] = new
        for name, schema in rewritten.items():
            schemas.setdefault(renames.get(name, name), schema)
        for kind, parts in (spec.get("components") or {}).items():
            if kind != "schemas" and isinstance(parts, dict):
                target = merged["components"].setdefault(kind, {})
                for name, part in parts.items():
                    target.setdefault(name, _rewrite_refs(part, renames))
        for path, operations in (spec.get("paths") or {}).items():
            target = merged["paths"].setdefault(path, {})
            for method, operation in operations.items():
                target.setdefault(method, _rewrite_refs(operation, renames))
        for tag in spec.get("tags") or []:
            if tag.get("name") not in tags_seen:
                tags_seen.add(tag.get("name"))
                merged["tags"].append(copy.deepcopy(tag))
    merged["x-canaliza-services"] = list(specs)
    if not merged["tags"]:
        del merged["tags"]
    return merged
