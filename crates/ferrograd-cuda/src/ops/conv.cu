// The kernels of 2-d convolutions (conv.rs) around cuBLAS's products: im2col lays out
// the input pixels each output pixel reads as columns of a matrix, col2im sums such
// columns back into the input's gradient, and the rest handle the bias and move
// gradients between layouts. Grid-stride loops, 64-bit indices.

// A convolution's sizes, as conv.rs's `ConvGeometry` (repr(C), field for field).
struct ConvGeometry {
    unsigned long long channels;  // input channels, all groups
    unsigned long long in_height;
    unsigned long long in_width;
    unsigned long long out_height;
    unsigned long long out_width;
    unsigned long long kernel_height;
    unsigned long long kernel_width;
    unsigned long long stride_height;
    unsigned long long stride_width;
    unsigned long long dilation_height;
    unsigned long long dilation_width;
    unsigned long long pad_top;
    unsigned long long pad_left;
};

// Adds `value` to *target: atomically where other threads may add to the same element
// (a gradient whose layout repeats elements), else a plain read and write.
__device__ __forceinline__ void accumulate(T *target, T value, int atomic) {
    if (atomic) {
        atomicAdd(target, value);
    } else {
        *target += value;
    }
}

// For images first_image .. first_image + images of the input (read through its rank-4
// layout), columns[n·image_stride + r·row_stride + p] = the input pixel that kernel tap
// r = (c, i, j) of channel c meets for output pixel p = (y, x), or 0 in the padding.
extern "C" __global__ void conv_im2col(const T *input, Layout layout, ConvGeometry g, unsigned long long first_image,
                                       unsigned long long images, T *columns, unsigned long long image_stride,
                                       unsigned long long row_stride) {
    const unsigned long long pixels = g.out_height * g.out_width;
    const unsigned long long taps = g.kernel_height * g.kernel_width;
    const unsigned long long rows = g.channels * taps;
    const unsigned long long len = images * rows * pixels;
    const unsigned long long step = (unsigned long long)gridDim.x * blockDim.x;
    for (unsigned long long i = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x; i < len; i += step) {
        const unsigned long long p = i % pixels;
        const unsigned long long r = (i / pixels) % rows;
        const unsigned long long n = i / (pixels * rows);
        const unsigned long long tap_x = r % g.kernel_width;
        const unsigned long long tap_y = (r / g.kernel_width) % g.kernel_height;
        const unsigned long long c = r / taps;
        const long long y = (long long)((p / g.out_width) * g.stride_height + tap_y * g.dilation_height) - (long long)g.pad_top;
        const long long x = (long long)((p % g.out_width) * g.stride_width + tap_x * g.dilation_width) - (long long)g.pad_left;
        T value = (T)0;
        if (y >= 0 && y < (long long)g.in_height && x >= 0 && x < (long long)g.in_width) {
            value = input[layout.offset + (first_image + n) * layout.strides[0] + c * layout.strides[1] +
                          (unsigned long long)y * layout.strides[2] + (unsigned long long)x * layout.strides[3]];
        }
        columns[n * image_stride + r * row_stride + p] = value;
    }
}

