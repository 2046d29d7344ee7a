// Optimizer updates and gradient clipping (optimizer.rs): each update one fused pass,
// one thread per element in grid-stride loops with 64-bit indices, in the order of
// operations of the CPU's (and PyTorch's single-tensor) implementation. Products,
// quotients and square roots go through the _rn intrinsics, which the compiler never
// fuses into a multiply-add, so each step rounds exactly as the CPU's does.

__device__ __forceinline__ float mul(float a, float b) { return __fmul_rn(a, b); }
__device__ __forceinline__ double mul(double a, double b) { return __dmul_rn(a, b); }
__device__ __forceinline__ float quotient(float a, float b) { return __fdiv_rn(a, b); }
__device__ __forceinline__ double quotient(double a, double b) { return __ddiv_rn(a, b); }
__device__ __forceinline__ float root(float a) { return __fsqrt_rn(a); }
__device__ __forceinline__ double root(double a) { return __dsqrt_rn(a); }

// The `flags` bits of the updates (optimizer.rs's `Flags`).
#define FLAG_MAXIMIZE 1u      // ascend: the gradient negated
#define FLAG_DECAY 2u         // a non-zero L2 penalty is added to the gradient
#define FLAG_MOMENTUM 4u      // SGD, RMSprop: a momentum buffer is given
#define FLAG_FIRST 8u         // SGD: the momentum buffer is new, and becomes the gradient
#define FLAG_NESTEROV 16u     // SGD: Nesterov momentum
#define FLAG_AMSGRAD 32u      // Adam: keep the maximum of the second moment
#define FLAG_NEAR_START 64u   // Adam: |1 − β₁| < 0.5, so lerp takes its form exact near its start
#define FLAG_CENTERED 128u    // RMSprop: a running average of the gradient is given

// The gradient an update works with: negated when maximising, plus the L2 penalty when
// there is one (only then, so that 0 · ∞ never enters).
__device__ __forceinline__ T effective_grad(T g, T p, T weight_decay, unsigned int flags) {
    if (flags & FLAG_MAXIMIZE) {
        g = -g;
    }
    if (flags & FLAG_DECAY) {
        g = g + mul(weight_decay, p);
    }
    return g;
}

// PyTorch's lerp(start, end, weight): the form exact at its nearer end.
__device__ __forceinline__ T lerp(T start, T end, T weight) {
    const T magnitude = weight < (T)0 ? -weight : weight;
    if (magnitude < (T)0.5) {
        return start + mul(weight, end - start);
    }
    return end - mul(end - start, (T)1 - weight);
}

// SGD: g = ±grad + wd·p; with momentum b = g (first step) or momentum·b + (1 − dampening)·g,
// the direction b (or g + momentum·b, Nesterov); p += −lr · direction.
extern "C" __global__ void optim_sgd(T *param, const T *grad, T *momentum_buffer, unsigned long long len, T lr,
                                     T momentum, T one_minus_dampening, T weight_decay, unsigned int flags) {
    const T neg_lr = -lr;
    const unsigned long long step = (unsigned long long)gridDim.x * blockDim.x;
    for (unsigned long long i = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x; i < len; i += step) {
        const T p = param[i];
        const T g = effective_grad(grad[i], p, weight_decay, flags);
        T direction = g;
        if (flags & FLAG_MOMENTUM) {
            const T b = (flags & FLAG_FIRST) ? g : mul(momentum_buffer[i], momentum) + mul(one_minus_dampening, g);
            momentum_buffer[i] = b;
            direction = (flags & FLAG_NESTEROV) ? g + mul(momentum, b) : b;
        }
        param[i] = p + mul(neg_lr, direction);
    }
}

