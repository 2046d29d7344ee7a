// A tensor's layout as a kernel argument: what ferrograd's `Layout` holds (sizes and
// strides of up to 6 axes, in elements, and the offset of element 0), so a kernel can
// read any strided, broadcast (stride 0) or offset view. Matches `KernelLayout` in
// layout.rs field for field.
struct Layout {
    unsigned int rank;
    unsigned int unused;
    unsigned long long dims[6];
    unsigned long long strides[6];
    unsigned long long offset;
};

// Where the element at row-major position `index` of the layout's dims lives in its
// buffer.
__device__ __forceinline__ unsigned long long layout_offset(const Layout &layout, unsigned long long index) {
    unsigned long long offset = layout.offset;
    for (int axis = (int)layout.rank - 1; axis >= 0; --axis) {
        const unsigned long long size = layout.dims[axis];
        offset += (index % size) * layout.strides[axis];
        index /= size;
    }
    return offset;
}
