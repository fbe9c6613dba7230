import type { TransactionEvent } from '../../events/types';

/** A CQL transaction, or a server push (docs/events.md, Cassandra). */
export interface CassandraEvent extends TransactionEvent<'cassandra'> {
  /** the request's opcode: QUERY, EXECUTE, ... (absent for a push and an unmatched response) */
  method?: string;
  /** the CQL text */
  query?: string;
  /** keyspace or keyspace.table the response names */
  resource?: string;
  cassandra: {
    /** a message the server pushed (EVENT): there is no request */
    no_request?: boolean;
    request?: CassandraRequest;
    response?: CassandraResponse;
  };
}

/** an envelope's header, as packetbeat writes it */
export interface CassandraHeaders {
  version: number;
  flags: string;
  stream: number;
  op: string;
  length: number;
}

export interface CassandraRequest {
  headers?: CassandraHeaders;
  query?: string;
  consistency?: string;
  prepared_id?: string;
  batch?: { type: string; statements: number };
  events?: string[];
  options?: Record<string, string>;
}

/** result metadata: of rows, and the two of a prepared statement */
export interface CassandraMetadata {
  keyspace?: string;
  table?: string;
  flags: string;
  col_count: number;
  pkey_columns?: number[];
  paging_state?: string;
}

export interface CassandraSchemaChange {
  change?: string;
  target?: string;
  keyspace?: string;
  object?: string;
  name?: string;
  args?: string[];
}

export interface CassandraResponse {
  headers?: CassandraHeaders;
  warnings?: string[];
  result?: {
    type: string;
    rows?: { num_rows?: number; meta: CassandraMetadata };
    keyspace?: string;
    prepared?: { prepared_id: string; req_meta: CassandraMetadata; resp_meta?: CassandraMetadata };
    schema_change?: CassandraSchemaChange;
  };
  error?: {
    code: number;
    msg: string;
    type: string;
    details?: {
      read_consistency?: string;
      required?: number;
      alive?: number;
      received?: number;
      blockfor?: number;
      write_type?: string;
      data_present?: boolean;
      keyspace?: string;
      table?: string;
      stmt_id?: string;
      num_failures?: number;
      function?: string;
      arg_types?: string[];
    };
  };
  supported?: Record<string, string[]>;
  authentication?: { class: string };
  event?: {
    type: string;
    change?: string;
    host?: string;
    port?: number;
    schema_change?: CassandraSchemaChange;
  };
}
