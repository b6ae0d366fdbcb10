"""`fetch_page` against pages the test serves itself on 127.0.0.1; nothing leaves the machine.

The SSRF tests count the requests reaching the local server: a refused URL must reach it zero
times. The controls (`allow_private=True`) show the same server *is* reachable, so a zero is a
refusal and not a server that could not be reached anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gzip
import ipaddress
import re
import socket
import struct
import time
import tomllib
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.abc import ResolveResult
from aiohttp.test_utils import TestServer

from bot.articles import fetch as fetch_module
from bot.articles.fetch import FetchError, fetch_page, is_canonical_host, refusal_reason

ARTICLE = (
    "<!doctype html><html><head><title>Kubernetes</title></head>"
    "<body><article><p>The community proves it.</p></article></body></html>"
)
MB = 1_000_000


@functools.cache
def gzip_bomb_body() -> bytes:
    """About 20 KB on the wire, 20 MB once decompressed."""
    return gzip.compress(b"<html><body><p>" + b" " * (20 * MB), compresslevel=1)


class Site:
    """An aiohttp.web server on 127.0.0.1 that records every request reaching it."""

    def __init__(self) -> None:
        self.hits: list[str] = []
        self.user_agents: list[str] = []
        self.sent = 0  # bytes of the streamed bodies actually written
        self.server: TestServer | None = None

    @property
    def port(self) -> int:
        assert self.server is not None and self.server.port is not None
        return self.server.port

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def app(self) -> web.Application:
        @web.middleware
        async def count(request: web.Request, handler):
            self.hits.append(request.path_qs)
            self.user_agents.append(request.headers.get("User-Agent", ""))
            return await handler(request)

        def html(body: bytes, content_type: str = "text/html; charset=utf-8", status: int = 200) -> web.Response:
            return web.Response(body=body, status=status, headers={"Content-Type": content_type})

        async def stream(request: web.Request, total: int, declared: bool) -> web.StreamResponse:
            response = web.StreamResponse(headers={"Content-Type": "text/html; charset=utf-8"})
            if declared:
                response.content_length = total
            await response.prepare(request)
            chunk = b"<p>" + b"x" * (64 * 1024 - 7) + b"</p>\n"
            with contextlib.suppress(ConnectionError, RuntimeError):
                while self.sent < total:
                    await response.write(chunk)
                    self.sent += len(chunk)
            return response

        async def redirect_chain(request: web.Request) -> web.Response:
            left = int(request.match_info["n"])
            if left == 0:
                return html(ARTICLE.encode())
            raise web.HTTPFound(f"/redirect/{left - 1}")

        async def go(request: web.Request) -> web.Response:
            raise web.HTTPFound(request.query["to"])

        async def gzip_bomb(request: web.Request) -> web.Response:
            return web.Response(
                body=gzip_bomb_body(), headers={"Content-Type": "text/html", "Content-Encoding": "gzip"}
            )

        routes = {
            "/article": lambda r: html(ARTICLE.encode()),
            "/xhtml": lambda r: html(ARTICLE.encode(), "application/xhtml+xml"),
            "/latin1": lambda r: html(
                "<html><p>Café crème, naïve</p></html>".encode("latin-1"), "text/html; charset=ISO-8859-1"
            ),
            "/broken-utf8": lambda r: html(b"<html><p>caf\xc3 na\xefve \xff\xfe end</p></html>"),
            "/meta-charset": lambda r: html(
                '<html><head><meta charset="windows-1251"></head><p>Привет, мир</p></html>'.encode("cp1251"),
                "text/html",
            ),
            "/not-a-text-charset": lambda r: html("<html><p>Café</p></html>".encode(), "text/html; charset=base64"),
            "/pdf": lambda r: html(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n", "application/pdf"),
            "/image": lambda r: html(b"\x89PNG\r\n\x1a\n", "image/png"),
            "/missing": lambda r: html(b"<html>nope</html>", status=404),
            "/broken": lambda r: html(b"<html>oops</html>", status=500),
            "/huge": lambda r: stream(r, 50 * MB, declared=False),
            "/huge-declared": lambda r: stream(r, 50 * MB, declared=True),
            "/gzip-bomb": gzip_bomb,
            "/go": go,
        }

        def handler(fn):
            async def wrapped(request: web.Request):
                result = fn(request)
                return await result if asyncio.iscoroutine(result) else result

            return wrapped

        app = web.Application(middlewares=[count])
        for path, fn in routes.items():
            app.router.add_get(path, handler(fn))
        app.router.add_get("/redirect/{n}", redirect_chain)
        return app


@pytest.fixture
async def site():
    site = Site()
    site.server = TestServer(site.app(), host="127.0.0.1")
    await site.server.start_server()
    yield site
    await site.server.close()


@contextlib.asynccontextmanager
async def raw_server(handler):
    """A bare TCP server on 127.0.0.1 for replies aiohttp.web won't produce; yields its port."""
    writers: list[asyncio.StreamWriter] = []

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        with contextlib.suppress(ConnectionError):
            await reader.readuntil(b"\r\n\r\n")
            await handler(reader, writer)

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        for writer in writers:
            writer.close()
        server.close()
        await server.wait_closed()


