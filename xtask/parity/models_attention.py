"""Attention and transformer fixtures: PyTorch modules whose `state_dict` ferrograd loads.

For each case below and each dtype, `generate.py` calls `write_fixtures`, which writes
into `OUT_DIR/models/` (every name starts `attention_`, which `tests/models.rs` leaves to
`tests/attention_models.rs`):

    <name>_<dtype>.state.npz   the module's state_dict, exactly as a user exports it
    <name>_<dtype>.io.npz      input, input1, input2   the float inputs, in the order the
                                                       Rust test passes them
                               mask.<name>             masks: bool (true = blocked, as
                                                       PyTorch) or, for an additive
                                                       attention mask, the case's dtype
                               output                  the output in eval mode (dropout off)
                               weights                 the attention weights averaged over
                                                       the heads (MultiheadAttention only)
                               grad_output             a seeded random upstream gradient
                               grad_input, grad_input1, grad_input2
                                                       d sum(output * grad_output) / d input<i>
                               grad.<key>              each parameter's gradient
                               reference.output, reference.grad_input<i>,
                               reference.grad.<key>    (f32 cases only) the same computed
                                                       in float64 from the same f32
                                                       values: see float64_reference

Causal masks are PyTorch's `generate_square_subsequent_mask` passed with `is_causal=True`;
the Rust side sets its `causal` flag for those cases instead of reading a mask. Every
one-dimensional parameter (biases, norm weights) is redrawn from N(0, 1): PyTorch starts
attention biases at zero and norms at ones, which would hide a swapped bias.
"""

import copy
import warnings

import numpy as np
import torch
from torch import nn


def causal(length, dtype):
    return nn.Transformer.generate_square_subsequent_mask(length, dtype=dtype)


def padding(rng, batch, length):
    """A key-padding mask (true = padding) that leaves every row at least one key."""
    mask = rng.random((batch, length)) < 0.35
    mask[:, 0] = False
    return mask


# Each case: (module, float input shapes, masks made from the rng, forward). `forward`
# takes the module, the input tensors, the mask tensors and the torch dtype, and gives
# the output (and, for attention, the averaged weights).

def attention_self():
    def forward(m, x, masks, dtype):
        return m(x[0], x[0], x[0])
    return nn.MultiheadAttention(8, 2, batch_first=True), [(2, 5, 8)], {}, forward


def attention_cross():
    # Keys and values of another length than the queries, each its own tensor.
    def forward(m, x, masks, dtype):
        return m(x[0], x[1], x[2])
    return nn.MultiheadAttention(8, 4, batch_first=True), [(2, 3, 8), (2, 6, 8), (2, 6, 8)], {}, forward


def attention_key_padding():
    def forward(m, x, masks, dtype):
        return m(x[0], x[0], x[0], key_padding_mask=masks["key_padding"])
    return (nn.MultiheadAttention(8, 2, batch_first=True), [(3, 5, 8)],
            {"key_padding": lambda rng, dtype: padding(rng, 3, 5)}, forward)


def attention_causal():
    def forward(m, x, masks, dtype):
        return m(x[0], x[0], x[0], attn_mask=causal(5, dtype), is_causal=True)
    return nn.MultiheadAttention(6, 3, batch_first=True), [(2, 5, 6)], {}, forward


def attention_bool_mask():
    def blocked(rng, dtype):
        mask = rng.random((5, 5)) < 0.4
        np.fill_diagonal(mask, False)  # every query keeps at least itself
        return mask

    def forward(m, x, masks, dtype):
        return m(x[0], x[0], x[0], attn_mask=masks["attention"])
    return nn.MultiheadAttention(4, 2, batch_first=True), [(2, 5, 4)], {"attention": blocked}, forward


