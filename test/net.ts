/** Ports and readiness for tests that start real servers on loopback. */
import { connect, createServer } from 'node:net';

/** a TCP port nothing listens on now (the kernel's choice) */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** resolves once something accepts connections on 127.0.0.1:port (the test's timeout bounds the wait) */
export async function waitForPort(port: number, host = '127.0.0.1'): Promise<void> {
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(port, host);
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    await sleep(100);
  }
}
