// The kernels around cuBLAS's products (matmul.rs): copies of the operands cuBLAS cannot
// read or write in place (neither their rows nor their columns are adjacent), and the
// product with an inner size of 0, which is only a scaling. Each loops over its
// elements with a grid stride, in 64-bit indices.

// dst[i] = src[layout_offset(layout, i)] for i < len: a strided operand copied into a
// dense row-major buffer.
extern "C" __global__ void gemm_gather(const T *src, Layout layout, T *dst, unsigned long long len) {
    const unsigned long long step = (unsigned long long)gridDim.x * blockDim.x;
    for (unsigned long long i = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x; i < len; i += step) {
        dst[i] = src[layout_offset(layout, i)];
    }
}

// dst[layout_offset(layout, i)] = src[i] for i < len: a dense result written back through
// the output's layout, which addresses each element once (checked on the host).
extern "C" __global__ void gemm_scatter(const T *src, T *dst, Layout layout, unsigned long long len) {
    const unsigned long long step = (unsigned long long)gridDim.x * blockDim.x;
    for (unsigned long long i = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x; i < len; i += step) {
        dst[layout_offset(layout, i)] = src[i];
    }
}

// out = beta · out through the layout, for a product with nothing to sum (k = 0): zero
// when beta is 0, without reading out (so a NaN there does not survive), as the GEMM.
extern "C" __global__ void gemm_scale(T *out, Layout layout, T beta, unsigned long long len) {
    const unsigned long long step = (unsigned long long)gridDim.x * blockDim.x;
    for (unsigned long long i = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x; i < len; i += step) {
        const unsigned long long at = layout_offset(layout, i);
        out[at] = beta == (T)0 ? (T)0 : beta * out[at];
    }
}
