"""Discord incoming-webhook destination for Herald: the plugin's logic.

Pure Python with no dependency on the generated bindings, so it can be unit
tested on CPython: `deliver` takes the HTTP `send` function as an argument
(app.py passes a thin wrapper around the host's `http.send` import).

Discord's webhook API (https://discord.com/developers/docs/resources/webhook):
POST JSON to the webhook URL; 204 No Content (or 200 with `?wait=true`) is
success; 429 carries `retry_after` (seconds, float) in its JSON body and a
`Retry-After` header; 5xx is worth retrying; every other 4xx is final
(404 + code 10015 "Unknown Webhook" = the webhook was deleted, 400 + code
50035 "Invalid Form Body" = we sent something Discord refuses).
"""

import json
import math
import re
from urllib.parse import urlsplit

NAME = "discord"
VERSION = "0.1.0"
DESCRIPTION = (
    "Posts the alert to a Discord channel through an incoming webhook, as a "
    "short message with an embed (counts, time window, links)."
)

# Hosts that serve Discord webhooks. A URL on another host is accepted too
# (self-hosted relays/proxies speaking Discord's webhook API); the operator's
# per-plugin `allowed_hosts` decides what is actually reachable.
DISCORD_HOSTS = ("discord.com", "discordapp.com", "ptb.discord.com", "canary.discord.com")
DISCORD_PATH = re.compile(r"^/api(/v\d+)?/webhooks/\d{15,25}/[A-Za-z0-9_\-]{20,}/?$")
MENTION = re.compile(r"^(@everyone|@here|<@!?(\d{15,25})>|<@&(\d{15,25})>)$")
SNOWFLAKE = re.compile(r"^\d{15,25}$")

CONFIG_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["webhook_url"],
    "additionalProperties": False,
    "properties": {
        "webhook_url": {
            "type": "string",
            "format": "uri",
            "description": "The channel's incoming webhook URL, "
            "https://discord.com/api/webhooks/<id>/<token>. It is the credential: "
            "secret, redacted on read.",
        },
        "username": {
            "type": "string",
            "minLength": 1,
            "maxLength": 80,
            "description": "Overrides the webhook's display name.",
        },
        "avatar_url": {
            "type": "string",
            "format": "uri",
            "description": "Overrides the webhook's avatar (https:// image URL).",
        },
        "mention": {
            "type": "string",
            "description": "Mentions to ping, space-separated: <@&role_id>, <@user_id>, "
            "@here or @everyone. Without it the message pings nobody.",
        },
        "thread_id": {
            "type": "string",
            "pattern": "^[0-9]{15,25}$",
            "description": "Post into this thread of the webhook's channel (forum channels).",
        },
        "timeout_ms": {
            "type": "integer",
            "minimum": 100,
            "maximum": 60000,
            "description": "Request timeout (the operator's cap still applies).",
        },
    },
}

SECRET_FIELDS = ["/webhook_url"]

COLOR_ALERT = 0xE74C3C  # red
COLOR_ENV = 0x3498DB  # blue
COLOR_TEST = 0x95A5A6  # grey


class ConfigProblem(Exception):
    pass


class DeliveryError(Exception):
    """A failed delivery: maps onto WIT `plugin-error`."""

    def __init__(self, message, retryable, retry_after_ms=None, status_code=None):
        super().__init__(message)
        self.message = message
        self.retryable = retryable
        self.retry_after_ms = retry_after_ms
        self.status_code = status_code


class HttpFailure(Exception):
    """The host's http capability returned no response (WIT `http-error`)."""

    def __init__(self, message, retryable):
        super().__init__(message)
        self.message = message
        self.retryable = retryable


# ---------------------------------------------------------------- config ---


def _ptr(field):
    return "/" + field.replace("~", "~0").replace("/", "~1")


