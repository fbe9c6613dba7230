// A slow reader: consumes stdin at MB_PER_SEC (argv[2], default 20) and discards it.
const rate = Number(process.argv[2] || 20) * 1e6;
const start = Date.now();
let seen = 0;
process.stdin.on('data', (chunk) => {
  seen += chunk.length;
  const ahead = seen / rate - (Date.now() - start) / 1000;
  if (ahead > 0) {
    process.stdin.pause();
    setTimeout(() => process.stdin.resume(), ahead * 1000);
  }
});
