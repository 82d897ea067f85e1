"""Exports are streamed: a large file leaves in chunks, and writing it holds one batch of
rows at a time, never the whole file (issue 18)."""

from __future__ import annotations

import csv
import io
import json
import tracemalloc
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import anyio
import openpyxl
import pytest
from starlette.responses import JSONResponse

from audit import directory, exports, flows, reports
from audit.database import db
from audit.main import consume
from bench.exports import rows as _rows
from services.events import Event
from services.tokens import Principal
from tests.conftest import running

BY = ["state", "period", "reason_code"]


def _peak(consume_all: Callable[[Iterable[dict[str, Any]]], int], n: int) -> tuple[int, int]:
    """Bytes written, and the peak of memory allocated while writing ``n`` rows."""
    tracemalloc.start()
    try:
        size = consume_all(_rows(n))
        return size, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


StreamWriter = Callable[
    [str, Iterable[dict[str, Any]], list[str] | None, exports.Labels], Iterator[bytes]
]


def _streamed(writer: StreamWriter) -> Callable[[Iterable[dict[str, Any]]], int]:
    def consume_all(rows: Iterable[dict[str, Any]]) -> int:
        return sum(len(chunk) for chunk in writer("unmet-demand", rows, BY, exports.Labels()))

    return consume_all


def test_a_streamed_csv_is_as_one_built_whole_and_holds_one_batch_at_a_time() -> None:
    labels = exports.Labels()
    rows = list(_rows(3 * exports.BATCH + 7))
    chunks = list(exports.csv_chunks("unmet-demand", rows, BY, labels))
    assert len(chunks) == 4  # three full batches, then the rest and the legend
    whole = b"".join(chunks)
    assert whole.startswith("\ufeffEntidad federativa,Mes,Motivo".encode())
    text = whole.decode("utf-8-sig")
    table = list(csv.reader(io.StringIO(text.split("\r\n\r\n", 1)[0])))
    assert len(table) == 1 + len(rows)

    small_size, small_peak = _peak(_streamed(exports.csv_chunks), 1_000)
    large_size, large_peak = _peak(_streamed(exports.csv_chunks), 20_000)
    assert large_size > 15 * small_size
    # Twenty times the rows, about the same memory: one batch, not the file.
    assert large_peak < 2 * small_peak + 64 * 1024
    # What it replaces, measured the same way: the whole file in memory, and more.
    _, whole_peak = _peak(
        lambda r: len(exports.to_csv("unmet-demand", list(r), BY, labels)), 20_000
    )
    assert whole_peak > large_size and whole_peak > 10 * large_peak


def test_a_streamed_xlsx_keeps_no_cell_in_memory() -> None:
    small_size, small_peak = _peak(_streamed(exports.xlsx_chunks), 300)
    large_size, large_peak = _peak(_streamed(exports.xlsx_chunks), 6_000)
    assert large_size > 10 * small_size
    # Bounded by the spooled file's in-memory limit, not by the rows.
    assert large_peak < exports.SPOOL + 2 * small_peak
    workbook = openpyxl.load_workbook(
        io.BytesIO(
            b"".join(exports.xlsx_chunks("unmet-demand", _rows(1_200), BY, exports.Labels()))
        )
    )
    datos = workbook["Datos"]
    assert datos.max_row == 1 + 1_200
    assert datos.cell(1, 1).value == "Entidad federativa" and datos.cell(1, 1).font.b
    assert datos.cell(2, 3).value == "Necesidades no atendidas"
    assert workbook.sheetnames == ["Datos", "Notas"]


async def _body_messages(
    app: Any, path: str, query: str, headers: dict[str, str]
) -> tuple[int, list[bytes]]:
    """The status and every body message of a GET, as the server sends them (an httpx
    client joins them into one)."""
    sent: list[dict[str, Any]] = []
    requested = False
    done = anyio.Event()

    async def receive() -> dict[str, Any]:
        nonlocal requested
        if not requested:
            requested = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await done.wait()  # the client stays until the whole answer came
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)
        if message["type"] == "http.response.body" and not message.get("more_body"):
            done.set()

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "server": ("testserver", 80),
        "client": ("127.0.0.1", 1234),
        "root_path": "",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
    }
    await app(scope, receive, send)
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    return status, [m["body"] for m in sent if m["type"] == "http.response.body" and m["body"]]


def _event(event_type: str, aggregate_type: str, aggregate_id: str, **payload: Any) -> None:
    consume(
        Event(
            type=event_type,
            aggregate_type=aggregate_type,
            aggregate_id=aggregate_id,
            aggregate_version=1,
            payload=payload,
        )
    )


