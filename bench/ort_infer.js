#!/usr/bin/env node
// ONNX Runtime CPU peer of `ecprune bench-infer`: the same ONNX file, inputs and thread count.
//
// usage: node ort_infer.js MODEL.onnx X.f32 --threads T --batches 1,256 [--seconds S]
//                          [--overhead TINY.onnx] [--ort DIR]
// X.f32 holds N x n_in raw little-endian float32 (N a multiple of nothing in particular; batches
// cycle through it as the C side does). TINY.onnx is a 1-1 model: the median time of one run of
// it is the fixed cost of a call through this binding (the promise, setImmediate, the N-API
// tensor wrapping and ORT's own per-run set-up), reported separately as overhead_us so that the
// reader can subtract it. DIR is the onnxruntime-node install (default: the newest
// onnxruntime-node-* in the ecprune cache directory, which scripts/setup.sh fills).
// Prints one JSON line: {"batch1_us":..,"batch256_sps":..,"overhead_us":..,"ort_version":..}.
// With --check MODEL.onnx [X.f32 OUT.f32] [--feed NAME]: loads the model and runs it on X (N x n_in;
// default one sample of zeros) fed in the model's input shape under NAME (default: the model's
// input name; a pipeline's feed names must still be the file's), writes the outputs to OUT as
// raw float32 and prints the shapes and names (the test suite's check that ONNX Runtime reads
// what ecprune writes and computes the same function). Further MODEL X OUT triples are checked in
// the same process.
'use strict';
const fs = require('fs');
const path = require('path');
const os = require('os');

function cacheDir() {
  if (process.env.ECPRUNE_CACHE) return process.env.ECPRUNE_CACHE;
  if (process.env.XDG_CACHE_HOME) return path.join(process.env.XDG_CACHE_HOME, 'ecprune');
  if (process.env.HOME) return path.join(process.env.HOME, '.cache', 'ecprune');
  return '/tmp/ecprune-cache';
}

function loadOrt(dir) {
  if (!dir) {
    const c = cacheDir();
    const found = fs.existsSync(c) ?
      fs.readdirSync(c).filter((d) => d.startsWith('onnxruntime-node-')).sort() : [];
    if (!found.length) throw new Error(`no onnxruntime-node-* in ${c} (run scripts/setup.sh)`);
    dir = path.join(c, found[found.length - 1], 'node_modules', 'onnxruntime-node');
  }
  const ort = require(dir);
  const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8'));
  return {ort, version: pkg.version};
}

function sessionOptions(threads) {
  // One intra-op pool of T threads, no inter-op parallelism (an MLP is a chain), every graph
  // optimisation (ORT fuses Gemm + Relu), no spinning between runs (the machine is shared and
  // the C side's threads do not spin either).
  return {
    intraOpNumThreads: threads, interOpNumThreads: 1, executionMode: 'sequential',
    graphOptimizationLevel: 'all',
    extra: {session: {intra_op: {allow_spinning: threads > 1 ? '1' : '0'}}},
  };
}

// Median seconds of one run on batches of b rows taken in turn from xs.
async function timeRuns(ort, sess, xs, nIn, b, secs) {
  const name = sess.inputNames[0], nRows = xs.length / nIn;
  const slots = Math.max(1, Math.floor(nRows / b));
  // [b, features], or [b, C, H, W] for a model that starts with Flatten
  const dims = sess.inputMetadata[0].shape.slice(1);
  const rest = dims.length && dims.every((d) => typeof d === 'number') ? dims : [nIn];
  const feeds = [];
  for (let i = 0; i < Math.min(slots, 16); i++)
    feeds.push({[name]: new ort.Tensor('float32', xs.subarray(i * b * nIn, (i + 1) * b * nIn),
                                       [b, ...rest])});
  for (let w = 0; w < 5; w++) await sess.run(feeds[w % feeds.length]);
  const t = [];
  const end = process.hrtime.bigint() + BigInt(Math.round(secs * 1e9));
  for (let i = 0; process.hrtime.bigint() < end || t.length < 5; i++) {
    const t0 = process.hrtime.bigint();
    await sess.run(feeds[i % feeds.length]);
    t.push(Number(process.hrtime.bigint() - t0) * 1e-9);
  }
  t.sort((a, c) => a - c);
  return t[t.length >> 1];
}