def check_config(text):
    """Returns (config dict, problems) where problems is a list of
    (json pointer, message). Every problem is reported, not just the first."""
    try:
        config = json.loads(text)
    except ValueError as e:
        return None, [("", "is not valid JSON: %s" % e)]
    if not isinstance(config, dict):
        return None, [("", "must be a JSON object")]
    problems = []
    known = CONFIG_SCHEMA["properties"]
    for key in config:
        if key not in known:
            problems.append((_ptr(key), "unknown field (expected one of: %s)" % ", ".join(known)))

    url = config.get("webhook_url")
    if url is None:
        problems.append(("/webhook_url", "is required"))
    elif not isinstance(url, str):
        problems.append(("/webhook_url", "must be a string"))
    else:
        problem = _url_problem(url)
        if problem:
            problems.append(("/webhook_url", problem))

    username = config.get("username")
    if username is not None:
        if not isinstance(username, str) or not (1 <= len(username.strip()) <= 80):
            problems.append(("/username", "must be a string of 1 to 80 characters"))
        elif any(w in username.lower() for w in ("clyde", "discord")):
            # Discord refuses these names with a 400.
            problems.append(("/username", "may not contain \"clyde\" or \"discord\" (Discord refuses it)"))

    avatar = config.get("avatar_url")
    if avatar is not None and (not isinstance(avatar, str) or not avatar.startswith("https://")):
        problems.append(("/avatar_url", "must be an https:// URL"))

    mention = config.get("mention")
    if mention is not None:
        if not isinstance(mention, str) or not mention.strip():
            problems.append(("/mention", "must be a non-empty string"))
        else:
            bad = [m for m in mention.split() if not MENTION.match(m)]
            if bad:
                problems.append(
                    ("/mention", "%s is not <@&role_id>, <@user_id>, @here or @everyone" % bad[0])
                )

    thread = config.get("thread_id")
    if thread is not None and (not isinstance(thread, str) or not SNOWFLAKE.match(thread)):
        problems.append(("/thread_id", "must be a Discord id (digits, as a string)"))

    timeout = config.get("timeout_ms")
    if timeout is not None and (
        isinstance(timeout, bool) or not isinstance(timeout, int) or not 100 <= timeout <= 60000
    ):
        problems.append(("/timeout_ms", "must be an integer between 100 and 60000"))
    return config, problems


def _url_problem(url):
    # Never echo the URL itself: it holds the webhook token.
    try:
        parts = urlsplit(url)
    except ValueError:
        return "is not a valid URL"
    if parts.scheme not in ("https", "http") or not parts.hostname:
        return "must be an https:// URL (https://discord.com/api/webhooks/<id>/<token>)"
    host = parts.hostname.lower()
    if host in DISCORD_HOSTS:
        if parts.scheme != "https":
            return "must use https:// for Discord"
        if not DISCORD_PATH.match(parts.path):
            return "is not a Discord webhook URL (expected https://discord.com/api/webhooks/<id>/<token>)"
        if parts.query or parts.fragment:
            return "must not carry a query or fragment (use thread_id for threads)"
    return None


def host_of(url):
    try:
        return (urlsplit(url).hostname or "discord").lower()
    except ValueError:
        return "discord"


# --------------------------------------------------------------- message ---


def _clip(text, limit):
    text = "" if text is None else str(text)
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def _absolute(url):
    return isinstance(url, str) and (url.startswith("https://") or url.startswith("http://"))


def _escape(text):
    # Automation/project names are user input: keep them from forming markdown
    # links or mass mentions inside Discord's rendering.
    return re.sub(r"([\\*_~`|>\[\]()])", r"\\\1", str(text)).replace("@", "@\u200b")


def build_message(config, alert):
    """The Discord webhook body for `alert` (an object with event_id,
    event_type, payload (JSON text), is_test, attempt)."""
    try:
        payload = json.loads(alert.payload)
    except ValueError as e:
        raise DeliveryError("alert payload is not JSON: %s" % e, retryable=False)
    if not isinstance(payload, dict):
        raise DeliveryError("alert payload is not a JSON object", retryable=False)
    project = payload.get("project") or {}
    automation = payload.get("automation") or {}
    details = payload.get("details") or {}
    org = payload.get("organization") or {}
    is_test = bool(alert.is_test or details.get("is_test"))
    event_type = automation.get("event_type") or alert.event_type

    project_name = project.get("name") or project.get("id") or "?"
    auto_name = automation.get("name") or "automation"
    message = details.get("message") or "%s fired" % auto_name

    prefix = "[TEST] " if is_test else ""
    title = _clip("%s%s \u2014 %s" % (prefix, auto_name, project_name), 256)

    fields = []

    def field(name, value, inline=True):
        if value is None or value == "":
            return
        fields.append({"name": _clip(name, 256), "value": _clip(value, 1024), "inline": inline})

    if event_type == "logs":
        color = COLOR_ALERT
        field("Matching logs", str(details.get("count", "?")))
        if details.get("time_start") or details.get("time_end"):
            field("Window", "%s \u2192 %s" % (details.get("time_start", "?"), details.get("time_end", "?")), inline=False)
        flt = automation.get("btql_filter")
        if flt:
            field("Filter", "`%s`" % _clip(str(flt).replace("`", "'"), 1000), inline=False)
    else:
        color = COLOR_ENV
        env = (details.get("environment") or {}).get("slug")
        prompt = (details.get("prompt") or {}).get("slug")
        field("Environment", env)
        field("Prompt", prompt)
        if details.get("new_version") is not None:
            field("Version", str(details.get("new_version")))
        field("Action", details.get("action"))
    if is_test:
        color = COLOR_TEST
    field("Project", project_name)
    if org.get("name"):
        field("Organization", org.get("name"))

    embed = {
        "title": title,
        "description": _clip(_escape(message), 4096),
        "color": color,
        "fields": fields[:25],
        "footer": {"text": _clip("Herald \u00b7 %s \u00b7 event %s" % (event_type, alert.event_id), 2048)},
    }
    # Discord rejects the whole message (400) for a relative embed URL, so
    # links are used only when Herald has a public_base_url.
    related = details.get("related_logs_url")
    link = related if _absolute(related) else automation.get("url")
    if _absolute(link):
        embed["url"] = link
    if _absolute(related):
        field("Logs", "[open matching logs](%s)" % related, inline=False)
        embed["fields"] = fields[:25]
    ts = details.get("time_end")
    if isinstance(ts, str) and re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", ts):
        embed["timestamp"] = ts

    mention = (config.get("mention") or "").split()
    content = "%s**%s**: %s" % (prefix, _escape(auto_name), _escape(message))
    if mention:
        content = " ".join(mention) + " " + content
    body = {
        "content": _clip(content, 2000),
        "embeds": [embed],
        "allowed_mentions": _allowed_mentions(mention),
    }
    if config.get("username"):
        body["username"] = config["username"]
    if config.get("avatar_url"):
        body["avatar_url"] = config["avatar_url"]
    return body


