// Reductions over axes (src/reduce.rs): sum, max / min, argmax / argmin, max / min
// with indices, variance and standard deviation, logsumexp, and their gradients.
//
// Forward kernels reduce groups with teams (team.cuh). Group `o` (row-major over the
// kept axes, the output's order) starts at `fast_offset(outer, o)`, and its element
// `j` (row-major over the reduced axes, what argmax counts) lies `fast_offset(inner,
// j)` further (`inner` has offset 0). The host checked that every such offset lies
// inside `x`, and launches only with count > 0 and len > 0.
//
// Backward kernels are element-wise over the input's positions p (row-major over its
// dims): the element at `fast_offset(in, p)` belongs to output `fast_offset(to_out, p)`
// (`to_out` has the input's dims, the output's strides on the kept axes and 0 on the
// reduced ones). They add into a gradient through the input's layout, atomically when
// `atomic` is set (a layout that repeats elements).

extern "C" __global__ void reduce_sum(const T *x, Layout outer, Layout inner, u64 count, u64 len, unsigned team,
                                      T *out) {
    for_each_group(count, team, [&](u64 o, bool active) {
        const u64 start = active ? fast_offset(outer, o) : 0;
        T total = 0;
        for_each_element(inner, start, len, team, active, [&](u64, u64 at) { total += x[at]; });
        total = team_reduce(total, team, Sum());
        if (active && team_leader(team)) {
            out[o] = total;
        }
    });
}

// kind: 0 for the maximum, 1 for the minimum. NaN when the group holds one.
extern "C" __global__ void reduce_extremum(const T *x, Layout outer, Layout inner, u64 count, u64 len,
                                           unsigned team, int kind, T *out) {
    const Extremum op = {kind};
    for_each_group(count, team, [&](u64 o, bool active) {
        const u64 start = active ? fast_offset(outer, o) : 0;
        T best = kind == 0 ? -infinity() : infinity();
        for_each_element(inner, start, len, team, active, [&](u64, u64 at) { best = op(best, x[at]); });
        best = team_reduce(best, team, op);
        if (active && team_leader(team)) {
            out[o] = best;
        }
    });
}

// The extremum of each group and its index in the group: the first NaN, else the
// first of the ties (see comes_first). `values` is written only when `with_values`.
__device__ __forceinline__ void arg_extremum(const T *x, const Layout &outer, const Layout &inner, u64 count,
                                             u64 len, unsigned team, int kind, T *values, u64 *indices,
                                             bool with_values) {
    for_each_group(count, team, [&](u64 o, bool active) {
        const u64 start = active ? fast_offset(outer, o) : 0;
        // An index no element has: any element comes first.
        T best = kind == 0 ? -infinity() : infinity();
        u64 best_j = ~0ULL;
        for_each_element(inner, start, len, team, active, [&](u64 j, u64 at) {
            const T v = x[at];
            if (comes_first(kind, v, j, best, best_j)) {
                best = v;
                best_j = j;
            }
        });
        team_first(best, best_j, team, kind);
        if (active && team_leader(team)) {
            indices[o] = best_j;
            if (with_values) {
                values[o] = best;
            }
        }
    });
}

extern "C" __global__ void reduce_arg_extremum(const T *x, Layout outer, Layout inner, u64 count, u64 len,
                                               unsigned team, int kind, u64 *indices) {
    arg_extremum(x, outer, inner, count, len, team, kind, 0, indices, false);
}

extern "C" __global__ void reduce_extremum_with_indices(const T *x, Layout outer, Layout inner, u64 count, u64 len,
                                                        unsigned team, int kind, T *values, u64 *indices) {
    arg_extremum(x, outer, inner, count, len, team, kind, values, indices, true);
}

// share[o] = grad_output[o] / (the number of elements of group o equal to output[o]):
// a NaN extremum has none, so its share is ±inf or NaN, as on the CPU.
extern "C" __global__ void reduce_extremum_share(const T *x, Layout outer, Layout inner, u64 count, u64 len,
                                                 unsigned team, const T *output, const T *grad_output, T *share) {
    for_each_group(count, team, [&](u64 o, bool active) {
        const u64 start = active ? fast_offset(outer, o) : 0;
        const T m = active ? output[o] : (T)0;
        T equal = 0;
        for_each_element(inner, start, len, team, active, [&](u64, u64 at) { equal += x[at] == m ? (T)1 : (T)0; });
        equal = team_reduce(equal, team, Sum());
        if (active && team_leader(team)) {
            share[o] = grad_output[o] / equal;
        }
    });
}

// The mean of the group at `start`, as x_0 + Σ (x − x_0) / n, x_0 its first element
// (exact for a constant group, whose variance is then exactly 0), with `n` its length
// as T. Every thread of an active team gets it.
__device__ __forceinline__ T group_mean(const T *x, const Layout &inner, u64 len, unsigned team, bool active,
                                        u64 start, T n) {
    // Element 0 of a group lies at its start: `inner` has offset 0.
    const T first = active ? x[start] : (T)0;
    T total = 0;
    for_each_element(inner, start, len, team, active, [&](u64, u64 at) { total += x[at] - first; });
    total = team_reduce(total, team, Sum());
    return first + total / n;
}