def attention_float_mask():
    # Cross-attention to one memory as key and value, with an additive mask and key
    # padding merged together.
    def forward(m, x, masks, dtype):
        with warnings.catch_warnings():
            # PyTorch deprecates mixing a float and a bool mask, which it still supports.
            warnings.simplefilter("ignore")
            return m(x[0], x[1], x[1], attn_mask=masks["attention"], key_padding_mask=masks["key_padding"])
    return (nn.MultiheadAttention(8, 2, batch_first=True), [(2, 4, 8), (2, 6, 8)],
            {"attention": lambda rng, dtype: rng.standard_normal((4, 6)).astype(dtype),
             "key_padding": lambda rng, dtype: padding(rng, 2, 6)}, forward)


def encoder_layer(**options):
    return nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, batch_first=True, **options)


def attention_encoder_post_relu():
    def forward(m, x, masks, dtype):
        return m(x[0])
    return encoder_layer(), [(2, 5, 8)], {}, forward


def attention_encoder_pre_gelu():
    def forward(m, x, masks, dtype):
        return m(x[0], src_key_padding_mask=masks["key_padding"])
    return (encoder_layer(norm_first=True, activation="gelu"), [(2, 5, 8)],
            {"key_padding": lambda rng, dtype: padding(rng, 2, 5)}, forward)


def attention_encoder_post_gelu_causal():
    def forward(m, x, masks, dtype):
        return m(x[0], src_mask=causal(6, dtype), is_causal=True)
    return encoder_layer(activation="gelu", layer_norm_eps=1e-3), [(3, 6, 8)], {}, forward


def attention_encoder_pre_relu_no_bias():
    def forward(m, x, masks, dtype):
        return m(x[0])
    return encoder_layer(norm_first=True, bias=False), [(2, 4, 8)], {}, forward


def decoder_layer(**options):
    return nn.TransformerDecoderLayer(8, 2, dim_feedforward=16, batch_first=True, **options)


def attention_decoder_post_relu():
    # A causal target and padding in the memory.
    def forward(m, x, masks, dtype):
        return m(x[0], x[1], tgt_mask=causal(4, dtype), tgt_is_causal=True,
                 memory_key_padding_mask=masks["memory_key_padding"])
    return (decoder_layer(), [(2, 4, 8), (2, 6, 8)],
            {"memory_key_padding": lambda rng, dtype: padding(rng, 2, 6)}, forward)


def attention_decoder_pre_gelu():
    def forward(m, x, masks, dtype):
        return m(x[0], x[1], tgt_key_padding_mask=masks["tgt_key_padding"])
    return (decoder_layer(norm_first=True, activation="gelu"), [(2, 5, 8), (2, 3, 8)],
            {"tgt_key_padding": lambda rng, dtype: padding(rng, 2, 5)}, forward)


def attention_encoder_stack():
    # Two layers and a final norm: keys `layers.0.…`, `layers.1.…`, `norm.…`.
    def forward(m, x, masks, dtype):
        return m(x[0], src_key_padding_mask=masks["key_padding"])
    stack = nn.TransformerEncoder(encoder_layer(), 2, norm=nn.LayerNorm(8), enable_nested_tensor=False)
    return stack, [(2, 5, 8)], {"key_padding": lambda rng, dtype: padding(rng, 2, 5)}, forward


def attention_transformer():
    # Source padding (for the encoder and the decoder's memory) and a causal target.
    def forward(m, x, masks, dtype):
        return m(x[0], x[1], tgt_mask=causal(4, dtype), tgt_is_causal=True,
                 src_key_padding_mask=masks["src_key_padding"],
                 memory_key_padding_mask=masks["src_key_padding"])
    model = nn.Transformer(d_model=8, nhead=2, num_encoder_layers=2, num_decoder_layers=1, dim_feedforward=16,
                           batch_first=True)
    return model, [(2, 5, 8), (2, 4, 8)], {"src_key_padding": lambda rng, dtype: padding(rng, 2, 5)}, forward


