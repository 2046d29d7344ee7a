// 2-d upsampling, nearest and bilinear (upsample.rs): one thread per output pixel, in
// grid-stride loops with 64-bit indices. The source rows and columns of each output
// row and column and their weights come from the host (the spec's own tables, the
// CPU's), so both devices read the same pixels with the same weights: `index` holds
// (low, high) for each output row, then for each output column; `weight` the matching
// (w_low, w_high).
//
// Products go through mul(), never contracted into a fused multiply-add, so that the
// blend rounds as the CPU's does.

__device__ __forceinline__ float mul(float a, float b) { return __fmul_rn(a, b); }
__device__ __forceinline__ double mul(double a, double b) { return __dmul_rn(a, b); }

// out[i] (contiguous, (batch, channels, out_height, out_width)) from the input, read
// through its rank-4 layout: the nearest pixel's copy, or the bilinear blend
// w_y0 · (w_x0 · a + w_x1 · b) + w_y1 · (w_x0 · c + w_x1 · d), in the CPU's order.
extern "C" __global__ void upsample_forward(const T *input, Layout layout, unsigned long long channels,
                                            unsigned long long out_height, unsigned long long out_width,
                                            const unsigned long long *index, const T *weight, int nearest, T *out,
                                            unsigned long long len) {
    const unsigned long long step = (unsigned long long)gridDim.x * blockDim.x;
    for (unsigned long long i = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x; i < len; i += step) {
        const unsigned long long x = i % out_width;
        const unsigned long long y = (i / out_width) % out_height;
        const unsigned long long plane = i / (out_width * out_height);
        const unsigned long long base =
            layout.offset + (plane / channels) * layout.strides[0] + (plane % channels) * layout.strides[1];
        const unsigned long long row0 = base + index[2 * y] * layout.strides[2];
        const unsigned long long column0 = index[2 * out_height + 2 * x] * layout.strides[3];
        if (nearest) {
            // A copy: weights of 0 would turn an infinite pixel into NaN.
            out[i] = input[row0 + column0];
            continue;
        }
        const unsigned long long row1 = base + index[2 * y + 1] * layout.strides[2];
        const unsigned long long column1 = index[2 * out_height + 2 * x + 1] * layout.strides[3];
        const T wy0 = weight[2 * y], wy1 = weight[2 * y + 1];
        const T wx0 = weight[2 * out_height + 2 * x], wx1 = weight[2 * out_height + 2 * x + 1];
        const T top = mul(wx0, input[row0 + column0]) + mul(wx1, input[row0 + column1]);
        const T bottom = mul(wx0, input[row1 + column0]) + mul(wx1, input[row1 + column1]);
        out[i] = mul(wy0, top) + mul(wy1, bottom);
    }
}

// Adds each output pixel's gradient to the input pixels it was made of, weighted as in
// the forward pass, through the gradient's rank-4 layout. Always atomically: several
// output pixels read each input pixel.
extern "C" __global__ void upsample_backward(const T *grad_output, unsigned long long channels,
                                             unsigned long long out_height, unsigned long long out_width,
                                             const unsigned long long *index, const T *weight, int nearest, T *grad,
                                             Layout layout, unsigned long long len) {
    const unsigned long long step = (unsigned long long)gridDim.x * blockDim.x;
    for (unsigned long long i = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x; i < len; i += step) {
        const unsigned long long x = i % out_width;
        const unsigned long long y = (i / out_width) % out_height;
        const unsigned long long plane = i / (out_width * out_height);
        const unsigned long long base =
            layout.offset + (plane / channels) * layout.strides[0] + (plane % channels) * layout.strides[1];
        const unsigned long long row0 = base + index[2 * y] * layout.strides[2];
        const unsigned long long column0 = index[2 * out_height + 2 * x] * layout.strides[3];
        const T g = grad_output[i];
        if (nearest) {
            atomicAdd(grad + row0 + column0, g);
            continue;
        }
        const unsigned long long row1 = base + index[2 * y + 1] * layout.strides[2];
        const unsigned long long column1 = index[2 * out_height + 2 * x + 1] * layout.strides[3];
        const T wx0 = weight[2 * out_height + 2 * x], wx1 = weight[2 * out_height + 2 * x + 1];
        const T top = mul(weight[2 * y], g), bottom = mul(weight[2 * y + 1], g);
        atomicAdd(grad + row0 + column0, mul(top, wx0));
        atomicAdd(grad + row0 + column1, mul(top, wx1));
        atomicAdd(grad + row1 + column0, mul(bottom, wx0));
        atomicAdd(grad + row1 + column1, mul(bottom, wx1));
    }
}
