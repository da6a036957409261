"""API keys: every data endpoint and dashboard page needs one, as an ``X-API-Key`` header (API
clients) or the HttpOnly cookie ``/login`` sets (people in a browser)."""

import hmac
from collections.abc import Callable

from fastapi import HTTPException, Security
from fastapi.security import APIKeyCookie, APIKeyHeader

API_KEY_HEADER = "X-API-Key"
KEY_COOKIE = "sales_analytics_key"
MIN_KEY_LENGTH = 16


class KeyCheck:
    def __init__(self, api_keys: list[str]) -> None:
        if not api_keys or any(len(k) < MIN_KEY_LENGTH for k in api_keys):
            raise ValueError(f"the service needs API keys of at least {MIN_KEY_LENGTH} characters (SALES_ANALYTICS_API_KEYS)")
        self._keys = [k.encode() for k in api_keys]

    def valid(self, key: str | None) -> bool:
        if key is None:
            return False
        # compare_digest against every key, no early exit: the time taken does not tell how much of a key matched
        matches = [hmac.compare_digest(key.encode(), k) for k in self._keys]
        return any(matches)

    def dependency(self) -> Callable[..., None]:
        header = APIKeyHeader(name=API_KEY_HEADER, auto_error=False)
        cookie = APIKeyCookie(name=KEY_COOKIE, auto_error=False)

        def authenticated(from_header: str | None = Security(header), from_cookie: str | None = Security(cookie)) -> None:
            if not self.valid(from_header) and not self.valid(from_cookie):
                raise HTTPException(status_code=401, detail="missing or unknown API key",
                                    headers={"WWW-Authenticate": API_KEY_HEADER})

        return authenticated
