"""Unit tests of discord_plugin on CPython (no component needed):
cd tests && PYTHONPATH=../src python3 -m unittest -v test_discord_plugin"""

import json
import unittest
from types import SimpleNamespace

import discord_plugin as d

URL = "https://discord.com/api/webhooks/123456789012345678/abcdefghijklmnopqrstuvwxyz_ABC-123"

PAYLOAD = {
    "organization": {"id": "herald", "name": "herald"},
    "project": {"id": "p1", "name": "chatbot"},
    "automation": {
        "id": "a1", "name": "errors in prod", "description": "", "event_type": "logs",
        "btql_filter": "error IS NOT NULL", "interval_seconds": 600,
        "url": "https://herald.example.com/v1/project_automation/a1",
    },
    "details": {
        "is_test": False, "message": "errors in prod: 3 logs matched in the last 14 seconds",
        "time_start": "2026-11-24T10:00:00.000000Z", "time_end": "2026-11-24T10:00:14.000000Z",
        "count": 3, "related_logs_url": "https://herald.example.com/v1/project_logs/p1/fetch?cursor=1",
    },
}


def alert(payload=PAYLOAD, is_test=False):
    return SimpleNamespace(event_id="evt_1", event_type="logs", payload=json.dumps(payload),
                           is_test=is_test, attempt=1)


def cfg(**kw):
    c = {"webhook_url": URL}
    c.update(kw)
    return json.dumps(c)


class Config(unittest.TestCase):
    def test_ok(self):
        self.assertEqual(d.check_config(cfg(username="Herald", mention="<@&123456789012345678> @here"))[1], [])

    def test_problems_have_pointers(self):
        _, p = d.check_config(json.dumps({"usernme": "x", "mention": "@all", "timeout_ms": 5}))
        paths = [x[0] for x in p]
        self.assertEqual(paths, ["/usernme", "/webhook_url", "/mention", "/timeout_ms"])

    def test_bad_discord_url(self):
        _, p = d.check_config(json.dumps({"webhook_url": "https://discord.com/channels/1/2"}))
        self.assertEqual(p[0][0], "/webhook_url")
        self.assertNotIn("channels", p[0][1])  # never echo the URL
        _, p = d.check_config(json.dumps({"webhook_url": "http://discord.com/api/webhooks/123456789012345678/abcdefghijklmnopqrstuvwxyz"}))
        self.assertIn("https", p[0][1])
        _, p = d.check_config(json.dumps({"webhook_url": "ftp://x"}))
        self.assertEqual(p[0][0], "/webhook_url")

    def test_proxy_url_allowed(self):
        self.assertEqual(d.check_config(json.dumps({"webhook_url": "http://127.0.0.1:9/hook"}))[1], [])

    def test_not_object(self):
        self.assertEqual(d.check_config("[]")[1][0][0], "")
        self.assertEqual(d.check_config("{")[1][0][0], "")


class Deliver(unittest.TestCase):
    def run_with(self, status, body=b"", headers=(), **kw):
        seen = {}

        def send(method, url, hdrs, data, timeout):
            seen.update(method=method, url=url, body=json.loads(data))
            return status, list(headers), body

        return seen, (lambda: d.deliver(cfg(**kw), alert(), send))

    def test_204(self):
        seen, go = self.run_with(204, mention="<@&123456789012345678>", thread_id="223456789012345678")
        r = go()
        self.assertEqual(r["status_code"], 204)
        self.assertEqual(r["summary"], "delivered to discord.com (204)")
        self.assertTrue(seen["url"].endswith("?thread_id=223456789012345678"))
        b = seen["body"]
        self.assertTrue(b["content"].startswith("<@&123456789012345678> **errors in prod**"))
        self.assertEqual(b["allowed_mentions"], {"parse": [], "roles": ["123456789012345678"]})
        e = b["embeds"][0]
        self.assertEqual(e["url"], PAYLOAD["details"]["related_logs_url"])
        self.assertEqual(e["timestamp"], "2026-11-24T10:00:14.000000Z")
        self.assertIn({"name": "Matching logs", "value": "3", "inline": True}, e["fields"])

    def test_relative_links_dropped(self):
        p = json.loads(json.dumps(PAYLOAD))
        p["details"]["related_logs_url"] = "/v1/project_logs/p1/fetch"
        p["automation"]["url"] = "/v1/project_automation/a1"
        body = d.build_message({}, alert(p, is_test=True))
        self.assertNotIn("url", body["embeds"][0])
        self.assertTrue(body["content"].startswith("[TEST] "))
        self.assertEqual(body["embeds"][0]["color"], d.COLOR_TEST)

    def test_429_body(self):
        _, go = self.run_with(429, b'{"message":"You are being rate limited.","retry_after":1.5,"global":false}',
                              [("retry-after", "2")])
        with self.assertRaises(d.DeliveryError) as c:
            go()
        self.assertTrue(c.exception.retryable)
        self.assertEqual(c.exception.retry_after_ms, 1500)

    def test_429_header_only(self):
        _, go = self.run_with(429, b"", [("retry-after", "7")])
        with self.assertRaises(d.DeliveryError) as c:
            go()
        self.assertEqual(c.exception.retry_after_ms, 7000)

    def test_503(self):
        _, go = self.run_with(503, b"upstream down")
        with self.assertRaises(d.DeliveryError) as c:
            go()
        self.assertTrue(c.exception.retryable)
        self.assertIn("503", c.exception.message)

    def test_404_permanent(self):
        _, go = self.run_with(404, b'{"message": "Unknown Webhook", "code": 10015}')
        with self.assertRaises(d.DeliveryError) as c:
            go()
        self.assertFalse(c.exception.retryable)
        self.assertIn("Unknown Webhook (code 10015)", c.exception.message)
        self.assertNotIn("abcdefghijklmnopqrstuvwxyz", c.exception.message)

    def test_transport_failure(self):
        def send(*a):
            raise d.HttpFailure("request timed out", True)
        with self.assertRaises(d.DeliveryError) as c:
            d.deliver(cfg(), alert(), send)
        self.assertTrue(c.exception.retryable)

    def test_environment_payload(self):
        p = {"organization": {"name": "herald"}, "project": {"name": "chatbot"},
             "automation": {"name": "prompt watch", "event_type": "environment_update"},
             "details": {"message": "prompt p was assigned to production (version 7)",
                         "environment": {"slug": "production"}, "prompt": {"slug": "p"},
                         "new_version": "7", "action": "update"}}
        e = d.build_message({}, alert(p))["embeds"][0]
        names = [f["name"] for f in e["fields"]]
        self.assertEqual(names[:4], ["Environment", "Prompt", "Version", "Action"])
        self.assertEqual(e["color"], d.COLOR_ENV)

    def test_no_mass_mention_from_alert_text(self):
        p = json.loads(json.dumps(PAYLOAD))
        p["automation"]["name"] = "@everyone look"
        body = d.build_message({}, alert(p))
        self.assertEqual(body["allowed_mentions"], {"parse": []})
        self.assertNotIn("@everyone", body["content"])


if __name__ == "__main__":
    unittest.main()