# --------------------------------------------------------------------------- SSRF: refused


SSRF_URLS = [
    "http://0.0.0.0:{port}/article",
    "http://127.0.0.1:{port}/article",
    "http://[::1]:{port}/article",
    "http://[::ffff:127.0.0.1]:{port}/article",
    "http://localhost:{port}/article",
    "http://LocalHost:{port}/article",
    "http://169.254.169.254/latest/meta-data/",
    "http://10.0.0.1/",
    "https://192.168.1.1/",
]


@pytest.mark.parametrize("template", SSRF_URLS)
async def test_private_and_loopback_addresses_are_refused_without_any_request(site, template):
    with pytest.raises(FetchError, match="not to a public website") as caught:
        await fetch_page(template.format(port=site.port))
    assert site.hits == []
    assert "Share a link to a page on the public web" in str(caught.value)


@pytest.mark.parametrize(("host", "address"), [("127.0.0.1", "127.0.0.1"), ("[::1]", "::1")])
async def test_canonical_loopback_literals_are_refused_as_loopback(site, host, address):
    with pytest.raises(FetchError) as caught:
        await fetch_page(f"http://{host}:{site.port}/article")
    assert "loopback" in str(caught.value) and f"({address})" in str(caught.value)
    assert site.hits == []


async def test_the_refusal_names_the_resolved_address_not_the_spelling(site):
    with pytest.raises(FetchError) as caught:
        await fetch_page(f"http://localhost:{site.port}/")
    assert "loopback" in str(caught.value)
    assert "(127.0.0.1)" in str(caught.value) or "(::1)" in str(caught.value)


# Spellings resolvers read as an address (inet_aton: 127.1 is 127.0.0.1, 017 is octal 15) or that
# older aiohttp took for an IP literal and looked up itself (1.2.3.4.5).
ODD_HOSTS = [
    "127.1",
    "0x7f000001",
    "0X7F.0.0.1",
    "2130706433",
    "017.0.0.1",
    "127.000.0.1",
    "1.2.3.4.5",
    "1.2.3",
    "127.0.0.1.",
    "localhost.0x1",
    "[fe80::1%25eth0]",
    "[fe80::1%eth0]",
    "a..example",
    "example.com..",
    "-start.example",
    "end-.example",
    "a" * 64 + ".example",
    ("a" * 63 + ".") * 3 + "a" * 62,  # 254 characters
    "exa%41mple.com",
    "a*b.example",
]
HOST_REFUSAL = "neither a domain name nor a standard IP address"


@pytest.mark.parametrize("host", ODD_HOSTS)
@pytest.mark.parametrize("allow_private", [False, True])
async def test_hosts_that_are_not_a_name_or_a_canonical_ip_are_refused(site, host, allow_private):
    # allow_private too: this refusal is about the spelling, whatever address it might mean.
    with pytest.raises(FetchError) as caught:
        await fetch_page(f"http://{host}:{site.port}/article", allow_private=allow_private)
    assert str(caught.value) == (
        "The link names the site in a way I don't accept: neither a domain name nor a standard IP address "
        "(like 93.184.216.34). Please share the page's address with the site's usual name, "
        "like https://example.com/article."
    )
    assert site.hits == []


@pytest.mark.parametrize(
    "host",
    [
        "example.com",
        "example.com.",
        "_dmarc.example.com",
        "sub_domain.example.com",
        "xn--bcher-kva.example",
        "localhost",
        "123.example",
        "example.1a",
        "a-b.example",
        "a" * 63 + ".example",
        ("a" * 63 + ".") * 3 + "a" * 61,  # 253 characters
        ("a" * 63 + ".") * 3 + "a" * 61 + ".",  # 253 and the trailing dot
        "127.0.0.1",
        "93.184.216.34",
        "::1",
        "2001:db8::1",
        "2001:DB8::1",
        "::ffff:7f00:1",
    ],
)
def test_names_and_canonical_ips_are_canonical_hosts(host):
    assert is_canonical_host(host)


