// Max, average and adaptive average pooling (pool.rs): one thread per output pixel, in
// grid-stride loops with 64-bit indices. Windows follow the CPU's (ferrograd-cpu's
// pool.rs) exactly: the same taps, the same order, the same divisors.

// A pooling's sizes, as pool.rs's `PoolGeometry` (repr(C), field for field).
struct PoolGeometry {
    unsigned long long channels;
    unsigned long long in_height;
    unsigned long long in_width;
    unsigned long long out_height;
    unsigned long long out_width;
    unsigned long long kernel_height;
    unsigned long long kernel_width;
    unsigned long long stride_height;
    unsigned long long stride_width;
    unsigned long long pad_height;
    unsigned long long pad_width;
    unsigned long long dilation_height;
    unsigned long long dilation_width;
    unsigned int mode;               // 0: max, 1: average, 2: adaptive average
    unsigned int count_include_pad;  // an average divides by its window with padding
};

// The input pixels one output position reads along one axis: `taps` of them from
// `start`, a step apart, and what an average divides by.
struct Window {
    unsigned long long start;
    unsigned long long taps;
    unsigned long long count;
};

// Taps i·stride − pad + j·dilation for j < kernel, those inside 0 .. input. An average
// with its padding counts the window up to the end of the padding (a ceil-mode window
// overhanging it counts only to its end), else the pixels it reads.
__device__ Window pool_window(unsigned long long i, unsigned long long input, unsigned long long kernel,
                              unsigned long long stride, unsigned long long pad, unsigned long long dilation,
                              bool include_pad) {
    const long long first = (long long)(i * stride) - (long long)pad;
    const long long d = (long long)dilation;
    const long long in = (long long)input;
    const long long skipped = first < 0 ? (-first + d - 1) / d : 0;
    long long inside = 0;
    if (in > first) {
        inside = (in - first + d - 1) / d;
        if (inside > (long long)kernel) {
            inside = (long long)kernel;
        }
    }
    long long taps = inside - skipped;
    if (taps < 0) {
        taps = 0;
    }
    long long padded_end = first + (long long)kernel;
    if (padded_end > in + (long long)pad) {
        padded_end = in + (long long)pad;
    }
    Window w;
    w.start = taps > 0 ? (unsigned long long)(first + skipped * d) : 0;
    w.taps = (unsigned long long)taps;
    w.count = include_pad ? (unsigned long long)(padded_end - first) : (unsigned long long)taps;
    return w;
}

// Output position i of `output` over `input`: floor(i·input/output) .. ceil((i+1)·input/output).
__device__ Window adaptive_window(unsigned long long i, unsigned long long input, unsigned long long output) {
    Window w;
    w.start = i * input / output;
    const unsigned long long end = ((i + 1) * input + output - 1) / output;
    w.taps = end - w.start;
    w.count = w.taps;
    return w;
}

// The windows of output pixel (y, x).
__device__ void windows(const PoolGeometry &g, unsigned long long y, unsigned long long x, Window &row, Window &column) {
    if (g.mode == 2) {
        row = adaptive_window(y, g.in_height, g.out_height);
        column = adaptive_window(x, g.in_width, g.out_width);
    } else {
        const bool include_pad = g.count_include_pad != 0 && g.mode == 1;
        row = pool_window(y, g.in_height, g.kernel_height, g.stride_height, g.pad_height, g.dilation_height, include_pad);
        column = pool_window(x, g.in_width, g.kernel_width, g.stride_width, g.pad_width, g.dilation_width, include_pad);
    }
}

// An average's sum (or gradient) divided as the CPU divides it; 0 for an empty window.
__device__ T divide(const PoolGeometry &g, T sum, const Window &row, const Window &column) {
    if (row.taps == 0 || column.taps == 0) {
        return (T)0;
    }
    if (g.mode == 2) {
        return sum / (T)row.count / (T)column.count;
    }
    return sum / (T)(row.count * column.count);
}

// Adds `value` to *target: atomically where other threads may add to the same element
// (overlapping windows, or a gradient whose layout repeats elements).
__device__ __forceinline__ void accumulate(T *target, T value, int atomic) {
    if (atomic) {
        atomicAdd(target, value);
    } else {
        *target += value;
    }
}

