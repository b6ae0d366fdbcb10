"""Fetch a page a member pasted, treating the URL as hostile.

What is refused, and how:

- Anything but `http://` / `https://`, and links with credentials in them (`user:pass@host`):
  they are a phishing device ("https://trusted.example@evil.example/") and the bot has no
  business sending passwords members pasted, so they are refused rather than stripped.
- Hosts that are neither a DNS name nor an IP address spelled canonically: `127.1`,
  `0x7f000001`, `2130706433`, `017.0.0.1`, `1.2.3.4.5`, IPv6 zone ids (`%eth0`). Resolvers and
  HTTP clients disagree on what such spellings mean (inet_aton reads `127.1` as 127.0.0.1;
  aiohttp before 3.14.1 took any all-numeric host for an IP literal, skipped the pinned resolver
  and looked it up again), so they are refused outright, for the link and every redirect target,
  rather than judged by an address one of them might mean. International names (`bücher.example`)
  arrive as punycode (`xn--bcher-kva.example`) and are ordinary DNS names.
- Hosts that resolve to anything but public unicast addresses (loopback, private, link-local,
  unique-local, multicast, reserved, unspecified, carrier-grade NAT, documentation ranges, and
  IPv6 forms that embed such an IPv4 address: mapped, compatible, 6to4, Teredo, NAT64). The
  check runs on the addresses `getaddrinfo` returns, so `localhost` is judged by 127.0.0.1.
- A second DNS lookup: the connection goes to the very addresses that were checked (see
  `_PinnedResolver`), so a rebinding DNS server cannot answer "public" to the check and
  "127.0.0.1" to the connect.
- Redirects are followed by hand, each hop's URL and addresses checked again, at most
  `max_redirects` of them.
- Bodies above `max_bytes` (counted while streaming, whatever Content-Length says), slow or
  silent servers (connect / read / total time limits), and anything but HTML or XHTML.

`fetch` is that machinery with the reading of the final response left to its caller:
`fetch_page` reads an HTML page; the feed fetcher (bot/feeds/fetch.py) reads feeds, 304s and
Retry-After with the same checks and limits.

Proxy settings from the environment are ignored (`trust_env=False`): a proxy would do its own
DNS lookup and undo the address check.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import functools
import ipaddress
import re
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from http import HTTPStatus
from typing import TypeVar

import aiohttp
from aiohttp import http_exceptions
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from ..markdown import escape_inline

DEFAULT_USER_AGENT = "QuorumBot/0.1 (+https://github.com/; Discord article summaries)"
MAX_URL_LENGTH = 2048
HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_CHUNK = 64 * 1024
_SNIFF_BYTES = 1024
_META_SCAN_BYTES = 4096

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class FetchError(Exception):
    """str(error) is a short message for the member, saying what happened."""


@dataclass(frozen=True, slots=True)
class Page:
    """A fetched page, undecoded: decoding is CPU work on up to 5 MB, so the article worker
    process does it (`decode_page`), not the bot's event loop."""

    url: str  # final URL after redirects
    body: bytes
    charset: str | None  # from the Content-Type header
    content_type: str

    @property
    def html(self) -> str:
        return decode_page(self.body, self.charset)


# --- addresses ---------------------------------------------------------------------------------

_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")  # deprecated ::a.b.c.d


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """IPv4 addresses an IPv6 address may lead to: mapped, compatible, 6to4, Teredo, NAT64."""
    found: list[ipaddress.IPv4Address] = []
    if ip.ipv4_mapped is not None:
        found.append(ip.ipv4_mapped)
    if ip.sixtofour is not None:
        found.append(ip.sixtofour)
    if ip.teredo is not None:
        found.extend(ip.teredo)  # (server, client)
    if ip in _NAT64 or ip in _IPV4_COMPATIBLE:
        found.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    return found


def refusal_reason(ip: IPAddress) -> str | None:
    """Why the bot must not connect to `ip` (e.g. "a loopback address"), or None if it is public."""
    # Order matters only for the wording; every branch refuses.
    if ip.is_unspecified:
        return "the unspecified address"
    if ip.is_loopback:
        return "a loopback address (this machine)"
    if isinstance(ip, ipaddress.IPv6Address):
        for inner in _embedded_ipv4(ip):
            reason = refusal_reason(inner)
            if reason is not None:
                return f"{reason} in IPv6 form"
    if ip.is_link_local:
        return "a link-local address"
    if ip.is_multicast:
        return "a multicast address"
    if isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local:
        return "a site-local address"
    if ip.is_private:  # includes IPv6 unique-local fc00::/7
        return "a private network address"
    if ip.is_reserved:
        return "a reserved address"
    if not ip.is_global:  # carrier-grade NAT, documentation and benchmark ranges, …
        return "an address that is not on the public internet"
    return None


