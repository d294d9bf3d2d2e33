"""The real app inside the test's own process: `create_app` on a SQLite store and the owner's
files in one folder, its lifespan running (the scheduler and the config watcher with it), and an
httpx client calling it through ASGI, with no socket and no server process."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

from oncall.web.app import create_app


@asynccontextmanager
async def app_client(folder: Path, **settings: Any) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """`folder`/oncall.db, `folder`/escalation_rules.toml and `folder`/rotas, no `.env` file;
    `settings` add to those or replace them."""
    values: dict[str, Any] = {
        "database_url": f"sqlite:///{folder / 'oncall.db'}",
        "rules_file": folder / "escalation_rules.toml",
        "rotas_dir": folder / "rotas",
        "_env_file": None,
    }
    app = create_app(**(values | settings))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://oncall.test") as client,
    ):
        yield app, client
