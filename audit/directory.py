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


def hsds_export(session: Session) -> dict[str, Any]:
    """The directory: organizations, services, locations and their links (HSDS 3.0)."""
    insts = institutions(session)
    facs = [
        f
        for f in session.execute(
            select(*RosterFacility.__table__.c).order_by(  # type: ignore[attr-defined]
                RosterFacility.state, RosterFacility.facility_id
            )
        )
        if f.status in SERVICE_STATUS
    ]
    organizations: dict[str, dict[str, Any]] = {}
    services: list[dict[str, Any]] = []
    locations: list[dict[str, Any]] = []
    links: list[dict[str, Any]] = []
    for fac in facs:
        op = fac.operator_institution_id or "S.I."
        org_id = stable_id("hsds-organization", op)
        if org_id not in organizations:
            info = insts.get(op, {})
            kind = INSTITUTION_TYPES.get(info.get("type", ""), "Institución")
            organizations[org_id] = {
                "id": org_id,
                "name": info.get("institution_name") or f"Institución {op}",
                "description": (
                    f"{kind}; {STATE_NAMES.get(info.get('state', ''), 'entidad sin información')}."
                ),
            }
        kind_label = KIND_LABELS.get(fac.kind or "", "Alojamiento")
        offered = [SERVICE_LABELS.get(s, s) for s in fac.services]
        service_id = stable_id("hsds-service", fac.facility_id)
        location_id = stable_id("hsds-location", fac.facility_id)
        services.append(
            {
                "id": service_id,
                "organization_id": org_id,
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
        )
        if services[-1]["interpretation_services"] is None:
            del services[-1]["interpretation_services"]
        locations.append(
            {
                "id": location_id,
                "location_type": "physical",
                "organization_id": org_id,
                "name": f"{kind_label} en {_place(fac)}",
                "description": "Domicilio reservado: se comunica sólo a quien canaliza.",
                "external_identifier": fac.facility_id,
                "external_identifier_type": "canaliza_facility_id",
            }
        )
        links.append(
            {
                "id": stable_id("hsds-service-at-location", fac.facility_id),
                "service_id": service_id,
                "location_id": location_id,
            }
        )
    return {
        "hsds_version": "3.0",
        "organizations": list(organizations.values()),
        "services": services,
        "locations": locations,
        "service_at_locations": links,
    }
