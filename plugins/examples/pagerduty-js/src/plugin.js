// Herald `alert-destination` component: PagerDuty (Events API v2).
//
// componentize-js conventions (0.23):
// * WIT interface imports are ES imports from the qualified interface name:
//   `import { send } from 'herald:automation/http@0.2.0'`.
// * Exported interfaces are exported objects named after the interface in
//   camelCase (`plugin`, `alerting`); functions and record fields are
//   camelCase (`validateConfig`, `secretFields`, `retryAfterMs`); enums are
//   their WIT case names as strings ('post', 'info'); options are
//   undefined/null or the value; list<u8> is a Uint8Array; u64 is a BigInt
//   on the way in (a Number is accepted on the way out).
// * result<T, E>: return T; for the error throw an object with an own
//   `payload` property holding E (like jco's ComponentError), or throw E
//   itself if it is not an Error instance. A thrown Error without `payload`
//   becomes a trap. An imported function returning result<T, E> returns T
//   or throws a ComponentError whose `payload` is E ({tag, val} for variants).
import { send as hostSend } from 'herald:automation/http@0.2.0';
import { write } from 'herald:automation/log@0.2.0';
import * as pd from './pagerduty.js';

class ComponentError extends Error {
  constructor(payload) {
    super(typeof payload === 'string' ? payload : 'component error');
    this.payload = payload;
  }
}

const RETRYABLE_HTTP_ERRORS = new Set(['timeout', 'connection']);

function describeHttpError(error) {
  switch (error.tag) {
    case 'host-not-allowed':
      return `host not allowed: ${error.val} (add it to [plugins.pagerduty] allowed_hosts)`;
    case 'private-address':
      return `private address refused: ${error.val}`;
    case 'invalid-request':
      return `invalid request: ${error.val}`;
    case 'timeout':
      return 'request timed out';
    case 'connection':
      return `connection failed: ${error.val}`;
    case 'response-too-large':
      return `response larger than ${error.val} bytes`;
    default:
      return `http error ${JSON.stringify(error)}`;
  }
}

function send(request) {
  try {
    return hostSend(request);
  } catch (e) {
    if (e && e.payload && typeof e.payload.tag === 'string') {
      throw new pd.HttpFailure(describeHttpError(e.payload), RETRYABLE_HTTP_ERRORS.has(e.payload.tag));
    }
    throw e;
  }
}

export const plugin = {
  describe() {
    return {
      name: pd.NAME,
      version: pd.VERSION,
      description: pd.DESCRIPTION,
      configSchema: JSON.stringify(pd.CONFIG_SCHEMA),
      secretFields: [...pd.SECRET_FIELDS],
    };
  },

  validateConfig(config) {
    const { problems } = pd.checkConfig(config);
    if (problems.length) throw new ComponentError(problems);
  },
};

export const alerting = {
  deliver(config, alert) {
    try {
      const delivery = pd.deliver(config, alert, send, write);
      write('info', delivery.summary);
      return delivery;
    } catch (e) {
      if (e instanceof pd.DeliveryError) {
        write(e.retryable ? 'warn' : 'error', e.message);
        throw new ComponentError({
          message: e.message,
          retryable: e.retryable,
          retryAfterMs: e.retryAfterMs,
          statusCode: e.statusCode,
        });
      }
      // Anything else is a bug: report it as a permanent failure rather
      // than trapping, so the run history shows the message.
      const message = `internal error: ${e && e.message ? e.message : String(e)}`;
      write('error', message);
      throw new ComponentError({ message, retryable: false, retryAfterMs: undefined, statusCode: undefined });
    }
  },
};
