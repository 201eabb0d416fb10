"""The UI route: the fanout URL browsers are given, the built assets at ``/``, and the page when they are missing."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from fastapi import FastAPI
from fastapi.testclient import TestClient

from common.settings import ApiSettings
from orchestrator._errors import install_error_handlers
from orchestrator.routes import ui
from orchestrator.routes.ui import fanout_origins, fanout_url


def test_fanout_url_from_host_and_port_or_explicit() -> None:
    assert fanout_url(ApiSettings(fanout_host="127.0.0.1", fanout_port=9001)) == "ws://127.0.0.1:9001"
    assert fanout_url(ApiSettings(fanout_host="::1", fanout_port=9001)) == "ws://[::1]:9001"
    assert fanout_url(ApiSettings(fanout_host="0.0.0.0")) is None
    assert fanout_url(ApiSettings(ui_fanout_url="wss://aob.example/")) == "wss://aob.example"


def test_the_page_may_connect_to_the_fanout_origin_only() -> None:
    explicit = ApiSettings(ui_fanout_url="wss://events.example:8443/base/")
    assert fanout_origins(explicit, "aob.example") == ["wss://events.example:8443"]
    assert fanout_origins(ApiSettings(fanout_host="10.0.0.5", fanout_port=9001), "aob.example") == [
        "ws://10.0.0.5:9001"
    ]
    on_page_host = ApiSettings(fanout_host="0.0.0.0", fanout_port=9001)
    assert fanout_origins(on_page_host, "aob.example") == ["ws://aob.example:9001", "wss://aob.example:9001"]
    assert fanout_origins(on_page_host, "::1") == ["ws://[::1]:9001", "wss://[::1]:9001"]


def _client(dist: Path) -> TestClient:
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(ui.router)
    # The routes read the app state's settings; the app's own lifespan, which builds that state, is not run here.
    app.state.aob = SimpleNamespace(settings=ApiSettings(ui_dist_dir=dist, fanout_port=9123))
    return TestClient(app)


def test_missing_assets_page_says_how_to_build(tmp_path: Path) -> None:
    with _client(tmp_path / "nothing") as client:
        page = client.get("/")
        assert page.status_code == 503
        assert "npm ci &amp;&amp; npm run build" in page.text
        assert client.get("/api/v1/config").json() == {"fanout_url": "ws://127.0.0.1:9123", "fanout_port": 9123}


def test_serves_index_and_assets_but_nothing_outside(tmp_path: Path) -> None:
    (tmp_path / "assets").mkdir()
    (tmp_path / "index.html").write_text("<div id=root></div>")
    (tmp_path / "assets" / "app-1.js").write_text("console.log(1)")
    (tmp_path / "secret.txt").write_text("no")
    with _client(tmp_path) as client:
        assert client.get("/").text == "<div id=root></div>"
        asset = client.get("/assets/app-1.js")
        assert asset.status_code == 200 and "immutable" in asset.headers["cache-control"]
        assert client.get("/assets/../secret.txt").status_code == 404
        assert client.get("/assets/%2e%2e/secret.txt").status_code == 404
        assert client.get("/assets/missing.js").status_code == 404