@pytest.mark.parametrize("host", ["0:0::1", "::0001", "::ffff:127.0.0.1", "fe80::1%eth0", "2001:db8:0::1"])
def test_ipv6_spellings_other_than_what_ipaddress_prints_are_not_canonical(host):
    # yarl already prints IPv6 hosts canonically; this covers a yarl that would not.
    assert not is_canonical_host(host)


@pytest.fixture
def local_dns(monkeypatch) -> list[str]:
    """Every name resolves to 127.0.0.1 (the local server); returns the names looked up."""
    asked: list[str] = []

    async def lookup(host: str, port: int) -> list[tuple[int, str]]:
        asked.append(host)
        return [(socket.AF_INET, "127.0.0.1")]

    monkeypatch.setattr(fetch_module, "_lookup", lookup)
    return asked


async def test_an_international_name_is_fetched_by_its_punycode(site, local_dns):
    page = await fetch_page(f"http://bücher.example:{site.port}/article", allow_private=True)
    assert local_dns == ["xn--bcher-kva.example"]
    assert site.hits == ["/article"] and "The community proves it." in page.html


@pytest.mark.parametrize("host", ["_dmarc.example.test", "my_site.example.test", "example.test."])
async def test_underscores_and_a_trailing_dot_are_fetched(site, local_dns, host):
    await fetch_page(f"http://{host}:{site.port}/article", allow_private=True)
    assert local_dns == [host] and site.hits == ["/article"]


async def test_aiohttp_is_recent_enough_not_to_look_up_numeric_hosts_itself(site, local_dns, monkeypatch):
    """aiohttp < 3.14.1 took any all-numeric host for an IP literal: no pinned resolver, its own
    lookup. With our host check bypassed, `2130706433` (127.0.0.1 to inet_aton) must not reach
    the server although the (pretend) check approved it."""
    monkeypatch.setattr(fetch_module, "is_canonical_host", lambda host: True)
    with pytest.raises(FetchError):
        await fetch_page(f"http://2130706433:{site.port}/article", allow_private=True)
    assert site.hits == []


def test_the_project_requires_that_aiohttp():
    project = tomllib.loads((Path(__file__).parents[3] / "pyproject.toml").read_text())
    assert "aiohttp>=3.14.1" in project["project"]["dependencies"]


@pytest.mark.parametrize("template", ["http://127.0.0.1:{port}/article", "http://localhost:{port}/article"])
async def test_control_the_same_server_is_reached_when_private_urls_are_allowed(site, template):
    page = await fetch_page(template.format(port=site.port), allow_private=True)
    assert site.hits == ["/article"]  # so the zero above is a refusal, not an unreachable server
    assert "The community proves it." in page.html


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("ftp://example.com/file", "uses ftp:"),
        ("file:///etc/passwd", "uses file:"),
        ("javascript:alert(1)", "uses javascript:"),
        ("gopher://127.0.0.1:{port}/", "uses gopher:"),
        ("example.com/article", "starting with https://"),
        ("   ", "The link is empty"),
        ("http:///article", "no site name"),
        ("http://user:secret@127.0.0.1:{port}/article", "user name or password"),
        ("https://trusted.example@127.0.0.1:{port}/article", "user name or password"),
        ("http://example.com/" + "a" * 3000, "longer than 2048 characters"),
    ],
)
async def test_non_web_links_and_credentials_are_refused_before_any_request(site, url, expected):
    with pytest.raises(FetchError, match=expected):
        await fetch_page(url.format(port=site.port), allow_private=True)
    assert site.hits == []


# --------------------------------------------------------------- SSRF: redirects and rebinding


