// Philox-4x32-10 (Salmon, Moraes, Dror and Shaw, "Parallel random numbers: as easy as
// 1, 2, 3", SC 2011): a counter-based generator. Four 32-bit words come from a 128-bit
// counter and a 64-bit key alone, so every thread computes its own numbers with no
// state shared between threads or kept between launches. The same function on the
// host (src/random.rs) checks it against the authors' published answers.

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

__device__ __forceinline__ void philox4x32_10(unsigned int ctr[4], unsigned int key0, unsigned int key1) {
    for (int round = 0; round < 10; ++round) {
        if (round > 0) {
            key0 += PHILOX_W0;
            key1 += PHILOX_W1;
        }
        const unsigned int hi0 = __umulhi(PHILOX_M0, ctr[0]);
        const unsigned int lo0 = PHILOX_M0 * ctr[0];
        const unsigned int hi1 = __umulhi(PHILOX_M1, ctr[2]);
        const unsigned int lo1 = PHILOX_M1 * ctr[2];
        const unsigned int c1 = ctr[1];
        const unsigned int c3 = ctr[3];
        ctr[0] = hi1 ^ c1 ^ key0;
        ctr[1] = lo1;
        ctr[2] = hi0 ^ c3 ^ key1;
        ctr[3] = lo0;
    }
}

// Uniform in [0, 1) from the top 24 bits of word k: every value is an exact float.
__device__ __forceinline__ float uniform_from(const unsigned int w[4], unsigned int k, float) {
    return (float)(w[k] >> 8) * 5.9604644775390625e-08f; // 2^-24
}

// Uniform in [0, 1) from the top 53 bits of words 2k (high) and 2k + 1 (low).
__device__ __forceinline__ double uniform_from(const unsigned int w[4], unsigned int k, double) {
    const unsigned long long bits = (((unsigned long long)w[2 * k] << 32) | w[2 * k + 1]) >> 11;
    return (double)bits * 1.1102230246251565e-16; // 2^-53
}

// out[j] = uniform number `offset + j` of the stream keyed by `seed`. Number e of the
// stream comes from counter e / 4 (float: one word each) or e / 2 (double: two words
// each), so a stream drawn in several launches equals one drawn in a single launch.
// The host guarantees offset + len + 4 does not overflow.
extern "C" __global__ void philox_uniform(T *out, unsigned long long len, unsigned long long seed,
                                          unsigned long long offset) {
    const unsigned long long per_counter = sizeof(T) == 4 ? 4 : 2;
    const unsigned long long end = offset + len;
    const unsigned long long last_counter = (end + per_counter - 1) / per_counter;
    const unsigned long long stride = (unsigned long long)gridDim.x * blockDim.x;
    for (unsigned long long counter = offset / per_counter + (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x;
         counter < last_counter; counter += stride) {
        unsigned int w[4] = {(unsigned int)counter, (unsigned int)(counter >> 32), 0u, 0u};
        philox4x32_10(w, (unsigned int)seed, (unsigned int)(seed >> 32));
        for (unsigned int k = 0; k < per_counter; ++k) {
            const unsigned long long e = counter * per_counter + k;
            if (e >= offset && e < end) {
                out[e - offset] = uniform_from(w, k, (T)0);
            }
        }
    }
}

// A dropout mask: out[j] = 0 where uniform number j of the stream keyed by `seed` is
// below `p`, `scale` elsewhere. The uniform numbers are philox_uniform's (offset 0),
// compared in double as the CPU compares its f64 draws.
extern "C" __global__ void dropout_mask(T *out, unsigned long long len, unsigned long long seed, double p,
                                        T scale) {
    const unsigned long long per_counter = sizeof(T) == 4 ? 4 : 2;
    const unsigned long long counters = (len + per_counter - 1) / per_counter;
    const unsigned long long stride = (unsigned long long)gridDim.x * blockDim.x;
    for (unsigned long long counter = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x; counter < counters;
         counter += stride) {
        unsigned int w[4] = {(unsigned int)counter, (unsigned int)(counter >> 32), 0u, 0u};
        philox4x32_10(w, (unsigned int)seed, (unsigned int)(seed >> 32));
        for (unsigned int k = 0; k < per_counter; ++k) {
            const unsigned long long e = counter * per_counter + k;
            if (e < len) {
                out[e] = (double)uniform_from(w, k, (T)0) < p ? (T)0 : scale;
            }
        }
    }
}
