import type { TransactionEvent } from '../../events/types';

/** A Redis transaction: a command with its reply (docs/events.md, Redis). */
export interface RedisEvent extends TransactionEvent<'redis'> {
  event: TransactionEvent<'redis'>['event'] & {
    /** `redis.` and the command in lower case (packetbeat) */
    action?: string;
    /** `failure` when the reply is an error (packetbeat) */
    outcome?: string;
  };
  /** absent for a reply without a command */
  method?: string;
  /** the key */
  resource?: string;
  query?: string;
  /** absent for a command without a reply */
  redis?: {
    return_value?: string;
    error?: string;
  };
  /** `sendRequest`: the command as rendered in `query` */
  request?: string;
  /** `sendResponse`: the reply as rendered in `redis.return_value` */
  response?: string;
}
