"""The documented figures the synthetic data is calibrated to.

References are ``NNN:line`` — line ``line`` of source document ``NNN``, as listed in
``docs/sources.md``: ``003`` is the CNDH diagnosis on trafficking in persons (2019, figures
of 2012–2017), ``002`` the PROTEJA quarterly report on the four NGO shelters (2007). Where the sources give no figure, the
choice is marked *assumed* with the reason.
"""

from __future__ import annotations

# --- victims identified by prosecutors, 2012–2017 (003:127-145) -----------------------
VICTIMS_IDENTIFIED = 5_245  # 003:127
FEMALE_SHARE = 0.85  # women and girls, 003:129
SEX_X_SHARE = 0.003  # assumed: the contract allows "X"; the sources report no such victims
MINOR_SHARE = 0.27  # 003:139
MINOR_SHARE_FEMALE = 0.25  # 003:139
MINOR_SHARE_MALE = 0.37  # 003:139 (and 003:141: "almost four out of every 10")
FOREIGN_SHARE = 0.13  # 658 victims, 003:145
MEXICAN = "MEX"  # ISO 3166-1 alpha-3, as the referral service records nationality
FOREIGN_FEMALE_SHARE = 0.88  # women among foreign victims, 003:145
SAME_STATE_OF_ORIGIN_SHARE = 0.50  # Mexican victims identified in their own state, 003:143
AGE_UNKNOWN_SHARE = 0.02  # assumed: S.I. ages exist (003:167-177) but are few among victims

# --- nationality of foreign victims: INM, 133 victims (003:207-215) --------------------
INM_FOREIGN_VICTIMS = 133  # 93 adult women, 17 girls, 17 adult men, 6 boys (003:207)
NATIONALITY_MIX: tuple[tuple[str, float], ...] = (
    ("HND", 0.47),  # Honduras, 003:215
    ("GTM", 0.22),  # Guatemala, 003:215
    ("SLV", 0.07),  # El Salvador, 003:215
    # the remaining 24 % spread over the other countries INM names (003:209)
    ("NIC", 0.04),
    ("COL", 0.03),
    ("VEN", 0.03),
    ("CUB", 0.03),
    ("ECU", 0.025),
    ("ARG", 0.02),
    ("CRI", 0.02),
    ("USA", 0.02),
    ("PRY", 0.015),
    ("ESP", 0.01),
    ("ITA", 0.01),
    ("TGO", 0.01),
)
"""ISO 3166-1 alpha-3 codes (the referral service's vocabulary; Mexico is ``MEX``) and their
share among foreign victims (sums to 1)."""

# --- forms of exploitation (003:149-161; art. 10 fractions of the General Law) ----------
# 70 % in the sexual field (003:149). The small counts are per 5,245 victims (003:153-155).
# The labour share is the remainder: the diagnosis gives no figure for it (assumed).
OFFENCES: tuple[tuple[str, str, float], ...] = (
    ("art10-III", "prostitución ajena u otras formas de explotación sexual", 0.70),
    ("art10-IV", "explotación laboral", 0.0),  # residual, filled below
    ("art10-VI", "mendicidad forzosa", (22 + 7) / VICTIMS_IDENTIFIED),
    ("art10-VIII", "adopción ilegal de persona menor de dieciocho años", 20 / VICTIMS_IDENTIFIED),
    ("art10-VII", "utilización de menores en actividades delictivas", 10 / VICTIMS_IDENTIFIED),
    ("art10-IX", "matrimonio forzoso o servil", 6 / VICTIMS_IDENTIFIED),
    ("art10-V", "trabajo o servicios forzados", 5 / VICTIMS_IDENTIFIED),
    ("art32", "conductas del artículo 32", 2 / VICTIMS_IDENTIFIED),
    ("art10-I", "esclavitud", 1 / VICTIMS_IDENTIFIED),
    ("art10-multiple", "dos o más formas de explotación", 13 / VICTIMS_IDENTIFIED),
    ("art10-SI", "forma de explotación no identificada (S.I.)", 12 / VICTIMS_IDENTIFIED),
)
OFFENCE_CODES: tuple[str, ...] = tuple(code for code, _, _ in OFFENCES)
_OFFENCE_RESIDUAL = 1.0 - sum(w for _, _, w in OFFENCES)
OFFENCE_WEIGHTS: tuple[float, ...] = tuple(
    _OFFENCE_RESIDUAL if code == "art10-IV" else w for code, _, w in OFFENCES
)
# Women and girls are 95 % of victims in the sexual field (003:149): sexual exploitation
# is drawn more often for F and less for M so that the overall 70 % holds.
SEXUAL_SHARE_AMONG_FEMALE_VICTIMS = 0.95 * 0.70 / FEMALE_SHARE

# How a reported category is written in a person's ``offences`` (the referral service's
# catalogue): "two or more forms" as the two most frequent fractions (assumed), and an
# unidentified form (S.I.) as no offence on a direct victim — S.I., not zero.
OFFENCE_AS_RECORDED: dict[str, tuple[str, ...]] = {
    "art10-multiple": ("art10-III", "art10-IV"),
    "art10-SI": (),
}

