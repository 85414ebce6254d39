"""URLs that can carry a secret (a study storage, a board's address, any later one), shown without it.

Parsing is the standard library's ``urllib.parse`` (``urlsplit``, ``parse_qsl``), not a pattern of edgeopt's:
the user information is everything before the netloc's *last* ``@``, the password everything after its first
``:``, so an empty user, ``/``, ``@`` or ``:`` in a password and percent-encoding all mask alike. What no library
does, and this module does: mask query values whose key names a secret (``?password=``), show an unparseable URL
as its scheme only, and scrub the secrets of known URLs (or of any URL found in a text) from messages that other
code (SQLAlchemy, pydantic) wrote.
"""
from __future__ import annotations

import re
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

MASK = "***"
_SECRET_KEY = re.compile(r"pass|pwd|secret|token|key|auth|cred|sig", re.I)
# where a URL may start in free text: a scheme, then ://; the URL itself is then parsed by urlsplit
_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s'\"<>]+")


def _split(url: str):
    u = urlsplit(url)
    u.port  # noqa: B018 -- raises ValueError on a port that is not a number
    return u


def secrets_of(url: str) -> list[str]:
    """The secret parts of ``url`` as they may appear in text: the password (as written and decoded), a user name
    that decodes to ``user:password``, and the values of query keys that name a secret."""
    try:
        u = _split(url)
    except ValueError:  # unparseable: all of it is secret when it looks as if it held a password
        rest = url.partition("://")[2]
        return [url] if ":" in rest.rpartition("@")[0] or "?" in rest else []
    found = []
    userinfo = u.netloc.rpartition("@")[0] if "@" in u.netloc else ""
    if userinfo:
        user, sep, pw = userinfo.partition(":")
        if sep and pw:
            found += [pw, unquote(pw)]
        elif ":" in unquote(user):  # user%3Apassword
            found += [user, unquote(user), unquote(user).partition(":")[2]]
    for k, v in parse_qsl(u.query, keep_blank_values=True):
        if v and _SECRET_KEY.search(k):
            found += [v, quote(v, safe=""), quote(v)]
    # the pieces of a password that holds '@', ':' or '/' (a parser elsewhere may have split it there)
    found += [piece for s in list(found) for piece in re.split(r"[@:/]", s) if len(piece) >= 4]
    return sorted({s for s in found if s}, key=len, reverse=True)


def mask(url: str) -> str:
    """``url`` with its password and secret query values replaced by ``***`` (for messages, plans, manifests and
    reports). A URL the parser refuses is shown as its scheme only."""
    if not secrets_of(url):
        return url  # nothing to hide: shown exactly as written
    try:
        u = _split(url)
    except ValueError:
        scheme = url.partition("://")[0] if "://" in url else ""
        return f"{scheme}://<not shown: not a valid URL>" if re.fullmatch(r"[A-Za-z][\w+.\-]*", scheme) else \
            "<not shown: not a valid URL>"
    netloc = u.netloc
    if "@" in netloc:
        userinfo, _, hostport = netloc.rpartition("@")
        user, sep, pw = userinfo.partition(":")
        if ":" in unquote(user):
            user, sep = unquote(user).partition(":")[0], ":"
        netloc = f"{user}{':' + MASK if sep else ''}@{hostport}"
    query = u.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode([(k, MASK if v and _SECRET_KEY.search(k) else v) for k, v in pairs], safe="*")
    # put together by hand: urlunsplit drops the // of schemes it does not know to have a host (sqlite://)
    return (f"{u.scheme}:" + ("//" if "://" in url else "") + netloc + u.path + (f"?{query}" if query else "")
            + (f"#{u.fragment}" if u.fragment else ""))


def scrub(text: str, *urls: str) -> str:
    """``text`` with every secret of ``urls``, and of any URL written in it, replaced by ``***``."""
    text = str(text)
    for found in _URL_IN_TEXT.findall(text):
        if secrets_of(found):
            text = text.replace(found, mask(found))
    for url in urls:
        if url:
            for s in secrets_of(url):
                text = text.replace(s, MASK)
    return text


def has_password(url: str) -> bool:
    """Whether ``url`` carries a secret (a password in any form, or a secret query value)."""
    return bool(secrets_of(url))


def ssh_url_problem(url: str):
    """Why ``url`` is not ``ssh://user@host[:port]`` (None when it is), checked in this order: ``"unparseable:
    <why>"``, ``"form"`` (another scheme, no host, a path, query or fragment, a space), ``"password"``, ``"user"``
    (none). One rule for a target file's ``device.remote.url`` and ``--remote``."""
    try:
        u = _split(url)
    except ValueError as e:
        return f"unparseable: {e}"
    if u.scheme != "ssh" or not u.hostname or u.path not in ("", "/") or u.query or u.fragment \
            or any(c.isspace() for c in url):
        return "form"
    if u.password is not None:
        return "password"
    if not u.username:
        return "user"
    return None
