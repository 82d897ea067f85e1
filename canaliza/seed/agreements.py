"""The generated agreements (convenios) between referring institutions and operators."""

from __future__ import annotations

import random
from datetime import date, timedelta
from typing import Any

from canaliza import demo
from canaliza.seed import figures as fig
from canaliza.seed.draws import (
    iso_date,
)
from canaliza.seed.roster import inm_office_id
from canaliza.seed.scales import Scale
from canaliza.seed.states import STATE_BY_CODE, STATE_CODES
from services.ids import stable_id

# --------------------------------------------------------------------------- agreements


def _agreement(
    number: str,
    title: str,
    parties: list[str],
    valid_from: date,
    valid_to: date,
    signed_by: list[str] | None = None,
) -> dict[str, Any]:
    return {
        "key": f"agr-{number}",
        "body": {
            "number": number,
            "title": title,
            "party_ids": parties,
            "valid_from": iso_date(valid_from),
            "valid_to": iso_date(valid_to),
        },
        "signed_by": parties if signed_by is None else signed_by,
    }


def draw_agreements(
    rng: random.Random,
    scale: Scale,
    reference: date,
    ngo_ids: list[str],
    ngo_states: dict[str, str],
    operators: list[str],
) -> list[dict[str, Any]]:
    start, end = reference - timedelta(days=3 * 365), reference + timedelta(days=3 * 365)
    fge09, fge07 = stable_id("institution", "fge-09"), stable_id("institution", "fge-07")
    mercedes, sndif = demo.CASA_MERCEDES.id, demo.SNDIF.id
    alianza = stable_id("institution", "ngo-casa-alianza")
    camino = stable_id("institution", "ngo-camino-a-casa")
    ciam = stable_id("institution", "ngo-ciam-cancun")
    alternativas = stable_id("institution", "ngo-alternativas-pacificas")
    year = reference.year
    # Only 3 prosecution offices have an agreement for channelling victims (003:675):
    # FGR (FEVIMTRA), Mexico City's and Chiapas's. Everything else is among DIF, INM, CEAV
    # and NGOs.
    out = [
        _agreement(f"FEVIMTRA-CM-{year - 3}-001",
                   "Convenio de colaboración FEVIMTRA — Casa de las Mercedes para la canalización "
                   "de mujeres víctimas de trata y sus hijas e hijos",
                   [demo.FGR.id, mercedes], start, end),
        _agreement(f"FEVIMTRA-SNDIF-{year - 3}-002",
                   "Convenio FEVIMTRA — SNDIF para la protección de niñas, niños y adolescentes",
                   [demo.FGR.id, sndif], start, end),
        _agreement(f"FGJCDMX-{year - 2}-003",
                   "Convenio de canalización FGJCDMX — Casa Alianza — Camino a Casa",
                   [fge09, alianza, camino], start + timedelta(days=365), end),
        _agreement(f"FGE-CHIS-{year - 2}-004",
                   "Convenio de canalización Fiscalía de Chiapas — DIF Chiapas",
                   [fge07, stable_id("institution", "dif-07")], start + timedelta(days=200), end),
        _agreement(f"INM-CIAM-{year - 2}-005",
                   "Convenio INM — CIAM Cancún para víctimas extranjeras",
                   [inm_office_id("23"), ciam], start, end),
        _agreement(f"CEAV-AP-{year - 1}-006",
                   "Convenio CEAV — Alternativas Pacíficas",
                   [demo.CEAV.id, alternativas], start + timedelta(days=500), end),
        # signed by one party only: ready for signature, not in force
        _agreement(f"FEVIMTRA-CIAM-{year}-007",
                   "Convenio FEVIMTRA — CIAM Cancún (en firma)",
                   [demo.FGR.id, ciam], reference, end, signed_by=[demo.FGR.id]),
    ]  # fmt: skip
    if scale.name != "demo":  # national and stress: agreements in every state
        operator_set = dict.fromkeys(operators)
        with_facilities = [n for n in ngo_ids if n in operator_set]
        by_state: dict[str, list[str]] = {}
        for n in with_facilities:
            by_state.setdefault(ngo_states[n], []).append(n)
        seq = 8
        for code in STATE_CODES:
            local = by_state.get(code, [])
            if not local or rng.random() < 0.5:
                continue  # about half of the state DIF systems have one
            partner = rng.choice(local)
            expired = rng.random() < 0.15
            vf = start + timedelta(days=rng.randint(0, 400))
            vt = reference - timedelta(days=rng.randint(60, 300)) if expired else end
            out.append(
                _agreement(f"DIF-{code}-{vf.year}-{seq:03d}",
                           f"Convenio DIF {STATE_BY_CODE[code].name} — organización civil",
                           [stable_id("institution", f"dif-{code}"), partner], vf, vt)
            )  # fmt: skip
            seq += 1
        for code in ("07", "02", "26", "08", "28", "15", "09", "30", "20", "27"):
            local = by_state.get(code, [])
            if local:
                out.append(
                    _agreement(f"INM-{code}-{year - 1}-{seq:03d}",
                               f"Convenio INM — organización civil ({STATE_BY_CODE[code].name})",
                               [inm_office_id(code), rng.choice(local)],
                               start + timedelta(days=rng.randint(0, 300)), end)
                )  # fmt: skip
                seq += 1
        for code in fig.CEEAV_STATES[:9]:
            local = by_state.get(code, [])
            if local and rng.random() < 0.6:
                out.append(
                    _agreement(f"CEEAV-{code}-{year - 1}-{seq:03d}",
                               f"Convenio CEEAV {STATE_BY_CODE[code].name} — organización civil",
                               [stable_id("institution", f"ceeav-{code}"), rng.choice(local)],
                               start + timedelta(days=rng.randint(0, 300)), end)
                )  # fmt: skip
                seq += 1
        out.append(
            _agreement(f"SNDIF-REDNGO-{year - 2}-{seq:03d}",
                       "Convenio marco SNDIF — red de organizaciones civiles",
                       [sndif, *rng.sample(with_facilities, 4)], start, end)
        )  # fmt: skip
    return out
