// run_model.mjs: runs an ONNX classifier of MNIST images with
// onnxruntime-node (its prebuilt CPU library), for tests/http/test_onnx.py.
//
//   node tests/onnx/run_model.mjs MODEL IMAGES OUT_PREFIX
//
// MODEL: an ONNX file with input `pixels` float [N, 784] and outputs
// `probabilities` float [N, 10] and `class` int64 [N]. IMAGES: N rows of
// 784 raw uint8 pixels, fed as pixel / 255. Writes OUT_PREFIX.probs (float32
// [N, 10], little-endian) and OUT_PREFIX.class (int64 [N]), and prints
// {"n": N, "inputs": [...], "outputs": [...]}. Exits non-zero on any error.
import { readFileSync, writeFileSync } from 'node:fs';
import ort from 'onnxruntime-node';

const [model, images, out] = process.argv.slice(2);
if (!out) {
  console.error('usage: node run_model.mjs MODEL IMAGES OUT_PREFIX');
  process.exit(2);
}
const P = 784;
const bytes = readFileSync(images);
if (bytes.length % P !== 0) throw new Error(`${images}: not rows of ${P} bytes`);
const n = bytes.length / P;
const x = new Float32Array(bytes.length);
for (let i = 0; i < bytes.length; i++) x[i] = bytes[i] / 255;

const session = await ort.InferenceSession.create(readFileSync(model), {
  executionProviders: ['cpu'],
});
const res = await session.run({ pixels: new ort.Tensor('float32', x, [n, P]) });
const probs = res.probabilities, cls = res.class;
if (probs.type !== 'float32' || probs.dims.join() !== `${n},10`)
  throw new Error(`probabilities: ${probs.type} [${probs.dims}]`);
if (cls.type !== 'int64' || cls.dims.join() !== `${n}`)
  throw new Error(`class: ${cls.type} [${cls.dims}]`);
writeFileSync(`${out}.probs`, Buffer.from(probs.data.buffer, probs.data.byteOffset,
                                          probs.data.byteLength));
writeFileSync(`${out}.class`, Buffer.from(cls.data.buffer, cls.data.byteOffset,
                                          cls.data.byteLength));
console.log(JSON.stringify({ n, inputs: session.inputNames, outputs: session.outputNames }));
