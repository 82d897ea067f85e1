"""Datasets generated once per session (the stress scale takes a few seconds)."""

from __future__ import annotations

import pytest

from canaliza.seed.generator import Dataset, generate


@pytest.fixture(scope="session")
def demo_dataset() -> Dataset:
    return generate("demo", 2026)


@pytest.fixture(scope="session")
def national_dataset() -> Dataset:
    return generate("national", 2026)


@pytest.fixture(scope="session")
def stress_dataset() -> Dataset:
    return generate("stress", 2026)
