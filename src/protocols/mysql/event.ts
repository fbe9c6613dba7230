import type { TransactionEvent } from '../../events/types';

/** A MySQL / MariaDB command and its response (docs/events.md, MySQL). */
export interface MysqlEvent extends TransactionEvent<'mysql'> {
  /** the statement's first word, upper-cased (`SELECT`); the command's name for other commands (`PING`); absent for a response without a request */
  method?: string;
  /** the SQL text (COM_QUERY, and a prepared statement's text for PREPARE, EXECUTE and the statement commands); `INIT_DB name`-like for the others */
  query?: string;
  /** `database.table` of the result's columns, comma-separated */
  path?: string;
  /** the parameters of a COM_STMT_EXECUTE, as text */
  params?: string[];
  /** CONNECT and CHANGE_USER: the account */
  user?: { name: string };
  /** `sendRequest`: the request's SQL text */
  request?: string;
  /** `sendResponse`: the result as CSV (column names, then up to `maxRows` rows) */
  response?: string;
  mysql: {
    /** the command without its `COM_` prefix: `QUERY`, `STMT_EXECUTE`, `PING`; `CONNECT` for the connection phase */
    command?: string;
    affected_rows?: number;
    insert_id?: number;
    num_rows?: number;
    num_fields?: number;
    error_code?: number;
    error_message?: string;
    statement_id?: number;
    num_params?: number;
    server_version?: string;
  };
}
