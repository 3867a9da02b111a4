"""`dmp-fhir import`: file CDA documents from files or folders, in process (the same code
path as `$import-cda`) or into a running server (`--url`), with a progress bar and a
summary. A document refused because it replaces one not filed yet is tried again once the
others are in, so a folder files whatever its order."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from fhir_server.config import Settings
from fhir_server.errors import FhirError
from fhir_server.interactions.replacement import UNKNOWN_PARENT_CODE


@dataclass(frozen=True)
class Answer:
    """What the server (or the in-process interaction) said about one document."""

    status: int
    issues: tuple[tuple[str, str], ...] = ()  # (code, diagnostics)
    id: str = ""


@dataclass(frozen=True)
class Result:
    path: Path
    outcome: str  # filed | duplicate | refused
    detail: str


Filer = Callable[[bytes], Awaitable[Answer]]
OUTCOMES = {201: "filed", 200: "duplicate"}


def collect(paths: Sequence[Path]) -> list[Path]:
    """The files named, and every *.xml under the folders named, in a stable order."""
    found: list[Path] = []
    for path in paths:
        found.extend(sorted(path.rglob("*.xml")) if path.is_dir() else [path])
    return list(dict.fromkeys(found))


def _issues(outcome: Any) -> tuple[tuple[str, str], ...]:
    issues = outcome.get("issue") if isinstance(outcome, dict) else None
    return tuple((str(i.get("code")), str(i.get("diagnostics"))) for i in issues or [])


@contextlib.asynccontextmanager
async def local_filer(settings: Settings, labels: Sequence[str]) -> AsyncIterator[Filer]:
    from fhir_server.api.app import make_store
    from fhir_server.interactions.context import Context
    from fhir_server.interactions.import_cda import import_cda

    store = make_store(settings)
    await store.open()
    ctx = Context(store, settings)

    async def file(data: bytes) -> Answer:
        try:
            out = await import_cda(ctx, data, labels)
        except FhirError as exc:
            return Answer(exc.status, tuple((i.code, i.diagnostics) for i in exc.issues))
        return Answer(out.status, id=out.stored.id)

    try:
        yield file
    finally:
        await store.close()


@contextlib.asynccontextmanager
async def http_filer(
    url: str, labels: Sequence[str], token: str | None = None
) -> AsyncIterator[Filer]:
    import httpx

    endpoint = url.rstrip("/") + "/DocumentReference/$import-cda"
    params = [("security-label", label) for label in labels]
    headers = {"content-type": "application/hl7-cda+xml", "accept": "application/fhir+json"}
    if token:
        headers["authorization"] = f"Bearer {token}"
    async with httpx.AsyncClient(timeout=60) as client:

        async def file(data: bytes) -> Answer:
            try:
                r = await client.post(endpoint, content=data, params=params, headers=headers)
            except httpx.HTTPError as exc:
                return Answer(0, (("exception", f"{endpoint}: {exc}"),))
            body = r.json() if r.headers.get("content-type", "").find("json") >= 0 else {}
            return Answer(r.status_code, _issues(body), str(body.get("id", "")))

        yield file


def _result(path: Path, answer: Answer) -> Result:
    outcome = OUTCOMES.get(answer.status, "refused")
    if outcome != "refused":
        return Result(path, outcome, f"DocumentReference/{answer.id}")
    reasons = "; ".join(text for _, text in answer.issues) or f"HTTP {answer.status}"
    return Result(path, outcome, f"{answer.status}: {reasons}")


def _waits_for_parent(answer: Answer) -> bool:
    return answer.status == 422 and any(code == UNKNOWN_PARENT_CODE for code, _ in answer.issues)


async def file_all(files: Sequence[Path], file: Filer, console: Console) -> list[Result]:
    results: dict[Path, Result] = {}
    deferred: list[Path] = []
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("filing", total=len(files))
        for path in files:
            answer = await file(_read(path))
            if _waits_for_parent(answer):
                deferred.append(path)
            results[path] = _result(path, answer)
            progress.advance(task)
        for path in deferred:  # their parents may be filed now
            results[path] = _result(path, await file(_read(path)))
    return [results[p] for p in files]


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        return f"unreadable file: {exc}".encode()


def summary(results: Sequence[Result]) -> Table:
    table = Table(title="dmp-fhir import")
    table.add_column("file")
    table.add_column("result")
    table.add_column("detail", overflow="fold")
    style = {"filed": "green", "duplicate": "cyan", "refused": "red"}
    for r in results:
        table.add_row(r.path.name, f"[{style[r.outcome]}]{r.outcome}[/]", r.detail)
    counts = {k: sum(r.outcome == k for r in results) for k in style}
    table.caption = ", ".join(f"{n} {k}" for k, n in counts.items())
    return table


async def run(
    paths: Sequence[Path],
    *,
    settings: Settings,
    url: str | None,
    labels: Sequence[str],
    token: str | None = None,
) -> int:
    console = Console()
    files = collect(paths)
    missing = [p for p in paths if not p.exists()]
    filer = http_filer(url, labels, token) if url else local_filer(settings, labels)
    async with filer as file:
        results = await file_all(files, file, console)
    console.print(summary(results))
    for path in missing:
        console.print(f"[red]not found:[/] {path}")
    refused = any(r.outcome == "refused" for r in results) or bool(missing)
    return 1 if refused else 0
