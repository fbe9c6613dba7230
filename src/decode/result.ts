/**
 * Layer decoders return the offset of the next layer, or FAIL after setting
 * `failure.reason`. A shared slot keeps the hot path free of result objects.
 */
export const FAIL = -1;
export const failure = { reason: '' };

export function fail(reason: string): number {
  failure.reason = reason;
  return FAIL;
}
