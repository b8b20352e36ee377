"""The simulator's Digest server accepts what aiohttp's Digest client sends, and no more.

Every test talks real HTTP on 127.0.0.1 to a small aiohttp app guarded by
`DigestAuthority`, with aiohttp's own `DigestAuthMiddleware` (RFC 7616) as the client.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from tools.sim.digest import DigestAuthority, parse_auth_params

USER, PASSWORD = "acs-user", "s3cret!"
TIMEOUT = aiohttp.ClientTimeout(total=5)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Guarded:
    """A live server: GET /digest-only and GET /basic-allowed, both behind the authority."""

    def __init__(self, authority: DigestAuthority) -> None:
        self.authority = authority
        self.statuses: list[int] = []
        self.url = ""

    async def digest_only(self, request: web.Request) -> web.Response:
        return await self._answer(request, allow_basic=False)

    async def basic_allowed(self, request: web.Request) -> web.Response:
        return await self._answer(request, allow_basic=True)

    async def _answer(self, request: web.Request, *, allow_basic: bool) -> web.Response:
        denied = await self.authority.check(request, USER, PASSWORD, allow_basic=allow_basic)
        response = denied or web.Response(text="ok")
        self.statuses.append(response.status)
        return response


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def server(clock: Clock) -> AsyncIterator[Guarded]:
    guarded = Guarded(DigestAuthority("sim realm", nonce_lifetime=60, clock=clock))
    app = web.Application()
    app.router.add_get("/digest-only", guarded.digest_only)
    app.router.add_get("/basic-allowed", guarded.basic_allowed)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    guarded.url = f"http://127.0.0.1:{port}"
    try:
        yield guarded
    finally:
        await runner.cleanup()


async def get(url: str, **kwargs: object) -> tuple[int, aiohttp.ClientResponse]:
    async with (
        aiohttp.ClientSession(timeout=TIMEOUT) as http,
        http.get(url, **kwargs) as response,  # type: ignore[arg-type]
    ):
        await response.read()
        return response.status, response


def basic_header(password: str) -> dict[str, str]:
    return {"Authorization": aiohttp.encode_basic_auth(USER, password)}


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def answer(challenge: str, uri: str, nc: str, password: str = PASSWORD) -> str:
    """A Digest Authorization header computed by hand (RFC 7616 3.4.1, MD5, qop=auth)."""
    params = parse_auth_params(challenge.partition(" ")[2])
    ha1 = md5(f"{USER}:{params['realm']}:{password}")
    ha2 = md5(f"GET:{uri}")
    response = md5(f"{ha1}:{params['nonce']}:{nc}:abcdef:auth:{ha2}")
    return (
        f'Digest username="{USER}", realm="{params["realm"]}", nonce="{params["nonce"]}", '
        f'uri="{uri}", response="{response}", qop=auth, nc={nc}, cnonce="abcdef", '
        f'opaque="{params["opaque"]}", algorithm=MD5'
    )


async def test_the_right_password_is_accepted(server: Guarded) -> None:
    middleware = aiohttp.DigestAuthMiddleware(USER, PASSWORD)
    status, _ = await get(f"{server.url}/digest-only?x=1", middlewares=(middleware,))
    assert status == 200
    assert server.statuses == [401, 200]  # challenged once, then accepted


async def test_a_wrong_password_is_refused(server: Guarded) -> None:
    middleware = aiohttp.DigestAuthMiddleware(USER, "guess")
    status, _ = await get(f"{server.url}/digest-only", middlewares=(middleware,))
    assert status == 401


async def test_an_unknown_user_is_refused(server: Guarded) -> None:
    middleware = aiohttp.DigestAuthMiddleware("someone", PASSWORD)
    status, _ = await get(f"{server.url}/digest-only", middlewares=(middleware,))
    assert status == 401


async def test_a_request_without_credentials_gets_an_md5_qop_auth_challenge(
    server: Guarded,
) -> None:
    status, response = await get(f"{server.url}/digest-only")
    assert status == 401
    challenges = response.headers.getall("WWW-Authenticate")
    assert len(challenges) == 1
    scheme, _, rest = challenges[0].partition(" ")
    params = parse_auth_params(rest)
    assert scheme == "Digest"
    assert params["realm"] == "sim realm"
    assert params["qop"] == "auth"
    assert params["algorithm"] == "MD5"
    assert len(params["nonce"]) >= 32
    assert "stale" not in params


async def test_basic_is_refused_where_not_allowed(server: Guarded) -> None:
    basic = {"Authorization": aiohttp.encode_basic_auth(USER, PASSWORD)}
    status, response = await get(f"{server.url}/digest-only", headers=basic)
    assert status == 401
    assert response.headers["WWW-Authenticate"].startswith("Digest ")


async def test_basic_is_accepted_where_allowed_with_the_right_password(server: Guarded) -> None:
    right, _ = await get(f"{server.url}/basic-allowed", headers=basic_header(PASSWORD))
    wrong, response = await get(f"{server.url}/basic-allowed", headers=basic_header("nope"))
    assert (right, wrong) == (200, 401)
    offered = [c.split(" ", 1)[0] for c in response.headers.getall("WWW-Authenticate")]
    assert offered == ["Digest", "Basic"]


async def test_digest_still_works_where_basic_is_allowed(server: Guarded) -> None:
    middleware = aiohttp.DigestAuthMiddleware(USER, PASSWORD)
    status, _ = await get(f"{server.url}/basic-allowed", middlewares=(middleware,))
    assert status == 200


async def test_an_expired_nonce_gets_a_stale_challenge_and_the_client_recovers(
    server: Guarded, clock: Clock
) -> None:
    middleware = aiohttp.DigestAuthMiddleware(USER, PASSWORD)
    async with aiohttp.ClientSession(timeout=TIMEOUT, middlewares=(middleware,)) as http:
        async with http.get(f"{server.url}/digest-only") as first:
            assert first.status == 200
        clock.now += 61
        async with http.get(f"{server.url}/digest-only") as second:
            assert second.status == 200
    # First request: challenge, success. Second: the middleware reuses the old nonce,
    # is told it is stale, answers the new challenge and succeeds.
    assert server.statuses == [401, 200, 401, 200]


async def test_a_stale_answer_is_flagged_stale_only_if_it_was_otherwise_right(
    server: Guarded, clock: Clock
) -> None:
    authority = server.authority
    challenge = authority.challenge()
    clock.now += 61
    stale = authority.verify("GET", "/x", answer(challenge, "/x", "00000001"), USER, PASSWORD)
    wrong = authority.verify(
        "GET", "/x", answer(challenge, "/x", "00000001", "bad"), USER, PASSWORD
    )
    assert (stale.ok, stale.stale) == (False, True)
    assert (wrong.ok, wrong.stale) == (False, False)
    assert "stale=true" in authority.unauthorized(stale).headers["WWW-Authenticate"]


async def test_a_replayed_nonce_count_is_refused(server: Guarded) -> None:
    _, response = await get(f"{server.url}/digest-only")
    challenge = response.headers["WWW-Authenticate"]
    once = {"Authorization": answer(challenge, "/digest-only", "00000001")}
    first, _ = await get(f"{server.url}/digest-only", headers=once)
    replay, _ = await get(f"{server.url}/digest-only", headers=once)
    later = {"Authorization": answer(challenge, "/digest-only", "00000002")}
    next_count, _ = await get(f"{server.url}/digest-only", headers=later)
    assert (first, replay, next_count) == (200, 401, 200)


async def test_an_answer_for_another_uri_is_refused(server: Guarded) -> None:
    _, response = await get(f"{server.url}/digest-only")
    challenge = response.headers["WWW-Authenticate"]
    headers = {"Authorization": answer(challenge, "/basic-allowed", "00000001")}
    status, _ = await get(f"{server.url}/digest-only", headers=headers)
    assert status == 401


def test_a_nonce_this_authority_did_not_issue_is_refused() -> None:
    ours, theirs = DigestAuthority("r"), DigestAuthority("r")
    header = answer(theirs.challenge(), "/x", "00000001")
    header = header.replace(f'opaque="{theirs.opaque}"', f'opaque="{ours.opaque}"')
    verdict = ours.verify("GET", "/x", header, USER, PASSWORD)
    assert not verdict.ok
    assert "issued" in verdict.reason


def test_auth_params_parse_quoted_commas_and_escaped_quotes() -> None:
    params = parse_auth_params('realm="a, b", nonce=abc, opaque="x\\"y", Stale=TRUE')
    assert params == {"realm": "a, b", "nonce": "abc", "opaque": 'x"y', "stale": "TRUE"}
