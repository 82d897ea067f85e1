"""Input rules shared by every service's request bodies and query parameters.

- ``MAX_OFFSET``: the largest ``offset`` a paginated list accepts; beyond it (or beyond a
  64-bit integer, which the databases cannot bind) the answer is a 422, never a 500.
- ``StrictInt`` / ``StrictBool``: JSON numbers and booleans as sent, never coerced
  (``true`` is not an age, ``"30"`` is not a number).
- ``SAFE_TEXT`` (``SafeText``): free text and names without NUL, other control characters or the Unicode
  bidirectional controls (U+202A–U+202E, U+2066–U+2069, U+200E/U+200F, U+061C) that make
  a name or a reason display as something other than what was stored.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, Strict
from pydantic_core import PydanticCustomError

MAX_OFFSET = 10_000_000

StrictInt = Annotated[int, Strict()]
StrictBool = Annotated[bool, Strict()]
StrictFloat = Annotated[float, Strict()]  # an integer is a number too; a string is not

# C0 controls except tab, line feed and carriage return; DEL and the C1 controls; the
# bidirectional formatting characters.
_FORBIDDEN = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]"
)


def check_safe_text(value: str) -> str:
    """The value itself, or a Spanish 422 naming the first forbidden character."""
    found = _FORBIDDEN.search(value)
    if found is not None:
        raise PydanticCustomError(
            "forbidden_character",
            "El texto contiene un carácter no permitido (U+{code}): caracteres de control "
            "y de dirección del texto no se aceptan.",
            {"code": f"{ord(found.group()):04X}"},
        )
    return value


# Put it after the length bounds (``Annotated[str, Field(max_length=…), SAFE_TEXT]``) so that
# their errors stay pydantic's own ("como máximo 200 caracteres").
SAFE_TEXT = AfterValidator(check_safe_text)
SafeText = Annotated[str, SAFE_TEXT]
