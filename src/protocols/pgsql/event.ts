import type { TransactionEvent } from '../../events/types';

/** A PostgreSQL transaction: one statement's result, or one Execute's (docs/events.md, PostgreSQL). */
export interface PgsqlEvent extends TransactionEvent<'pgsql'> {
  /** the SQL verb; absent when the statement is unknown */
  method?: string;
  /** the statement's text; absent when unknown */
  query?: string;
  /** the statement's text, with `sendRequest` */
  request?: string;
  /** the result as CSV (field names, then up to `maxRows` rows), with `sendResponse` */
  response?: string;
  /** absent when no response came */
  pgsql?: {
    num_rows: number;
    num_fields: number;
    affected_rows?: number;
    error_code?: string;
    error_message?: string;
    error_severity?: string;
  };
}
