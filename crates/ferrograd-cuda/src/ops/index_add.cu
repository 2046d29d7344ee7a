// Accumulating along one axis at given indices, and one-hot encoding (src/index.rs).
// The host runs index_check first and launches these only when every index is below
// `size` (`classes`); they test it again anyway, so that no index can take a write
// outside its buffer. Positions and `pinned` as in index.cu.

// dst[pinned(p) + index[p] · stride] += src[p], atomically: repeated indices, and a
// `dst` layout that repeats elements, add into one element from several threads.
extern "C" __global__ void index_scatter_add(T *dst, Layout pinned, u64 stride, u64 size, const u64 *index,
                                             Layout index_layout, const T *src, Layout src_layout, u64 numel) {
    FOR_EACH_POSITION {
        const u64 k = index[fast_offset(index_layout, p)];
        if (k < size) {
            atomicAdd(&dst[fast_offset(pinned, p) + k * stride], src[fast_offset(src_layout, p)]);
        }
    }
}

// dst[p] += src[pinned(p) + index[p] · stride], `dst` read through its layout,
// atomically when `atomic` (a layout that repeats elements).
extern "C" __global__ void index_gather_add(const T *src, Layout pinned, u64 stride, u64 size, const u64 *index,
                                            Layout index_layout, T *dst, Layout dst_layout, u64 numel,
                                            unsigned atomic) {
    FOR_EACH_POSITION {
        const u64 k = index[fast_offset(index_layout, p)];
        if (k < size) {
            const T v = src[fast_offset(pinned, p) + k * stride];
            T *target = &dst[fast_offset(dst_layout, p)];
            if (atomic) {
                atomicAdd(target, v);
            } else {
                *target += v;
            }
        }
    }
}

// out[p · classes + index[p]] = 1, over a zeroed `out` of numel · classes elements.
extern "C" __global__ void index_one_hot(const u64 *index, Layout index_layout, u64 numel, u64 classes, T *out) {
    FOR_EACH_POSITION {
        const u64 k = index[fast_offset(index_layout, p)];
        if (k < classes) {
            out[p * classes + k] = (T)1;
        }
    }
}
