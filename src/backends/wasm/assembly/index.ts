// Entry point of the WebAssembly kernels (AssemblyScript). Built twice by scripts/build-wasm.mjs:
// dist/wasm/kernels-simd.wasm (--enable simd) and dist/wasm/kernels-relaxed.wasm (+ relaxed-simd).
// Both import a shared memory (env.memory); TypeScript (../index.ts) owns its layout.

export { deq_row, deq_matrix_row, gemv_f32, gemv_f16, gemv_bf16, gemm_f32, gemm_deq, gemm_f32_ld, gemm_deq_ld, quant_q8, widen_q8, gemv_q8_0, gemv_q4_0, q4_0_wants_x16, gemv_q4_k, gemv_q6_k } from './matmul';
export { binop, unop, rmsnorm, layernorm, rope, attention, argmax } from './ops';
export { gemm_nn_acc, gemm_tn_acc, attention_bwd } from './train';

/** First byte past the module's static data: the host allocates above it. */
export function heap_base(): usize {
  return __heap_base;
}
