"""Redact credentials from RPC URLs before they reach a log line or a metric label.

WHY: paid Solana RPC providers put the API key in the URL itself, in one of three places:
the query (`?api-key=...` Helius, `?token=`), the path (`/v2/<key>` Alchemy, `/<token>/` QuickNode,
Triton `rpcpool.com/<token>`), or the userinfo (`https://user:pass@host`). A service that logs its
endpoint at start-up and on every reconnect would otherwise leak the key into log storage.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

MASK = "***"
_SECRET_QUERY = re.compile(r"(api[-_]?key|key|token|auth|secret|access[-_]?token|password|apikey)", re.I)
# A path segment that looks like a credential: long, and made of key-ish characters with a digit.
_SECRET_SEGMENT = re.compile(r"^(?=.*\d)[A-Za-z0-9_\-]{16,}$")


def redact_url(url: str) -> str:
    """Return `url` with passwords, secret-looking query values and key-like path segments masked."""
    if not url:
        return url
    try:
        parts = urlsplit(url)
    except ValueError:
        return MASK
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:{MASK}@{host}" if ":" in userinfo else f"{MASK}@{host}"
    segments = [MASK if _SECRET_SEGMENT.match(seg) else seg for seg in parts.path.split("/")]
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode([(k, MASK if _SECRET_QUERY.search(k) else v) for k, v in pairs], safe="*")
    return urlunsplit((parts.scheme, netloc, "/".join(segments), query, parts.fragment))
