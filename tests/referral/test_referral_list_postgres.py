"""The referral list's keyset pages, search and filters on PostgreSQL (row-value
comparison on timestamptz, ILIKE, the bound types of a forged cursor)."""

from __future__ import annotations

import pytest

from tests.referral.test_referral_list import (
    test_bad_list_parameters_are_a_422_in_spanish_and_change_nothing,
    test_every_page_walks_each_visible_referral_once_newest_first,
    test_search_by_folio_case_file_institution_reason_and_dates,
    test_the_archive_status_set_and_a_case_file_only_where_it_is_readable,
)

pytestmark = pytest.mark.postgres

__all__ = [
    "test_bad_list_parameters_are_a_422_in_spanish_and_change_nothing",
    "test_every_page_walks_each_visible_referral_once_newest_first",
    "test_search_by_folio_case_file_institution_reason_and_dates",
    "test_the_archive_status_set_and_a_case_file_only_where_it_is_readable",
]


@pytest.fixture
def referral_db_url(pg_url: str) -> str:
    return pg_url
