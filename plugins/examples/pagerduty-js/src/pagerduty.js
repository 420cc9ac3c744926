// PagerDuty Events API v2 destination for Herald: the plugin's logic.
//
// Plain ES module with no WIT imports, so it runs under Node for tests
// (test/pagerduty.test.mjs); plugin.js wires it to the host's imports.
//
// Events API v2 (https://developer.pagerduty.com/docs/events-api-v2/trigger-events/):
// POST JSON to https://events.pagerduty.com/v2/enqueue; 202 Accepted is
// success ({"status":"success","message":"Event processed","dedup_key":…});
// 400 is an invalid event ({"status":"invalid event","message":…,"errors":[…]})
// and will repeat; 429 (rate limited) and 5xx are worth retrying.

export const NAME = 'pagerduty';
export const VERSION = '0.2.0';
export const DESCRIPTION =
  'Triggers a PagerDuty incident through the Events API v2 (one incident per automation, ' +
  'deduplicated while it stays open), with the alert\'s details and links.';

export const DEFAULT_EVENTS_URL = 'https://events.pagerduty.com/v2/enqueue';
export const SEVERITIES = ['critical', 'error', 'warning', 'info'];

export const CONFIG_SCHEMA = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  type: 'object',
  required: ['routing_key'],
  additionalProperties: false,
  properties: {
    routing_key: {
      type: 'string',
      minLength: 32,
      maxLength: 32,
      pattern: '^[A-Za-z0-9]{32}$',
      description: 'Integration key of an Events API v2 integration on a PagerDuty service (32 characters). Secret.',
    },
    severity: {
      type: 'string',
      enum: SEVERITIES,
      default: 'error',
      description: 'Severity of the triggered alert.',
    },
    source: {
      type: 'string',
      minLength: 1,
      maxLength: 255,
      description: 'The affected system, shown in PagerDuty (default: herald/<project name>).',
    },
    events_url: {
      type: 'string',
      format: 'uri',
      description: `Events API endpoint (default ${DEFAULT_EVENTS_URL}); for EU-region proxies or tests.`,
    },
  },
};

export const SECRET_FIELDS = ['/routing_key'];

const KNOWN = Object.keys(CONFIG_SCHEMA.properties);

/** A failed delivery; maps onto WIT `plugin-error`. */
export class DeliveryError extends Error {
  constructor(message, retryable, retryAfterMs, statusCode) {
    super(message);
    this.retryable = retryable;
    this.retryAfterMs = retryAfterMs;
    this.statusCode = statusCode;
  }
}

/** The host's http capability returned no response (WIT `http-error`). */
export class HttpFailure extends Error {
  constructor(message, retryable) {
    super(message);
    this.retryable = retryable;
  }
}