// Where output pixel i's window's maximum is, by PyTorch's rule: from −∞ at the window's
// first pixel, a value replaces the best so far when greater, or when NaN (so the first
// of tied maxima wins, and the last NaN). The window must have taps.
__device__ void argmax(const T *input, unsigned long long base, const Layout &layout, const PoolGeometry &g,
                       const Window &row, const Window &column, T &best, unsigned long long &best_row,
                       unsigned long long &best_column) {
    best = (T)__longlong_as_double(0xfff0000000000000LL);  // −∞
    best_row = row.start;
    best_column = column.start;
    for (unsigned long long i = 0; i < row.taps; ++i) {
        const unsigned long long r = row.start + i * g.dilation_height;
        for (unsigned long long j = 0; j < column.taps; ++j) {
            const unsigned long long c = column.start + j * g.dilation_width;
            const T value = input[base + r * layout.strides[2] + c * layout.strides[3]];
            if (value > best || value != value) {
                best = value;
                best_row = r;
                best_column = c;
            }
        }
    }
}

// out[i] (contiguous, (batch, channels, out_height, out_width)) = the pooling of window
// i of the input, read through its rank-4 layout: the maximum (−∞ for a window of no
// pixels), or the divided sum.
extern "C" __global__ void pool_forward(const T *input, Layout layout, PoolGeometry g, T *out, unsigned long long len) {
    const unsigned long long step = (unsigned long long)gridDim.x * blockDim.x;
    for (unsigned long long i = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x; i < len; i += step) {
        const unsigned long long x = i % g.out_width;
        const unsigned long long y = (i / g.out_width) % g.out_height;
        const unsigned long long plane = i / (g.out_width * g.out_height);
        const unsigned long long base =
            layout.offset + (plane / g.channels) * layout.strides[0] + (plane % g.channels) * layout.strides[1];
        Window row, column;
        windows(g, y, x, row, column);
        if (g.mode == 0) {
            T best = (T)__longlong_as_double(0xfff0000000000000LL);
            if (row.taps != 0 && column.taps != 0) {
                unsigned long long r, c;
                argmax(input, base, layout, g, row, column, best, r, c);
            }
            out[i] = best;
        } else {
            T sum = (T)0;
            for (unsigned long long a = 0; a < row.taps; ++a) {
                const unsigned long long r = base + (row.start + a) * layout.strides[2];
                for (unsigned long long b = 0; b < column.taps; ++b) {
                    sum += input[r + (column.start + b) * layout.strides[3]];
                }
            }
            out[i] = divide(g, sum, row, column);
        }
    }
}

// Adds each output pixel's gradient to the input pixel its window's maximum came from
// (found again in the input), through the gradient's rank-4 layout.
extern "C" __global__ void pool_max_backward(const T *input, Layout layout, PoolGeometry g, const T *grad_output,
                                             T *grad, Layout grad_layout, unsigned long long len, int atomic) {
    const unsigned long long step = (unsigned long long)gridDim.x * blockDim.x;
    for (unsigned long long i = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x; i < len; i += step) {
        const unsigned long long x = i % g.out_width;
        const unsigned long long y = (i / g.out_width) % g.out_height;
        const unsigned long long plane = i / (g.out_width * g.out_height);
        const unsigned long long n = plane / g.channels, c = plane % g.channels;
        Window row, column;
        windows(g, y, x, row, column);
        if (row.taps == 0 || column.taps == 0) {
            continue;
        }
        T best;
        unsigned long long r, col;
        argmax(input, layout.offset + n * layout.strides[0] + c * layout.strides[1], layout, g, row, column, best, r, col);
        const unsigned long long at = grad_layout.offset + n * grad_layout.strides[0] + c * grad_layout.strides[1] +
                                      r * grad_layout.strides[2] + col * grad_layout.strides[3];
        accumulate(grad + at, grad_output[i], atomic);
    }
}

// Adds each output pixel's gradient, divided as in the forward pass, to every input
// pixel of its window, through the gradient's rank-4 layout (average and adaptive).
extern "C" __global__ void pool_average_backward(PoolGeometry g, const T *grad_output, T *grad, Layout grad_layout,
                                                 unsigned long long len, int atomic) {
    const unsigned long long step = (unsigned long long)gridDim.x * blockDim.x;
    for (unsigned long long i = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x; i < len; i += step) {
        const unsigned long long x = i % g.out_width;
        const unsigned long long y = (i / g.out_width) % g.out_height;
        const unsigned long long plane = i / (g.out_width * g.out_height);
        const unsigned long long base = grad_layout.offset + (plane / g.channels) * grad_layout.strides[0] +
                                        (plane % g.channels) * grad_layout.strides[1];
        Window row, column;
        windows(g, y, x, row, column);
        const T share = divide(g, grad_output[i], row, column);
        for (unsigned long long a = 0; a < row.taps; ++a) {
            const unsigned long long r = base + (row.start + a) * grad_layout.strides[2];
            for (unsigned long long b = 0; b < column.taps; ++b) {
                accumulate(grad + r + (column.start + b) * grad_layout.strides[3], share, atomic);
            }
        }
    }
}
