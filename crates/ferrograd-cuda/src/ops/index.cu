// Gathering along one axis, and the check of indices before a kernel that adds
// (src/index.rs). Compiled for every element type: a gather only copies.
//
// Positions p run row-major over the index's dims. The element an index k picks is at
// `fast_offset(pinned, p) + k · stride`: `pinned` is the indexed buffer's layout over
// the index's dims with the indexed axis' stride set to 0, `stride` that axis' stride.
// The host checked that `pinned` plus `(size − 1) · stride` stays inside the buffer.

// out[p] = x[pinned(p) + index[p] · stride] where index[p] < size; for the others
// nothing is written and `first_bad` (u64 max before the launch) becomes the smallest
// such position, for the host to report.
extern "C" __global__ void index_gather(const T *x, Layout pinned, u64 stride, u64 size, const u64 *index,
                                        Layout index_layout, u64 numel, T *out, u64 *first_bad) {
    FOR_EACH_POSITION {
        const u64 k = index[fast_offset(index_layout, p)];
        if (k < size) {
            out[p] = x[fast_offset(pinned, p) + k * stride];
        } else {
            atomicMin(first_bad, p);
        }
    }
}

// `first_bad` (u64 max before the launch) becomes the smallest position whose index is
// not below `size`, if any. Writes nothing else.
extern "C" __global__ void index_check(const u64 *index, Layout index_layout, u64 numel, u64 size, u64 *first_bad) {
    FOR_EACH_POSITION {
        if (index[fast_offset(index_layout, p)] >= size) {
            atomicMin(first_bad, p);
        }
    }
}
