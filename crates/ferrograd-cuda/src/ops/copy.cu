// Strided copies between two buffers through layouts of equal dims: what `contiguous`,
// `concat` and `stack` are made of, and how their gradients flow back.

// dst[dst_layout[i]] = src[src_layout[i]]. The host refuses a dst layout that repeats
// elements, so no two threads write one element.
extern "C" __global__ void copy_strided(const T *src, Layout src_layout, int src_contiguous, T *dst,
                                        Layout dst_layout, int dst_contiguous, unsigned long long len) {
    EW_FOR_EACH(i, len) {
        dst[ew_at(dst_layout, dst_contiguous, i)] = src[ew_at(src_layout, src_contiguous, i)];
    }
}

// dst[dst_layout[i]] += src[src_layout[i]], written as `dst_mode` says (ew_write): where
// dst's layout repeats elements they accumulate with atomicAdd, each position adding
// its value once.
extern "C" __global__ void copy_add_strided(const T *src, Layout src_layout, int src_contiguous, T *dst,
                                            Layout dst_layout, int dst_mode, unsigned long long len) {
    EW_FOR_EACH(i, len) {
        ew_write(dst, dst_layout, dst_mode, i, src[ew_at(src_layout, src_contiguous, i)]);
    }
}
