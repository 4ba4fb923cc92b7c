"""Login, refresh, API keys and roles."""

from __future__ import annotations

import threading
import uuid

import pytest
from fastapi.testclient import TestClient

from cloudarb.api.ratelimit import MemoryRateLimiter, RateLimiter, RedisRateLimiter
from tests.support import PASSWORD, REDIS_URL, Tenant


def login(client: TestClient, email: str, password: str = PASSWORD) -> dict[str, str]:
    r = client.post("/auth/login", json={"email": email, "password": password})
    assert r.status_code == 200, r.text
    tokens: dict[str, str] = r.json()
    return tokens


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


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def redis_limiter(limit: int, clock: FakeClock) -> RedisRateLimiter:
    import redis

    try:
        redis.Redis.from_url(REDIS_URL).ping()
    except redis.RedisError:
        pytest.skip(f"no Redis at {REDIS_URL}")
    return RedisRateLimiter(REDIS_URL, limit, clock=clock)


@pytest.mark.parametrize("backend", ["memory", "redis"])
def test_a_burst_across_a_minute_boundary_is_still_limited(backend: str) -> None:
    """Fixed windows let 2x the limit through around a window's edge; the sliding window never admits
    more than the limit in any 60 s."""
    clock = FakeClock(1_000_000 * 60 + 59.5)  # half a second before a whole minute
    limiter: RateLimiter = MemoryRateLimiter(10, clock=clock) if backend == "memory" else redis_limiter(10, clock)
    key = f"test:{uuid.uuid4().hex}"
    assert [limiter.hit(key) for _ in range(10)] == [None] * 10
    clock.now += 1.0  # a new calendar minute: a fixed window would start counting from zero here
    waits = [limiter.hit(key) for _ in range(10)]
    assert waits == [59] * 10  # the first burst leaves the window 60 s after it came
    clock.now += 58.0  # 1 s before the first burst leaves the window
    assert limiter.hit(key) == 1
    clock.now += 1.1
    assert [limiter.hit(key) for _ in range(11)] == [None] * 10 + [60]
    assert limiter.hit(f"test:{uuid.uuid4().hex}") is None  # keys have their own logs


@pytest.mark.parametrize("backend", ["memory", "redis"])
def test_spread_requests_never_exceed_the_limit_in_any_window(backend: str) -> None:
    clock = FakeClock(5_000.0)
    limiter: RateLimiter = MemoryRateLimiter(6, clock=clock) if backend == "memory" else redis_limiter(6, clock)
    key = f"test:{uuid.uuid4().hex}"
    admitted: list[float] = []
    for _ in range(400):  # one request every 0.7 s for 280 s
        if limiter.hit(key) is None:
            admitted.append(clock.now)
        clock.now += 0.7
    assert max(sum(1 for t in admitted if start <= t < start + 60) for start in admitted) == 6
    assert len(admitted) >= 6 * 4  # and the limit is reached again in every minute


def test_processes_sharing_redis_admit_the_limit_between_them() -> None:
    """Two API processes (two clients) hit one key concurrently: the script admits exactly the limit."""
    clock = FakeClock(9_000.0)
    limiters = [redis_limiter(25, clock), redis_limiter(25, clock)]
    key = f"test:{uuid.uuid4().hex}"
    results: list[int | None] = []
    lock = threading.Lock()

    def hammer(limiter: RateLimiter) -> None:
        for _ in range(20):
            wait = limiter.hit(key)
            with lock:
                results.append(wait)

    threads = [threading.Thread(target=hammer, args=(limiters[n % 2],)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 80 and results.count(None) == 25
    assert all(w == 60 for w in results if w is not None)


@pytest.mark.parametrize("ctx", [{"login_attempts_per_minute": 3}], indirect=True)
def test_login_attempts_are_throttled_per_account(client: TestClient, tenant: Tenant) -> None:
    codes = [client.post("/auth/login", json={"email": tenant.email, "password": "wrong password!"}).status_code
             for _ in range(3)]
    assert codes == [401] * 3
    r = client.post("/auth/login", json={"email": tenant.email, "password": PASSWORD})
    assert r.status_code == 429 and 1 <= int(r.headers["Retry-After"]) <= 60
    assert r.json()["error"]["code"] == "rate_limited"
    # another account from the same address still has its own budget
    assert client.post("/auth/login", json={"email": "x@y.example", "password": "wrong password!"}).status_code == 401