# --- vulnerable groups among 364 sheltered victims (003:295); LGBTTTIQ 6 of 5,245 (003:147)
# (codes of the referral service's catalogue)
VULNERABLE_GROUPS: tuple[tuple[str, float], ...] = (
    ("indigenous", 35 / 364),
    ("disability", 31 / 364),
    ("migrant_in_transit", 33 / 364),
    ("lgbtttiq", 0.01),  # assumed above the 6/5,245 reported: 72 % had no information (003:147)
)

# No information on belonging to a vulnerable group for 72 % of victims (003:145): a victim
# drawn in no group was, that often, not asked (S.I.) rather than asked and in none.
VULNERABLE_GROUP_NOT_ASKED_SHARE = 0.72

# --- facilities run by prosecution offices (003:293, 309, 673) --------------------------
PROSECUTION_FACILITY_OFFICES = 12  # 003:293
PROSECUTION_REFUGES = 10  # 003:293
PROSECUTION_SHELTERS = 9  # 003:293
PROSECUTION_HALFWAY_HOUSES = 1  # 003:293
PROSECUTION_CLOSED_SHELTER_DATE = "2017-11-30"  # "stopped operating in November 2017", 003:293
PROSECUTION_FACILITY_STATES = (
    "01", "04", "07", "09", "11", "15", "18", "19", "21", "26", "29", "FGR",
)  # 003:309  # fmt: skip
PROSECUTION_CHILD_AGE_LIMIT = 13  # children only until 13; no adult men (003:673)
FEVIMTRA_MAX_STAY_DAYS = 90  # three months unless instability or risk persists (003:563)
PROSECUTION_OFFICES_WITH_AGREEMENTS = 3  # 003:675

# --- state victims' commissions (CEEAV) that answered the CNDH (003:179-185) -----------
CEEAV_STATES = (
    "04", "05", "12", "16", "15", "17", "23", "28", "29",  # attended victims, 003:179
    "14", "24", "27", "30", "32", "06", "10", "19", "31",  # other answers, 003:179
    "08",  # did not answer, but exists (003:183, note 13)
)  # fmt: skip

# --- NGO shelters (002:205-208; 002:365-558) --------------------------------------------
# CIAM served 633 children beside 301 women (002:521-522): mothers with children are the
# norm in women's shelters; Casa de las Mercedes 118 beside 697 (002:461-470).
CHILDREN_PER_WOMAN_CIAM = 633 / 301
ACCOMPANIED_BY_CHILDREN_SHARE = 0.35  # assumed: adult women arriving with children
MAX_ACCOMPANYING_CHILDREN = 3
INDIRECT_VICTIM_SHARE = 0.06  # assumed; CEAV attended 273 indirect per 790 direct (003:163, 169)
WITNESS_SHARE = 0.02  # assumed; 14 % of files started with a witness (003:681)

# --- outcomes (002:373-396, 003:535); codes of the referral service's catalogue ----------------------------------------------------
# Casa Alianza: 98 reintegrated of 251 new; 37 transferred (002:373-396). INM: 104 of 133
# foreign victims with no information on where they went (003:535) — in Canaliza every
# referral ends with a known outcome, so "no information" is kept small but not zero.
DISCHARGE_OUTCOMES: tuple[tuple[str, float], ...] = (
    ("reintegrated_origin", 0.45),
    ("reintegrated_elsewhere", 0.20),
    ("transferred_onward", 0.20),
    ("left_voluntarily", 0.15),
)
# A group declined for want of a free bed is referred again, the same people (assumed):
# the share of later referrals that are such a re-referral while one is waiting.
RE_REFERRAL_SHARE = 0.5
DECLINE_SHARE = 0.06  # assumed: risk or profile, besides the ineligible groups (adult men)
# Shelters are far scarcer than demand: 364 victims sheltered of 5,245 identified
# (003:295, 003:127). Assumed: a referral that finds an eligible facility is still declined
# for want of a free bed this often — the commonest answer after admission.
NO_BED_DECLINE_SHARE = 0.30

# --- scale of the national history (003:127) ----------------------------------------------
# 5,245 victims identified in five years: about 1,000 a year nationally. The national
# history (two years) draws as many distinct victims; re-referrals come on top.
VICTIMS_PER_YEAR = VICTIMS_IDENTIFIED / 5
VICTIMS_PER_YEAR_TOLERANCE = 0.15  # the national history keeps within ±15 % of it
CANCEL_SHARE = 0.04  # assumed
NO_ANSWER_SHARE = 0.02  # assumed: still "sent" with no answer, the reportable failure
STAY_EXTENSION_SHARE = 0.15  # assumed share that stays beyond the maximum (003:563)

# --- SEGOB's roster and its visits (003:517) ------------------------------------------------
# Ten refuges, shelters or half-way houses on SEGOB's roster, only one of them ever visited;
# eight visits in three years to six shelters (four, three and one a year), the other five
# not on the roster.
ROSTER_REGISTERED = 10
ROSTER_VISITS_BY_YEAR = (4, 3, 1)  # the three years before the reference date, oldest first
ROSTER_VISITED_FACILITIES = 6
ROSTER_VISITED_REGISTERED = 1