def pretend_public(monkeypatch, name: str = "public.test") -> None:
    """Treat the one hostname `name` as if public DNS had answered it with a public address.

    Nothing public is reachable offline, so this name is really served by the local server
    (127.0.0.1). The stand-in replaces only the lookup-and-check for this exact name; every other
    host, including every redirect target below, goes through the real `getaddrinfo` and the real
    address check. `.test` names never resolve in real DNS, so reaching the server at all also
    proves aiohttp connected to the pinned address and did no lookup of its own.
    """
    real = fetch_module._checked_addresses

    async def checked(host: str, port: int, allow_private: bool) -> list[ResolveResult]:
        if host == name:
            return [
                ResolveResult(
                    hostname=host,
                    host="127.0.0.1",
                    port=port,
                    family=socket.AF_INET,
                    proto=socket.IPPROTO_TCP,
                    flags=socket.AI_NUMERICHOST,
                )
            ]
        return await real(host, port, allow_private)

    monkeypatch.setattr(fetch_module, "_checked_addresses", checked)


async def test_the_stand_in_public_host_itself_is_fetched(site, monkeypatch):
    pretend_public(monkeypatch)
    page = await fetch_page(f"http://public.test:{site.port}/go?to=/article")
    assert site.hits == ["/go?to=/article", "/article"]
    assert page.url == f"http://public.test:{site.port}/article"


@pytest.mark.parametrize(
    "target",
    [
        "http://127.0.0.1:{port}/article",
        "http://localhost:{port}/article",
        "http://[::ffff:7f00:1]:{port}/article",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/admin",
    ],
)
async def test_a_redirect_to_a_private_address_is_refused(site, monkeypatch, target):
    pretend_public(monkeypatch)
    target = target.format(port=site.port)
    with pytest.raises(FetchError, match="not to a public website"):
        await fetch_page(f"http://public.test:{site.port}/go?to={target}")
    assert [hit.split("?")[0] for hit in site.hits] == ["/go"]  # the private hop never happened


@pytest.mark.parametrize("host", ["127.1", "0x7f000001", "2130706433", "1.2.3.4.5", "[fe80::1%25eth0]"])
@pytest.mark.parametrize("allow_private", [False, True])
async def test_a_redirect_to_an_odd_host_spelling_is_refused(site, monkeypatch, host, allow_private):
    pretend_public(monkeypatch)
    target = f"http://{host}:{site.port}/article"
    with pytest.raises(FetchError) as caught:
        await fetch_page(f"http://public.test:{site.port}/go?to={target}", allow_private=allow_private)
    assert str(caught.value).startswith("The page redirects to a link that names the site in a way I don't accept")
    assert "open the link in a browser and share the address it ends at" in str(caught.value)
    assert [hit.split("?")[0] for hit in site.hits] == ["/go"]


async def test_a_redirect_to_another_scheme_is_refused(site, monkeypatch):
    pretend_public(monkeypatch)
    with pytest.raises(FetchError, match="redirects to a link that uses file:"):
        await fetch_page(f"http://public.test:{site.port}/go?to=file:///etc/passwd")


async def test_the_connection_goes_to_the_checked_address_without_a_second_lookup(site, monkeypatch):
    """A rebinding DNS server: first answer allowed, every later answer private. Only one is asked."""
    answers: list[str] = []

    async def rebinding_lookup(host: str, port: int) -> list[tuple[int, str]]:
        answers.append(host)
        return [(socket.AF_INET, "127.0.0.1" if len(answers) == 1 else "10.0.0.1")]

    monkeypatch.setattr(fetch_module, "_lookup", rebinding_lookup)
    # allow_private so 127.0.0.1 (the local server) passes; pinning is the same code either way.
    page = await fetch_page(f"http://rebind.test:{site.port}/article", allow_private=True)
    assert answers == ["rebind.test"]
    assert site.hits == ["/article"] and page.url.endswith("/article")


async def test_five_redirects_are_followed(site):
    page = await fetch_page(site.url("/redirect/5"), allow_private=True)
    assert page.url == site.url("/redirect/0")
    assert len(site.hits) == 6


async def test_more_than_five_redirects_are_refused(site):
    with pytest.raises(FetchError, match="redirects more than 5 times"):
        await fetch_page(site.url("/redirect/6"), allow_private=True)
    assert len(site.hits) == 6  # the original and five redirects; the sixth is not followed


async def test_max_redirects_is_configurable(site):
    with pytest.raises(FetchError, match="redirects more than 1 times"):
        await fetch_page(site.url("/redirect/2"), allow_private=True, max_redirects=1)


