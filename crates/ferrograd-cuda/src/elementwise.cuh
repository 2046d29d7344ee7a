// What the element-wise kernels share (the generated unary and binary kernels,
// comparisons, choose, conversions and copies): where a position of a view lives, and
// how a kernel adds into a gradient or destination through a layout. Included after
// layout.cuh. The helpers that do arithmetic are templates, instantiated only by kernels
// on float or double, so sources compiled for other element types may include this too.
//
// Every kernel walks positions 0 .. len - 1 of its dims in row-major order with a
// grid-stride loop of 64-bit indices (EW_FOR_EACH), so any size runs on a grid of
// bounded size.

#define EW_FOR_EACH(i, len)                                                                  \
    for (unsigned long long i = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x;   \
         i < (len); i += (unsigned long long)gridDim.x * blockDim.x)

// Where position `index` of a view lives in its buffer: `index` itself when the layout
// is contiguous (row-major strides and offset 0, which the host tells the kernel),
// else through the layout's strides.
__device__ __forceinline__ unsigned long long ew_at(const Layout &layout, int contiguous, unsigned long long index) {
    return contiguous ? index : layout_offset(layout, index);
}

// A product and a sum rounded once each, never contracted into a fused multiply-add:
// the CPU rounds `grad + grad_output * derivative` twice, and so do the kernels, so
// where the derivative is exact the gradient is the CPU's bit for bit.
__device__ __forceinline__ float ew_mul(float a, float b) { return __fmul_rn(a, b); }
__device__ __forceinline__ double ew_mul(double a, double b) { return __dmul_rn(a, b); }
__device__ __forceinline__ float ew_add(float a, float b) { return __fadd_rn(a, b); }
__device__ __forceinline__ double ew_add(double a, double b) { return __dadd_rn(a, b); }

// How a kernel writes `value` for position `index` into `out` (a gradient, or a copy's
// destination), chosen by the host from the layout:
// - EW_STORE: out[index] = value (a new, dense buffer);
// - EW_ADD_DENSE: out[index] += value (a contiguous layout);
// - EW_ADD_STRIDED: out[at] += value through the layout, which addresses each element
//   once, so no two threads touch one element;
// - EW_ADD_ATOMIC: the same with atomicAdd, for a layout that repeats elements (a
//   broadcast operand's gradient): every position adds its value once, in an
//   unspecified order.
#define EW_STORE 0
#define EW_ADD_DENSE 1
#define EW_ADD_STRIDED 2
#define EW_ADD_ATOMIC 3

template <class U>
__device__ __forceinline__ void ew_write(U *out, const Layout &layout, int mode, unsigned long long index, U value) {
    switch (mode) {
    case EW_STORE:
        out[index] = value;
        break;
    case EW_ADD_DENSE:
        out[index] = ew_add(out[index], value);
        break;
    case EW_ADD_STRIDED: {
        const unsigned long long at = layout_offset(layout, index);
        out[at] = ew_add(out[at], value);
        break;
    }
    default:
        atomicAdd(out + layout_offset(layout, index), value);
        break;
    }
}
