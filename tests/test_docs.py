"""Every example in README.md and docs/*.md is checked against the code, so the docs cannot
drift from it.

How an example says what it is: the fence's info string, after the language.

- ```toml file=PATH — a complete file: PATH (`escalation_rules.toml` or `rotas/NAME.toml`) of
  a copy of the shipped example configuration is replaced by the block.
- ```toml fragment=rules | fragment=people | fragment=rota:NAME — part of a file, merged into
  the shipped `escalation_rules.toml`, `rotas/people.toml` or `rotas/NAME.toml`: tables merge
  key by key (the block wins); an entry of an array of tables (`[[rule]]`, `[[policy]]`,
  `[[layer]]`, …) replaces the shipped entry with the same `name`, else it is appended.
  Either way `oncall check` must then find no error (warnings are fine).
- ```json webhook=SOURCE — a body the owner pastes or posts: its `{{placeholders}}` (Zendesk,
  Freshdesk) are filled with the sample values below, it is posted, correctly signed, to
  `POST /webhooks/SOURCE` of the real app (202), and every value in it must reach the event
  the source's normaliser makes of it.
- ```json api=NAME — an answer of the owner's API or `/readyz` (NAME: incident, action,
  oncall, readyz): the real answer has the same keys, nested the same way, with values of the
  same JSON types.
- ```console — each `$ oncall …` line is run in a copy of the shipped configuration with no
  channel credentials; what it prints (stdout, then stderr) must be exactly the lines below
  it. Use it only for output that does not depend on today's date (`--at`); other output goes
  in a ```text block. Files a command reads come from heredocs (`cat > NAME <<'JSON'`) of
  ```sh blocks of the same page.
- ```sh and ```text — every `oncall …` command line in them must parse with the real argument
  parser; a `<<'JSON'` heredoc must be a generic event whose every value reaches the event.

A ```toml or ```json block without one of these attributes fails `test_every_example_is_checked`.
Every relative link of README.md and docs/*.md must name an existing file and, with a
`#anchor`, a heading of it (GitHub's anchors).
"""

from __future__ import annotations

import asyncio
import configparser
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from oncall.cli import _parser, main
from oncall.core.models import Event
from oncall.sources import normalise
from tests.fixtures import platforms
from tests.inprocess import app_client

REPO = Path(__file__).resolve().parents[1]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


# ---------------------------------------------------------------------------------------------
# Reading the pages


@dataclass(frozen=True)
class Block:
    page: Path
    line: int  # of the opening fence, counted from 1
    lang: str
    attrs: dict[str, str]
    text: str

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(REPO)}:{self.line}"


_FENCE = re.compile(r"^(\s*)```(.*)$")


def blocks(page: Path) -> Iterator[Block]:
    lines = page.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if m is None:
            i += 1
            continue
        indent, info = len(m.group(1)), m.group(2).split()
        body: list[str] = []
        j = i + 1
        while j < len(lines) and not _FENCE.match(lines[j]):
            body.append(lines[j][indent:] if lines[j][:indent].isspace() else lines[j])
            j += 1
        attrs = dict(word.split("=", 1) for word in info[1:] if "=" in word)
        yield Block(page, i + 1, info[0] if info else "", attrs, "\n".join(body) + "\n")
        i = j + 1


ALL = [b for page in PAGES for b in blocks(page)]


def of(lang: str, attr: str | None = None) -> list[Block]:
    return [b for b in ALL if b.lang == lang and (attr is None or attr in b.attrs)]


def ids(found: list[Block]) -> list[str]:
    return [b.where for b in found]


def test_every_example_is_checked() -> None:
    unchecked = [b.where for b in of("toml") if not ({"file", "fragment"} & set(b.attrs))]
    unchecked += [b.where for b in of("json") if not ({"webhook", "api"} & set(b.attrs))]
    assert unchecked == [], "add file=/fragment= (toml) or webhook=/api= (json), see tests/test_docs.py"
    assert len(of("toml")) >= 10 and len(of("json")) >= 5  # the convention is really in use


# ---------------------------------------------------------------------------------------------
# TOML: through `oncall check`