# --------------------------------------------------------------------------- the address check


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "127.255.255.254",
        "0.0.0.0",
        "10.0.0.1",
        "172.16.5.4",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",  # carrier-grade NAT
        "192.0.2.1",  # documentation
        "198.18.0.1",  # benchmarking
        "224.0.0.1",
        "240.0.0.1",
        "255.255.255.255",
        "::",
        "::1",
        "fe80::1",
        "fc00::1",
        "fd12:3456::1",
        "fec0::1",
        "ff02::1",
        "ff0e::1",
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
        "::ffff:169.254.169.254",
        "::127.0.0.1",  # IPv4-compatible
        "2002:7f00:1::1",  # 6to4 around 127.0.0.1
        "2002:a00:1::",  # 6to4 around 10.0.0.1
        "2001:0:4136:e378:8000:63bf:80ff:fffe",  # Teredo, client 127.0.0.1
        "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
        "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
    ],
)
def test_non_public_addresses_have_a_refusal_reason(address):
    assert refusal_reason(ipaddress.ip_address(address)) is not None


@pytest.mark.parametrize(
    "address", ["93.184.216.34", "1.1.1.1", "8.8.8.8", "2606:4700:4700::1111", "2a00:1450:4001:82a::200e"]
)
def test_public_addresses_are_allowed(address):
    assert refusal_reason(ipaddress.ip_address(address)) is None


# --------------------------------------------------------------------------- pages and errors


async def test_a_page_is_fetched_with_an_identifying_user_agent(site):
    page = await fetch_page(site.url("/article"), allow_private=True)
    assert (page.url, page.html, page.content_type) == (site.url("/article"), ARTICLE, "text/html")
    assert site.user_agents[0].startswith("QuorumBot/")


async def test_xhtml_is_accepted(site):
    page = await fetch_page(site.url("/xhtml"), allow_private=True)
    assert page.content_type == "application/xhtml+xml"


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/missing", "The page answered 404 Not Found; check the link."),
        ("/broken", "The page answered 500 Internal Server Error; the site has a problem; try again later."),
    ],
)
async def test_http_errors_say_the_status(site, path, message):
    with pytest.raises(FetchError) as caught:
        await fetch_page(site.url(path), allow_private=True)
    assert str(caught.value) == message


@pytest.mark.parametrize(("path", "what"), [("/pdf", "it is a PDF"), ("/image", "it is an image")])
async def test_non_html_is_not_an_article_page(site, path, what):
    with pytest.raises(FetchError, match=rf"is not an article page \({what}\)"):
        await fetch_page(site.url(path), allow_private=True)


async def test_a_50_mb_body_is_refused_after_about_5_mb(site):
    started = time.monotonic()
    with pytest.raises(FetchError, match="The page is larger than 5 MB"):
        await fetch_page(site.url("/huge"), allow_private=True)
    assert time.monotonic() - started < 3
    await asyncio.sleep(0.05)  # let the server notice the closed connection
    assert site.sent < 15 * MB  # read 5 MB and hung up; the 50 MB were never sent


async def test_a_declared_50_mb_body_is_refused_before_reading(site):
    with pytest.raises(FetchError, match="The page is larger than 5 MB"):
        await fetch_page(site.url("/huge-declared"), allow_private=True)


async def test_a_compressed_body_counts_its_decompressed_size(site):
    with pytest.raises(FetchError, match="The page is larger than 5 MB"):
        await fetch_page(site.url("/gzip-bomb"), allow_private=True)


async def test_max_bytes_is_configurable(site):
    with pytest.raises(FetchError, match=re.escape("larger than 0.1 MB")):
        await fetch_page(site.url("/huge"), allow_private=True, max_bytes=100_000)


async def test_a_server_that_never_answers_times_out():
    async def silent(reader, writer):
        await reader.read()  # holds the connection until the client gives up

    async with raw_server(silent) as port:
        started = time.monotonic()
        with pytest.raises(FetchError, match="timed out") as caught:
            await fetch_page(f"http://127.0.0.1:{port}/", allow_private=True, read_timeout=0.3, total_timeout=5)
        assert time.monotonic() - started < 2
    assert "stopped answering for 0.3 s" in str(caught.value)


async def test_a_server_that_drips_forever_hits_the_total_time_limit():
    async def drip(reader, writer):
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nTransfer-Encoding: chunked\r\n\r\n")
        while True:
            writer.write(b"1\r\nx\r\n")
            await writer.drain()
            await asyncio.sleep(0.05)

    async with raw_server(drip) as port:
        started = time.monotonic()
        with pytest.raises(FetchError, match=re.escape("timed out: it took longer than 0.5 s")):
            await fetch_page(f"http://127.0.0.1:{port}/", allow_private=True, read_timeout=5, total_timeout=0.5)
        assert time.monotonic() - started < 2


