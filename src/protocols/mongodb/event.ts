import type { TransactionEvent } from '../../events/types';

/** A MongoDB transaction: a request and its reply (docs/events.md, MongoDB). */
export interface MongodbEvent extends TransactionEvent<'mongodb'> {
  /** the command name (`find`, `insert`, `getMore`, ...) or the legacy operation; absent when only the reply was seen */
  method?: string;
  /** `database.collection`, `database.$cmd` for a command on no collection */
  resource?: string;
  /** `resource.method(params)` */
  query?: string;
  mongodb: {
    /** the request's wire operation (of the reply's when there is no request): `OP_MSG`, `OP_QUERY`, ... */
    opcodeName: string;
    fullCollectionName?: string;
    numberToSkip?: number;
    numberToReturn?: number;
    numberReturned?: number;
    startingFrom?: number;
    query?: string;
    returnFieldsSelector?: string;
    selector?: string;
    update?: string;
    /** a 64-bit cursor id in decimal */
    cursorId?: string;
    message?: string;
    error?: string;
    errorCode?: number;
    codeName?: string;
  };
  /** the whole request (`sendRequest`) */
  request?: string;
  /** the reply's documents (`sendResponse`) */
  response?: string;
}