// Adam and AdamW: p = p·decay_factor; g = ±grad + wd·p; m = lerp(m, g, 1 − β₁);
// v = β₂·v + (1 − β₂)·g²; v̂ = max(v̂, v) (NaN wins) with AMSGrad;
// p += −step_size · m / (√v̂ / bias_correction2_sqrt + eps).
extern "C" __global__ void optim_adam(T *param, const T *grad, T *exp_avg, T *exp_avg_sq, T *max_exp_avg_sq,
                                      unsigned long long len, T step_size, T bias_correction2_sqrt,
                                      T one_minus_beta1, T beta2, T one_minus_beta2, T eps, T weight_decay,
                                      T decay_factor, unsigned int flags) {
    const T neg_step_size = -step_size;
    const T weight = one_minus_beta1;
    const unsigned long long step = (unsigned long long)gridDim.x * blockDim.x;
    for (unsigned long long i = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x; i < len; i += step) {
        const T p = mul(param[i], decay_factor);
        const T g = effective_grad(grad[i], p, weight_decay, flags);
        const T old_m = exp_avg[i];
        const T m = (flags & FLAG_NEAR_START) ? old_m + mul(weight, g - old_m) : g - mul(g - old_m, (T)1 - weight);
        const T v = mul(exp_avg_sq[i], beta2) + mul(mul(one_minus_beta2, g), g);
        exp_avg[i] = m;
        exp_avg_sq[i] = v;
        T second = v;
        if (flags & FLAG_AMSGRAD) {
            T best = max_exp_avg_sq[i];
            if (v > best || v != v) {
                best = v;
            }
            max_exp_avg_sq[i] = best;
            second = best;
        }
        const T denom = quotient(root(second), bias_correction2_sqrt) + eps;
        param[i] = p + quotient(mul(neg_step_size, m), denom);
    }
}

// RMSprop: g = ±grad + wd·p; s = α·s + (1 − α)·g²; centered: a = lerp(a, g, 1 − α),
// d = √(s − a²) + eps, else d = √s + eps; momentum: b = momentum·b + g/d, p += −lr·b;
// else p += −lr·g / d.
extern "C" __global__ void optim_rmsprop(T *param, const T *grad, T *square_avg, T *grad_avg, T *momentum_buffer,
                                         unsigned long long len, T lr, T alpha, T one_minus_alpha, T eps,
                                         T weight_decay, T momentum, unsigned int flags) {
    const T neg_lr = -lr;
    const unsigned long long step = (unsigned long long)gridDim.x * blockDim.x;
    for (unsigned long long i = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x; i < len; i += step) {
        const T p = param[i];
        const T g = effective_grad(grad[i], p, weight_decay, flags);
        const T s = mul(square_avg[i], alpha) + mul(mul(one_minus_alpha, g), g);
        square_avg[i] = s;
        T avg;
        if (flags & FLAG_CENTERED) {
            const T a = lerp(grad_avg[i], g, one_minus_alpha);
            grad_avg[i] = a;
            avg = root(s + mul(-a, a)) + eps;
        } else {
            avg = root(s) + eps;
        }
        if (flags & FLAG_MOMENTUM) {
            const T b = mul(momentum_buffer[i], momentum) + quotient(g, avg);
            momentum_buffer[i] = b;
            param[i] = p + mul(neg_lr, b);
        } else {
            param[i] = p + quotient(mul(neg_lr, g), avg);
        }
    }
}

// Adagrad: g = ±grad + wd·p; s = s + g²; p += −lr·g / (√s + eps).
extern "C" __global__ void optim_adagrad(T *param, const T *grad, T *sum, unsigned long long len, T lr, T eps,
                                         T weight_decay, unsigned int flags) {
    const T neg_lr = -lr;
    const unsigned long long step = (unsigned long long)gridDim.x * blockDim.x;
    for (unsigned long long i = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x; i < len; i += step) {
        const T p = param[i];
        const T g = effective_grad(grad[i], p, weight_decay, flags);
        const T s = sum[i] + mul(g, g);
        sum[i] = s;
        param[i] = p + quotient(mul(neg_lr, g), root(s) + eps);
    }
}

// The sparse updates: element i of the gradient's values is element i % row_len of row
// indices[i / row_len] of the parameter (and of its state). The rows are distinct
// (checked on the host), so no two threads touch one element.

// p[r] += −lr · (±g[r]).
extern "C" __global__ void optim_sparse_sgd(T *param, const unsigned long long *indices, const T *values,
                                            unsigned long long row_len, unsigned long long len, T lr,
                                            unsigned int flags) {
    const T neg_lr = -lr;
    const unsigned long long step = (unsigned long long)gridDim.x * blockDim.x;
    for (unsigned long long i = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x; i < len; i += step) {
        const unsigned long long at = indices[i / row_len] * row_len + i % row_len;
        const T g = (flags & FLAG_MAXIMIZE) ? -values[i] : values[i];
        param[at] = param[at] + mul(neg_lr, g);
    }
}