def _reply(body: bytes, headers: str = "") -> bytes:
    return f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\nConnection: close\r\n{headers}\r\n".encode() + body


async def test_html_without_a_content_type_is_sniffed():
    async def untyped(reader, writer):
        writer.write(_reply(b"\n  <!DOCTYPE html><HTML><p>hi</p></HTML>"))

    async with raw_server(untyped) as port:
        page = await fetch_page(f"http://127.0.0.1:{port}/", allow_private=True)
    assert page.content_type == "text/html" and "<p>hi</p>" in page.html


async def test_binary_without_a_content_type_is_not_an_article_page():
    async def untyped(reader, writer):
        writer.write(_reply(b"%PDF-1.4 \x00\x01\x02"))

    async with raw_server(untyped) as port:
        with pytest.raises(FetchError, match="not an article page"):
            await fetch_page(f"http://127.0.0.1:{port}/", allow_private=True)


def _free_port() -> int:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def test_a_refused_connection_says_so():
    port = _free_port()
    with pytest.raises(FetchError, match=re.escape("could not connect to 127.0.0.1")):
        await fetch_page(f"http://127.0.0.1:{port}/", allow_private=True)


async def test_a_refused_connection_to_a_name_whose_punycode_does_not_decode_says_so(local_dns):
    port = _free_port()
    with pytest.raises(FetchError, match=re.escape("could not connect to xn--zz.example")):
        await fetch_page(f"http://xn--zz.example:{port}/", allow_private=True)


_HTML_HEAD = "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n"
UNREADABLE = "try again later or share another page."


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        pytest.param(
            f"{_HTML_HEAD}X-Padding: {'a' * 9000}\r\nContent-Length: 2\r\n\r\nhi",
            f"The site sent a reply I could not read (its headers are too long); {UNREADABLE}",
            id="header-over-8190-bytes",
        ),
        pytest.param(
            f"HTTP/1.1 200 {'O' * 9000}\r\nContent-Length: 2\r\n\r\nhi",
            f"The site sent a reply I could not read (its headers are too long); {UNREADABLE}",
            id="status-line-over-8190-bytes",
        ),
        pytest.param(
            "HTTP/1.1 abc OK\r\nContent-Length: 2\r\n\r\nhi",
            f"The site sent a reply I could not read (its status line is malformed); {UNREADABLE}",
            id="bad-status-code",
        ),
        pytest.param(
            "SSH-2.0-OpenSSH_9.6\r\n\r\n",
            f"The site sent a reply I could not read (its status line is malformed); {UNREADABLE}",
            id="not-http",
        ),
        pytest.param(
            f"{_HTML_HEAD}Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
            f"The site sent a reply I could not read (its chunked encoding is invalid); {UNREADABLE}",
            id="bad-chunk-size",
        ),
        pytest.param(
            f"{_HTML_HEAD}Transfer-Encoding: chunked\r\n\r\n5\r\nhelloXX\r\n0\r\n\r\n",
            f"The site sent a reply I could not read (its chunked encoding is invalid); {UNREADABLE}",
            id="chunk-longer-than-its-size",
        ),
        pytest.param(
            "HTTP/1.1 200 OK\r\n" + "".join(f"X-H{i}: v\r\n" for i in range(200)) + "Content-Length: 2\r\n\r\nhi",
            f"The site sent a reply I could not read (it sent too many headers); {UNREADABLE}",
            id="too-many-headers",
        ),
        pytest.param(
            f"{_HTML_HEAD}Content-Length: abc\r\n\r\nhi",
            f"The site sent a reply I could not read (its headers are malformed); {UNREADABLE}",
            id="bad-content-length",
        ),
        pytest.param(
            f"{_HTML_HEAD}Content-Encoding: gzip\r\nContent-Length: 5\r\n\r\nhello",
            f"The site sent a reply I could not read (its compression is broken); {UNREADABLE}",
            id="bad-gzip",
        ),
        pytest.param(
            "",
            "The site closed the connection without answering; try again later.",
            id="closed-without-answering",
        ),
        pytest.param(
            "HTTP/1.1 200 OK\r\nContent-Ty",
            "The site closed the connection without answering; try again later.",
            id="closed-mid-headers",
        ),
        pytest.param(
            f"{_HTML_HEAD}Content-Length: 100\r\n\r\n<html>short",
            "The site broke off while sending the page (it sent less than it announced); try again later.",
            id="body-shorter-than-content-length",
        ),
        pytest.param(
            f"{_HTML_HEAD}Transfer-Encoding: chunked\r\n\r\n100\r\n<html>short",
            "The site broke off while sending the page (it sent less than it announced); try again later.",
            id="chunk-cut-short",
        ),
    ],
)
async def test_a_reply_that_is_not_valid_http_says_what_is_wrong(reply, message):
    async def answer(reader, writer):
        writer.write(reply.encode())  # one write: the parser sees the whole reply at once
        await writer.drain()
        writer.close()

    async with raw_server(answer) as port:
        with pytest.raises(FetchError) as caught:
            await fetch_page(f"http://127.0.0.1:{port}/", allow_private=True)
    assert str(caught.value) == message  # a fixed text: nothing the server sent is repeated


