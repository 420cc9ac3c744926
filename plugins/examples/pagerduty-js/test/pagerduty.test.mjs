// node --test test/   (Node's built-in runner; no dependencies)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as pd from '../src/pagerduty.js';

const KEY = 'R0123456789abcdefABCDEF012345678';
const PAYLOAD = {
  organization: { id: 'herald', name: 'herald' },
  project: { id: 'p1', name: 'chatbot' },
  automation: {
    id: 'a1', name: 'errors in prod', event_type: 'logs', btql_filter: 'error IS NOT NULL',
    url: 'https://herald.example.com/v1/project_automation/a1',
  },
  details: {
    is_test: false, message: 'errors in prod: 3 logs matched in the last 14 seconds',
    time_start: '2026-11-24T10:00:00.000000Z', time_end: '2026-11-24T10:00:14.000000Z', count: 3,
    related_logs_url: 'https://herald.example.com/v1/project_logs/p1/fetch?cursor=1',
  },
};
const alert = (payload = PAYLOAD, isTest = false) => ({
  eventId: 'evt_1', eventType: 'logs', payload: JSON.stringify(payload), isTest, attempt: 1,
});
const cfg = (extra = {}) => JSON.stringify({ routing_key: KEY, ...extra });
const enc = (s) => new TextEncoder().encode(s);

test('valid config', () => {
  assert.deepEqual(pd.checkConfig(cfg({ severity: 'critical', source: 'prod', events_url: 'http://127.0.0.1:1/x' })).problems, []);
});

test('every problem with its pointer, key never echoed', () => {
  const { problems } = pd.checkConfig(JSON.stringify({ routing_key: 'short', severity: 'sev1', source: '', events_url: 'ftp://x', extra: 1 }));
  assert.deepEqual(problems.map((p) => p.path), ['/extra', '/routing_key', '/severity', '/source', '/events_url']);
  assert.ok(!problems[1].message.includes('short'));
  assert.deepEqual(pd.checkConfig('{}').problems, [{ path: '/routing_key', message: 'is required' }]);
  assert.equal(pd.checkConfig('[1]').problems[0].path, '');
  assert.equal(pd.checkConfig('{').problems[0].path, '');
});

test('event shape', () => {
  const e = pd.buildEvent(JSON.parse(cfg({ severity: 'critical' })), alert());
  assert.equal(e.routing_key, KEY);
  assert.equal(e.event_action, 'trigger');
  assert.equal(e.dedup_key, 'herald-a1');
  assert.equal(e.payload.severity, 'critical');
  assert.equal(e.payload.source, 'herald/chatbot');
  assert.equal(e.payload.timestamp, '2026-11-24T10:00:14.000000Z');
  assert.match(e.payload.summary, /^errors in prod: 3 logs/);
  assert.equal(e.links.length, 2);
  assert.equal(e.payload.custom_details.details.count, 3);
});

test('test alerts: info, own dedup key; relative links dropped', () => {
  const p = structuredClone(PAYLOAD);
  p.details.related_logs_url = '/v1/project_logs/p1/fetch';
  p.automation.url = '/v1/project_automation/a1';
  const e = pd.buildEvent({ routing_key: KEY }, alert(p, true));
  assert.equal(e.dedup_key, 'herald-a1-test');
  assert.equal(e.payload.severity, 'info');
  assert.deepEqual(e.links, []);
  assert.equal(e.client_url, undefined);
  assert.match(e.payload.summary, /^\[TEST\] /);
});

function run(status, body = '', headers = [], extra = {}) {
  const seen = {};
  const send = (req) => {
    Object.assign(seen, req, { json: JSON.parse(new TextDecoder().decode(req.body)) });
    return { status, headers, body: enc(body) };
  };
  return { seen, go: () => pd.deliver(cfg(extra), alert(), send) };
}

test('202 is success', () => {
  const { seen, go } = run(202, '{"status":"success","message":"Event processed","dedup_key":"herald-a1"}', [], { events_url: 'http://127.0.0.1:9/enqueue' });
  const d = go();
  assert.equal(d.statusCode, 202);
  assert.equal(d.summary, 'triggered on 127.0.0.1:9 (202, dedup_key herald-a1)');
  assert.equal(seen.url, 'http://127.0.0.1:9/enqueue');
  assert.equal(seen.method, 'post');
});

test('default URL', () => {
  const { seen, go } = run(202);
  go();
  assert.equal(seen.url, pd.DEFAULT_EVENTS_URL);
});

test('400 permanent with PagerDuty errors', () => {
  const { go } = run(400, '{"status":"invalid event","message":"Event object is invalid","errors":["Length of \'routing_key\' is incorrect (should be 32 characters)"]}');
  assert.throws(go, (e) => e instanceof pd.DeliveryError && !e.retryable && /Event object is invalid: Length of 'routing_key'/.test(e.message));
});

test('429 and 5xx retryable, Retry-After honoured', () => {
  assert.throws(run(429, '', [['retry-after', '30']]).go, (e) => e.retryable && e.retryAfterMs === 30000);
  assert.throws(run(503, 'busy').go, (e) => e.retryable && e.retryAfterMs === undefined && /503: busy/.test(e.message));
});

test('transport failures', () => {
  const send = () => { throw new pd.HttpFailure('request timed out', true); };
  assert.throws(() => pd.deliver(cfg(), alert(), send), (e) => e instanceof pd.DeliveryError && e.retryable);
});
