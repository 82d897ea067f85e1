"""The public directory in the Open Referral HSDS 3.0 shape (non-confidential data only).

An organization per operator institution, a service per facility programme, a location per
facility, and the service-at-location links. No street address, postal code or coordinates
for any facility: the law keeps refuges' locations secret (``003:527``) and the domain rules keep
every exact address secret (traffickers and relatives look for victims, ``004:903, 987``),
so in doubt every kind is published without one. A refuge's location does not even name
its municipality, only its state. Closed facilities are not published.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

from sqlalchemy import select
from sqlmodel import Session, col

from audit.models import AuditEntry, RosterFacility
from services.ids import stable_id
from services.vocabulary import INSTITUTION_TYPES, STATE_NAMES

KIND_LABELS = {
    "refugio": "Refugio",
    "albergue": "Albergue",
    "casa_de_medio_camino": "Casa de medio camino",
}
SERVICE_LABELS = {
    "legal": "asesoría jurídica",
    "medical": "atención médica",
    "mental_health": "atención psicológica",
    "social_work": "trabajo social",
    "education": "educación",
    "interpretation": "interpretación",
    "employment": "capacitación y empleo",
    "childcare": "cuidado infantil",
}
# Facilities read per round trip (and written per chunk) by the streamed directory.
FACILITY_BATCH = 500
# Facility lifecycle -> HSDS service status (closed facilities are left out).
SERVICE_STATUS = {"active": "active", "suspended": "temporarily closed", "registered": "inactive"}


def institutions(session: Session) -> dict[str, dict[str, Any]]:
    """Institutions as the trail knows them (name, type, state), latest event wins."""
    out: dict[str, dict[str, Any]] = {}
    rows = session.execute(
        select(col(AuditEntry.canonical))
        .where(col(AuditEntry.type).startswith("referral.institution.", autoescape=True))
        .order_by(col(AuditEntry.position))
    ).scalars()
    for canonical in rows:
        body = json.loads(canonical)
        p = body.get("payload") or {}
        iid = str(p.get("id") or body.get("aggregate_id") or "")
        if not iid:
            continue
        row = out.setdefault(iid, {})
        # Trail entries written before the trail stripped by declaration carry the name
        # as ``institution_name`` (their ``name`` was stripped by key).
        name = p.get("name") or p.get("institution_name")
        if name:
            row["institution_name"] = name
        for key in ("type", "state"):
            if p.get(key):
                row[key] = p[key]
    return out


def _place(fac: Any) -> str:
    state = STATE_NAMES.get(fac.state or "", "entidad sin información")
    if fac.kind == "refugio":
        return state
    return f"{fac.municipality}, {state}" if fac.municipality else state


def _facilities(session: Session) -> Iterator[Any]:
    """The published facilities (closed ones left out), by state then id, read in batches."""
    rows = session.execute(
        select(*RosterFacility.__table__.c)  # type: ignore[attr-defined]
        .order_by(RosterFacility.state, RosterFacility.facility_id)
        .execution_options(yield_per=FACILITY_BATCH)
    )
    return (f for f in rows if f.status in SERVICE_STATUS)


def _operator(fac: Any) -> str:
    return str(fac.operator_institution_id or "S.I.")


def _organization(op: str, insts: dict[str, dict[str, Any]]) -> dict[str, Any]:
    info = insts.get(op, {})
    kind = INSTITUTION_TYPES.get(info.get("type", ""), "Institución")
    return {
        "id": stable_id("hsds-organization", op),
        "name": info.get("institution_name") or f"Institución {op}",
        "description": (
            f"{kind}; {STATE_NAMES.get(info.get('state', ''), 'entidad sin información')}."
        ),
    }


def _kind_label(fac: Any) -> str:
    return KIND_LABELS.get(fac.kind or "", "Alojamiento")


def _service(fac: Any) -> dict[str, Any]:
    kind_label = _kind_label(fac)
    offered = [SERVICE_LABELS.get(s, s) for s in fac.services]
    service_id = stable_id("hsds-service", fac.facility_id)
    service = {
        "id": service_id,
        "organization_id": stable_id("hsds-organization", _operator(fac)),
        "name": f"{kind_label}: {fac.name or 'sin nombre'}",
        "description": (
            f"{kind_label} para víctimas de trata de personas"
            + (" (especializado)" if fac.specialization == "trafficking" else " (mixto)")
            + (f". Servicios: {', '.join(offered)}." if offered else ".")
            + " Acceso únicamente por canalización de una autoridad o institución."
        ),
        "status": SERVICE_STATUS[fac.status or "registered"],
        "application_process": (
            "Canalización por fiscalía, DIF, INM, CEAV u organización con convenio."
        ),
        "fees_description": "Gratuito.",
        "interpretation_services": (
            "Intérpretes disponibles." if "interpretation" in fac.services else None
        ),
        "service_areas": [
            {
                "id": stable_id("hsds-service-area", fac.facility_id),
                "service_id": service_id,
                "name": STATE_NAMES.get(fac.state or "", "S.I."),
            }
        ],
    }
    if service["interpretation_services"] is None:
        del service["interpretation_services"]
    return service


def _location(fac: Any) -> dict[str, Any]:
    return {
        "id": stable_id("hsds-location", fac.facility_id),
        "location_type": "physical",
        "organization_id": stable_id("hsds-organization", _operator(fac)),
        "name": f"{_kind_label(fac)} en {_place(fac)}",
        "description": "Domicilio reservado: se comunica sólo a quien canaliza.",
        "external_identifier": fac.facility_id,
        "external_identifier_type": "canaliza_facility_id",
    }


def _link(fac: Any) -> dict[str, Any]:
    return {
        "id": stable_id("hsds-service-at-location", fac.facility_id),
        "service_id": stable_id("hsds-service", fac.facility_id),
        "location_id": stable_id("hsds-location", fac.facility_id),
    }


def _organizations(session: Session) -> Iterator[dict[str, Any]]:
    """Each operator of a published facility once, in the order its first facility comes."""
    insts = institutions(session)
    seen: set[str] = set()
    for fac in _facilities(session):
        op = _operator(fac)
        if op not in seen:
            seen.add(op)
            yield _organization(op, insts)


def hsds_export(session: Session) -> dict[str, Any]:
    """The directory: organizations, services, locations and their links (HSDS 3.0), built
    whole in memory (:func:`hsds_chunks` streams the same document)."""
    facs = list(_facilities(session))
    return {
        "hsds_version": "3.0",
        "organizations": list(_organizations(session)),
        "services": [_service(f) for f in facs],
        "locations": [_location(f) for f in facs],
        "service_at_locations": [_link(f) for f in facs],
    }


def _dumps(value: Any) -> str:
    # As the JSON response renders it: compact, accents as they are.
    return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def hsds_chunks(session: Session) -> Iterator[bytes]:
    """The directory as :func:`hsds_export` gives it, byte for byte as JSON, written as the
    facilities are read: one pass over them per list, ``FACILITY_BATCH`` at a time, one
    chunk per batch. Read it in one transaction that sees one snapshot."""
    lists: list[tuple[str, Callable[[Session], Iterator[dict[str, Any]]]]] = [
        ("organizations", _organizations),
        ("services", lambda s: map(_service, _facilities(s))),
        ("locations", lambda s: map(_location, _facilities(s))),
        ("service_at_locations", lambda s: map(_link, _facilities(s))),
    ]
    out = ['{"hsds_version":"3.0"']
    for key, items in lists:
        out.append(f',"{key}":[')
        for i, item in enumerate(items(session)):
            out.append(("," if i else "") + _dumps(item))
            if len(out) >= FACILITY_BATCH:
                yield "".join(out).encode("utf-8")
                out.clear()
        out.append("]")
    out.append("}")
    yield "".join(out).encode("utf-8")
