// ONNX Runtime (npm onnxruntime-node, CPU) on an ecprune model file: the independent reader
// for the tests and the peer of the benchmarks.
//   node bench/ort_run.js MODEL.onnx predict IN.f32 N OUT.f32
//       raw float32 inputs (N rows) -> raw float32 outputs
//   node bench/ort_run.js MODEL.onnx bench BATCH SECONDS THREADS
//       prints {"batch":B,"median_s":..,"min_s":..,"sps":..} for repeated runs of one batch
// The package is found at $ORT_NODE, else in ecprune's cache (as scripts/setup.sh installs it).
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');

function ortPath() {
  if (process.env.ORT_NODE) return process.env.ORT_NODE;
  const cache = process.env.ECPRUNE_CACHE ||
    path.join(process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'ecprune');
  return path.join(cache, 'onnxruntime-node-1.30.0', 'node_modules', 'onnxruntime-node');
}

async function main() {
  const [model, mode, ...rest] = process.argv.slice(2);
  if (!model || !['predict', 'bench'].includes(mode)) {
    console.error('usage: ort_run.js MODEL.onnx predict IN.f32 N OUT.f32 | bench BATCH SECONDS THREADS');
    process.exit(2);
  }
  const ort = require(ortPath());
  const threads = mode === 'bench' ? Number(rest[2]) : 1;
  const sess = await ort.InferenceSession.create(model, {
    intraOpNumThreads: threads, interOpNumThreads: 1, executionMode: 'sequential',
  });
  const inName = sess.inputNames[0], outName = sess.outputNames[0];
  const meta = sess.inputMetadata ? sess.inputMetadata[0] : null;
  if (mode === 'predict') {
    const n = Number(rest[1]);
    const buf = fs.readFileSync(rest[0]);
    const x = new Float32Array(buf.buffer, buf.byteOffset, buf.length / 4);
    const nIn = x.length / n;
    const r = await sess.run({ [inName]: new ort.Tensor('float32', x, [n, nIn]) });
    const y = r[outName].data;
    fs.writeFileSync(rest[2], Buffer.from(y.buffer, y.byteOffset, y.byteLength));
    return;
  }
  const batch = Number(rest[0]), secs = Number(rest[1]);
  let nIn = meta && meta.shape ? meta.shape[meta.shape.length - 1] : 0;
  if (!(nIn > 0)) throw new Error(`${model}: cannot read the input width`);
  const x = new Float32Array(batch * nIn);
  for (let i = 0; i < x.length; i++) x[i] = Math.random();
  const feed = { [inName]: new ort.Tensor('float32', x, [batch, nIn]) };
  for (let i = 0; i < 5; i++) await sess.run(feed);
  const times = [];
  const t0 = process.hrtime.bigint();
  while (Number(process.hrtime.bigint() - t0) / 1e9 < secs || times.length < 5) {
    const a = process.hrtime.bigint();
    await sess.run(feed);
    times.push(Number(process.hrtime.bigint() - a) / 1e9);
  }
  times.sort((p, q) => p - q);
  const med = times[Math.floor(times.length / 2)];
  console.log(JSON.stringify({ batch, median_s: med, min_s: times[0], sps: batch / med }));
}

main().catch((e) => { console.error(`ort_run.js: ${e.message || e}`); process.exit(1); });
