"""Secrets a server echoes never become an exception message, a problem entry or a log line."""

from __future__ import annotations

import logging
import secrets
from collections.abc import AsyncIterator
from urllib.parse import quote

import aiohttp
import pytest
from aiohttp import web
from temporalio.exceptions import ApplicationError

from activities.errors import temporal_errors
from notion_sync import observability
from notion_sync.notion.budget import RequestBudget
from notion_sync.notion.errors import NotionRejected, ObjectRejected
from notion_sync.notion.gateway import NotionGateway


def _custom_token() -> str:
    """A token of no known shape (a proxy's, a test's): only its registration can mask it."""
    return f'k3y/{secrets.token_hex(8)}+"x"'


def test_a_registered_secret_is_masked_as_sent_url_encoded_and_json_escaped() -> None:
    token = _custom_token()
    observability.register_secret(token)
    escaped = token.replace('"', '\\"')
    for text in (token, quote(token, safe=""), escaped, f"Bearer {token}"):
        assert token not in observability.redact(f"echo: {text}")
        assert "[redacted]" in observability.redact(f"echo: {text}")
    assert quote(token, safe="") not in observability.redact(quote(token, safe=""))


def test_the_filter_masks_records_of_loggers_we_do_not_format(caplog: pytest.LogCaptureFixture) -> None:
    token = _custom_token()
    observability.register_secret(token)
    logger = logging.getLogger("tests.redaction.library")
    logger.addFilter(observability.RedactingFilter())
    with caplog.at_level(logging.DEBUG, logger=logger.name):
        logger.warning("request fail: message=%s", token)
        try:
            raise ValueError(f"echoed {token}")
        except ValueError:
            logger.exception("failed")
    assert token not in caplog.text
    assert "[redacted]" in caplog.text and "ValueError, text withheld" in caplog.text


async def test_activity_errors_are_redacted_whatever_raised_them() -> None:
    token = _custom_token()
    observability.register_secret(token)
    for error in (NotionRejected(f"400: {token}"), KeyError(token), ObjectRejected("p", f"400 {token}")):
        with pytest.raises(ApplicationError) as raised, temporal_errors():
            raise error
        assert token not in str(raised.value) and raised.value.type == type(error).__name__
        assert raised.value.__cause__ is None


@pytest.fixture
async def echoing_server() -> AsyncIterator[str]:
    """A gateway in front of Notion that answers every request with a 400 echoing its headers."""

    async def echo(request: web.Request) -> web.Response:
        authorization = request.headers.get("Authorization", "")
        token = authorization.removeprefix("Bearer ")
        body = {
            "object": "error",
            "status": 400,
            "code": "validation_error",
            "message": f"refused {request.path}: authorization={authorization} raw={token}",
        }
        return web.json_response(body, status=400)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", echo)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


async def test_an_echoed_token_stays_out_of_errors_and_logs(
    echoing_server: str, caplog: pytest.LogCaptureFixture
) -> None:
    # Not registered anywhere beforehand: the gateway masks the token it holds itself.
    token = f"plain-{secrets.token_hex(10)}"
    caplog.set_level(logging.DEBUG)
    async with aiohttp.ClientSession() as session:
        gateway = NotionGateway(token, echoing_server, RequestBudget(None, 0, 1), session)
        try:
            with pytest.raises(ObjectRejected) as one_page:
                await gateway.page("59833787-2cf9-4fdf-8782-e53db20768a5")
            with pytest.raises(NotionRejected) as listing:
                await gateway.search("page", None)
        finally:
            await gateway.aclose()
    texts = [str(one_page.value), one_page.value.reason, str(listing.value), caplog.text]
    assert all(token not in text for text in texts)
    assert "400 validation_error" in one_page.value.reason and "[redacted]" in one_page.value.reason
    # notion-client's own warning about the failed request is not even emitted.
    assert not any(record.name.startswith("notion_client") for record in caplog.records)
    assert not logging.getLogger("notion_sync.notion.sdk").isEnabledFor(logging.WARNING)
