// Helpers of the kernels that read strided views (reductions, softmax, indexing),
// after layout.cuh.

typedef unsigned long long u64;

// The buffer offset of row-major position `index` of a layout: layout_offset, with the
// one-axis and no-axis layouts (the usual ones once the host has merged axes) spared
// the divisions.
__device__ __forceinline__ u64 fast_offset(const Layout &layout, u64 index) {
    if (layout.rank == 0) {
        return layout.offset;
    }
    if (layout.rank == 1) {
        return layout.offset + index * layout.strides[0];
    }
    return layout_offset(layout, index);
}

// A grid-stride loop over positions p in [0, numel).
#define FOR_EACH_POSITION                                                                           \
    for (u64 p = (u64)blockIdx.x * blockDim.x + threadIdx.x; p < numel; p += (u64)gridDim.x * blockDim.x)
