// Conversions between element types into a new contiguous buffer, as Rust's `as` (and
// CastTo) converts: `T` is the type converted to, and there is one kernel per type
// converted from. A float to double is exact, a double to float rounds to nearest; a
// bool (unsigned char) reads as 0 or 1 whatever byte is stored, and a value converted
// to bool is 1 where it is not 0.

template <class To> struct convert_to {
    template <class From> __device__ __forceinline__ static To from(From x) { return (To)x; }
};
template <> struct convert_to<unsigned char> {
    template <class From> __device__ __forceinline__ static unsigned char from(From x) { return x != From(0); }
};

// out[i] = (T)input[i], the input read through its layout.
#define CONVERT_KERNEL(name, From, read)                                                                  \
    extern "C" __global__ void name(const From *input, Layout input_layout, int input_contiguous, T *out, \
                                    unsigned long long len) {                                             \
        EW_FOR_EACH(i, len) {                                                                             \
            const From x = input[ew_at(input_layout, input_contiguous, i)];                               \
            out[i] = convert_to<T>::from(read);                                                           \
        }                                                                                                 \
    }

CONVERT_KERNEL(convert_from_float, float, x)
CONVERT_KERNEL(convert_from_double, double, x)
CONVERT_KERNEL(convert_from_bool, unsigned char, (unsigned char)(x != 0))