def _is_tables(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def merge(base: dict[str, Any], fragment: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in fragment.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        elif _is_tables(value) and _is_tables(out.get(key)):
            entries = list(out[key])
            for entry in value:
                same = [
                    i for i, e in enumerate(entries) if "name" in entry and e.get("name") == entry["name"]
                ]
                if same:
                    entries[same[0]] = entry
                else:
                    entries.append(entry)
            out[key] = entries
        else:
            out[key] = value
    return out


def _key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {value!r} as TOML")


def to_toml(data: dict[str, Any], path: str = "", header: str = "") -> str:
    """`data` as TOML that tomllib reads back the same (tables as [headers])."""
    out = [header] if header else []
    out += [
        f"{_key(k)} = {_value(v)}" for k, v in data.items() if not isinstance(v, dict) and not _is_tables(v)
    ]
    for key, value in data.items():
        sub = f"{path}.{_key(key)}" if path else _key(key)
        if isinstance(value, dict):
            out.append(to_toml(value, sub, f"[{sub}]"))
        elif _is_tables(value):
            out += [to_toml(entry, sub, f"[[{sub}]]") for entry in value]
    return "\n".join(out) + "\n"


def test_the_toml_writer_writes_what_tomllib_reads() -> None:
    shipped = tomllib.loads((REPO / "escalation_rules.toml").read_text(encoding="utf-8"))
    assert tomllib.loads(to_toml(shipped)) == shipped


def _target(block: Block) -> str:
    if "file" in block.attrs:
        return block.attrs["file"]
    kind = block.attrs["fragment"]
    if kind == "rules":
        return "escalation_rules.toml"
    if kind == "people":
        return "rotas/people.toml"
    if kind.startswith("rota:"):
        return f"rotas/{kind.removeprefix('rota:')}.toml"
    raise AssertionError(f"{block.where}: unknown fragment={kind} (rules, people or rota:NAME)")


def isolated(monkeypatch: pytest.MonkeyPatch, folder: Path) -> None:
    """Commands in `folder` as a fresh install sees them: no ONCALL_* setting but the files."""
    for name in [k for k in os.environ if k.startswith("ONCALL_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(folder)
    monkeypatch.setenv("ONCALL_RULES_FILE", str(folder / "escalation_rules.toml"))
    monkeypatch.setenv("ONCALL_ROTAS_DIR", str(folder / "rotas"))
    monkeypatch.setenv("ONCALL_DATABASE_URL", f"sqlite:///{folder / 'oncall.db'}")


@pytest.mark.parametrize("block", of("toml"), ids=ids(of("toml")))
def test_a_toml_example_passes_oncall_check(
    block: Block, shop_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    target = shop_dir / _target(block)
    example = tomllib.loads(block.text)
    if "file" in block.attrs:
        target.write_text(block.text, encoding="utf-8")
    else:
        assert target.exists(), f"{block.where}: fragment for {target.name}, which is not shipped"
        shipped = tomllib.loads(target.read_text(encoding="utf-8"))
        target.write_text(to_toml(merge(shipped, example)), encoding="utf-8")
    isolated(monkeypatch, shop_dir)
    code = main(["check"])
    err = capsys.readouterr().err
    assert code == 0 and "error:" not in err, f"{block.where}:\n{err}"


def test_a_broken_toml_example_would_fail(
    shop_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The check above can fail: a fragment with a misspelt key is refused."""
    rules = shop_dir / "escalation_rules.toml"
    shipped = tomllib.loads(rules.read_text(encoding="utf-8"))
    wrong = {"rule": [{"name": "typo", "match": {"kind": ["payment_failed"]}, "polcy": "weekend"}]}
    rules.write_text(to_toml(merge(shipped, wrong)), encoding="utf-8")
    isolated(monkeypatch, shop_dir)
    assert main(["check"]) == 1
    assert 'unknown key "polcy"' in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------
# JSON: webhook bodies through the real app and the normalisers

# What Zendesk and Freshdesk put where their placeholders stand, as they render them.
PLACEHOLDERS = {
    "ticket.id": "4321",
    "ticket.title": "No puedo pagar mi pedido 1001",
    "ticket.subject": "No puedo pagar mi pedido 1001",
    "ticket.priority": "Urgent",
    "ticket.status": "Open",
    "ticket.updated_at_with_timestamp": "2026-11-28T22:12:05Z",
    "ticket.requester.name": "Laura Pérez",
    "ticket.requester.email": "laura@cliente.example",
    "ticket.requester.phone": "+34600999000",
    "ticket.requester.language": "es",
}
SECRETS = {"zendesk": "zendesk-docs", "freshdesk": "freshdesk-docs", "generic": "generic-docs"}
RECEIVED = datetime(2026, 11, 28, 22, 12, 30, tzinfo=UTC)


def fill(text: str) -> str:
    def one(m: re.Match[str]) -> str:
        name = m.group(1).strip()
        assert name in PLACEHOLDERS, f"unknown placeholder {{{{{name}}}}} (known: {', '.join(PLACEHOLDERS)})"
        return PLACEHOLDERS[name]

    return re.sub(r"\{\{([^}]+)\}\}", one, text)


def headers_for(source: str, body: bytes) -> dict[str, str]:
    if source == "zendesk":
        return platforms.zendesk_headers(body, SECRETS["zendesk"], "docs-invocation-1")
    if source == "freshdesk":
        return platforms.freshdesk_headers(SECRETS["freshdesk"])
    if source == "generic":
        return platforms.generic_headers(body, SECRETS["generic"])
    raise AssertionError(f"no signer for {source} in tests/test_docs.py")


def reaches(example: dict[str, Any], event: Event, ticket_body: bool) -> list[str]:
    """The example's values that the event does not carry (empty when each one arrived)."""
    missing: list[str] = []

    def want(path: str, given: Any, got: Any) -> None:
        same = str(given).lower() == str(got).lower() if isinstance(given, str) else given == got
        if not same:
            missing.append(f"{path}: {given!r} became {got!r}")

    if ticket_body:
        ticket = {"id": event.ticket.id, "subject": event.ticket.subject, "priority": event.ticket.priority,
                  "status": event.ticket.status}  # fmt: skip
        c = event.customer
        requester = {"name": c.name, "email": c.email, "phone": c.phone, "language": c.language,
                     "locale": c.language}  # fmt: skip
        for key, given in example["ticket"].items():
            if key == "requester":
                for sub, value in given.items():
                    want(f"ticket.requester.{sub}", value, requester.get(sub, "(no such field)"))
            elif key != "updated_at":  # read for de-duplication only
                want(f"ticket.{key}", given, ticket.get(key, "(no such field)"))
        want("event", example.get("event", event.kind), event.kind)
        return missing
    for key, value in example.items():
        if key == "details":
            continue  # documented as kept with the stored body, not read
        if key == "id":
            want("id", value, event.dedup_key)
        elif key == "occurred_at":
            want("occurred_at", datetime.fromisoformat(value), event.occurred_at)
        elif key == "tags":
            want("tags", tuple(value), event.tags)
        elif isinstance(value, dict):
            part = getattr(event, key, None)
            for sub, given in value.items():
                want(f"{key}.{sub}", given, getattr(part, sub, "(no such field)"))
        else:
            want(key, value, getattr(event, key, "(no such field)"))
    return missing


def app_in(folder: Path, **settings: Any) -> AbstractAsyncContextManager[tuple[FastAPI, httpx.AsyncClient]]:
    """The app on the files in `folder`, with the secrets of the platforms the docs' JSON is for."""
    secrets = {"zendesk_secret": SECRETS["zendesk"], "freshdesk_token": SECRETS["freshdesk"]}
    return app_client(folder, **secrets, generic_secret=SECRETS["generic"], **settings)


WEBHOOKS = of("json", "webhook")


@pytest.mark.parametrize("block", WEBHOOKS, ids=ids(WEBHOOKS))
async def test_a_webhook_body_is_accepted_and_every_value_reaches_the_event(
    block: Block, shop_dir: Path
) -> None:
    source = block.attrs["webhook"]
    filled = fill(block.text)
    example = json.loads(filled)
    body = filled.encode()
    async with app_in(shop_dir) as (_, client):
        answer = await client.post(f"/webhooks/{source}", content=body, headers=headers_for(source, body))
    assert answer.status_code == 202 and answer.json()["status"] == "accepted", (
        f"{block.where}: {answer.text}"
    )
    headers = {k.lower(): v for k, v in headers_for(source, body).items()}
    event = normalise(source, example, headers, received_at=RECEIVED, body=body)
    assert reaches(example, event, ticket_body=source != "generic") == [], block.where


def heredocs(page: Path) -> dict[str, str]:
    """`cat > PATH <<'JSON' … JSON` of the page's sh blocks, by file name."""
    found: dict[str, str] = {}
    for b in blocks(page):
        if b.lang == "sh":
            for m in re.finditer(r"cat > (\S+) <<'JSON'\n(.*?)\nJSON\n", b.text, re.S):
                found[Path(m.group(1)).name] = m.group(2) + "\n"
    return found


HEREDOCS = [(page, name, text) for page in PAGES for name, text in heredocs(page).items()]


@pytest.mark.parametrize(("page", "name", "text"), HEREDOCS, ids=[f"{p.name}:{n}" for p, n, _ in HEREDOCS])
def test_a_heredoc_event_is_a_generic_event_whose_values_all_arrive(page: Path, name: str, text: str) -> None:
    example = json.loads(text)
    event = normalise("generic", example, {}, received_at=RECEIVED, body=text.encode())
    assert event.kind == example["kind"]
    assert reaches(example, event, ticket_body=False) == [], f"{page.name}: {name}"


def test_the_value_check_can_fail() -> None:
    """A body whose field the normaliser does not read under that name is caught."""
    renamed = {"kind": "checkout_error", "customer": {"full_name": "Laura Pérez"}}
    event = normalise("generic", renamed, {}, received_at=RECEIVED, body=b"{}")
    assert reaches(renamed, event, ticket_body=False) == [
        "customer.full_name: 'Laura Pérez' became '(no such field)'"
    ]
    ticket = json.loads(fill(next(b for b in WEBHOOKS if b.attrs["webhook"] == "zendesk").text))
    misspelt = json.loads(json.dumps(ticket))
    misspelt["ticket"]["requester"]["correo"] = misspelt["ticket"]["requester"].pop("email")
    event = normalise("zendesk", misspelt, {}, received_at=RECEIVED, body=b"{}")
    assert reaches(ticket, event, ticket_body=True) == [
        "ticket.requester.email: 'laura@cliente.example' became None"
    ]


# ---------------------------------------------------------------------------------------------
# JSON: API answers against the real app


def shape_problems(example: Any, real: Any, path: str = "$") -> list[str]:
    if isinstance(example, dict):
        if not isinstance(real, dict):
            return [f"{path}: the API answers {type(real).__name__}, not an object"]
        if set(example) != set(real):
            return [f"{path}: keys {sorted(example)} in the docs, {sorted(real)} in the answer"]
        return [p for k in example for p in shape_problems(example[k], real[k], f"{path}.{k}")]
    if isinstance(example, list):
        if not isinstance(real, list):
            return [f"{path}: the API answers {type(real).__name__}, not a list"]
        if example and real:
            return [p for item in example for p in shape_problems(item, real[0], f"{path}[]")]
        return []
    if example is None or real is None or type(example) is type(real):
        return []
    return [f"{path}: {type(example).__name__} in the docs, {type(real).__name__} in the answer"]


def test_the_shape_check_can_fail() -> None:
    assert shape_problems({"a": 1, "b": [{"c": "x"}]}, {"a": 2, "b": [{"c": "y"}]}) == []
    assert shape_problems({"a": 1}, {"a": 1, "b": 2}) != []
    assert shape_problems({"b": [{"c": "x"}]}, {"b": [{"c": 1}]}) != []


ADMIN = {"Authorization": "Bearer docs-admin"}
# Opens an incident whatever the hour, so the answer does not depend on when the test runs.
ANY_HOUR_RULE = """[[rule]]
name = "docs example"
match = { kind = ["checkout_error"] }
hold = "5m"
policy = "weekend"

"""


async def api_answers(folder: Path) -> dict[str, Any]:
    rules = folder / "escalation_rules.toml"
    text = rules.read_text(encoding="utf-8")
    rules.write_text(text.replace("[[rule]]", ANY_HOUR_RULE + "[[rule]]", 1), encoding="utf-8")
    async with app_in(folder, admin_token="docs-admin") as (_, client):
        body = b'{"id": "docs-1", "kind": "checkout_error", "summary": "Checkout returns 500"}'
        stored = await client.post("/webhooks/generic", content=body, headers=headers_for("generic", body))
        assert stored.status_code == 202, stored.text
        items: list[Any] = []
        for _ in range(400):  # the service routes the stored event on its own task
            items = (await client.get("/api/incidents", headers=ADMIN)).json()["items"]
            if items:
                break
            await asyncio.sleep(0.05)
        assert items, "the stored event opened no incident"
        number = items[0]["id"]
        return {
            "incident": (await client.get(f"/api/incidents/{number}", headers=ADMIN)).json(),
            "action": (await client.post(f"/api/incidents/{number}/ack", headers=ADMIN)).json(),
            "oncall": (await client.get("/api/oncall", headers=ADMIN)).json(),
            "readyz": (await client.get("/readyz")).json(),
        }


APIS = of("json", "api")


async def test_every_api_example_has_the_shape_of_the_real_answer(shop_dir: Path) -> None:
    real = await api_answers(shop_dir)
    assert {b.attrs["api"] for b in APIS} <= set(real), "api=NAME: one of " + ", ".join(real)
    problems = [
        f"{b.where}: {p}" for b in APIS for p in shape_problems(json.loads(b.text), real[b.attrs["api"]])
    ]
    assert problems == []


# ---------------------------------------------------------------------------------------------
# Commands: console output, and every command line parses


@dataclass
class Run:
    argv: list[str]
    expected: list[str] = field(default_factory=list)


def _argv(line: str) -> list[str] | None:
    """The arguments of an `oncall` command line (None for any other command)."""
    if not re.match(r"\s*(?:[A-Z_]+=\S*\s+)*(?:\.venv/bin/)?oncall(?:\s|$)", line):
        return None
    words = shlex.split(line, comments=True)
    while words and re.fullmatch(r"[A-Z_]+=\S*", words[0]):
        words = words[1:]
    if not words or words[0] not in ("oncall", ".venv/bin/oncall"):
        return None
    argv = []
    for word in words[1:]:
        if word in ("&", "&&", "|", ";", ">", ">>") or word.startswith(">"):
            break
        argv.append(word)
    return argv


def runs(block: Block) -> list[Run]:
    found: list[Run] = []
    for line in block.text.rstrip("\n").splitlines():
        argv = _argv(line[2:]) if line.startswith("$ ") else None
        if argv is not None:
            found.append(Run(argv))
        elif found:
            found[-1].expected.append(line)
    return found


CONSOLES = of("console")


@pytest.mark.parametrize("block", CONSOLES, ids=ids(CONSOLES))
def test_console_output_is_what_the_command_prints(
    block: Block, shop_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    files = heredocs(block.page)
    for name, text in files.items():
        (shop_dir / name).write_text(text, encoding="utf-8")
    isolated(monkeypatch, shop_dir)
    found = runs(block)
    assert found, f"{block.where}: a console block runs at least one `$ oncall …` line"
    for run in found:
        argv = [Path(a).name if Path(a).name in files else a for a in run.argv]
        main(argv)
        out = capsys.readouterr()
        printed = (out.out + out.err).rstrip("\n").splitlines()
        assert [x.rstrip() for x in printed] == [x.rstrip() for x in run.expected], (
            f"{block.where}: {run.argv}"
        )


def command_lines() -> list[tuple[str, list[str]]]:
    found = []
    for b in ALL:
        if b.lang in ("sh", "text", "console"):
            for line in b.text.splitlines():
                argv = _argv(line.removeprefix("$ "))
                if argv is not None:
                    found.append((b.where, argv))
    return found


def test_every_documented_command_line_parses() -> None:
    lines = command_lines()
    assert len(lines) >= 15
    parser = _parser()
    for where, argv in lines:
        try:
            parser.parse_args(argv)
        except SystemExit as exc:
            raise AssertionError(f"{where}: oncall {' '.join(argv)} is not a valid command") from exc


def test_cli_md_quotes_what_oncall_migrate_and_the_terminal_print_on_a_new_database(
    shop_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The count and names of the migrations change with each one added: docs/cli.md shows
    both `oncall migrate`'s line and the terminal's error before it as they are printed now."""
    isolated(monkeypatch, shop_dir)
    monkeypatch.setenv("ONCALL_DATABASE_URL", "sqlite:///oncall.db")  # as the page shows it
    cli = (REPO / "docs" / "cli.md").read_text(encoding="utf-8")
    assert main(["incidents"]) == 1
    before = capsys.readouterr().err.strip()
    assert before.startswith("error: the database is not set up (") and f"``{before}``" in cli
    assert main(["migrate"]) == 0
    applied = capsys.readouterr().out.strip()
    assert applied.startswith("applied ") and f"\n{applied}\n" in cli


def test_the_readme_set_up_commands_are_the_ones_ci_runs() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    run = "python3 -m venv .venv && .venv/bin/pip install -e . && .venv/bin/oncall serve"
    test = "python3 -m venv .venv && .venv/bin/pip install -e '.[test]' && .venv/bin/python -m pytest"
    assert f"\n    {run}\n" in readme and f"\n    {test}\n" in readme
    assert test in (REPO / ".ci" / "run").read_text(encoding="utf-8").replace(" -q ", " ")


# ---------------------------------------------------------------------------------------------
# Deployment files


def test_the_procfile_migrates_in_the_release_phase_and_serves_without_migrating() -> None:
    entries = dict(
        line.split(":", 1) for line in (REPO / "Procfile").read_text(encoding="utf-8").splitlines() if line
    )
    assert entries["release"].strip() == "oncall migrate"
    web = _argv(entries["web"].replace("$PORT", "5000"))
    assert web is not None
    args = _parser().parse_args(web)
    assert (args.command, args.host, args.port, args.no_migrate) == ("serve", "0.0.0.0", 5000, True)
    assert _parser().parse_args(["migrate"]).command == "migrate"


def test_the_systemd_unit_runs_oncall_serve_and_systemd_accepts_it(tmp_path: Path) -> None:
    text = (REPO / "deploy" / "oncall.service").read_text(encoding="utf-8")
    unit = configparser.ConfigParser(interpolation=None, strict=True)
    unit.optionxform = str  # type: ignore[assignment,method-assign]  # systemd keys are case-sensitive
    unit.read_string(text)
    for section, key in [("Unit", "Description"), ("Service", "ExecStart"), ("Service", "WorkingDirectory"),
                         ("Service", "User"), ("Install", "WantedBy")]:  # fmt: skip
        assert unit.has_option(section, key), f"[{section}] {key}"
    exec_start = shlex.split(unit["Service"]["ExecStart"])
    assert exec_start[0] == unit["Service"]["WorkingDirectory"] + "/.venv/bin/oncall"
    assert _parser().parse_args(exec_start[1:]).command == "serve"
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        return  # the keys above are all this machine can check
    oncall = Path(sys.executable).parent / "oncall"
    local = text.replace(exec_start[0], str(oncall)).replace(unit["Service"]["WorkingDirectory"], str(REPO))
    (tmp_path / "oncall.service").write_text(local, encoding="utf-8")
    done = subprocess.run(
        [analyze, "verify", str(tmp_path / "oncall.service")], capture_output=True, text=True, timeout=60
    )
    about_unit = [line for line in (done.stdout + done.stderr).splitlines() if "oncall.service" in line]
    assert about_unit == [], about_unit


# ---------------------------------------------------------------------------------------------
# Links


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    found: set[str] = set()
    seen: dict[str, int] = {}
    in_fence = False
    for line in page.read_text(encoding="utf-8").splitlines():
        if _FENCE.match(line):
            in_fence = not in_fence
        m = re.match(r"#{1,6} (.+)$", line)
        if m and not in_fence:
            base = slug(m.group(1))
            n = seen.get(base, 0)
            seen[base] = n + 1
            found.add(base if n == 0 else f"{base}-{n}")
    return found


_LINK = re.compile(r"\[(?:[^\[\]]|\[[^\]]*\])*\]\(([^)\s]+)\)")


def links(page: Path) -> Iterator[str]:
    text = page.read_text(encoding="utf-8")
    text = re.sub(r"^\s*```.*?^\s*```", "", text, flags=re.S | re.M)  # examples are not links
    for m in _LINK.finditer(text):
        if not re.match(r"[a-z]+:", m.group(1)):
            yield m.group(1)


def test_slugs_are_githubs() -> None:
    assert slug("`[[rule]]`: what happens to an event") == "rule-what-happens-to-an-event"
    assert slug("SMS and WhatsApp (Twilio)") == "sms-and-whatsapp-twilio"
    assert slug("The owner's API") == "the-owners-api"


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(REPO)) for p in PAGES])
def test_every_relative_link_names_an_existing_file_and_heading(page: Path) -> None:
    broken = []
    for link in links(page):
        path, _, anchor = link.partition("#")
        target = (page.parent / path).resolve() if path else page
        if not target.exists():
            broken.append(f"{link}: no file {target}")
        elif anchor and anchor not in anchors(target):
            broken.append(f"{link}: no heading #{anchor} in {target.name}")
    assert broken == []
