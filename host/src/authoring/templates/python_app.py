"""{{name}}: a Herald alert destination, in Python.

Posts {"text": <the alert's message>, "alert": <Braintrust's payload>} to
`url`, with `Authorization: Bearer <token>` when a token is set. 2xx is
delivered; 408, 429 and 5xx are retried by the daemon; anything else fails
for good.

componentize-py finds one class per exported interface, named after it
(`plugin` -> Plugin, `alerting` -> Alerting). A function returning
result<T, E> returns T, or raises Err(E).
"""

import json

from componentize_py_types import Err
from wit_world import exports
from wit_world.exports.alerting import Alert, Delivery
from wit_world.imports import http, log, types

NAME = "{{name}}"
SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["url"],
    "properties": {
        "url": {"type": "string", "format": "uri", "description": "Where to post."},
        "token": {"type": "string", "description": "Bearer token (secret)."},
    },
}


def _problems(config):
    if not isinstance(config, dict):
        return [("", "must be a JSON object")]
    problems = [("/" + k, "unknown field") for k in config if k not in SCHEMA["properties"]]
    url = config.get("url")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        problems.append(("/url", "must be an http:// or https:// URL"))
    if "token" in config and not isinstance(config["token"], str):
        problems.append(("/token", "must be a string"))
    return problems


class Plugin(exports.Plugin):
    def describe(self) -> types.PluginInfo:
        return types.PluginInfo(
            name=NAME,
            version="0.1.0",
            description="Posts each alert to a URL as JSON.",
            config_schema=json.dumps(SCHEMA),
            secret_fields=["/token"],
        )

    def validate_config(self, config: str) -> None:
        try:
            problems = _problems(json.loads(config))
        except ValueError as e:
            problems = [("", "not JSON: %s" % e)]
        if problems:
            raise Err([types.ConfigError(path=p, message=m) for p, m in problems])


def _fail(message, retryable, retry_after_ms=None, status_code=None):
    log.write(types.Level.WARN if retryable else types.Level.ERROR, message)
    raise Err(
        types.PluginError(
            message=message,
            retryable=retryable,
            retry_after_ms=retry_after_ms,
            status_code=status_code,
        )
    )


class Alerting(exports.Alerting):
    def deliver(self, config: str, alert: Alert) -> Delivery:
        config = json.loads(config)
        payload = json.loads(alert.payload)
        text = (payload.get("details") or {}).get("message") or "Herald alert"
        headers = [("content-type", "application/json"), ("idempotency-key", alert.event_id)]
        if config.get("token"):
            headers.append(("authorization", "Bearer " + config["token"]))
        request = http.Request(
            method=http.Method.POST,
            url=config["url"],
            headers=headers,
            body=json.dumps({"text": text, "alert": payload}).encode(),
            timeout_ms=None,
        )
        try:
            response = http.send(request)
        except Err as e:
            error = e.value
            retryable = isinstance(error, (http.HttpError_Timeout, http.HttpError_Connection))
            _fail("could not reach %s: %r" % (config["url"], error), retryable)
        excerpt = bytes(response.body[:512]).decode("utf-8", "replace")
        if 200 <= response.status < 300:
            log.write(types.Level.INFO, "delivered to %s" % config["url"])
            return Delivery(
                status_code=response.status,
                response_excerpt=excerpt,
                summary="delivered to %s (%d)" % (config["url"], response.status),
            )
        retryable = response.status in (408, 429) or response.status >= 500
        _fail(
            "%s answered %d: %s" % (config["url"], response.status, excerpt),
            retryable,
            status_code=response.status,
        )
