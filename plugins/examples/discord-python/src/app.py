"""Herald `alert-destination` component: Discord.

componentize-py looks for one class per exported interface, named after the
interface in PascalCase (`plugin` -> `Plugin`, `alerting` -> `Alerting`),
in the module given on the command line (`componentize app`). Functions
returning `result<T, E>` return T and raise `Err(E)` for the error case.
"""

import json

import discord_plugin as d
from componentize_py_types import Err
from wit_world import exports
from wit_world.exports.alerting import Alert, Delivery
from wit_world.imports import http, log, types

_LEVELS = {
    "trace": types.Level.TRACE,
    "debug": types.Level.DEBUG,
    "info": types.Level.INFO,
    "warn": types.Level.WARN,
    "error": types.Level.ERROR,
}

_METHODS = {
    "GET": http.Method.GET,
    "POST": http.Method.POST,
    "PUT": http.Method.PUT,
    "PATCH": http.Method.PATCH,
    "DELETE": http.Method.DELETE,
    "HEAD": http.Method.HEAD,
}


def _log(level, message):
    log.write(_LEVELS[level], message)


def _send(method, url, headers, body, timeout_ms):
    """The host's `http.send`, in discord_plugin's terms."""
    request = http.Request(
        method=_METHODS[method],
        url=url,
        headers=headers,
        body=body,
        timeout_ms=timeout_ms,
    )
    try:
        response = http.send(request)
    except Err as e:
        error = e.value
        if isinstance(error, http.HttpError_Timeout):
            raise d.HttpFailure("request timed out", True)
        if isinstance(error, http.HttpError_Connection):
            raise d.HttpFailure("connection failed: %s" % error.value, True)
        if isinstance(error, http.HttpError_HostNotAllowed):
            raise d.HttpFailure(
                "host not allowed: %s (add it to [plugins.discord] allowed_hosts)" % error.value,
                False,
            )
        if isinstance(error, http.HttpError_PrivateAddress):
            raise d.HttpFailure("private address refused: %s" % error.value, False)
        if isinstance(error, http.HttpError_InvalidRequest):
            raise d.HttpFailure("invalid request: %s" % error.value, False)
        if isinstance(error, http.HttpError_ResponseTooLarge):
            raise d.HttpFailure("response larger than %d bytes" % error.value, False)
        raise d.HttpFailure("http error: %r" % (error,), False)
    return response.status, response.headers, response.body


class Plugin(exports.Plugin):
    def describe(self) -> types.PluginInfo:
        return types.PluginInfo(
            name=d.NAME,
            version=d.VERSION,
            description=d.DESCRIPTION,
            config_schema=json.dumps(d.CONFIG_SCHEMA),
            secret_fields=list(d.SECRET_FIELDS),
        )

    def validate_config(self, config: str) -> None:
        _, problems = d.check_config(config)
        if problems:
            raise Err([types.ConfigError(path=p, message=m) for p, m in problems])


class Alerting(exports.Alerting):
    def deliver(self, config: str, alert: Alert) -> Delivery:
        try:
            result = d.deliver(config, alert, _send, _log)
        except d.DeliveryError as e:
            _log("warn" if e.retryable else "error", e.message)
            raise Err(
                types.PluginError(
                    message=e.message,
                    retryable=e.retryable,
                    retry_after_ms=e.retry_after_ms,
                    status_code=e.status_code,
                )
            )
        _log("info", result["summary"])
        return Delivery(
            status_code=result["status_code"],
            response_excerpt=result["response_excerpt"],
            summary=result["summary"],
        )
