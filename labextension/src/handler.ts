/**
 * The one place that talks to the dodo server extension's REST API.
 */
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

import type { IErrorBody } from './tokens';

/**
 * A failed call to the dodo REST API.
 *
 * `status` is the HTTP status, or 0 when the server could not be reached.
 * `error` is the server's short error code and `message` its human-readable
 * explanation (both from its JSON `{error, message}` body when there is one);
 * `fields` maps each bad input field to its problem for validation errors.
 */
export class DodoAPIError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly error: string = 'error',
    readonly fields: Readonly<Record<string, string>> = {}
  ) {
    super(message);
    this.name = 'DodoAPIError';
  }
}

/**
 * Call `{baseUrl}dodo/api/{endPoint}` and parse its JSON answer.
 *
 * @param endPoint - Path below `dodo/api/`, e.g. `'mcp-catalog'`; may carry a query.
 * @param init - Fetch options (method, body, ...).
 * @param settings - Server settings; defaults to the page's.
 * @returns The parsed JSON body (`undefined` for an empty body).
 * @throws {DodoAPIError} When the server cannot be reached (status 0), or
 *   answers with a non-2xx status; its message is the server's own.
 */
export async function requestAPI<T>(
  endPoint = '',
  init: RequestInit = {},
  settings: ServerConnection.ISettings = ServerConnection.makeSettings()
): Promise<T> {
  const { url, response, text } = await send(endPoint, init, settings);
  const data = parseJSON(text);
  if (!response.ok) {
    throw makeError(response, data);
  }
  if (text.length > 0 && data === undefined) {
    throw new DodoAPIError(
      `The server answered ${url} with a body that is not JSON.`,
      response.status,
      'invalid_response'
    );
  }
  return data as T;
}

/**
 * Like `requestAPI`, for answers that are not one JSON document (a JSON lines
 * export): the body as text.
 *
 * @throws {DodoAPIError} As `requestAPI` does.
 */
export async function requestText(
  endPoint = '',
  init: RequestInit = {},
  settings: ServerConnection.ISettings = ServerConnection.makeSettings()
): Promise<string> {
  const { response, text } = await send(endPoint, init, settings);
  if (!response.ok) {
    throw makeError(response, parseJSON(text));
  }
  return text;
}

/**
 * Make the request and read its whole body.
 */
async function send(
  endPoint: string,
  init: RequestInit,
  settings: ServerConnection.ISettings
): Promise<{ url: string; response: Response; text: string }> {
  const url = URLExt.join(settings.baseUrl, 'dodo', 'api', endPoint);
  let response: Response;
  try {
    response = await ServerConnection.makeRequest(url, init, settings);
  } catch (reason) {
    throw new DodoAPIError(
      `Cannot reach the Jupyter server: ${String(reason)}`,
      0,
      'network_error'
    );
  }
  return { url, response, text: await response.text() };
}

/**
 * A body parsed as JSON; `undefined` when empty or not JSON.
 */
function parseJSON(text: string): unknown {
  if (text.length === 0) {
    return undefined;
  }
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/**
 * Build the error for a non-2xx answer, preferring the server's own words.
 */
function makeError(response: Response, data: unknown): DodoAPIError {
  const body = readErrorBody(data);
  if (body.message) {
    return new DodoAPIError(
      body.message,
      response.status,
      body.error ?? 'error',
      body.fields ?? {}
    );
  }
  if (response.status === 404) {
    return new DodoAPIError(
      'The dodo server extension did not answer. Is it installed and enabled? ' +
        'Check with `jupyter server extension list`; install with `pip install dodo-jupyter`.',
      404,
      'not_found'
    );
  }
  return new DodoAPIError(
    `Request failed: ${response.status} ${response.statusText}`.trim(),
    response.status,
    body.error ?? 'error'
  );
}

/**
 * Pick the string `error` and `message` fields out of an error body, if any.
 */
function readErrorBody(data: unknown): Partial<IErrorBody> {
  if (typeof data !== 'object' || data === null) {
    return {};
  }
  const { error, message, fields } = data as Record<string, unknown>;
  let fieldMessages: Record<string, string> | undefined;
  if (typeof fields === 'object' && fields !== null && !Array.isArray(fields)) {
    fieldMessages = {};
    for (const [name, text] of Object.entries(fields)) {
      fieldMessages[name] = String(text);
    }
  }
  return {
    error: typeof error === 'string' && error ? error : undefined,
    message: typeof message === 'string' && message ? message : undefined,
    fields: fieldMessages
  };
}
