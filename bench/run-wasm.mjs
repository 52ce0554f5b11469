// Runs a benchmark's wasm under Node.js's WASI (preview1) in V8, the engine Envoy embeds.
//   node --no-warnings run-wasm.mjs BENCH.wasm [ARGS...]
// The wasm writes its table to stderr and JSON to stdout; the JSON is passed through with the
// run's context added (Node and V8 versions, date, wasm size, and what the calling script adds
// in BENCH_META, itself JSON). BENCH_DATA_DIR, if set, is visible to the wasm as /data.
// A wasm that links the plugin as a library also imports the proxy-wasm host functions and
// exports `_initialize`: the imports are stubbed (calling one is an error) and the wasm is
// started as the command it is.
import { readFileSync, openSync, closeSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, basename } from 'node:path';
import { WASI } from 'node:wasi';

const [wasmPath, ...args] = process.argv.slice(2);
const bytes = readFileSync(wasmPath);
const dir = mkdtempSync(join(tmpdir(), 'wasm-bench-'));
const outPath = join(dir, 'stdout.json');
const out = openSync(outPath, 'w');
const preopens = process.env.BENCH_DATA_DIR ? { '/data': process.env.BENCH_DATA_DIR } : {};
const wasi = new WASI({ version: 'preview1', args: [basename(wasmPath), ...args], env: {}, preopens, stdout: out, returnOnExit: true });
const module = await WebAssembly.compile(bytes);
// wasiImport rather than getImportObject(): the same on Node 20, and Node 18 has only this.
const imports = { wasi_snapshot_preview1: wasi.wasiImport };
for (const imp of WebAssembly.Module.imports(module)) {
  imports[imp.module] ??= {};
  if (imp.kind === 'function' && !(imp.name in imports[imp.module])) {
    imports[imp.module][imp.name] = () => { throw new Error(`host function ${imp.module}.${imp.name} called`); };
  }
}
const instance = await WebAssembly.instantiate(module, imports);
const exports = { ...instance.exports };
delete exports._initialize;
const code = wasi.start({ exports });
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
  ...JSON.parse(process.env.BENCH_META || '{}'),
};
process.stdout.write(JSON.stringify(report, null, 2) + '\n');
process.exit(code);