// Σ (x − mean)² / divisor per group, its square root when `std_dev`; `n` is the
// group's length and `divisor` max(n − correction, 0), both as the CPU computes them.
extern "C" __global__ void reduce_variance(const T *x, Layout outer, Layout inner, u64 count, u64 len,
                                           unsigned team, T n, T divisor, int std_dev, T *out) {
    for_each_group(count, team, [&](u64 o, bool active) {
        const u64 start = active ? fast_offset(outer, o) : 0;
        const T mean = group_mean(x, inner, len, team, active, start, n);
        T total = 0;
        for_each_element(inner, start, len, team, active, [&](u64, u64 at) {
            const T d = x[at] - mean;
            total += d * d;
        });
        total = team_reduce(total, team, Sum());
        if (active && team_leader(team)) {
            const T variance = total / divisor;
            out[o] = std_dev ? e_sqrt(variance) : variance;
        }
    });
}

extern "C" __global__ void reduce_mean(const T *x, Layout outer, Layout inner, u64 count, u64 len, unsigned team,
                                       T n, T *out) {
    for_each_group(count, team, [&](u64 o, bool active) {
        const u64 start = active ? fast_offset(outer, o) : 0;
        const T mean = group_mean(x, inner, len, team, active, start, n);
        if (active && team_leader(team)) {
            out[o] = mean;
        }
    });
}

// m + ln Σ exp(x − m), m the group's maximum ignoring NaN, or 0 when that is infinite
// (all -inf gives -inf, any +inf gives +inf).
extern "C" __global__ void reduce_logsumexp(const T *x, Layout outer, Layout inner, u64 count, u64 len,
                                            unsigned team, T *out) {
    for_each_group(count, team, [&](u64 o, bool active) {
        const u64 start = active ? fast_offset(outer, o) : 0;
        T m = -infinity();
        for_each_element(inner, start, len, team, active, [&](u64, u64 at) { m = MaxIgnoringNan()(m, x[at]); });
        m = team_reduce(m, team, MaxIgnoringNan());
        const T shift = is_finite(m) ? m : (T)0;
        T total = 0;
        for_each_element(inner, start, len, team, active, [&](u64, u64 at) { total += e_exp(x[at] - shift); });
        total = team_reduce(total, team, Sum());
        if (active && team_leader(team)) {
            out[o] = shift + e_log(total);
        }
    });
}

// ---- Backward: element-wise over the input's positions ----

// grad_input[i] += grad_output[o].
extern "C" __global__ void reduce_sum_backward(T *grad_input, Layout in, Layout to_out, u64 numel,
                                               const T *grad_output, unsigned atomic) {
    FOR_EACH_POSITION { accumulate(&grad_input[fast_offset(in, p)], grad_output[fast_offset(to_out, p)], atomic); }
}

// grad_input[i] += share[o] · [x_i == output[o]] (a product, so a NaN share reaches
// every element of its group, as on the CPU).
extern "C" __global__ void reduce_extremum_backward(const T *x, T *grad_input, Layout in, Layout to_out, u64 numel,
                                                    const T *output, const T *share, unsigned atomic) {
    FOR_EACH_POSITION {
        const u64 i = fast_offset(in, p), o = fast_offset(to_out, p);
        accumulate(&grad_input[i], share[o] * (x[i] == output[o] ? (T)1 : (T)0), atomic);
    }
}

// grad_input[i] += f_o · (x_i − mean[o]), f_o = grad_output[o] · scale, divided by
// 2 · std[o] for the standard deviation (0 where std[o] is 0); scale = 2 / divisor.
extern "C" __global__ void reduce_variance_backward(const T *x, T *grad_input, Layout in, Layout to_out, u64 numel,
                                                    const T *means, const T *grad_output, const T *std_dev,
                                                    int has_std, T scale, unsigned atomic) {
    FOR_EACH_POSITION {
        const u64 i = fast_offset(in, p), o = fast_offset(to_out, p);
        T f = grad_output[o] * scale;
        if (has_std) {
            const T s = std_dev[o];
            f = s == (T)0 ? (T)0 : f / ((T)2 * s);
        }
        accumulate(&grad_input[i], f * (x[i] - means[o]), atomic);
    }
}

// grad_input[i] += grad_output[o] · exp(x_i − output[o]).
extern "C" __global__ void reduce_logsumexp_backward(const T *x, T *grad_input, Layout in, Layout to_out, u64 numel,
                                                     const T *output, const T *grad_output, unsigned atomic) {
    FOR_EACH_POSITION {
        const u64 i = fast_offset(in, p), o = fast_offset(to_out, p);
        accumulate(&grad_input[i], grad_output[o] * e_exp(x[i] - output[o]), atomic);
    }
}
