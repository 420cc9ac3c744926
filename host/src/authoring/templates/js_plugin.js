// {{name}}: a Herald alert destination, in JavaScript.
//
// Posts {"text": <the alert's message>, "alert": <Braintrust's payload>}
// to `url`, with `Authorization: Bearer <token>` when a token is set. 2xx
// is delivered; 408, 429 and 5xx are retried by the daemon; anything else
// fails for good.
//
// WIT imports are ES imports of the interface's name; exported interfaces
// are exported objects in camelCase. A function returning result<T, E>
// returns T, or throws an object whose `payload` is E.
import { send } from 'herald:automation/http@0.2.0';
import { write } from 'herald:automation/log@0.2.0';

const SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['url'],
  properties: {
    url: { type: 'string', format: 'uri', description: 'Where to post.' },
    token: { type: 'string', description: 'Bearer token (secret).' },
  },
};

class ComponentError extends Error {
  constructor(payload) {
    super('component error');
    this.payload = payload;
  }
}

function problems(config) {
  if (typeof config !== 'object' || config === null || Array.isArray(config)) {
    return [{ path: '', message: 'must be a JSON object' }];
  }
  const found = Object.keys(config)
    .filter((k) => !(k in SCHEMA.properties))
    .map((k) => ({ path: `/${k}`, message: 'unknown field' }));
  if (typeof config.url !== 'string' || !/^https?:\/\//.test(config.url)) {
    found.push({ path: '/url', message: 'must be an http:// or https:// URL' });
  }
  if ('token' in config && typeof config.token !== 'string') {
    found.push({ path: '/token', message: 'must be a string' });
  }
  return found;
}

function fail(message, retryable, statusCode) {
  write(retryable ? 'warn' : 'error', message);
  throw new ComponentError({ message, retryable, retryAfterMs: undefined, statusCode });
}

export const plugin = {
  describe() {
    return {
      name: '{{name}}',
      version: '0.1.0',
      description: 'Posts each alert to a URL as JSON.',
      configSchema: JSON.stringify(SCHEMA),
      secretFields: ['/token'],
    };
  },
  validateConfig(config) {
    let found;
    try {
      found = problems(JSON.parse(config));
    } catch (e) {
      found = [{ path: '', message: `not JSON: ${e.message}` }];
    }
    if (found.length) throw new ComponentError(found);
  },
};

export const alerting = {
  deliver(configText, alert) {
    const config = JSON.parse(configText);
    const payload = JSON.parse(alert.payload);
    const text = (payload.details && payload.details.message) || 'Herald alert';
    const headers = [['content-type', 'application/json'], ['idempotency-key', alert.eventId]];
    if (config.token) headers.push(['authorization', `Bearer ${config.token}`]);
    let response;
    try {
      response = send({
        method: 'post',
        url: config.url,
        headers,
        body: new TextEncoder().encode(JSON.stringify({ text, alert: payload })),
        timeoutMs: undefined,
      });
    } catch (e) {
      const tag = e && e.payload ? e.payload.tag : 'unknown';
      fail(`could not reach ${config.url}: ${tag} ${JSON.stringify(e.payload && e.payload.val)}`,
        tag === 'timeout' || tag === 'connection');
    }
    const excerpt = new TextDecoder().decode(response.body.slice(0, 512));
    if (response.status >= 200 && response.status < 300) {
      write('info', `delivered to ${config.url}`);
      return { statusCode: response.status, responseExcerpt: excerpt,
        summary: `delivered to ${config.url} (${response.status})` };
    }
    const retryable = response.status === 408 || response.status === 429 || response.status >= 500;
    return fail(`${config.url} answered ${response.status}: ${excerpt}`, retryable, response.status);
  },
};