// The inverse of conv_im2col, summed: for every input pixel (n, c, y, x) of images
// first_image .. first_image + images, the sum of the columns' entries of the taps that
// read it, added to grad (through its rank-4 layout).
extern "C" __global__ void conv_col2im(const T *columns, unsigned long long image_stride, unsigned long long row_stride,
                                       ConvGeometry g, unsigned long long first_image, unsigned long long images, T *grad,
                                       Layout layout, int atomic) {
    const unsigned long long plane = g.in_height * g.in_width;
    const unsigned long long len = images * g.channels * plane;
    const unsigned long long step = (unsigned long long)gridDim.x * blockDim.x;
    for (unsigned long long i = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x; i < len; i += step) {
        const unsigned long long x = i % g.in_width;
        const unsigned long long y = (i / g.in_width) % g.in_height;
        const unsigned long long c = (i / plane) % g.channels;
        const unsigned long long n = i / (plane * g.channels);
        T sum = (T)0;
        for (unsigned long long tap_y = 0; tap_y < g.kernel_height; ++tap_y) {
            // The output row whose tap tap_y lands on row y: (y + top - tap_y·dh) / sh.
            const long long ty = (long long)(y + g.pad_top) - (long long)(tap_y * g.dilation_height);
            if (ty < 0) {
                break;  // larger taps land further up
            }
            if ((unsigned long long)ty % g.stride_height != 0) {
                continue;
            }
            const unsigned long long out_y = (unsigned long long)ty / g.stride_height;
            if (out_y >= g.out_height) {
                continue;
            }
            for (unsigned long long tap_x = 0; tap_x < g.kernel_width; ++tap_x) {
                const long long tx = (long long)(x + g.pad_left) - (long long)(tap_x * g.dilation_width);
                if (tx < 0) {
                    break;
                }
                if ((unsigned long long)tx % g.stride_width != 0) {
                    continue;
                }
                const unsigned long long out_x = (unsigned long long)tx / g.stride_width;
                if (out_x >= g.out_width) {
                    continue;
                }
                const unsigned long long r = (c * g.kernel_height + tap_y) * g.kernel_width + tap_x;
                sum += columns[n * image_stride + r * row_stride + out_y * g.out_width + out_x];
            }
        }
        const unsigned long long at = layout.offset + (first_image + n) * layout.strides[0] + c * layout.strides[1] +
                                      y * layout.strides[2] + x * layout.strides[3];
        accumulate(grad + at, sum, atomic);
    }
}

// out[n, o, p] = bias[o] (through the bias's rank-1 layout), for the product to add to.
extern "C" __global__ void conv_fill_bias(T *out, const T *bias, Layout layout, unsigned long long channels,
                                          unsigned long long pixels, unsigned long long len) {
    const unsigned long long step = (unsigned long long)gridDim.x * blockDim.x;
    for (unsigned long long i = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x; i < len; i += step) {
        out[i] = bias[layout.offset + ((i / pixels) % channels) * layout.strides[0]];
    }
}

// grad_bias[o] += the sum of grad_output[n, o, p] over images and pixels: one block of
// 256 threads per channel (a grid-stride loop over channels), summed in shared memory.
extern "C" __global__ void conv_bias_grad(const T *grad_output, unsigned long long batch, unsigned long long channels,
                                          unsigned long long pixels, T *grad_bias, Layout layout, int atomic) {
    __shared__ T partial[256];
    const unsigned long long total = batch * pixels;
    for (unsigned long long o = blockIdx.x; o < channels; o += gridDim.x) {
        T sum = (T)0;
        for (unsigned long long j = threadIdx.x; j < total; j += blockDim.x) {
            sum += grad_output[((j / pixels) * channels + o) * pixels + j % pixels];
        }
        partial[threadIdx.x] = sum;
        __syncthreads();
        for (unsigned int half = blockDim.x / 2; half > 0; half /= 2) {
            if (threadIdx.x < half) {
                partial[threadIdx.x] += partial[threadIdx.x + half];
            }
            __syncthreads();
        }
        if (threadIdx.x == 0) {
            accumulate(grad_bias + layout.offset + o * layout.strides[0], partial[0], atomic);
        }
        // `partial` is reused by the block's next channel.
        __syncthreads();
    }
}

// out[o, n, p] = grad_output[first_image + n, o, p]: the output's gradient of a chunk
// of images with the channels outermost, so each channel's gradients over the chunk
// are one row for the weight's gradient product.
extern "C" __global__ void conv_regroup(const T *grad_output, unsigned long long first_image, unsigned long long images,
                                        unsigned long long channels, unsigned long long pixels, T *out) {
    const unsigned long long len = channels * images * pixels;
    const unsigned long long step = (unsigned long long)gridDim.x * blockDim.x;
    for (unsigned long long i = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x; i < len; i += step) {
        const unsigned long long p = i % pixels;
        const unsigned long long n = (i / pixels) % images;
        const unsigned long long o = i / (pixels * images);
        out[i] = grad_output[((first_image + n) * channels + o) * pixels + p];
    }
}

// dst[layout_offset(layout, i)] += src[i] for i < len: a dense gradient added through
// the layout of the operand it belongs to.
extern "C" __global__ void conv_accumulate(const T *src, T *dst, Layout layout, unsigned long long len, int atomic) {
    const unsigned long long step = (unsigned long long)gridDim.x * blockDim.x;
    for (unsigned long long i = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x; i < len; i += step) {
        accumulate(dst + layout_offset(layout, i), src[i], atomic);
    }
}
