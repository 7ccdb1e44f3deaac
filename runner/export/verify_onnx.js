// Runs an exported ONNX model with onnxruntime (the npm package onnxruntime-node,
// its own CPU engine) on float32 input; writes the logits as float32. Used by
// `runner export --verify` and the tests; prints the runtime's name and version.
//   node verify_onnx.js MODEL INPUT.f32 N C H W LOGITS.f32
'use strict';
const fs = require('fs');
const ort = require('onnxruntime-node');

async function main() {
  const [model, inputPath, n, c, h, w, outPath] = process.argv.slice(2);
  const [N, C, H, W] = [n, c, h, w].map(Number);
  const bytes = fs.readFileSync(inputPath);
  const input = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length));
  if (input.length !== N * C * H * W) throw new Error(`${inputPath}: ${input.length} floats, expected ${N * C * H * W}`);
  const session = await ort.InferenceSession.create(model, { intraOpNumThreads: 2, interOpNumThreads: 1 });
  const chunks = [];
  // Batches of another size than training: the batch dimension must be symbolic.
  for (let start = 0; start < N; start += 500) {
    const len = Math.min(500, N - start);
    const x = new ort.Tensor('float32', input.subarray(start * C * H * W, (start + len) * C * H * W), [len, C, H, W]);
    const out = await session.run({ input: x });
    chunks.push(Buffer.from(out.logits.data.buffer, out.logits.data.byteOffset, out.logits.data.byteLength));
  }
  fs.writeFileSync(outPath, Buffer.concat(chunks));
  const version = require('onnxruntime-node/package.json').version;
  console.log(`onnxruntime ${version} (onnxruntime-node)`);
}

main().catch((e) => {
  console.error(e && e.stack ? e.stack : String(e));
  process.exit(1);
});
