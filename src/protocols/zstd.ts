/**
 * Zstandard frames (MongoDB's OP_COMPRESSED, compressor 3), decoded by zstd's own C
 * decoder compiled to WebAssembly, as the zstddec package ships it. fzstd, the
 * pure-JavaScript decoder used before, loops forever on a damaged Huffman weight table
 * (51 bytes of a mutated frame do it; test/codecs.test.ts).
 *
 * zstddec's JavaScript is not used: its `init()` compiles the module asynchronously
 * (an analyzer decodes synchronously, and waiting for it at every start would cost
 * 30-45 ms for a compressor few captures hold), and its `decode()` returns the heap
 * from the output pointer on when zstd fails (the error code taken for a size). The
 * module is compiled synchronously at the first zstd frame a process meets (a few
 * milliseconds), from the base64 text zstddec's file holds, and zstd's own functions
 * are called, with ZSTD_isError on every result. The version is pinned in package.json:
 * another layout of that file is a one-line error at the first frame, and a test.
 */
import { readFileSync } from 'node:fs';

// the global's type (lib "DOM" or "webworker" has it; pktflow's tsconfig has neither)
declare const WebAssembly: {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: unknown };
};

interface ZstdExports {
  memory: { buffer: ArrayBuffer };
  malloc(n: number): number;
  free(p: number): void;
  ZSTD_decompress(dst: number, dstCapacity: number, src: number, srcSize: number): number;
  ZSTD_isError(code: number): number;
}

let zstd: ZstdExports | null = null;

/** zstd's decoder, compiled and instantiated at the first call */
function decoder(): ZstdExports {
  if (zstd !== null) return zstd;
  const file = require.resolve('zstddec');
  const b64 = /\bconst wasm = "([A-Za-z0-9+/=]+)"/.exec(readFileSync(file, 'utf8'));
  if (b64 === null) throw new Error(`zstd: no WebAssembly module in ${file} (another zstddec than package.json pins?)`);
  // zstddec's own heap views are not kept up here: zstdDecompress makes its views after each malloc
  const imports = { env: { emscripten_notify_memory_growth: () => {} } };
  zstd = new WebAssembly.Instance(new WebAssembly.Module(Buffer.from(b64[1], 'base64')), imports).exports as ZstdExports;
  return zstd;
}

/**
 * `data` (one or more frames) decompressed into at most `size` bytes: what it holds,
 * or null when it is not zstd or holds more than `size` bytes.
 */
export function zstdDecompress(data: Uint8Array, size: number): Buffer | null {
  const z = decoder();
  const src = z.malloc(Math.max(data.length, 1));
  const dst = z.malloc(Math.max(size, 1));
  try {
    if (src === 0 || dst === 0) return null;
    // the heap may have grown (a new ArrayBuffer) in malloc: views are made after it
    new Uint8Array(z.memory.buffer, src, data.length).set(data);
    const n = z.ZSTD_decompress(dst, size, src, data.length);
    return z.ZSTD_isError(n) ? null : Buffer.from(new Uint8Array(z.memory.buffer, dst, n));
  } finally {
    if (src !== 0) z.free(src);
    if (dst !== 0) z.free(dst);
  }
}