const pointer = (key) => '/' + key.replace(/~/g, '~0').replace(/\//g, '~1');

/** Returns {config, problems: [{path, message}]}; every problem, not just the first. */
export function checkConfig(text) {
  let config;
  try {
    config = JSON.parse(text);
  } catch (e) {
    return { config: null, problems: [{ path: '', message: `is not valid JSON: ${e.message}` }] };
  }
  if (config === null || typeof config !== 'object' || Array.isArray(config)) {
    return { config: null, problems: [{ path: '', message: 'must be a JSON object' }] };
  }
  const problems = [];
  for (const key of Object.keys(config)) {
    if (!KNOWN.includes(key)) {
      problems.push({ path: pointer(key), message: `unknown field (expected one of: ${KNOWN.join(', ')})` });
    }
  }
  const key = config.routing_key;
  if (key === undefined) {
    problems.push({ path: '/routing_key', message: 'is required' });
  } else if (typeof key !== 'string' || !/^[A-Za-z0-9]{32}$/.test(key)) {
    // Never echo the key.
    problems.push({ path: '/routing_key', message: 'must be a 32-character integration key (letters and digits)' });
  }
  if (config.severity !== undefined && !SEVERITIES.includes(config.severity)) {
    problems.push({ path: '/severity', message: `must be one of ${SEVERITIES.join(', ')}` });
  }
  if (config.source !== undefined && (typeof config.source !== 'string' || !config.source.trim() || config.source.length > 255)) {
    problems.push({ path: '/source', message: 'must be a non-empty string of at most 255 characters' });
  }
  if (config.events_url !== undefined) {
    const url = config.events_url;
    if (typeof url !== 'string' || !/^https?:\/\/[^/?#\s]+/.test(url)) {
      problems.push({ path: '/events_url', message: 'must be an https:// or http:// URL' });
    }
  }
  return { config, problems };
}

const clip = (text, limit) => {
  const s = text == null ? '' : String(text);
  return s.length <= limit ? s : s.slice(0, limit - 1) + '\u2026';
};

const absolute = (url) => typeof url === 'string' && /^https?:\/\//.test(url);

/** The Events API v2 body for `alert` ({eventId, eventType, payload (JSON text), isTest, attempt}). */
export function buildEvent(config, alert) {
  let payload;
  try {
    payload = JSON.parse(alert.payload);
  } catch (e) {
    throw new DeliveryError(`alert payload is not JSON: ${e.message}`, false);
  }
  if (payload === null || typeof payload !== 'object') {
    throw new DeliveryError('alert payload is not a JSON object', false);
  }
  const org = payload.organization ?? {};
  const project = payload.project ?? {};
  const automation = payload.automation ?? {};
  const details = payload.details ?? {};
  const isTest = Boolean(alert.isTest || details.is_test);
  const eventType = automation.event_type || alert.eventType;
  const projectName = project.name || project.id || 'unknown project';
  const autoName = automation.name || 'automation';
  const message = details.message || `${autoName} fired`;

  // One incident per automation: later windows of the same automation are
  // added to the open incident instead of paging again. Tests get their own
  // key so they never merge into a real incident.
  const autoId = automation.id || alert.eventId;
  const dedupKey = clip(`herald-${autoId}${isTest ? '-test' : ''}`, 255);

  const links = [];
  if (absolute(details.related_logs_url)) links.push({ href: details.related_logs_url, text: 'Matching logs' });
  if (absolute(automation.url)) links.push({ href: automation.url, text: `Automation: ${clip(autoName, 100)}` });

  const event = {
    routing_key: config.routing_key,
    event_action: 'trigger',
    dedup_key: dedupKey,
    payload: {
      summary: clip(`${isTest ? '[TEST] ' : ''}${message} (project ${projectName})`, 1024),
      source: clip(config.source || `herald/${projectName}`, 255),
      severity: isTest ? 'info' : config.severity || 'error',
      component: clip(projectName, 255),
      group: clip(org.name || 'herald', 255),
      class: eventType,
      custom_details: {
        event_id: alert.eventId,
        attempt: alert.attempt,
        is_test: isTest,
        organization: org,
        project,
        automation,
        details,
      },
    },
    client: 'Herald',
    links,
  };
  if (typeof details.time_end === 'string' && /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d/.test(details.time_end)) {
    event.payload.timestamp = details.time_end;
  }
  if (absolute(automation.url)) event.client_url = automation.url;
  return event;
}

/** Host of `url` for messages (never the path, never the key). */
export function hostOf(url) {
  const m = /^[a-z]+:\/\/(?:[^@/?#]*@)?([^/?#]+)/i.exec(url);
  return m ? m[1].toLowerCase() : 'pagerduty';
}

function header(headers, name) {
  const found = (headers || []).find(([n]) => n.toLowerCase() === name);
  return found ? found[1] : undefined;
}

function retryAfterMs(headers) {
  const value = header(headers, 'retry-after');
  if (value === undefined) return undefined;
  const seconds = Number(value.trim());
  return Number.isFinite(seconds) && seconds >= 0 ? Math.ceil(seconds * 1000) : undefined;
}

const decoder = new TextDecoder();

/** Maps PagerDuty's answer onto a delivery ({statusCode, responseExcerpt, summary}) or throws DeliveryError. */
export function classify(status, headers, body, target) {
  const text = typeof body === 'string' ? body : decoder.decode(body ?? new Uint8Array());
  const excerpt = text.slice(0, 512);
  let info = {};
  try {
    const parsed = text.trim() ? JSON.parse(text) : {};
    if (parsed && typeof parsed === 'object') info = parsed;
  } catch {
    info = {};
  }
  if (status >= 200 && status < 300) {
    const dedup = info.dedup_key ? `, dedup_key ${info.dedup_key}` : '';
    return {
      statusCode: status,
      responseExcerpt: excerpt || undefined,
      summary: `triggered on ${target} (${status}${dedup})`,
    };
  }
  let detail = info.message || excerpt.trim() || 'no body';
  if (Array.isArray(info.errors) && info.errors.length) detail += `: ${clip(info.errors.join('; '), 400)}`;
  const message = `PagerDuty (${target}) answered ${status}: ${detail}`;
  if (status === 429 || status === 408 || (status >= 500 && status <= 599)) {
    throw new DeliveryError(message, true, retryAfterMs(headers), status);
  }
  throw new DeliveryError(message, false, undefined, status);
}

/**
 * Delivers one alert. `send({method, url, headers, body})` returns
 * {status, headers, body} or throws HttpFailure. Returns a delivery or
 * throws DeliveryError.
 */
export function deliver(configText, alert, send, log = () => {}) {
  const { config, problems } = checkConfig(configText);
  if (problems.length) {
    throw new DeliveryError(`invalid config: ${problems[0].path || '(config)'} ${problems[0].message}`, false);
  }
  const event = buildEvent(config, alert);
  const url = config.events_url || DEFAULT_EVENTS_URL;
  const target = hostOf(url);
  let response;
  try {
    response = send({
      method: 'post',
      url,
      headers: [
        ['content-type', 'application/json'],
        ['user-agent', `herald-pagerduty/${VERSION}`],
      ],
      body: new TextEncoder().encode(JSON.stringify(event)),
    });
  } catch (e) {
    if (e instanceof HttpFailure) throw new DeliveryError(`PagerDuty (${target}): ${e.message}`, e.retryable);
    throw e;
  }
  log('debug', `${target} answered ${response.status}`);
  return classify(response.status, response.headers, response.body, target);
}
