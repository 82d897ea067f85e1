"""The language catalogue: Spanish, INALI's indigenous language groups, Mexican Sign
Language and the foreign languages migrants speak, matched without accents or case.

A pool declares the languages it can attend in (``interpreter_languages``); a person or a
group names the languages they speak. Each entry has a code, its Spanish label and the
other spellings it is known by; ``code_of`` maps any of them, written with or without
accents, apostrophes or capitals, to the code. Text that is not in the catalogue is
refused in requests (``unknown``); a stored pool language outside it still matches itself.
"""

from __future__ import annotations

import re
import unicodedata
from functools import cache

SPANISH = "espanol"

# (code, Spanish label, other names). INALI's Catálogo de las Lenguas Indígenas Nacionales
# (its 68 agrupaciones lingüísticas), LSM, and the languages of people in transit.
_CATALOGUE: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    (SPANISH, "Español", ("castellano", "spanish")),
    ("lsm", "Lengua de Señas Mexicana", ("lengua de senas mexicana", "senas", "lengua de senas")),
    ("akateko", "Akateko", ()),
    ("amuzgo", "Amuzgo", ()),
    ("awakateko", "Awakateko", ()),
    ("ayapaneco", "Ayapaneco", ()),
    ("cora", "Cora", ("naayeri",)),
    ("cucapa", "Cucapá", ()),
    ("cuicateco", "Cuicateco", ()),
    ("chatino", "Chatino", ()),
    ("chichimeco_jonaz", "Chichimeco jonaz", ("chichimeco",)),
    ("chinanteco", "Chinanteco", ()),
    ("chocholteco", "Chocholteco", ()),
    ("chontal_oaxaca", "Chontal de Oaxaca", ()),
    ("chontal_tabasco", "Chontal de Tabasco", ("yokot'an",)),
    ("chuj", "Chuj", ()),
    ("chol", "Ch'ol", ()),
    ("guarijio", "Guarijío", ("warihio",)),
    ("huasteco", "Huasteco", ("tenek", "teenek")),
    ("huave", "Huave", ("ombeayiiuts",)),
    ("huichol", "Huichol", ("wixarika",)),
    ("ixcateco", "Ixcateco", ()),
    ("ixil", "Ixil", ()),
    ("jakalteko", "Jakalteko", ()),
    ("kaqchikel", "Kaqchikel", ()),
    ("kickapoo", "Kickapoo", ()),
    ("kiliwa", "Kiliwa", ()),
    ("kiche", "K'iche'", ("quiche",)),
    ("kumiai", "Kumiai", ()),
    ("kuahl", "Ku'ahl", ()),
    ("lacandon", "Lacandón", ()),
    ("mam", "Mam", ()),
    ("matlatzinca", "Matlatzinca", ()),
    ("maya", "Maya", ("maaya t'aan",)),
    ("mayo", "Mayo", ("yoreme",)),
    ("mazahua", "Mazahua", ("jnatrjo",)),
    ("mazateco", "Mazateco", ()),
    ("mixe", "Mixe", ("ayuuk",)),
    ("mixteco", "Mixteco", ("tu'un savi",)),
    ("nahuatl", "Náhuatl", ("mexicano",)),
    ("oluteco", "Oluteco", ()),
    ("otomi", "Otomí", ("hnahnu", "hñähñu")),
    ("paipai", "Paipai", ()),
    ("pame", "Pame", ()),
    ("papago", "Pápago", ("tohono o'odham",)),
    ("pima", "Pima", ()),
    ("popoloca", "Popoloca", ()),
    ("popoluca_sierra", "Popoluca de la Sierra", ()),
    ("qatok", "Qato'k", ()),
    ("qanjobal", "Q'anjob'al", ()),
    ("qeqchi", "Q'eqchí'", ()),
    ("sayulteco", "Sayulteco", ()),
    ("seri", "Seri", ("comcaac",)),
    ("tarahumara", "Tarahumara", ("raramuri",)),
    ("tarasco", "Tarasco", ("purepecha", "p'urhepecha")),
    ("teko", "Teko", ()),
    ("tepehua", "Tepehua", ()),
    ("tepehuano_norte", "Tepehuano del norte", ()),
    ("tepehuano_sur", "Tepehuano del sur", ("o'dam",)),
    ("texistepequeno", "Texistepequeño", ()),
    ("tlahuica", "Tlahuica", ()),
    ("tlapaneco", "Tlapaneco", ("me'phaa",)),
    ("tojolabal", "Tojolabal", ()),
    ("totonaco", "Totonaco", ("tutunakú",)),
    ("triqui", "Triqui", ()),
    ("tseltal", "Tseltal", ("tzeltal",)),
    ("tsotsil", "Tsotsil", ("tzotzil",)),
    ("yaqui", "Yaqui", ("yoem noki",)),
    ("zapoteco", "Zapoteco", ()),
    ("zoque", "Zoque", ()),
    ("ingles", "Inglés", ("english",)),
    ("frances", "Francés", ("french",)),
    ("portugues", "Portugués", ("portuguese",)),
    ("criollo_haitiano", "Criollo haitiano", ("creole haitiano", "kreyol", "haitian creole")),
    ("garifuna", "Garífuna", ()),
    ("chino_mandarin", "Chino mandarín", ("mandarin", "chino")),
    ("arabe", "Árabe", ("arabic",)),
    ("ruso", "Ruso", ("russian",)),
    ("ucraniano", "Ucraniano", ("ukrainian",)),
    ("hindi", "Hindi", ()),
    ("bengali", "Bengalí", ()),
    ("wolof", "Wolof", ()),
    ("coreano", "Coreano", ("korean",)),
    ("vietnamita", "Vietnamita", ("vietnamese",)),
)

LABELS: dict[str, str] = {code: label for code, label, _ in _CATALOGUE}


def fold(text: str) -> str:
    """Lower case, no accents, no apostrophes or punctuation, single spaces."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    plain = re.sub(r"['’´`]", "", plain)
    return re.sub(r"[\s_\-.]+", " ", plain).strip()


@cache
def _index() -> dict[str, str]:
    out: dict[str, str] = {}
    for code, label, others in _CATALOGUE:
        for name in (code, label, *others):
            out[fold(name)] = code
    return out


def code_of(text: str) -> str | None:
    """The catalogue code of a language name in any spelling, or None when unknown."""
    return _index().get(fold(text))


def match_key(text: str) -> str:
    """What a stored or requested language is compared by: its code, else its folded text."""
    return code_of(text) or fold(text)


def label_of(code: str) -> str:
    return LABELS.get(code, code)


def catalogue() -> list[dict[str, str]]:
    """The catalogue as the API lists it: code and Spanish label."""
    return [{"code": code, "label": label} for code, label, _ in _CATALOGUE]
