// Runs the benchmark's wasm under Node.js's WASI (preview1) in V8, the engine Envoy embeds.
//   node --no-warnings run.mjs BENCH.wasm [--smoke]
// The wasm writes its table to stderr and JSON to stdout; the JSON is passed through with the
// run's context added (Node and V8 versions, date, wasm size, and what bench/crypto.sh adds
// in CRYPTO_BENCH_META, itself JSON).
import { readFileSync, openSync, closeSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WASI } from 'node:wasi';

const [wasmPath, ...args] = process.argv.slice(2);
const bytes = readFileSync(wasmPath);
const dir = mkdtempSync(join(tmpdir(), 'crypto-bench-'));
const outPath = join(dir, 'stdout.json');
const out = openSync(outPath, 'w');
const wasi = new WASI({ version: 'preview1', args: ['bench-crypto-wasm', ...args], env: {}, stdout: out, returnOnExit: true });
const module = await WebAssembly.compile(bytes);
// wasiImport rather than getImportObject(): the same on Node 20, and Node 18 has only this.
const instance = await WebAssembly.instantiate(module, { wasi_snapshot_preview1: wasi.wasiImport });
const code = wasi.start(instance);
closeSync(out);
const text = readFileSync(outPath, 'utf8');
rmSync(dir, { recursive: true, force: true });
let report;
try {
  report = JSON.parse(text);
} catch (e) {
  process.stderr.write(`no JSON from the wasm (exit ${code}):\n${text}\n`);
  process.exit(code || 1);
}
report.context = {
  date: new Date().toISOString(),
  node: process.version,
  v8: process.versions.v8,
  wasm_bytes: bytes.length,
  ...JSON.parse(process.env.CRYPTO_BENCH_META || '{}'),
};
process.stdout.write(JSON.stringify(report, null, 2) + '\n');
process.exit(code);