def _allowed_mentions(mentions):
    """Only the configured mentions may ping: alert text never can."""
    allowed = {"parse": []}
    users, roles = [], []
    for m in mentions:
        match = MENTION.match(m)
        if not match:
            continue
        if match.group(1) in ("@everyone", "@here"):
            if "everyone" not in allowed["parse"]:
                allowed["parse"].append("everyone")
        elif match.group(2):
            users.append(match.group(2))
        elif match.group(3):
            roles.append(match.group(3))
    if users:
        allowed["users"] = users
    if roles:
        allowed["roles"] = roles
    return allowed


# -------------------------------------------------------------- delivery ---


def target_url(config):
    url = config["webhook_url"]
    if config.get("thread_id"):
        url += ("&" if "?" in url else "?") + "thread_id=" + config["thread_id"]
    return url


def classify(status, headers, body, target):
    """Maps Discord's answer onto (delivery dict) or raises DeliveryError."""
    text = body.decode("utf-8", "replace") if isinstance(body, (bytes, bytearray)) else str(body or "")
    excerpt = text[:512]
    if status in (200, 204):
        return {
            "status_code": status,
            "response_excerpt": excerpt or None,
            "summary": "delivered to %s (%d)" % (target, status),
        }
    info = {}
    try:
        info = json.loads(text) if text.strip() else {}
    except ValueError:
        info = {}
    if not isinstance(info, dict):
        info = {}
    detail = info.get("message") or excerpt.strip() or "no body"
    if info.get("code") is not None:
        detail = "%s (code %s)" % (detail, info.get("code"))
    if info.get("errors"):
        detail += ": " + _clip(json.dumps(info["errors"], separators=(",", ":")), 300)
    message = "Discord (%s) answered %d: %s" % (target, status, detail)
    if status == 429:
        return _raise(DeliveryError(message, True, retry_after_ms(headers, info), status))
    if 500 <= status <= 599 or status == 408:
        return _raise(DeliveryError(message, True, retry_after_ms(headers, info), status))
    if 200 <= status < 300:
        # Some other 2xx: Discord took it.
        return {
            "status_code": status,
            "response_excerpt": excerpt or None,
            "summary": "delivered to %s (%d)" % (target, status),
        }
    return _raise(DeliveryError(message, False, None, status))


def _raise(error):
    raise error


def retry_after_ms(headers, info):
    """Discord's JSON `retry_after` (seconds, may be fractional) wins over
    the `Retry-After` header (whole seconds)."""
    value = info.get("retry_after") if isinstance(info, dict) else None
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0:
        return int(math.ceil(value * 1000))
    for name, val in headers or []:
        if name.lower() in ("retry-after", "x-ratelimit-reset-after"):
            try:
                return int(math.ceil(float(val.strip()) * 1000))
            except ValueError:
                continue
    return None


def deliver(config_text, alert, send, log=None):
    """Delivers one alert. `send(method, url, headers, body, timeout_ms)`
    returns (status, headers, body) or raises HttpFailure. Returns a delivery
    dict or raises DeliveryError."""
    config, problems = check_config(config_text)
    if problems:
        path, msg = problems[0]
        raise DeliveryError("invalid config: %s %s" % (path or "(config)", msg), retryable=False)
    body = build_message(config, alert)
    target = host_of(config["webhook_url"])
    data = json.dumps(body, separators=(",", ":")).encode("utf-8")
    headers = [
        ("content-type", "application/json"),
        ("user-agent", "herald-discord/%s" % VERSION),
    ]
    try:
        status, resp_headers, resp_body = send(
            "POST", target_url(config), headers, data, config.get("timeout_ms")
        )
    except HttpFailure as e:
        raise DeliveryError("Discord (%s): %s" % (target, e.message), e.retryable)
    if log:
        log("debug", "%s answered %d" % (target, status))
    return classify(status, resp_headers, resp_body, target)
