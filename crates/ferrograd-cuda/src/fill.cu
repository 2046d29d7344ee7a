// Sets the first `len` elements of `out` to `value`. Used by Storage::try_fill and
// try_alloc_filled for values whose bytes are not all zero (zeros are a memset).
extern "C" __global__ void fill(T *out, T value, unsigned long long len) {
    // A grid-stride loop, so a grid of bounded size covers any length.
    const unsigned long long stride = (unsigned long long)gridDim.x * blockDim.x;
    for (unsigned long long i = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x; i < len; i += stride) {
        out[i] = value;
    }
}