// s[r] += g²; p[r] += −lr · (g / (√s + eps)), g = ±grad (no weight decay with a sparse gradient).
extern "C" __global__ void optim_sparse_adagrad(T *param, T *sum, const unsigned long long *indices, const T *values,
                                                unsigned long long row_len, unsigned long long len, T lr, T eps,
                                                unsigned int flags) {
    const T neg_lr = -lr;
    const unsigned long long step = (unsigned long long)gridDim.x * blockDim.x;
    for (unsigned long long i = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x; i < len; i += step) {
        const unsigned long long at = indices[i / row_len] * row_len + i % row_len;
        const T g = (flags & FLAG_MAXIMIZE) ? -values[i] : values[i];
        const T s = sum[at] + mul(g, g);
        sum[at] = s;
        param[at] = param[at] + mul(neg_lr, quotient(g, root(s) + eps));
    }
}

// SparseAdam on the touched rows: m' = m + (1 − β₁)·(g − m), v' = v + (1 − β₂)·(g² − v),
// p += −step_size · m' / (√v' + eps), in PyTorch's sparse order.
extern "C" __global__ void optim_sparse_adam(T *param, T *exp_avg, T *exp_avg_sq, const unsigned long long *indices,
                                             const T *values, unsigned long long row_len, unsigned long long len,
                                             T step_size, T one_minus_beta1, T one_minus_beta2, T eps,
                                             unsigned int flags) {
    const T neg_step = -step_size;
    const unsigned long long step = (unsigned long long)gridDim.x * blockDim.x;
    for (unsigned long long i = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x; i < len; i += step) {
        const unsigned long long at = indices[i / row_len] * row_len + i % row_len;
        const T g = (flags & FLAG_MAXIMIZE) ? -values[i] : values[i];
        const T old_m = exp_avg[at], old_v = exp_avg_sq[at];
        const T m_step = mul(g - old_m, one_minus_beta1);
        const T v_step = mul(mul(g, g) - old_v, one_minus_beta2);
        exp_avg[at] = old_m + m_step;
        exp_avg_sq[at] = old_v + v_step;
        const T denom = root(v_step + old_v) + eps;
        param[at] = param[at] + mul(neg_step, quotient(m_step + old_m, denom));
    }
}

// Gradient clipping.

// One term of a norm: mode 0 |x| (summed), 1 x² (summed), 2 |x| (maximum).
__device__ __forceinline__ T clip_term(T x, unsigned int mode) {
    if (mode == 1) {
        return mul(x, x);
    }
    return x < (T)0 ? -x : x;
}

// Two partial norms combined: a sum, or (mode 2) the maximum, NaN winning.
__device__ __forceinline__ T clip_combine(T a, T b, unsigned int mode) {
    if (mode == 2) {
        return (b > a || b != b) ? b : a;
    }
    return a + b;
}

// partial[block] = the norm's reduction (before any square root) of the block's share of
// x[0..len], its threads striding over the grid, then combined in shared memory. Blocks
// of 256 threads. Run again over the partials (mode 0 or 2) for the whole norm.
extern "C" __global__ void clip_norm(const T *x, unsigned long long len, unsigned int mode, T *partial) {
    __shared__ T shared[256];
    T acc = (T)0;
    const unsigned long long step = (unsigned long long)gridDim.x * blockDim.x;
    for (unsigned long long i = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x; i < len; i += step) {
        acc = clip_combine(acc, clip_term(x[i], mode), mode);
    }
    shared[threadIdx.x] = acc;
    __syncthreads();
    for (unsigned int half = blockDim.x / 2; half > 0; half /= 2) {
        if (threadIdx.x < half) {
            shared[threadIdx.x] = clip_combine(shared[threadIdx.x], shared[threadIdx.x + half], mode);
        }
        __syncthreads();
    }
    if (threadIdx.x == 0) {
        partial[blockIdx.x] = shared[0];
    }
}

// x[i] = x[i] · factor.
extern "C" __global__ void clip_scale(T *x, unsigned long long len, T factor) {
    const unsigned long long step = (unsigned long long)gridDim.x * blockDim.x;
    for (unsigned long long i = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x; i < len; i += step) {
        x[i] = mul(x[i], factor);
    }
}

// x[i] clamped into [low, high]; NaN stays NaN, as in PyTorch's clamp.
extern "C" __global__ void clip_clamp(T *x, unsigned long long len, T low, T high) {
    const unsigned long long step = (unsigned long long)gridDim.x * blockDim.x;
    for (unsigned long long i = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x; i < len; i += step) {
        const T v = x[i];
        if (v < low) {
            x[i] = low;
        } else if (v > high) {
            x[i] = high;
        }
    }
}
