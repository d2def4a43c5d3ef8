"""The access token: required on every endpoint but /healthz once configured; browsers trade ?token= for a cookie."""

import pytest

from tests.webclient import encoded_picture, web_pipeline

TOKEN = "kiosk-7f3a9c1e5b2d4f60"
PROTECTED = ["/", "/api/status", "/metrics", "/preview/cam0.jpg", "/static/app.js"]


@pytest.fixture(scope="module")
def client():
    with web_pipeline(token=TOKEN) as (_pipeline, running_client):
        yield running_client


@pytest.mark.parametrize("path", PROTECTED)
def test_every_endpoint_but_healthz_needs_the_token(client, path):
    reply = client.get(path)
    assert reply.status == 401
    assert reply.headers["www-authenticate"].startswith("Bearer")


def test_predict_needs_the_token(client):
    assert client.post_raw("/predict", encoded_picture()).status == 401


def test_healthz_stays_open(client):
    assert client.get("/healthz").status == 200


@pytest.mark.parametrize("path", PROTECTED)
def test_bearer_token_opens_every_endpoint(client, path):
    assert client.get(path, Authorization=f"Bearer {TOKEN}").status == 200


def test_bearer_token_opens_predict(client):
    assert client.post_raw("/predict", encoded_picture(), Authorization=f"Bearer {TOKEN}").status == 200


def test_wrong_token_is_refused(client):
    assert client.get("/api/status", Authorization="Bearer kiosk-0000000000000000").status == 401
    assert client.get(f"/?token={TOKEN[:-1]}x").status == 401


def test_browser_without_token_gets_a_login_form(client):
    reply = client.get("/", Accept="text/html,application/xhtml+xml")
    assert reply.status == 401
    assert b'name="token"' in reply.body


def test_token_in_the_address_becomes_an_httponly_cookie_and_leaves_the_address(client):
    reply = client.get(f"/?token={TOKEN}")
    assert reply.status == 303 and reply.headers["location"] == "/"
    cookie = reply.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and TOKEN not in cookie
    session = cookie.split(";")[0]
    assert client.get("/api/status", Cookie=session).status == 200
    assert client.get("/api/status", Cookie="streamrec_session=forged").status == 401


def test_token_file_is_read(tmp_path):
    path = tmp_path / "http-token"
    path.write_text(TOKEN + "\n")
    with web_pipeline(token_file=str(path)) as (_pipeline, running_client):
        assert running_client.get("/api/status").status == 401
        assert running_client.get("/api/status", Authorization=f"Bearer {TOKEN}").status == 200


def test_loopback_without_token_needs_none():
    with web_pipeline() as (_pipeline, running_client):
        assert running_client.get("/api/status").status == 200
