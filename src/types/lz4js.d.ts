/** lz4js 0.2: the LZ4 block functions pktflow uses (the package ships no types). */
declare module 'lz4js' {
  /** decompresses src[sIndex, sIndex + sLength) into dst from dIndex; returns the end index in dst */
  export function decompressBlock(src: Uint8Array, dst: Uint8Array, sIndex: number, sLength: number, dIndex: number): number;
  /** compresses src[sIndex, sIndex + sLength) into dst; returns the compressed size, 0 when nothing matched */
  export function compressBlock(src: Uint8Array, dst: Uint8Array, sIndex: number, sLength: number, hashTable: number[]): number;
  export function compressBound(n: number): number;
  const lz4: { decompressBlock: typeof decompressBlock; compressBlock: typeof compressBlock; compressBound: typeof compressBound };
  export default lz4;
}
