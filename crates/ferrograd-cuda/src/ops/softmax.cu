// Softmax and log-softmax along axes (src/softmax.rs), one fused kernel per direction.
//
// A team (team.cuh) normalises one row: the elements sharing every index outside the
// normalised axes. Row `o` of the input starts at `fast_offset(x_outer, o)`, its
// element `j` lies `fast_offset(x_inner, j)` further; the same element of the
// contiguous output (and of the output's gradient) is at `fast_offset(y_outer, o) +
// fast_offset(y_inner, j)`. The host checked that every offset lies inside its
// buffer, and launches only with count > 0 and len > 0.

// log: 0 for softmax, exp(x − m) / Σ exp(x − m); 1 for log-softmax,
// (x − m) − ln Σ exp(x − m); m is the row's maximum ignoring NaN. `x` and `out` may be
// the same buffer with the same layouts (in place): each thread reads an element
// before it writes the same element, and reads no element another thread writes.
__device__ __forceinline__ void softmax_rows(const T *x, T *out, const Layout &x_outer, const Layout &x_inner,
                                             const Layout &y_outer, const Layout &y_inner, u64 count, u64 len,
                                             unsigned team, int log) {
    for_each_group(count, team, [&](u64 o, bool active) {
        const u64 x_start = active ? fast_offset(x_outer, o) : 0;
        const u64 y_start = active ? fast_offset(y_outer, o) : 0;
        T m = -infinity();
        for_each_element(x_inner, x_start, len, team, active, [&](u64, u64 at) { m = MaxIgnoringNan()(m, x[at]); });
        m = team_reduce(m, team, MaxIgnoringNan());
        T total = 0;
        for_each_element(x_inner, x_start, len, team, active, [&](u64, u64 at) { total += e_exp(x[at] - m); });
        total = team_reduce(total, team, Sum());
        // What each element needs from its row: 1 / Σ, or ln Σ.
        const T stat = log ? e_log(total) : (T)1 / total;
        for_each_element(x_inner, x_start, len, team, active, [&](u64 j, u64 at) {
            const T v = x[at];
            out[y_start + fast_offset(y_inner, j)] = log ? (v - m) - stat : e_exp(v - m) * stat;
        });
    });
}

extern "C" __global__ void softmax_forward(const T *x, T *out, Layout x_outer, Layout x_inner, Layout y_outer,
                                           Layout y_inner, u64 count, u64 len, unsigned team, int log) {
    softmax_rows(x, out, x_outer, x_inner, y_outer, y_inner, count, len, team, log);
}

// The same, writing over the input (a dense buffer handed over, the layouts equal).
extern "C" __global__ void softmax_forward_in_place(T *x, Layout outer, Layout inner, u64 count, u64 len,
                                                    unsigned team, int log) {
    softmax_rows(x, x, outer, inner, outer, inner, count, len, team, log);
}

// Adds the input's gradient into `grad_input` (addressed like the input, atomically
// when `atomic`: a layout that repeats elements) from the output `y` and its gradient
// `dy`, both contiguous:
//   softmax:     dx += y · (dy − Σ_row dy · y)
//   log-softmax: dx += dy − exp(y) · Σ_row dy
extern "C" __global__ void softmax_backward(T *grad_input, Layout x_outer, Layout x_inner, const T *y, const T *dy,
                                            Layout y_outer, Layout y_inner, u64 count, u64 len, unsigned team,
                                            int log, unsigned atomic) {
    for_each_group(count, team, [&](u64 o, bool active) {
        const u64 x_start = active ? fast_offset(x_outer, o) : 0;
        const u64 y_start = active ? fast_offset(y_outer, o) : 0;
        T total = 0;
        for_each_element(y_inner, y_start, len, team, active,
                         [&](u64, u64 at) { total += log ? dy[at] : dy[at] * y[at]; });
        total = team_reduce(total, team, Sum());
        for_each_element(x_inner, x_start, len, team, active, [&](u64 j, u64 at) {
            const u64 k = y_start + fast_offset(y_inner, j);
            const T d = log ? dy[k] - e_exp(y[k]) * total : y[k] * (dy[k] - total);
            accumulate(&grad_input[at], d, atomic);
        });
    });
}
