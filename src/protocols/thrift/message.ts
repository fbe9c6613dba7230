/** Thrift's message types (TMessageType) */
export const CALL = 1;
export const REPLY = 2;
export const EXCEPTION = 3;
export const ONEWAY = 4;

export const MESSAGE_TYPE_NAMES = ['', 'call', 'reply', 'exception', 'oneway'];

/** One Thrift message (a call, reply, exception or oneway call) as the decoder saw it on the wire. */
export class ThriftMessage {
  startSec = 0;
  startNsec = 0;
  endSec = 0;
  endNsec = 0;
  /** everything the message took on the wire (frame header included), bytes lost to a gap included */
  wireBytes = 0;
  /** bytes the capture lost inside this message */
  missingBytes = 0;
  /** CALL, REPLY, EXCEPTION or ONEWAY */
  type = 0;
  method = '';
  seqId = 0;
  /** `compact` or `binary` */
  protocol = '';
  /** in a frame of the framed transport */
  framed = false;
  /** ids of the top-level fields (the arguments, or the result), the first `collectionMaxSize` of them */
  fieldIds: number[] = [];
  /** their values as packetbeat renders them */
  fieldValues: string[] = [];
  /** top-level fields in all */
  fieldCount = 0;
  /** a value was left out: the rendering passed the text limit */
  cut = false;
  /** strings shown cut at stringMaxSize */
  stringsCut = 0;
  /** lists, sets, maps and structs shown cut at collectionMaxSize (the message's own fields included) */
  collectionsCut = 0;
  /** the message was not read to its end (packet loss, damage): its fields are those read before */
  partial = '';

  get isRequest(): boolean {
    return this.type === CALL || this.type === ONEWAY;
  }
}
