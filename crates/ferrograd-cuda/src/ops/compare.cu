// Element-wise comparisons into a bool buffer (0 or 1 bytes). Compiled for every
// element type; `bool` inputs (unsigned char) are read as 0 or 1 whatever byte is
// stored, as the host reads them. NaN compares as IEEE 754 says (unequal to everything).

template <class U> __device__ __forceinline__ U compare_read(U x) { return x; }
__device__ __forceinline__ unsigned char compare_read(unsigned char x) { return x != 0; }

// `op` is the host's Comparison: 0 eq, 1 ne, 2 lt, 3 le, 4 gt, 5 ge.
__device__ __forceinline__ unsigned char compare_apply(int op, T x, T y) {
    x = compare_read(x);
    y = compare_read(y);
    switch (op) {
    case 0: return x == y;
    case 1: return x != y;
    case 2: return x < y;
    case 3: return x <= y;
    case 4: return x > y;
    default: return x >= y;
    }
}

// out[i] = lhs[i] op rhs[i], both read through their layouts; the output contiguous.
extern "C" __global__ void compare_tensor(const T *lhs, Layout lhs_layout, int lhs_contiguous, const T *rhs,
                                          Layout rhs_layout, int rhs_contiguous, unsigned char *out,
                                          unsigned long long len, int op) {
    EW_FOR_EACH(i, len) {
        out[i] = compare_apply(op, lhs[ew_at(lhs_layout, lhs_contiguous, i)], rhs[ew_at(rhs_layout, rhs_contiguous, i)]);
    }
}

// out[i] = lhs[i] op scalar.
extern "C" __global__ void compare_scalar(const T *lhs, Layout lhs_layout, int lhs_contiguous, T scalar,
                                          unsigned char *out, unsigned long long len, int op) {
    EW_FOR_EACH(i, len) {
        out[i] = compare_apply(op, lhs[ew_at(lhs_layout, lhs_contiguous, i)], scalar);
    }
}
