"""API keys: every data endpoint and dashboard page needs one, as an ``X-API-Key`` header (API
clients) or the HttpOnly cookie ``/login`` sets (people in a browser). Each key has its own
request budget (a token bucket), so one client in a loop cannot starve the others: over it, 429
with ``Retry-After``. Budgets are per process; behind several workers each has its own."""

import hmac
import math
import threading
import time
from collections.abc import Callable

from fastapi import HTTPException, Request, Security
from fastapi.security import APIKeyCookie, APIKeyHeader

API_KEY_HEADER = "X-API-Key"
KEY_COOKIE = "sales_analytics_key"
MIN_KEY_LENGTH = 16
DEFAULT_RATE_PER_KEY = 200.0  # requests a second, sustained; bursts of twice that


class TokenBuckets:
    """One bucket per key: ``rate`` tokens a second up to ``burst``; a request takes one."""

    def __init__(self, rate: float, burst: float) -> None:
        self.rate, self.burst = rate, burst
        self._buckets: dict[int, tuple[float, float]] = {}  # key index -> (tokens, when)
        self._lock = threading.Lock()  # sync endpoints and their dependencies run in a thread pool

    def wait_for(self, key: int) -> float:
        """0 when the request may go ahead (a token taken), else the seconds until one is due."""
        now = time.monotonic()
        with self._lock:
            tokens, then = self._buckets.get(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - then) * self.rate)
            if tokens >= 1:
                self._buckets[key] = (tokens - 1, now)
                return 0.0
            self._buckets[key] = (tokens, now)
            return (1 - tokens) / self.rate


class KeyCheck:
    def __init__(self, api_keys: list[str], rate_per_key: float = DEFAULT_RATE_PER_KEY) -> None:
        if not api_keys or any(len(k) < MIN_KEY_LENGTH for k in api_keys):
            raise ValueError(f"the service needs API keys of at least {MIN_KEY_LENGTH} characters (SALES_ANALYTICS_API_KEYS)")
        self._keys = [k.encode() for k in api_keys]
        self._budgets = TokenBuckets(rate_per_key, 2 * rate_per_key)

    def _index(self, key: str | None) -> int | None:
        if key is None:
            return None
        # compare_digest against every key, no early exit: the time taken does not tell how much of a key matched
        matches = [hmac.compare_digest(key.encode(), k) for k in self._keys]
        return matches.index(True) if any(matches) else None

    def valid(self, key: str | None) -> bool:
        return self._index(key) is not None

    def admitted(self, request: Request) -> bool:
        """Whether the request carries a valid key (header or cookie); raises 429 when that key's budget is spent."""
        index = self._index(request.headers.get(API_KEY_HEADER))
        if index is None:
            index = self._index(request.cookies.get(KEY_COOKIE))
        if index is None:
            return False
        wait = self._budgets.wait_for(index)
        if wait > 0:
            raise HTTPException(status_code=429, detail="too many requests for this API key",
                                headers={"Retry-After": str(math.ceil(wait))})
        return True

    def dependency(self) -> Callable[..., None]:
        # Declared for the OpenAPI schema (how to authenticate); the check itself reads the request.
        header = APIKeyHeader(name=API_KEY_HEADER, auto_error=False)
        cookie = APIKeyCookie(name=KEY_COOKIE, auto_error=False)

        def authenticated(request: Request, _header: str | None = Security(header), _cookie: str | None = Security(cookie)) -> None:
            if not self.admitted(request):
                raise HTTPException(status_code=401, detail="missing or unknown API key",
                                    headers={"WWW-Authenticate": API_KEY_HEADER})

        return authenticated