async def test_a_connection_reset_after_the_request_is_not_a_connection_failure():
    async def reset(reader, writer):
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close = RST
        writer.transport.abort()

    async with raw_server(reset) as port:
        with pytest.raises(FetchError) as caught:
            await fetch_page(f"http://127.0.0.1:{port}/", allow_private=True)
    assert str(caught.value) == "The site cut the connection off; try again later."


async def test_a_parser_error_escaping_aiohttp_unwrapped_still_gets_a_message(site, monkeypatch):
    """aiohttp's pure-Python parser can raise a bare TransferEncodingError mid-body (not a ClientError)."""

    async def read_page(response, max_bytes):
        raise aiohttp.http_exceptions.TransferEncodingError("Chunk size mismatch: expected CRLF after chunk data")

    monkeypatch.setattr(fetch_module, "_read_page", read_page)
    with pytest.raises(FetchError, match=re.escape("(its chunked encoding is invalid)")):
        await fetch_page(site.url("/article"), allow_private=True)


# --------------------------------------------------------------------------- charsets


async def test_broken_utf8_is_decoded_with_replacement_characters(site):
    page = await fetch_page(site.url("/broken-utf8"), allow_private=True)
    assert "caf\ufffd na\ufffdve \ufffd\ufffd end" in page.html


async def test_latin1_from_the_header_charset(site):
    page = await fetch_page(site.url("/latin1"), allow_private=True)
    assert "Café crème, naïve" in page.html


async def test_charset_from_meta_when_the_header_has_none(site):
    page = await fetch_page(site.url("/meta-charset"), allow_private=True)
    assert "Привет, мир" in page.html


async def test_a_charset_that_is_not_a_text_encoding_falls_back_to_utf8(site):
    page = await fetch_page(site.url("/not-a-text-charset"), allow_private=True)
    assert "Café" in page.html


@pytest.mark.parametrize(
    ("body", "header", "expected"),
    [
        (b"\xef\xbb\xbf<html>caf\xc3\xa9</html>", "iso-8859-1", "<html>café</html>"),  # BOM wins
        ("<html>é</html>".encode("utf-16"), None, "<html>é</html>"),
        (b"<html>\x93quoted\x94</html>", "iso-8859-1", "<html>\u201cquoted\u201d</html>"),  # as browsers do
        (b"<html>caf\xe9</html>", "no-such-charset", "<html>caf\ufffd</html>"),
        (b"<html>caf\xe9</html>", "idna", "<html>caf\ufffd</html>"),
        (b'<meta http-equiv="Content-Type" content="text/html; charset=koi8-r">\xf0\xd2\xc9', None, "При"),
        (b'<meta charset="utf-16"><p>caf\xc3\xa9</p>', None, "café"),  # WHATWG: meta utf-16 means utf-8
    ],
)
def test_decoding_never_crashes(body, header, expected):
    assert expected in fetch_module.decode_page(body, header)


async def test_article_lookups_never_wait_behind_the_loops_shared_threads(site):
    """discord.py resolves discord.com in the loop's default executor; article lookups have
    threads of their own, so neither waits behind the other."""
    import threading

    release = threading.Event()
    loop = asyncio.get_running_loop()
    busy = [loop.run_in_executor(None, release.wait, 60) for _ in range(64)]  # more than the pool has
    try:
        page = await fetch_page(f"http://localhost:{site.port}/article", allow_private=True, total_timeout=5)
        assert "The community proves it." in page.html
    finally:
        release.set()
        await asyncio.gather(*busy)
