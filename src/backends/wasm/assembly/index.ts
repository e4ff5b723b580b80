// Entry point of the WebAssembly kernels (AssemblyScript). Built twice by scripts/build-wasm.mjs:
// dist/wasm/kernels-simd.wasm (--enable simd) and dist/wasm/kernels-relaxed.wasm (+ relaxed-simd).
// Both import a shared memory (env.memory); TypeScript (../index.ts) owns its layout.

export { deq_row, deq_matrix_row, gemv_f32, gemv_f16, gemv_bf16, gemm_f32, gemm_deq, gemm_f32_ld, gemm_deq_ld, quant_q8, widen_q8, gemv_q8_0, gemv_q4_k } from './matmul';
export { binop, unop, rmsnorm, layernorm, rope, argmax } from './ops';
export { prep_q8_0, prep_q4_0, gemv_q8_0x, gemv_q4_0x, gemv_q4_kx, gemv_q6_kx, q8_0_has_m128, qgemm4_panel_bytes, qgemm4_chunk } from './qgemm';
export { attention_bwd_chunk, ce_fwd_chunk, ce_bwd_chunk, adamw_chunk, sum_squares, scale_chunk, fill_zero, silu_bwd_chunk, acc_chunk, rmsnorm_bwd_chunk, rmsnorm_bwd_w, abs_max } from './train';
export { attention_chunk, attention_masked_chunk, attention_decode_chunk, attention_decode_combine } from './attention';
export { sgemm_chunk } from './sgemm';
export { argmax_f32 } from './sample';

/** First byte past the module's static data: the host allocates above it. */
export function heap_base(): usize {
  return __heap_base;
}
