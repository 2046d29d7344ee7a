// What the reductions (reduce.cu) and softmax (softmax.cu) share, after layout.cuh and
// strided.cuh: math by element type, and the "team" that reduces one group.
//
// Every kernel that reduces groups runs blocks of TEAM_BLOCK threads split into teams
// of `team` threads (1, 32 or TEAM_BLOCK, a kernel argument chosen on the host): each
// team handles one group at a time, its threads reading the group's elements
// `lane, lane + team, ...` and combining their partial results with warp shuffles (32)
// or warp shuffles then shared memory (a whole block). Every thread of a block runs
// the same number of iterations of the loop over groups (a team past the last group
// is "inactive": it reads nothing and writes nothing, but joins the shuffles and the
// barriers), so the full-warp shuffles and __syncthreads are always reached by all.

#define TEAM_BLOCK 256
#define TEAM_WARPS (TEAM_BLOCK / 32)

__device__ __forceinline__ float e_exp(float x) { return expf(x); }
__device__ __forceinline__ double e_exp(double x) { return exp(x); }
__device__ __forceinline__ float e_log(float x) { return logf(x); }
__device__ __forceinline__ double e_log(double x) { return log(x); }
__device__ __forceinline__ float e_sqrt(float x) { return sqrtf(x); }
__device__ __forceinline__ double e_sqrt(double x) { return sqrt(x); }

__device__ __forceinline__ bool is_nan(T x) { return x != x; }
// NVRTC has no INFINITY without headers.
__device__ __forceinline__ T infinity() { return (T)__longlong_as_double(0x7ff0000000000000ULL); }
// Finite: neither infinite nor NaN (x - x is NaN exactly for those).
__device__ __forceinline__ bool is_finite(T x) { return x - x == (T)0; }

// `x + v`, atomically where other threads may add into the same element (a layout that
// addresses an element from several positions); a plain read-modify-write otherwise,
// where no other thread touches the element.
__device__ __forceinline__ void accumulate(T *x, T v, unsigned atomic) {
    if (atomic) {
        atomicAdd(x, v);
    } else {
        *x += v;
    }
}

// Runs `body(o, active)` for each group `o` this thread's team handles, `active`
// false (and `o` past the end) in the last round for a team with no group left. The
// rounds are the same for every thread of a block, so all of them reach each team
// reduction inside `body`.
template <class Body> __device__ __forceinline__ void for_each_group(u64 count, unsigned team, Body body) {
    const unsigned teams = TEAM_BLOCK / team;
    for (u64 first = (u64)blockIdx.x * teams; first < count; first += (u64)gridDim.x * teams) {
        const u64 o = first + threadIdx.x / team;
        body(o, o < count);
    }
}

// Runs `body(j, at)` for this thread's share of the elements of a group starting at
// `start`: j = lane, lane + team, ... below `len`, `at` the element's offset.
template <class Body>
__device__ __forceinline__ void for_each_element(const Layout &inner, u64 start, u64 len, unsigned team,
                                                 bool active, Body body) {
    if (!active) {
        return;
    }
    for (u64 j = threadIdx.x % team; j < len; j += team) {
        body(j, start + fast_offset(inner, j));
    }
}

// Whether this thread is the first of its team: the one that writes the team's result.
__device__ __forceinline__ bool team_leader(unsigned team) { return threadIdx.x % team == 0; }

// Combining functions: each commutative, so every lane of a butterfly ends with the
// same value.
struct Sum {
    __device__ __forceinline__ T operator()(T a, T b) const { return a + b; }
};
// The larger, ignoring NaN (which never compares greater): softmax and logsumexp start
// from -inf and need no more, a NaN element making its row NaN anyway.
struct MaxIgnoringNan {
    __device__ __forceinline__ T operator()(T a, T b) const { return b > a ? b : a; }
};
// The maximum (kind 0) or minimum (kind 1), NaN when either is NaN: what
// Extremum::replaces keeps when a group is scanned in order.
struct Extremum {
    int kind;
    __device__ __forceinline__ T operator()(T a, T b) const {
        if (is_nan(a)) {
            return a;
        }
        if (is_nan(b)) {
            return b;
        }
        const bool b_better = kind == 0 ? b > a : b < a;
        return b_better ? b : a;
    }
};

// The combination of `v` over the team (every thread of the team gets it). `team` is 1,
// 32 or TEAM_BLOCK, the same for the whole block.
template <class Op> __device__ __forceinline__ T team_reduce(T v, unsigned team, Op op) {
    if (team == 1) {
        return v;
    }
    for (int delta = 16; delta > 0; delta >>= 1) {
        v = op(v, __shfl_xor_sync(0xffffffffu, v, delta));
    }
    if (team == 32) {
        return v;
    }
    __shared__ T partial[TEAM_WARPS];
    __syncthreads(); // an earlier reduction has finished reading `partial`
    if ((threadIdx.x & 31) == 0) {
        partial[threadIdx.x >> 5] = v;
    }
    __syncthreads();
    // Every thread combines the warps' results in the same order: one value for all.
    v = partial[0];
    for (int w = 1; w < TEAM_WARPS; ++w) {
        v = op(v, partial[w]);
    }
    return v;
}

// Whether (a, ja) comes before (b, jb) in the order argmax keeps: a NaN before any
// number, then the larger (kind 0) or smaller (kind 1) value, and among equals (or
// NaNs) the smaller index. A strict total order on distinct indices, so the best of a
// group does not depend on how its elements are split among threads: it is what a
// scan in index order with Extremum::replaces keeps (the first NaN, else the first of
// the ties for the extremum).
__device__ __forceinline__ bool comes_first(int kind, T a, u64 ja, T b, u64 jb) {
    const bool a_nan = is_nan(a), b_nan = is_nan(b);
    if (a_nan || b_nan) {
        return a_nan == b_nan ? ja < jb : a_nan;
    }
    if (a == b) {
        return ja < jb;
    }
    return kind == 0 ? a > b : a < b;
}

// The first of (v, j) over the team in the order of comes_first; every thread gets it.
__device__ __forceinline__ void team_first(T &v, u64 &j, unsigned team, int kind) {
    if (team == 1) {
        return;
    }
    for (int delta = 16; delta > 0; delta >>= 1) {
        const T other = __shfl_xor_sync(0xffffffffu, v, delta);
        const u64 other_j = __shfl_xor_sync(0xffffffffu, j, delta);
        if (comes_first(kind, other, other_j, v, j)) {
            v = other;
            j = other_j;
        }
    }
    if (team == 32) {
        return;
    }
    __shared__ T partial[TEAM_WARPS];
    __shared__ u64 partial_j[TEAM_WARPS];
    __syncthreads();
    if ((threadIdx.x & 31) == 0) {
        partial[threadIdx.x >> 5] = v;
        partial_j[threadIdx.x >> 5] = j;
    }
    __syncthreads();
    v = partial[0];
    j = partial_j[0];
    for (int w = 1; w < TEAM_WARPS; ++w) {
        if (comes_first(kind, partial[w], partial_j[w], v, j)) {
            v = partial[w];
            j = partial_j[w];
        }
    }
}
