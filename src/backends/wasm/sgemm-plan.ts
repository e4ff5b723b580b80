// Tiling of the packed SGEMM (assembly/sgemm.ts sgemm_chunk), shared by the backend's f32 matmul and
// the training GEMMs (src/train/wasm-gemm.ts).

/** Largest C tile (rows x columns) and k block; packing scratch per thread (MT + NT) * KC * 4 (+ 256)
 *  bytes, ~0.75 MiB: within the 1 MiB L2 with the streamed C. */
export const SG_MT_MAX = 256;
export const SG_NT_MAX = 256;
export const SG_KC_MAX = 384;
/** Bytes of packing scratch per thread that fit every plan. */
export const SG_STRIDE = (SG_MT_MAX + SG_NT_MAX) * SG_KC_MAX * 4 + 256;
/** sgemm_chunk layout codes. */
export const SG_NT = 0;
export const SG_NN = 1;
export const SG_TN = 2;

/** Tile plan of an M x N x K product: MT rows (multiple of 4), NT columns (multiple of 8), KC, chunk count. */
export function sgemmPlan(M: number, N: number, K: number, threads: number): { MT: number; NT: number; KC: number; chunks: number; stride: number } {
  const KC = Math.ceil(K / Math.max(1, Math.ceil(K / SG_KC_MAX)));
  let tm = Math.ceil(M / SG_MT_MAX);
  let tn = Math.ceil(N / SG_NT_MAX);
  // enough tiles for work stealing (about 4 per thread) while tiles stay >= 64 x 64
  while (threads > 1 && tm * tn < 4 * threads) {
    if (Math.ceil(M / (tm + 1)) >= 64 && (M / tm >= N / tn || Math.ceil(N / (tn + 1)) < 64)) tm++;
    else if (Math.ceil(N / (tn + 1)) >= 64) tn++;
    else break;
  }
  const MT = Math.ceil(Math.ceil(M / tm) / 4) * 4;
  const NT = Math.ceil(Math.ceil(N / tn) / 8) * 8;
  return { MT, NT, KC, chunks: Math.ceil(M / MT) * Math.ceil(N / NT), stride: (MT + NT) * KC * 4 + 256 };
}
