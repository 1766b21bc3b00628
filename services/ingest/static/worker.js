// Computes a task off the page's thread, so the dashboard stays responsive.
// hash: sha256(prefix || nonce as 8 little-endian bytes) with difficulty_bits
// leading zero bits; matmul: c = a x b exactly (entries < 2^16, n small enough
// that every sum stays below 2^53).

function hexToBytes(hex) {
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.substr(i * 2, 2), 16);
  return out;
}

function leadingZeroBits(bytes) {
  let n = 0;
  for (const b of bytes) {
    if (b === 0) { n += 8; continue; }
    return n + Math.clz32(b) - 24;
  }
  return n;
}

async function solveHash({ prefix, difficulty_bits }) {
  const p = hexToBytes(prefix);
  const buf = new Uint8Array(p.length + 8);
  buf.set(p);
  const view = new DataView(buf.buffer);
  for (let nonce = 0; ; nonce++) {
    view.setUint32(p.length, nonce >>> 0, true);
    view.setUint32(p.length + 4, Math.floor(nonce / 2 ** 32), true);
    const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", buf));
    if (leadingZeroBits(digest) >= difficulty_bits) return { nonce };
    if (nonce % 4096 === 0) postMessage({ progress: nonce });
  }
}

function solveMatmul({ n, a, b }) {
  const c = [];
  for (let i = 0; i < n; i++) {
    const row = new Array(n).fill(0);
    for (let k = 0; k < n; k++) {
      const aik = a[i][k];
      for (let j = 0; j < n; j++) row[j] += aik * b[k][j];
    }
    c.push(row);
  }
  return { c };
}

onmessage = async ({ data: task }) => {
  try {
    const result = task.kind === "hash" ? await solveHash(task.params) : solveMatmul(task.params);
    postMessage({ result });
  } catch (e) {
    postMessage({ error: String(e) });
  }
};
