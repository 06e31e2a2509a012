/**
 * Where a value fetched from the server stands, and the helpers every model uses to
 * move it through its fetch cycle.
 */
import { DodoAPIError } from './handler';
import type { LoadStatus } from './tokens';

/**
 * A list fetched from the server, with where its fetch stands.
 */
export interface IRemote<T> {
  readonly status: LoadStatus;
  readonly error: DodoAPIError | null;
  readonly value: T;
}

/**
 * A value not fetched yet.
 */
export function idle<T>(value: T): IRemote<T> {
  return { status: 'idle', error: null, value };
}

/**
 * A value just fetched.
 */
export function ready<T>(value: T): IRemote<T> {
  return { status: 'ready', error: null, value };
}

/**
 * A failed fetch; the previous value stays.
 */
export function failed<T>(previous: IRemote<T>, reason: unknown): IRemote<T> {
  return { status: 'error', error: toAPIError(reason), value: previous.value };
}

/**
 * Any rejection as a `DodoAPIError`.
 */
export function toAPIError(reason: unknown): DodoAPIError {
  if (reason instanceof DodoAPIError) {
    return reason;
  }
  return new DodoAPIError(reason instanceof Error ? reason.message : String(reason), 0);
}
