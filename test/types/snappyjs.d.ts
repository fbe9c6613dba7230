/** snappyjs 0.7 (the tests compress with it; pktflow decodes Snappy itself, src/protocols/snappy.ts): the package ships no types. */
declare module 'snappyjs' {
  /** throws on a damaged block, or one whose declared size is over maxLength */
  export function uncompress(compressed: Uint8Array, maxLength?: number): Uint8Array;
  export function compress(uncompressed: Uint8Array): Uint8Array;
  const snappy: { uncompress: typeof uncompress; compress: typeof compress };
  export default snappy;
}