function parseArgs(argv) {
  const pos = [], opt = {};
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--check') opt.check = true;
    else if (argv[i].startsWith('--')) opt[argv[i].slice(2)] = argv[++i];
    else pos.push(argv[i]);
  }
  return {pos, opt};
}

// Runs MODEL on X fed in the model's declared input shape: [N, features] or, for a model that
// starts with Flatten, [N, C, H, W], in batches of the declared size when it is fixed.
async function check(ort, version, threads, model, xFile, outFile, feedName) {
  const sess = await ort.InferenceSession.create(model, sessionOptions(threads));
  const shape = sess.inputMetadata[0].shape;
  const nIn = shape.slice(1).reduce((a, d) => a * d, 1);
  let x = new Float32Array(nIn);
  if (xFile) {
    const r = fs.readFileSync(xFile);
    x = new Float32Array(r.buffer.slice(r.byteOffset, r.byteOffset + r.length));
  }
  const n = x.length / nIn;
  const step = typeof shape[0] === 'number' && shape[0] > 0 ? shape[0] : n;
  const ys = [];
  let nOut = 0;
  for (let at = 0; at < n; at += step) {
    const xb = x.subarray(at * nIn, (at + step) * nIn);
    const feed = new ort.Tensor('float32', xb, [step, ...shape.slice(1)]);
    const y = (await sess.run({[feedName || sess.inputNames[0]]: feed}))[sess.outputNames[0]];
    if (y.dims.length !== 2 || y.dims[0] !== step)
      throw new Error(`${model}: unexpected output shape ${JSON.stringify(y.dims)}`);
    nOut = y.dims[1];
    ys.push(Buffer.from(y.data.buffer, y.data.byteOffset, y.data.byteLength));
  }
  if (outFile) fs.writeFileSync(outFile, Buffer.concat(ys));
  console.log(JSON.stringify({n, n_in: nIn, n_out: nOut, input: sess.inputNames[0],
                              output: sess.outputNames[0], ort_version: version}));
}

async function main() {
  const {pos, opt} = parseArgs(process.argv.slice(2));
  const {ort, version} = loadOrt(opt.ort);
  const threads = parseInt(opt.threads || '1', 10);
  if (opt.check) {
    // Further MODEL X OUT triples are checked in the same process (loading ORT is most of the
    // time).
    for (let i = 0; i < pos.length; i += 3)
      await check(ort, version, threads, pos[i], pos[i + 1], pos[i + 2], opt.feed);
    return;
  }
  const sess = await ort.InferenceSession.create(pos[0], sessionOptions(threads));
  const nIn = sess.inputMetadata[0].shape.slice(1).reduce((a, d) => a * d, 1);
  const raw = fs.readFileSync(pos[1]);
  const xs = new Float32Array(raw.buffer, raw.byteOffset, raw.length / 4);
  const secs = parseFloat(opt.seconds || '0.5');
  const out = {ort_version: version, threads, cpus: os.cpus().length};
  if (opt.overhead) {
    const tiny = await ort.InferenceSession.create(opt.overhead, sessionOptions(threads));
    out.overhead_us = 1e6 * await timeRuns(ort, tiny, new Float32Array(64), 1, 1, secs);
  }
  for (const b of (opt.batches || '1,256').split(',').map(Number)) {
    const t = await timeRuns(ort, sess, xs, nIn, b, secs);
    if (b === 1) out.batch1_us = t * 1e6;
    else out[`batch${b}_sps`] = b / t;
  }
  console.log(JSON.stringify(out));
}

main().catch((e) => {
  console.error(`ort_infer: Error: ${e.message}`);
  process.exit(1);
});
