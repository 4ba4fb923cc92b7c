"""Login, refresh, API keys and roles."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.support import PASSWORD, Tenant


def login(client: TestClient, email: str, password: str = PASSWORD) -> dict[str, str]:
    r = client.post("/auth/login", json={"email": email, "password": password})
    assert r.status_code == 200, r.text
    return r.json()


def test_login_refresh_and_me(client: TestClient, tenant: Tenant) -> None:
    tokens = login(client, tenant.email)
    me = client.get("/auth/me", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert me.status_code == 200
    assert me.json()["organization_id"] == tenant.org_id and me.json()["role"] == "admin"
    refreshed = client.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert refreshed.status_code == 200
    # a refresh token is not an access token, and vice versa
    r = client.get("/auth/me", headers={"Authorization": f"Bearer {tokens['refresh_token']}"})
    assert r.status_code == 401
    r = client.post("/auth/refresh", json={"refresh_token": tokens["access_token"]})
    assert r.status_code == 401 and r.json()["error"]["field"] == "refresh_token"


def test_wrong_password_and_unknown_user_look_the_same(client: TestClient, tenant: Tenant) -> None:
    a = client.post("/auth/login", json={"email": tenant.email, "password": "wrong password!"})
    b = client.post("/auth/login", json={"email": "nobody@example.com", "password": "wrong password!"})
    assert a.status_code == b.status_code == 401
    assert a.json() == b.json()


def test_missing_and_bad_credentials(client: TestClient, tenant: Tenant) -> None:
    r = client.get("/offers")
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
    assert client.get("/offers", headers={"X-API-Key": "ca_not-a-key"}).status_code == 401
    assert client.get("/offers", headers={"Authorization": "Bearer not.a.jwt"}).status_code == 401


def test_roles(client: TestClient, tenant: Tenant) -> None:
    body = {"gpu_type": "L4", "gpu_count": 1}
    r = client.post("/optimize/quick-optimize", json=body, headers=tenant.headers("viewer"))
    assert r.status_code == 403 and "editor" in r.json()["error"]["message"]
    assert client.get("/optimize", headers=tenant.headers("viewer")).status_code == 200
    r = client.post("/auth/api-keys", json={"name": "x"}, headers=tenant.headers("editor"))
    assert r.status_code == 403


def test_api_key_lifecycle(client: TestClient, tenant: Tenant) -> None:
    admin = tenant.headers("admin")
    r = client.post("/auth/api-keys", json={"name": "ci bot", "role": "viewer"}, headers=admin)
    assert r.status_code == 201
    created = r.json()
    key = created["key"]
    assert key.startswith("ca_") and created["prefix"] == key[:10]
    assert client.get("/offers", headers={"X-API-Key": key}).status_code == 200
    listed = client.get("/auth/api-keys", headers=admin).json()
    assert all("key" not in k for k in listed), "secrets are shown once only"
    assert client.delete(f"/auth/api-keys/{created['id']}", headers=admin).status_code == 204
    assert client.get("/offers", headers={"X-API-Key": key}).status_code == 401


def test_admin_creates_users_with_roles(client: TestClient, tenant: Tenant) -> None:
    admin = tenant.headers("admin")
    body = {"email": "Viewer@Acme.example", "password": "a long enough secret", "role": "viewer"}
    assert client.post("/auth/users", json=body, headers=admin).status_code == 201
    assert client.post("/auth/users", json=body, headers=admin).status_code == 409
    weak = {**body, "email": "x@acme.example", "password": "short"}
    r = client.post("/auth/users", json=weak, headers=admin)
    assert r.status_code == 422 and r.json()["error"]["field"] == "password"
    tokens = login(client, "viewer@acme.example", "a long enough secret")
    r = client.post("/optimize/quick-optimize", json={"gpu_type": "L4", "gpu_count": 1},
                    headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert r.status_code == 403


def test_refresh_tokens_rotate_and_a_reused_one_revokes_its_family(client: TestClient, tenant: Tenant) -> None:
    first = client.post("/auth/login", json={"email": tenant.email, "password": PASSWORD}).json()
    second = client.post("/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert second.status_code == 200 and second.json()["refresh_token"] != first["refresh_token"]
    reused = client.post("/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert reused.status_code == 401 and reused.json()["error"]["field"] == "refresh_token"
    # the reuse revoked the family: the legitimate holder's newer token fails too
    assert client.post("/auth/refresh", json={"refresh_token": second.json()["refresh_token"]}).status_code == 401
    # another login is a new family and works
    other = client.post("/auth/login", json={"email": tenant.email, "password": PASSWORD}).json()
    assert client.post("/auth/refresh", json={"refresh_token": other["refresh_token"]}).status_code == 200
