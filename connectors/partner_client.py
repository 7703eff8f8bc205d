"""The hub's client of one city's emergency platform, over the contract of `contracts.partner`.

Every call has explicit (connect, read) timeouts and a bound on how long reading a body may take,
and how many bytes it may hold. Failures split in three:

- transient (no connection, a timeout, a dropped connection, 5xx, 429): retried with exponential
  back-off, honouring `Retry-After` up to a cap; `PartnerTransientError` once retries run out;
- permanent (any other 4xx, a redirect, a TLS failure): `PartnerPermanentError` at once, with
  the status and an excerpt of the body, since asking again cannot help;
- a 2xx body that breaks the contract: `PartnerContractError`, a `ContractError` carrying the URL
  and the first `DEAD_LETTER_BYTES` of the body, for the hub's dead-letter record. Not retried:
  the platform would send the same bytes again.

Deliveries (POST) are retried too: the contract makes them idempotent by id, so a platform that
took the first attempt but whose answer was lost answers the repeat with the same ack.
"""

from __future__ import annotations

import email.utils
import logging
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from types import TracebackType
from typing import Literal, Self, overload
from urllib.parse import quote

import requests
from pydantic import BaseModel

from contracts.errors import ContractError, Problem
from contracts.partner import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    MAX_MESSAGE_BYTES,
    MAX_PAGE_BYTES,
    BulletinDelivery,
    DeliveryAck,
    FeedKind,
    FeedPage,
    IncidentPage,
    MeetingInvitationDelivery,
    Receipt,
    ResourcePage,
    VerificationRequestDelivery,
    WarningPage,
    decode_ack,
    decode_error,
    decode_page,
    encode,
)

logger = logging.getLogger(__name__)

DEAD_LETTER_BYTES = 64 * 1024
"""How much of a body that breaks the contract is kept for the dead-letter record."""
_EXCERPT_CHARS = 500
_CHUNK = 64 * 1024
_USER_AGENT = "huaihai-hub-partner-client/1"


class PartnerError(Exception):
    """A call to a partner platform failed; `url` says which."""

    def __init__(self, message: str, *, url: str) -> None:
        """Keep the message and the URL called."""
        super().__init__(message)
        self.url = url


class PartnerTransientError(PartnerError):
    """The platform could not be reached or answered 5xx/429, every time until retries ran out."""

    def __init__(self, message: str, *, url: str, attempts: int, status: int | None) -> None:
        """Keep how many attempts were made and the last HTTP status, if any."""
        super().__init__(message, url=url)
        self.attempts = attempts
        self.status = status


class PartnerPermanentError(PartnerError):
    """The platform refused the request (4xx, a redirect, a TLS failure); repeating cannot help."""

    def __init__(self, message: str, *, url: str, status: int | None, code: str | None, body: str) -> None:
        """Keep the status, the error code of the body if it has one, and an excerpt of it."""
        super().__init__(message, url=url)
        self.status = status
        self.code = code
        self.body = body


class PartnerContractError(PartnerError, ContractError):
    """A 2xx answer that breaks the contract; `raw` holds its first bytes for the dead letter."""

    def __init__(self, message: str, problems: tuple[Problem, ...] = (), *, url: str, raw: bytes) -> None:
        """Keep the problems, the URL and at most `DEAD_LETTER_BYTES` of the body."""
        ContractError.__init__(self, message, problems)
        self.url = url
        self.raw = raw[:DEAD_LETTER_BYTES]


# A 408 (the platform timed out reading the request) and a 429 (it asks to slow down) say "later",
# not "never" (RFC 9110, 15.5.9; RFC 6585, 4).
RETRYABLE_STATUSES = frozenset({408, 429})


def is_permanent(error: BaseException) -> bool:
    """Return whether asking again cannot help: a contract break, or a refusal other than 408/429."""
    if isinstance(error, PartnerContractError):
        return True
    if isinstance(error, PartnerPermanentError):
        return error.status not in RETRYABLE_STATUSES
    return False


