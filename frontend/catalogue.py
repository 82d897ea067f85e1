"""Keep the message catalogues in step with the code: ``python -m frontend.catalogue``.

Extracts every marked string (``_``, ``N_``, ``ngettext`` in ``frontend/**.py`` and the
templates) and merges it into each ``locale/*/LC_MESSAGES/messages.po``: new ids are added
empty (fill the Spanish in ``es_MX``), ids no longer used are dropped. The tests fail while
an ``es_MX`` entry is empty, because Spanish is what users see.
"""

from __future__ import annotations

from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po, write_po

HERE = Path(__file__).resolve().parent
KEYWORDS = {"_": None, "N_": None, "gettext": None, "ngettext": (1, 2)}
METHODS = [("**/templates/**.html", "jinja2.ext:babel_extract"), ("**.py", "python")]
LOCALES = ("es_MX", "en")


def extract() -> Catalog:
    """Every message id used by the frontend."""
    template = Catalog(project="canaliza-frontend")
    found = extract_from_dir(
        str(HERE), METHODS, keywords=KEYWORDS, options_map={"**.html": {"trimmed": "true"}}
    )
    for filename, lineno, message, _comments, context in found:
        if "node_modules" in filename:
            continue
        template.add(message, locations=[(filename, lineno)], context=context)
    return template


def po_path(locale: str) -> Path:
    return HERE / "locale" / locale / "LC_MESSAGES" / "messages.po"


def update() -> None:
    template = extract()
    for locale in LOCALES:
        path = po_path(locale)
        with path.open("rb") as fh:
            catalog = read_po(fh, locale=locale)
        catalog.update(template, no_fuzzy_matching=True)
        catalog.obsolete.clear()
        with path.open("wb") as fh:
            write_po(fh, catalog, omit_header=False, no_location=True, sort_output=True, width=100)


if __name__ == "__main__":
    update()