def _unmet(i: int, state: str) -> None:
    _event(
        "capacity.search.unmet",
        "unmet_request",
        f"u-{state}-{i}",
        sex="male",
        age_group="18-59",
        state=state,
        group_size=1,
    )


async def test_a_report_export_leaves_in_chunks_and_a_bad_request_sends_no_file(
    audit_app, auth_headers, monkeypatch
):
    monkeypatch.setattr(exports, "BATCH", 2)
    for state in ("CHP", "OAX", "GRO", "VER", "TAB"):
        for i in range(5):
            _unmet(i, state)
    h = auth_headers("segob_auditor")
    async with running(audit_app) as client:
        status, chunks = await _body_messages(
            audit_app, "/api/v1/reports/unmet-demand", "format=csv", h
        )
        assert status == 200
        # five state rows and the totals, two per chunk, then the legend
        assert len(chunks) == 4
        text = b"".join(chunks).decode("utf-8-sig")
        assert text.count(",18 a 59 años,") == 5 and "Total,,,25,25\r\n" in text
        bad = await client.get(
            "/api/v1/reports/unmet-demand", params={"format": "csv", "by": "address"}, headers=h
        )
        assert bad.status_code == 422
        assert bad.json()["error"] == "invalid_disaggregation"
        assert not bad.headers.get("content-disposition")
        # Only the good export entered the trail.
        r = await client.get("/api/v1/audit/events", params={"type": "audit.export"}, headers=h)
        assert r.json()["total"] == 1


def _facility(fid: str, state: str, operator: str) -> None:
    _event(
        "capacity.facility.created",
        "facility",
        fid,
        facility_id=fid,
        name=f"Casa {fid}",
        kind="albergue",
        status="closed" if fid.endswith("7") else "active",
        operator_institution_id=operator,
        state=state,
        municipality="Centro",
        services=["legal", "interpretation"] if fid.endswith("2") else ["medical"],
        specialization="trafficking",
    )


async def test_the_hsds_directory_is_streamed_byte_for_byte_as_it_was_built(
    audit_app, auth_headers, monkeypatch
):
    monkeypatch.setattr(directory, "FACILITY_BATCH", 3)
    for i in range(12):
        _facility(f"f-{i:02d}", ("09", "07", "20")[i % 3], f"op-{i % 4}")
    async with running(audit_app) as client:
        r = await client.get("/api/v1/directory/hsds", headers=auth_headers("prosecutor"))
        assert r.status_code == 200
        assert r.headers["content-type"] == "application/json"
        status, chunks = await _body_messages(
            audit_app, "/api/v1/directory/hsds", "", auth_headers("prosecutor")
        )
        assert status == 200 and b"".join(chunks) == r.content
    with db.unit_of_work(write=False) as session:
        built = directory.hsds_export(session)
    assert len(built["services"]) == 11  # the closed facility is left out
    assert len(built["organizations"]) == 4
    body = b"".join(chunks)
    assert json.loads(body) == built
    assert body == JSONResponse(built).body
    assert len(chunks) > 4  # at least one per list, and more than one for each of 11 rows


@pytest.mark.slow
def test_exports_stream_on_postgres_in_one_snapshot(pg_url, monkeypatch):
    """Server-side cursors (yield_per) and the directory's repeatable-read snapshot."""
    monkeypatch.setattr(directory, "FACILITY_BATCH", 2)
    monkeypatch.setattr(reports, "EVENT_BATCH", 3)
    db.configure(pg_url)
    db.migrate()
    try:
        for i in range(8):
            _facility(f"f-{i:02d}", ("09", "07")[i % 2], f"op-{i % 3}")
        for state in ("CHP", "OAX"):
            for i in range(6):
                _unmet(i, state)
        auditor = Principal(sub="auditor", roles=frozenset({"segob_auditor"}))
        answer = flows.hsds_directory(None, auditor)  # type: ignore[arg-type]

        async def body() -> list[bytes]:
            return [
                c if isinstance(c, bytes) else str(c).encode() async for c in answer.body_iterator
            ]

        chunks = anyio.run(body)
        with db.unit_of_work(write=False) as session:
            built = directory.hsds_export(session)
            rows = reports.build(session, "unmet-demand", ["state"])
        assert len(chunks) > 4 and b"".join(chunks) == JSONResponse(built).body
        assert len(built["services"]) == 7  # f-07 is closed
        assert rows == [
            {"state": "CHP", "requests": 6, "people": 6},
            {"state": "OAX", "requests": 6, "people": 6},
        ]
    finally:
        db.dispose()