class _Transient(Exception):
    """One attempt failed in a way another attempt may cure."""

    def __init__(self, reason: str, status: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.status = status
        self.retry_after = retry_after


def _contract_error(error: ContractError, url: str, raw: bytes) -> PartnerContractError:
    return PartnerContractError(f"{url}: {error}", error.problems, url=url, raw=raw)


@overload
def parse_page(
    kind: Literal[FeedKind.INCIDENTS], raw: bytes, *, url: str = "", max_bytes: int = ...
) -> IncidentPage: ...
@overload
def parse_page(
    kind: Literal[FeedKind.WARNINGS], raw: bytes, *, url: str = "", max_bytes: int = ...
) -> WarningPage: ...
@overload
def parse_page(
    kind: Literal[FeedKind.RESOURCES], raw: bytes, *, url: str = "", max_bytes: int = ...
) -> ResourcePage: ...
@overload
def parse_page(kind: FeedKind | str, raw: bytes, *, url: str = "", max_bytes: int = ...) -> FeedPage: ...
def parse_page(
    kind: FeedKind | str, raw: bytes, *, url: str = "", max_bytes: int = MAX_PAGE_BYTES
) -> FeedPage:
    """Read one page of the feed `kind`, or raise PartnerContractError."""
    try:
        return decode_page(kind, raw, max_bytes)
    except ContractError as error:
        raise _contract_error(error, url, raw) from error


def parse_ack(raw: bytes, *, url: str = "") -> DeliveryAck:
    """Read a platform's answer to a delivery, or raise PartnerContractError."""
    try:
        return decode_ack(raw)
    except ContractError as error:
        raise _contract_error(error, url, raw) from error


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Read a `Retry-After` header (seconds or an HTTP date) as seconds to wait, or None."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    # RFC 9110 §5.6.7: an HTTP date is always GMT, but a sloppy server may omit the zone.
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def _excerpt(raw: bytes) -> str:
    return raw[: _EXCERPT_CHARS * 4].decode("utf-8", "replace")[:_EXCERPT_CHARS]


class PartnerClient:
    """A client of one city platform: feeds by cursor, deliveries, receipts."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        timeout: tuple[float, float] = (3.05, 10.0),
        retries: int = 3,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        max_retry_after: float = 60.0,
        max_page_bytes: int = MAX_PAGE_BYTES,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """Prepare a client; `retries` is how many times a transient failure is tried again."""
        if not token:
            raise ValueError("a partner platform needs a bearer token")
        if retries < 0 or backoff < 0:
            raise ValueError("retries and backoff must not be negative")
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.max_retry_after = max_retry_after
        self.max_page_bytes = max_page_bytes
        # A body read slowly, one byte inside each read timeout, must not hold a worker forever.
        self.max_read_seconds = timeout[0] + 3 * timeout[1]
        self._own_session = session is None
        self._session = session or requests.Session()
        self._headers = {
            "Authorization": f"Bearer {token}",
            "Accept": "application/json",
            "User-Agent": _USER_AGENT,
        }
        self._sleep = sleep

    def __repr__(self) -> str:
        """Name the platform, never the token."""
        return f"PartnerClient({self.base_url!r})"

    def close(self) -> None:
        """Close the session if this client made it."""
        if self._own_session:
            self._session.close()

    def __enter__(self) -> Self:
        """Use the client in a `with` block that closes it."""
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Close the client."""
        self.close()

    # Feeds ------------------------------------------------------------------------------------

    @overload
    def fetch_page(
        self, kind: Literal[FeedKind.INCIDENTS], cursor: str | None, limit: int = ...
    ) -> IncidentPage: ...
    @overload
    def fetch_page(
        self, kind: Literal[FeedKind.WARNINGS], cursor: str | None, limit: int = ...
    ) -> WarningPage: ...
    @overload
    def fetch_page(
        self, kind: Literal[FeedKind.RESOURCES], cursor: str | None, limit: int = ...
    ) -> ResourcePage: ...
    @overload
    def fetch_page(self, kind: FeedKind | str, cursor: str | None, limit: int = ...) -> FeedPage: ...
    def fetch_page(self, kind: FeedKind | str, cursor: str | None, limit: int = DEFAULT_LIMIT) -> FeedPage:
        """Fetch the changes of feed `kind` after `cursor` (None: from the beginning)."""
        feed = FeedKind(kind)
        if not 1 <= limit <= MAX_LIMIT:
            raise ValueError(f"limit must be 1 to {MAX_LIMIT}, not {limit}")
        params: dict[str, str | int] = {"limit": limit}
        if cursor is not None:
            params["cursor"] = cursor
        url, raw = self._call("GET", f"/feeds/{feed.value}", params=params, max_bytes=self.max_page_bytes)
        return parse_page(feed, raw, url=url, max_bytes=self.max_page_bytes)

    @overload
    def iter_changes(
        self, kind: Literal[FeedKind.INCIDENTS], cursor: str | None, limit: int = ...
    ) -> Iterator[IncidentPage]: ...
    @overload
    def iter_changes(
        self, kind: Literal[FeedKind.WARNINGS], cursor: str | None, limit: int = ...
    ) -> Iterator[WarningPage]: ...
    @overload
    def iter_changes(
        self, kind: Literal[FeedKind.RESOURCES], cursor: str | None, limit: int = ...
    ) -> Iterator[ResourcePage]: ...
    @overload
    def iter_changes(
        self, kind: FeedKind | str, cursor: str | None, limit: int = ...
    ) -> Iterator[FeedPage]: ...
    def iter_changes(
        self, kind: FeedKind | str, cursor: str | None, limit: int = DEFAULT_LIMIT
    ) -> Iterator[FeedPage]:
        """Yield pages of changes after `cursor`, following `next_cursor` while `has_more`.

        Every page is yielded, the last one too (its `next_cursor` is where the next sync starts),
        so a consumer stores each page's rows and cursor together and can stop at any page.
        """
        while True:
            page = self.fetch_page(kind, cursor, limit)
            yield page
            if not page.has_more:
                return
            # A platform that says "more" without moving on would keep a sync busy forever.
            if page.next_cursor == cursor:
                raise PartnerContractError(
                    f"feed {FeedKind(kind).value}: has_more with the same next_cursor {cursor!r}",
                    (Problem("next_cursor", "did not move although has_more is true"),),
                    url=f"{self.base_url}/feeds/{FeedKind(kind).value}",
                    raw=encode(page),
                )
            cursor = page.next_cursor

    # Deliveries -------------------------------------------------------------------------------

    def deliver_bulletin(self, bulletin: BulletinDelivery) -> DeliveryAck:
        """Deliver a bulletin or warning; the ack carries the receipt if the platform gives it at once."""
        url, raw = self._call("POST", "/bulletins", body=encode(bulletin))
        ack = parse_ack(raw, url=url)
        if ack.receipt is not None and ack.receipt.bulletin_id != bulletin.id:
            raise PartnerContractError(
                f"{url}: the receipt is for bulletin {ack.receipt.bulletin_id}, not {bulletin.id}",
                (Problem("receipt.bulletin_id", "is not the bulletin delivered"),),
                url=url,
                raw=raw,
            )
        return ack

    def deliver_verification_request(self, request: VerificationRequestDelivery) -> DeliveryAck:
        """Deliver a verification request (核报); the answer comes to the hub later."""
        return self._deliver_without_receipt("/verification-requests", request, "a verification request")

    def deliver_meeting_invitation(self, invitation: MeetingInvitationDelivery) -> DeliveryAck:
        """Deliver a meeting invitation, its update or its cancellation; the answer comes later."""
        return self._deliver_without_receipt("/meeting-invitations", invitation, "a meeting invitation")

    def _deliver_without_receipt(self, path: str, delivery: BaseModel, what: str) -> DeliveryAck:
        """Post a delivery whose answer comes later, so its ack must not carry a receipt."""
        url, raw = self._call("POST", path, body=encode(delivery))
        ack = parse_ack(raw, url=url)
        if ack.receipt is not None:
            raise PartnerContractError(
                f"{url}: an ack of {what} carries a receipt",
                (Problem("receipt", "not allowed here"),),
                url=url,
                raw=raw,
            )
        return ack

    def send_receipt(self, receipt: Receipt) -> DeliveryAck:
        """Forward another city's receipt to the platform of the city that issued the bulletin."""
        url, raw = self._call("POST", "/receipts", body=encode(receipt))
        return parse_ack(raw, url=url)

    # Transport --------------------------------------------------------------------------------

    def _call(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str | int] | None = None,
        body: bytes | None = None,
        max_bytes: int = MAX_MESSAGE_BYTES,
    ) -> tuple[str, bytes]:
        """Make one call with retries; return the URL and the body of a 2xx answer."""
        url = self.base_url + quote(path)
        attempt = 0
        while True:
            attempt += 1
            try:
                return url, self._attempt(method, url, params, body, max_bytes)
            except _Transient as failure:
                if attempt > self.retries:
                    logger.warning("%s %s failed %d times, giving up: %s", method, url, attempt, failure)
                    raise PartnerTransientError(
                        f"{method} {url} failed {attempt} times; last: {failure}",
                        url=url,
                        attempts=attempt,
                        status=failure.status,
                    ) from failure
                delay = min(self.backoff * 2 ** (attempt - 1), self.max_backoff)
                if failure.retry_after is not None:
                    delay = min(failure.retry_after, self.max_retry_after)
                logger.info("%s %s: %s; attempt %d again in %.2f s", method, url, failure, attempt + 1, delay)
                self._sleep(delay)

    def _attempt(
        self,
        method: str,
        url: str,
        params: dict[str, str | int] | None,
        body: bytes | None,
        max_bytes: int,
    ) -> bytes:
        headers = dict(self._headers)
        if body is not None:
            headers["Content-Type"] = "application/json"
        try:
            # No redirects: a platform that moved must be reconfigured, and a redirect to
            # another host would be followed without the token anyway.
            response = self._session.request(
                method,
                url,
                params=params,
                data=body,
                headers=headers,
                timeout=self.timeout,
                allow_redirects=False,
                stream=True,
            )
        except requests.exceptions.SSLError as error:
            raise PartnerPermanentError(
                f"{method} {url}: TLS failed: {error}", url=url, status=None, code=None, body=""
            ) from error
        except (requests.ConnectionError, requests.Timeout) as error:
            raise _Transient(f"{type(error).__name__}: {error}") from error
        except requests.RequestException as error:
            raise PartnerPermanentError(
                f"{method} {url}: {error}", url=url, status=None, code=None, body=""
            ) from error
        with response:
            status = response.status_code
            if 200 <= status < 300:
                return self._read(response, url, max_bytes)
            excerpt = self._read_excerpt(response)
            if status == 429 or status >= 500:
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
                raise _Transient(f"HTTP {status}: {_excerpt(excerpt)}", status, retry_after)
            code = None
            try:
                code = decode_error(excerpt).error.code
            except ContractError:
                logger.debug("%s %s: error body %r is not the contract's shape", method, url, excerpt[:200])
            logger.warning("%s %s refused with HTTP %d (%s)", method, url, status, code)
            raise PartnerPermanentError(
                f"{method} {url}: HTTP {status}: {_excerpt(excerpt)}",
                url=url,
                status=status,
                code=code,
                body=_excerpt(excerpt),
            )

    def _read(self, response: requests.Response, url: str, max_bytes: int) -> bytes:
        """Read a body up to `max_bytes`, within the time bound; refuse a larger one."""
        deadline = time.monotonic() + self.max_read_seconds
        chunks: list[bytes] = []
        size = 0
        try:
            # urllib3 2 yields at most _CHUNK decoded bytes a step, so a gzip bomb is cut short too.
            for chunk in response.iter_content(_CHUNK):
                chunks.append(chunk)
                size += len(chunk)
                if size > max_bytes:
                    raw = b"".join(chunks)
                    raise PartnerContractError(
                        f"{url}: the body is larger than the limit of {max_bytes} bytes",
                        (Problem("", f"larger than {max_bytes} bytes"),),
                        url=url,
                        raw=raw,
                    )
                if time.monotonic() > deadline:
                    raise _Transient(f"reading the body took more than {self.max_read_seconds:.1f} s")
        except (
            requests.ConnectionError,
            requests.Timeout,
            requests.exceptions.ChunkedEncodingError,
        ) as error:
            raise _Transient(f"reading the body failed: {error}") from error
        return b"".join(chunks)

    def _read_excerpt(self, response: requests.Response) -> bytes:
        """Read the start of an error body, best effort: the status already says what matters."""
        try:
            return response.raw.read(_EXCERPT_CHARS * 4, decode_content=True) or b""
        # urllib3's own errors (a timeout, a broken chunk) are not requests' or OSError; whichever
        # it is, the excerpt is only for the log and the error message.
        except Exception as error:
            logger.debug("could not read the error body: %s", error)
            return b""
