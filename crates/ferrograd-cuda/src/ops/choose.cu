// `choose` (PyTorch's `where`): condition ? on_true : on_false, and its gradients. The
// condition is a bool buffer (unsigned char), true where its byte is not 0.

// out[i] = condition[i] ? on_true[i] : on_false[i], every operand read through its
// layout; the output contiguous.
extern "C" __global__ void choose_forward(const unsigned char *condition, Layout condition_layout,
                                          int condition_contiguous, const T *on_true, Layout on_true_layout,
                                          int on_true_contiguous, const T *on_false, Layout on_false_layout,
                                          int on_false_contiguous, T *out, unsigned long long len) {
    EW_FOR_EACH(i, len) {
        out[i] = condition[ew_at(condition_layout, condition_contiguous, i)] != 0
                     ? on_true[ew_at(on_true_layout, on_true_contiguous, i)]
                     : on_false[ew_at(on_false_layout, on_false_contiguous, i)];
    }
}

// grad += grad_output[i] through grad's layout, where the condition picked this operand
// (`picks` 1 for on_true, 0 for on_false); `grad_mode` is ew_write's (atomic where the
// layout repeats elements).
extern "C" __global__ void choose_backward(const unsigned char *condition, Layout condition_layout,
                                           int condition_contiguous, int picks, const T *grad_output, T *grad,
                                           Layout grad_layout, int grad_mode, unsigned long long len) {
    EW_FOR_EACH(i, len) {
        const int picked = condition[ew_at(condition_layout, condition_contiguous, i)] != 0;
        if (picked == picks) ew_write(grad, grad_layout, grad_mode, i, grad_output[i]);
    }
}