CASES = [attention_self, attention_cross, attention_key_padding, attention_causal, attention_bool_mask,
         attention_float_mask, attention_encoder_post_relu, attention_encoder_pre_gelu,
         attention_encoder_post_gelu_causal, attention_encoder_pre_relu_no_bias, attention_decoder_post_relu,
         attention_decoder_pre_gelu, attention_encoder_stack, attention_transformer]


def float64_reference(model, forward, inputs, masks, grad_output):
    """The f32 case computed again in float64 from the same (f32) weights, inputs, masks
    and upstream gradient: the exact values, up to f64 rounding, that the f32 results of
    PyTorch and of ferrograd both approximate. Stored as `reference.<key>` (float64)."""
    model = copy.deepcopy(model).double()
    model.zero_grad()
    inputs = [torch.tensor(x.detach().numpy().astype(np.float64), requires_grad=True) for x in inputs]
    masks = {k: torch.from_numpy(v if v.dtype == bool else v.astype(np.float64)) for k, v in masks.items()}
    result = forward(model, inputs, masks, torch.float64)
    out = result[0] if isinstance(result, tuple) else result
    (out * torch.from_numpy(grad_output.numpy().astype(np.float64))).sum().backward()
    arrays = {"reference.output": out.detach().numpy()}
    for i, x in enumerate(inputs):
        arrays["reference.grad_input" + (str(i) if i else "")] = x.grad.numpy()
    for key, parameter in model.named_parameters():
        arrays[f"reference.grad.{key}"] = parameter.grad.numpy()
    return arrays


def write_fixtures(out_dir, write_npz, seed_of, dtypes):
    import os

    os.makedirs(os.path.join(out_dir, "models"), exist_ok=True)
    count = 0
    for make in CASES:
        name = make.__name__
        assert name.startswith("attention_"), name
        for dtype, (np_dtype, torch_dtype) in dtypes.items():
            torch.manual_seed(seed_of(name))
            model, input_shapes, mask_makers, forward = make()
            model = model.to(torch_dtype).eval()
            rng = np.random.default_rng(seed_of(name + dtype))
            with torch.no_grad():
                for parameter in model.parameters():
                    if parameter.dim() == 1:
                        values = rng.standard_normal(tuple(parameter.shape)).astype(np_dtype)
                        parameter.copy_(torch.from_numpy(values))
            inputs = [torch.tensor(rng.standard_normal(shape).astype(np_dtype), requires_grad=True)
                      for shape in input_shapes]
            masks = {key: make_mask(rng, np_dtype) for key, make_mask in sorted(mask_makers.items())}
            result = forward(model, inputs, {k: torch.from_numpy(v) for k, v in masks.items()}, torch_dtype)
            out, weights = result if isinstance(result, tuple) else (result, None)
            assert not torch.isnan(out).any(), name
            grad_output = torch.tensor(rng.standard_normal(tuple(out.shape)).astype(np_dtype))
            (out * grad_output).sum().backward()
            state = {k: v.detach().numpy() for k, v in model.state_dict().items()}
            io_arrays = {}
            for i, x in enumerate(inputs):
                io_arrays["input" + (str(i) if i else "")] = x.detach().numpy()
            for key, mask in masks.items():
                io_arrays[f"mask.{key}"] = mask
            io_arrays["output"] = out.detach().numpy()
            if weights is not None:
                io_arrays["weights"] = weights.detach().numpy()
            io_arrays["grad_output"] = grad_output.numpy()
            for i, x in enumerate(inputs):
                io_arrays["grad_input" + (str(i) if i else "")] = x.grad.numpy()
            for key, parameter in model.named_parameters():
                io_arrays[f"grad.{key}"] = parameter.grad.numpy()
            if np_dtype == np.float32:
                io_arrays.update(float64_reference(model, forward, inputs, masks, grad_output))
            base = os.path.join(out_dir, "models", f"{name}_{dtype}")
            write_npz(base + ".state.npz", state)
            write_npz(base + ".io.npz", io_arrays)
            count += 2
    return count
