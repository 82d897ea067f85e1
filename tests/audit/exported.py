"""Reading the statistics exports back, as a person's spreadsheet would."""

from __future__ import annotations

import csv
import io
from typing import Any

from audit import exports, reports


def exported_rows(text: str) -> list[dict[str, str]]:
    """The table of a CSV export (Spanish headers), without the legend under it."""
    table = text.lstrip("\ufeff").split("\r\n\r\n", 1)[0]
    return list(csv.DictReader(io.StringIO(table)))


def as_exported(name: str, by: list[str] | None, row: dict[str, Any]) -> dict[str, str]:
    """A JSON row as the CSV export writes it (Spanish headers, codes named)."""
    labels = exports.Labels()
    return {
        header: str(labels.value(key, row.get(key, "")))
        for header, key in zip(exports.headers(name, by), reports.fields(name, by), strict=True)
    }