# Article lookups get threads of their own: `loop.getaddrinfo` would use the loop's default
# executor, which discord.py's own lookups (discord.com) share, and a member's link to a host
# whose DNS never answers would hold those threads for the resolver's whole timeout.
_DNS_THREADS = 4
_dns_executor: ThreadPoolExecutor | None = None


def _dns() -> ThreadPoolExecutor:
    global _dns_executor
    if _dns_executor is None:
        _dns_executor = ThreadPoolExecutor(max_workers=_DNS_THREADS, thread_name_prefix="quorum-article-dns")
    return _dns_executor


async def _lookup(host: str, port: int) -> list[tuple[int, str]]:
    """(family, address) pairs for `host`, from the system resolver; FetchError if none."""
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.run_in_executor(
            _dns(), functools.partial(socket.getaddrinfo, host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
        )
    except (OSError, UnicodeError):
        raise FetchError(f"I could not find the site {_short(host)}; check the link.") from None
    return [(family, sockaddr[0]) for family, _type, _proto, _name, sockaddr in infos]


async def _checked_addresses(host: str, port: int, allow_private: bool) -> list[ResolveResult]:
    """Resolve `host` once and check every address; these are the only ones connected to."""
    results: list[ResolveResult] = []
    seen: set[str] = set()
    for family, address in await _lookup(host, port):
        ip = ipaddress.ip_address(address)
        if not allow_private:
            reason = refusal_reason(ip)
            if reason is not None:
                raise FetchError(
                    f"I won't fetch {_short(host)}: it leads to {reason} ({ip}), not to a public "
                    "website. Share a link to a page on the public web."
                )
        if str(ip) in seen:
            continue
        seen.add(str(ip))
        results.append(
            ResolveResult(
                hostname=host,
                host=str(ip),
                port=port,
                family=family,
                proto=socket.IPPROTO_TCP,
                flags=socket.AI_NUMERICHOST | socket.AI_NUMERICSERV,
            )
        )
    if not results:
        raise FetchError(f"I could not find the site {_short(host)}; check the link.")
    return results


def _host_key(host: str) -> str:
    return host.rstrip(".").lower()


class _PinnedResolver(AbstractResolver):
    """aiohttp's resolver, answering only with addresses `_checked_addresses` approved.

    Why this approach: the URL keeps its hostname, so aiohttp still sends `Host: <hostname>`,
    uses the hostname for TLS SNI and verifies the certificate against the hostname (the
    default `ssl=True` context) — certificate checking stays exactly as for a normal request.
    Only the TCP connect goes to the pinned IP. (Connecting to the IP in the URL instead would
    need `server_hostname` and Host fiddling per hop and is easy to get wrong.) A host that was
    not checked gets an error, never a fresh DNS lookup. IP-literal hosts are connected to
    directly by aiohttp, without asking a resolver — they were checked as they are, and
    `_parse_url` lets through only canonical literals, which aiohttp and the check read alike.
    """

    def __init__(self) -> None:
        self.pinned: dict[str, list[ResolveResult]] = {}

    def pin(self, host: str, results: list[ResolveResult]) -> None:
        self.pinned[_host_key(host)] = results

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = self.pinned.get(_host_key(host))
        if results is None:
            raise OSError(f"{host} was not checked before connecting")
        chosen = [
            ResolveResult(**{**result, "port": port})  # type: ignore[typeddict-item]
            for result in results
            if family in (socket.AF_UNSPEC, result["family"])
        ]
        if not chosen:
            raise OSError(f"{host} has no checked address of family {family}")
        return chosen

    async def close(self) -> None:
        self.pinned.clear()


# --- URLs --------------------------------------------------------------------------------------


def _short(text: str, limit: int = 80) -> str:
    """Link text for a message to the member, cut to `limit` and shown literally (a host may
    hold `_`, which Discord would read as markup)."""
    return escape_inline(text if len(text) <= limit else text[: limit - 1] + "…")


def _display_host(url: URL) -> str:
    try:
        return url.host or ""
    except UnicodeError:  # a punycode label that does not decode (xn--zz); show it as sent
        return url.raw_host or ""


# Explicit ASCII classes: re.IGNORECASE would let "K" (U+212A KELVIN SIGN) match [a-z].
_DNS_LABEL = re.compile(r"(?!-)[A-Za-z0-9_-]{1,63}(?<!-)")  # `_`: real sites use it in subdomains
# A last label that parses as a number turns the whole name into an IPv4 spelling (WHATWG URL
# "ends in a number": decimal, or 0x hex).
_NUMERIC_LABEL = re.compile(r"[0-9]+|0[xX][0-9A-Fa-f]*")


def is_canonical_host(host: str) -> bool:
    """True for a DNS name or an IP literal as `ipaddress` prints it; False for every other
    spelling (`127.1`, `0x7f000001`, `1.2.3.4.5`, `fe80::1%eth0`, `a..b`, …). `host` is
    `URL.raw_host`: IPv6 without brackets, international names in punycode."""
    if ":" in host:
        try:
            ip = ipaddress.IPv6Address(host)
        except ValueError:
            return False
        return ip.scope_id is None and str(ip) == host.lower()
    try:
        return str(ipaddress.IPv4Address(host)) == host
    except ValueError:
        pass
    name = host[:-1] if host.endswith(".") else host  # one trailing dot: the fully qualified form
    labels = name.split(".")
    return (
        len(name) <= 253
        and all(_DNS_LABEL.fullmatch(label) for label in labels)
        and not _NUMERIC_LABEL.fullmatch(labels[-1])
    )


def _parse_url(raw: str, *, redirected: bool = False) -> URL:
    what = "The page redirects to a link that" if redirected else "The link"
    text = raw.strip()
    if not text:
        raise FetchError("The link is empty. Paste the full address of the page, starting with https://.")
    if len(text) > MAX_URL_LENGTH:
        raise FetchError(f"{what} is longer than {MAX_URL_LENGTH} characters; share a shorter address for the page.")
    try:
        url = URL(text)
        host = url.raw_host
        scheme = url.scheme.lower()
    except (ValueError, TypeError, UnicodeError):
        raise FetchError(
            f"{what} is not a web address I understand. Use the full address, starting with https://."
        ) from None
    if scheme not in ("http", "https"):
        if not scheme:
            raise FetchError(f"{what} is not a full web address. Use the full address, starting with https://.")
        raise FetchError(f"{what} uses {_short(scheme, 20)}:, and I only fetch http:// and https:// links.")
    if url.user is not None or url.password is not None:
        raise FetchError(
            f"{what} has a user name or password in it (`user:pass@`); I don't send those. "
            "Share the page's plain address."
        )
    if not host:
        raise FetchError(f"{what} has no site name in it. Use the full address, starting with https://.")
    if not is_canonical_host(host):
        instead = (
            "open the link in a browser and share the address it ends at"
            if redirected
            else "share the page's address with the site's usual name, like https://example.com/article"
        )
        raise FetchError(
            f"{what} names the site in a way I don't accept: neither a domain name nor a standard IP "
            f"address (like 93.184.216.34). Please {instead}."
        )
    return url


# --- decoding ----------------------------------------------------------------------------------

# Browsers (WHATWG Encoding) read these labels as windows-1252, a superset of Latin-1.
_WINDOWS_1252_LABELS = frozenset({"iso-8859-1", "iso8859-1", "latin1", "latin-1", "l1", "cp819", "us-ascii", "ascii"})
# Codecs that are "text encodings" to Python but not web charsets; never use them on a page.
_NOT_WEB_CODECS = frozenset({"idna", "punycode", "unicode_escape", "raw_unicode_escape", "undefined"})
_META_CHARSET = re.compile(rb"<meta[^>]*?charset\s*=\s*[\"']?\s*([a-zA-Z0-9_.:-]+)", re.IGNORECASE)


def _codec(label: str | None) -> str | None:
    """The Python codec name for a charset label, or None if unknown / unsuitable."""
    if not label:
        return None
    label = label.strip().strip("\"'").lower()
    if label in _WINDOWS_1252_LABELS:
        return "cp1252"
    try:
        info = codecs.lookup(label)
    except (LookupError, ValueError):
        return None
    if not getattr(info, "_is_text_encoding", True) or info.name in _NOT_WEB_CODECS:
        return None
    return info.name


def decode_page(body: bytes, header_charset: str | None) -> str:
    """BOM, then the header's charset, then <meta charset>, then UTF-8; never raises."""
    if body.startswith(codecs.BOM_UTF8):
        candidates = ["utf-8-sig"]
    elif body.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        candidates = ["utf-16"]
    else:
        candidates = []
        if (name := _codec(header_charset)) is not None:
            candidates.append(name)
        match = _META_CHARSET.search(body[:_META_SCAN_BYTES])
        if match is not None and (name := _codec(match.group(1).decode("ascii", "replace"))) is not None:
            # A page that could declare its charset in ASCII is not UTF-16 (WHATWG rule).
            candidates.append("utf-8" if name.startswith("utf-16") else name)
    for name in [*candidates, "utf-8"]:
        try:
            return body.decode(name, errors="replace")
        except (LookupError, UnicodeError, ValueError):
            continue
    return body.decode("utf-8", errors="replace")  # pragma: no cover (utf-8 with replace cannot fail)


# --- content types -----------------------------------------------------------------------------

_SAFE_MIME = re.compile(r"^[a-z0-9!#$&^_.+-]+/[a-z0-9!#$&^_.+-]+$")


def _parse_content_type(header: str | None) -> tuple[str, str | None]:
    """("text/html", "utf-8") from a Content-Type header; ("", None) when absent or empty."""
    if not header:
        return "", None
    mime, _, params = header.partition(";")
    charset = None
    for param in params.split(";"):
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset":
            charset = value.strip().strip("\"'") or None
    return mime.strip().lower(), charset


def _describe(mime: str) -> str:
    if mime == "application/pdf":
        return "a PDF"
    kind = mime.partition("/")[0]
    if kind == "image":
        return "an image"
    if kind == "video":
        return "a video"
    if kind == "audio":
        return "an audio file"
    if mime in ("application/json", "text/json") or mime.endswith("+json"):
        return "JSON data"
    if mime in ("application/rss+xml", "application/atom+xml"):
        return "a news feed"
    if mime == "text/plain":
        return "plain text"
    if _SAFE_MIME.match(mime) and len(mime) <= 60:
        return f"a file of type {escape_inline(mime)}"
    return "a file that is not HTML"


# For the feed fetcher, which reads content types and names refused ones the same way.
parse_content_type = _parse_content_type
describe_type = _describe


def _looks_like_html(body: bytes) -> bool:
    start = body[:_SNIFF_BYTES].lower()
    return b"<html" in start or b"<!doctype html" in start


def _too_large(max_bytes: int) -> FetchError:
    return FetchError(
        f"The page is larger than {max_bytes / 1_000_000:g} MB, more than I read for one article; share a lighter page."
    )


def _unreadable(detail: str) -> FetchError:
    return FetchError(f"The site sent a reply I could not read ({detail}); try again later or share another page.")


def _parser_error(error: http_exceptions.HttpProcessingError) -> FetchError:
    """What was wrong with a reply aiohttp's HTTP parser rejected, as a fixed description: the
    parser's own message quotes the server's bytes, so it is only matched, never shown."""
    text = str(error.message).lower()
    # The C parser (llhttp) reports most errors as a plain BadHttpMessage, hence the text matching.
    if isinstance(error, http_exceptions.ContentLengthError) or "not enough data" in text:
        return FetchError(
            "The site broke off while sending the page (it sent less than it announced); try again later."
        )
    if isinstance(error, http_exceptions.LineTooLong):
        return _unreadable("its headers are too long")
    if isinstance(error, http_exceptions.BadStatusLine):
        return _unreadable("its status line is malformed")
    if isinstance(error, http_exceptions.ContentEncodingError):
        return _unreadable("its compression is broken")
    if isinstance(error, http_exceptions.TransferEncodingError) or "chunk" in text:
        return _unreadable("its chunked encoding is invalid")
    if "too many headers" in text:
        return _unreadable("it sent too many headers")
    if isinstance(error, http_exceptions.InvalidHeader) or "header" in text or "content-length" in text:
        return _unreadable("its headers are malformed")
    return FetchError("The site sent a reply I could not read; try again later or share another page.")


def _client_error(exc: Exception, host: str) -> FetchError:
    """The member-facing message for an aiohttp failure other than a timeout."""
    chain: list[BaseException] = []
    cause: BaseException | None = exc
    while cause is not None and len(chain) < 10 and all(cause is not seen for seen in chain):
        chain.append(cause)
        cause = cause.__cause__ or cause.__context__
    # aiohttp wraps the parser's exception (ClientResponseError <- HttpProcessingError <- LineTooLong,
    # …); the innermost one is the most specific.
    parser_errors = [c for c in chain if isinstance(c, http_exceptions.HttpProcessingError)]
    if parser_errors:
        return _parser_error(parser_errors[-1])
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        return FetchError("The site's security certificate is not valid, so I won't fetch it.")
    if isinstance(exc, aiohttp.ClientConnectorError):  # refused, unreachable, TLS handshake
        return FetchError(f"I could not connect to {_short(host)}; check the link or try again later.")
    if isinstance(exc, aiohttp.ServerDisconnectedError):  # closed before a complete status line and headers
        return FetchError("The site closed the connection without answering; try again later.")
    if isinstance(exc, aiohttp.ClientPayloadError):
        return FetchError("The site broke off while sending the page; try again later.")
    if isinstance(exc, aiohttp.ClientOSError | aiohttp.ClientConnectionResetError):  # reset after connecting
        return FetchError("The site cut the connection off; try again later.")
    if isinstance(exc, aiohttp.ClientResponseError):
        return FetchError("The site sent a reply I could not read; try again later or share another page.")
    return FetchError(f"I could not connect to {_short(host)}; check the link or try again later.")


def _status_error(status: int) -> FetchError:
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "(unknown status)"  # the server's own reason text is not repeated to members
    hint = "check the link"
    if status in (401, 403, 451):
        hint = "the page is not public, or the site refuses bots"
    elif status == 429:
        hint = "the site is limiting requests; try again later"
    elif status >= 500:
        hint = "the site has a problem; try again later"
    return FetchError(f"The page answered {status} {phrase}; {hint}.")


# --- fetching ----------------------------------------------------------------------------------

T = TypeVar("T")
# Reads the final (non-redirect) response, whatever its status; `fetch_page` and the feed
# fetcher each bring their own (what they accept, what a 304 or a 429 means to them).
Reader = Callable[[aiohttp.ClientResponse], Awaitable[T]]
# A per-host turn around each hop's request (the feed fetcher's HostLimiter.slot), or None.
HopSlot = Callable[[str], contextlib.AbstractAsyncContextManager[object]]


async def read_body(response: aiohttp.ClientResponse, max_bytes: int, too_large: Callable[[], Exception]) -> bytes:
    """The response's body, at most `max_bytes`, else `too_large()` is raised."""
    declared = response.content_length
    if declared is not None and declared > max_bytes:
        raise too_large()
    body = bytearray()
    while True:
        # Counted on the decompressed stream, whatever Content-Length said; stop one byte past.
        chunk = await response.content.read(min(_CHUNK, max_bytes + 1 - len(body)))
        if not chunk:
            break
        body += chunk
        if len(body) > max_bytes:
            response.close()  # drop the connection instead of draining the rest
            raise too_large()
    return bytes(body)


async def _read_page(response: aiohttp.ClientResponse, max_bytes: int) -> Page:
    mime, charset = _parse_content_type(response.headers.get("Content-Type"))
    if mime and mime not in HTML_TYPES:
        raise FetchError(f"That link is not an article page (it is {_describe(mime)}). Share a link to a web page.")
    body = await read_body(response, max_bytes, functools.partial(_too_large, max_bytes))
    if not mime:
        if not _looks_like_html(body):
            raise FetchError(
                "That link is not an article page (it did not say what it is, and it does not look like HTML). "
                "Share a link to a web page."
            )
        mime = "text/html"
    return Page(url=str(response.url), body=body, charset=charset, content_type=mime)


@contextlib.asynccontextmanager
async def _turn(hop_slot: HopSlot | None, host: str, budget: asyncio.Timeout) -> AsyncIterator[None]:
    """The host's turn for one hop. Waiting for it is not the site's slowness, so the clock of
    `budget` (the whole fetch's time limit) stops while waiting."""
    if hop_slot is None:
        yield
        return
    loop = asyncio.get_running_loop()
    deadline = budget.when()
    left = None if deadline is None else deadline - loop.time()
    budget.reschedule(None)
    async with hop_slot(_host_key(host)):
        budget.reschedule(None if left is None else loop.time() + left)
        yield


async def _follow(
    session: aiohttp.ClientSession,
    resolver: _PinnedResolver,
    url: URL,
    read: Reader[T],
    *,
    allow_private: bool,
    max_redirects: int,
    hop_slot: HopSlot | None,
    budget: asyncio.Timeout,
) -> T:
    for hop in range(max_redirects + 1):
        host = url.raw_host
        assert host is not None and url.port is not None  # _parse_url guarantees both
        resolver.pin(host, await _checked_addresses(host, url.port, allow_private))
        async with _turn(hop_slot, host, budget), session.get(url, allow_redirects=False) as response:
            if response.status in REDIRECT_STATUSES:
                location = response.headers.get("Location")
                if not location:
                    raise _status_error(response.status)
                if hop == max_redirects:
                    raise FetchError(
                        f"The link redirects more than {max_redirects} times; "
                        "open it in a browser and share the address it ends at."
                    )
                try:
                    target = str(url.join(URL(location)))
                except (ValueError, TypeError, UnicodeError):
                    raise FetchError(
                        "The page redirects to an address I don't understand; share the final address."
                    ) from None
                url = _parse_url(target, redirected=True)
                continue
            return await read(response)
    raise AssertionError("unreachable")  # pragma: no cover


async def fetch(
    url: str,
    read: Reader[T],
    *,
    accept: str,
    headers: Mapping[str, str] | None = None,
    hop_slot: HopSlot | None = None,
    noun: str = "page",
    allow_private: bool = False,
    connect_timeout: float = 5.0,
    read_timeout: float = 10.0,
    total_timeout: float = 20.0,
    max_redirects: int = 5,
    user_agent: str = DEFAULT_USER_AGENT,
) -> T:
    """What `read` makes of the final response for `url`, after checking every hop (the
    module's docstring says how); FetchError says what went wrong on the way.

    `headers` are added to the request (conditional GET); `hop_slot(host)` is entered around
    each hop's request, its wait not counted in `total_timeout`; `noun` names what is fetched
    in the time-out messages. `read` runs within the time limits and may raise its own errors.
    """
    start = _parse_url(url)
    resolver = _PinnedResolver()
    timeout = aiohttp.ClientTimeout(total=total_timeout, sock_connect=connect_timeout, sock_read=read_timeout)
    request_headers = {"User-Agent": user_agent, "Accept": accept, **(headers or {})}
    try:
        # The outer limit also covers DNS lookups and every redirect hop together.
        async with asyncio.timeout(total_timeout) as budget:
            connector = aiohttp.TCPConnector(resolver=resolver, use_dns_cache=False, ssl=True, limit=4)
            async with aiohttp.ClientSession(
                connector=connector, timeout=timeout, headers=request_headers, trust_env=False
            ) as session:
                return await _follow(
                    session,
                    resolver,
                    start,
                    read,
                    allow_private=allow_private,
                    max_redirects=max_redirects,
                    hop_slot=hop_slot,
                    budget=budget,
                )
    except aiohttp.ConnectionTimeoutError:
        raise FetchError(
            f"Fetching the {noun} timed out: the site did not accept a connection within {connect_timeout:g} s. "
            "Try again later."
        ) from None
    except aiohttp.SocketTimeoutError:
        raise FetchError(
            f"Fetching the {noun} timed out: the site stopped answering for {read_timeout:g} s. Try again later."
        ) from None
    except TimeoutError:
        raise FetchError(
            f"Fetching the {noun} timed out: it took longer than {total_timeout:g} s. Try again later."
        ) from None
    # HttpProcessingError: aiohttp's pure-Python parser can let one escape unwrapped mid-body.
    except (aiohttp.ClientError, http_exceptions.HttpProcessingError) as exc:
        raise _client_error(exc, _display_host(start)) from None


async def fetch_page(
    url: str,
    *,
    allow_private: bool = False,
    max_bytes: int = 5_000_000,
    connect_timeout: float = 5.0,
    read_timeout: float = 10.0,
    total_timeout: float = 20.0,
    max_redirects: int = 5,
    user_agent: str = DEFAULT_USER_AGENT,
) -> Page:
    """The HTML page at `url`, after checking every hop; FetchError says what went wrong.

    `allow_private=True` (setting ALLOW_PRIVATE_URLS) skips the address check: dangerous, it lets
    anyone who can share a link make the bot fetch intranet and cloud-metadata addresses.
    """

    async def read(response: aiohttp.ClientResponse) -> Page:
        if not 200 <= response.status < 300:
            raise _status_error(response.status)
        return await _read_page(response, max_bytes)

    return await fetch(
        url,
        read,
        accept="text/html,application/xhtml+xml;q=0.9,*/*;q=0.1",
        allow_private=allow_private,
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        total_timeout=total_timeout,
        max_redirects=max_redirects,
        user_agent=user_agent,
    )
