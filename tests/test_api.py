"""The owner's JSON API on the real app (SPEC §4): incidents, ack/resolve, who is on call."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from oncall.core.incident import make_world, open_incident
from oncall.store import incidents as store
from oncall.store.database import Connection
from oncall.web.app import create_app
from tests.recording import RULES, event, madrid, shop_config

TOKEN = "s3cret-admin"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    ev = event(at=madrid("2026-11-28 23:10"), customer="Lucia")
    app = create_app(
        database_url=f"sqlite:///{tmp_path / 'api.db'}",
        admin_token=TOKEN,
        rules_file=tmp_path / "missing.toml",
        rotas_dir=tmp_path / "rotas",
        _env_file=None,
        clock=lambda: ev.received_at + timedelta(minutes=1),  # within the 5-minute holds
    )
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://t") as c,
    ):
        config = shop_config()
        app.state.config = config
        world = make_world(config)

        def seed(group: str) -> Callable[[Connection], None]:
            def tx(conn: Connection) -> None:
                iid = store.new_incident_id(conn, RULES[0].name, group, ev.received_at)
                assert iid is not None
                out = open_incident(iid, RULES[0], group, ev, ev.received_at, world)
                store.save_incident(conn, out.incident)

            return tx

        for n in range(3):  # three groups: one group holds one open incident
            await app.state.db.transaction(seed(f"kind=payment_failed|shop={n}"))
        yield c


class TestAuth:
    @pytest.mark.parametrize("path", ["/api/incidents", "/api/incidents/1", "/api/oncall"])
    async def test_without_the_admin_token_every_call_is_401(
        self, client: httpx.AsyncClient, path: str
    ) -> None:
        assert (await client.get(path)).status_code == 401
        r = await client.get(path, headers={"Authorization": "Bearer wrong"})
        assert r.status_code == 401 and "error" in r.json()
        assert (await client.post("/api/incidents/1/ack")).status_code == 401


class TestIncidents:
    async def test_the_list_is_newest_first_and_pages_with_a_cursor(self, client: httpx.AsyncClient) -> None:
        first = (await client.get("/api/incidents?limit=2", headers=AUTH)).json()
        assert [i["id"] for i in first["items"]] == [3, 2] and first["next_cursor"] == "2"
        rest = (
            await client.get(f"/api/incidents?limit=2&cursor={first['next_cursor']}", headers=AUTH)
        ).json()
        assert [i["id"] for i in rest["items"]] == [1] and rest["next_cursor"] is None
        held = (await client.get("/api/incidents?state=held", headers=AUTH)).json()
        assert len(held["items"]) == 3
        assert (await client.get("/api/incidents?state=nonsense", headers=AUTH)).status_code == 400

    async def test_one_incident_has_the_documented_shape_and_its_timeline(
        self, client: httpx.AsyncClient
    ) -> None:
        body = (await client.get("/api/incidents/1", headers=AUTH)).json()
        assert set(body) == {
            "id", "state", "rule", "kind", "summary", "count", "created_at", "updated_at",
            "customers", "paged", "timeline",
        }  # fmt: skip
        assert body["state"] == "held" and body["kind"] == "payment_failed" and body["count"] == 1
        assert body["summary"] == "1 payment failure since 23:10, 37.98 EUR"
        assert body["timeline"][0]["actor"] == "stripe"
        assert (await client.get("/api/incidents/99", headers=AUTH)).status_code == 404

    async def test_ack_then_resolve_and_a_second_resolve_is_a_conflict(
        self, client: httpx.AsyncClient
    ) -> None:
        r = await client.post("/api/incidents/2/ack", headers=AUTH)
        assert r.status_code == 200 and r.json()["incident"]["state"] == "acknowledged"
        assert r.json()["incident"]["timeline"][-1]["actor"] == "the owner (API)"
        assert (await client.post("/api/incidents/2/resolve", headers=AUTH)).json()["incident"][
            "state"
        ] == "resolved"
        again = await client.post("/api/incidents/2/resolve", headers=AUTH)
        assert again.status_code == 409 and "already resolved" in again.json()["text"]


async def test_oncall_lists_every_rota(client: httpx.AsyncClient) -> None:
    body = (await client.get("/api/oncall", headers=AUTH)).json()
    assert [r["rota"] for r in body["rotas"]] == ["weekend", "weekend-backup"]
    backup = body["rotas"][1]
    assert backup["person"] == "Luis Pérez"
    assert set(backup) >= {"rota", "person", "until", "next"}


async def test_a_malformed_value_or_unknown_path_answers_an_error_body_like_every_refusal(
    client: httpx.AsyncClient,
) -> None:
    bad_limit = await client.get("/api/incidents?limit=abc", headers=AUTH)
    assert bad_limit.status_code == 400
    assert bad_limit.json()["error"].startswith("limit: Input should be a valid integer")
    bad_id = await client.get("/api/incidents/abc", headers=AUTH)
    assert bad_id.status_code == 400 and bad_id.json()["error"].startswith("incident_id:")
    unknown = await client.get("/api/incident", headers=AUTH)
    assert unknown.status_code == 404 and unknown.json() == {"error": "no such endpoint: GET /api/incident"}
    wrong_method = await client.delete("/api/incidents/1", headers=AUTH)
    assert wrong_method.status_code == 405 and "error" in wrong_method.json()
