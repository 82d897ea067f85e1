"""The referral service's demo data: the demo institutions and a signed agreement."""

from __future__ import annotations

from datetime import date

from sqlmodel import Session, select

from canaliza import demo
from referral import catalogue
from referral.institutions import add_institution
from referral.models import Agreement, AgreementParty, Institution
from services.clock import utcnow
from services.vocabulary import InstitutionType, Sex

DEMO_AGREEMENT_NUMBER = "FEVIMTRA/CONV/001/2024"


def load_demo(session: Session) -> int:
    """Seed the demo institutions and a signed FGR ↔ Casa de las Mercedes agreement.

    Idempotent (stable ids; existing rows are kept); returns how many rows it added.
    """
    now = utcnow()
    added = 0
    for inst in demo.DEMO_INSTITUTIONS:
        if session.get(Institution, inst.id) is None:
            iap = inst.type == InstitutionType.NGO and "I.A.P." in inst.name
            row = Institution(
                id=inst.id,
                name=inst.name,
                type=inst.type,
                state=inst.state,
                legal_form="I.A.P." if iap else None,
                created_at=now,
            )
            add_institution(session, row, None)
            added += 1
    if session.exec(select(Agreement).where(Agreement.number == DEMO_AGREEMENT_NUMBER)).first():
        session.flush()
        return added
    agreement = Agreement(
        number=DEMO_AGREEMENT_NUMBER,
        title="Convenio de colaboración para la canalización y atención de víctimas de trata",
        valid_from=date(2024, 1, 1),
        valid_to=date(2030, 12, 31),
        status="signed",
        scope_sexes=list(Sex.values()),
        scope_age_groups=list(catalogue.AGE_GROUPS),
        scope_services=[],
        scope_states=[],
        created_by="seed",
        created_at=now,
        signed_at=now,
    )
    session.add(agreement)
    session.flush()
    for party in (demo.FGR, demo.CASA_MERCEDES):
        session.add(
            AgreementParty(
                agreement_id=agreement.id,
                institution_id=party.id,
                signed_by="seed",
                signed_at=now,
            )
        )
    session.flush()
    return added + 1
