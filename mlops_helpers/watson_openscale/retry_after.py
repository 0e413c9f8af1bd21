"""Answer IBM Cloud's rate limiting the way it asks: a 429 names in ``Retry-After`` how many
seconds to wait; the request is sent again after that wait, a bounded number of times.

Neither client does it by itself: ibm-watsonx-ai 1.8.1 retries 401/5xx but not 429
(``_wrappers/httpx/retry_transport/factories.py``, ``TRANSPORT_STATUS_FORCELIST``), and
ibm-cloud-sdk-core 3.25.0 (under ibm-watson-openscale) retries only after
``enable_retries()``, which would also resend a POST that failed with a 500. A 429 means the
request was not processed, so sending it again is safe for every method; other statuses are
left to the clients. A ``Retry-After`` longer than ``max_wait`` is not waited for: the 429
reaches the caller, whose message names it.
"""

from __future__ import annotations

import email.utils
import time
from typing import Any

from mlops_helpers.waiting import pause

TOO_MANY_REQUESTS = 429


def seconds_to_wait(value: str | None) -> float | None:
    """``Retry-After`` as seconds: delay-seconds or an HTTP date (RFC 9110, 10.2.3)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def retrying_httpx_transport(inner: Any, retries: int, max_wait: float) -> Any:
    """An httpx transport that resends a request answered 429, after its Retry-After."""
    import httpx

    class RetryAfterTransport(httpx.BaseTransport):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            request.read()  # a body that can be sent again
            for attempt in range(retries + 1):
                response = inner.handle_request(request)
                if response.status_code != TOO_MANY_REQUESTS or attempt == retries:
                    return response
                wait = seconds_to_wait(response.headers.get("Retry-After"))
                wait = 1.0 if wait is None else wait
                if wait > max_wait:
                    return response
                response.close()
                pause(wait)
            raise AssertionError("unreachable")  # pragma: no cover

        def close(self) -> None:
            inner.close()

    return RetryAfterTransport()


def retry_after_httpx(client: Any, retries: int, max_wait: float) -> None:
    """Put the retry in front of every transport of an ``httpx.Client`` the SDK built
    (its own, with its certificate and proxy settings, stays underneath)."""
    client._transport = retrying_httpx_transport(client._transport, retries, max_wait)
    for pattern, transport in list(client._mounts.items()):
        if transport is not None:
            client._mounts[pattern] = retrying_httpx_transport(transport, retries, max_wait)


def retry_after_requests(service: Any, retries: int, max_wait: float) -> None:
    """The same for an ibm-cloud-sdk-core ``BaseService`` (a requests session): urllib3's
    own Retry, for 429 only, honouring Retry-After up to ``max_wait``."""
    from ibm_cloud_sdk_core.http_adapter import SSLHTTPAdapter
    from urllib3.exceptions import MaxRetryError
    from urllib3.util.retry import Retry

    class RetryAfter(Retry):
        def increment(  # type: ignore[override]
            self,
            method: str | None = None,
            url: str | None = None,
            response: Any = None,
            error: Exception | None = None,
            _pool: Any = None,
            _stacktrace: Any = None,
        ) -> Retry:
            if response is not None:
                wait = seconds_to_wait(response.headers.get("Retry-After"))
                if wait is not None and wait > max_wait:
                    raise MaxRetryError(_pool, url or "", None)
            return super().increment(method, url, response, error, _pool, _stacktrace)

    policy = RetryAfter(
        total=retries,
        connect=0,
        read=0,
        status=retries,
        status_forcelist=[TOO_MANY_REQUESTS],
        allowed_methods=None,  # every method: a 429 was not processed
        respect_retry_after_header=True,
        raise_on_status=False,  # the last 429 reaches the SDK, which raises its error
        backoff_factor=0.5,
    )
    adapter = SSLHTTPAdapter(
        max_retries=policy, _disable_ssl_verification=service.disable_ssl_verification
    )
    service.http_client.mount("https://", adapter)
    service.http_client.mount("http://", adapter)
