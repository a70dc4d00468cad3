// Every rule of #transformer.config. A bad config is a parse error (with its
// location), so this file runs with --parsing-diagnostics.

// RUN: ckc-opt %s --split-input-file --parsing-diagnostics | filecheck %s

// unknown field
// CHECK: unknown #transformer.config field 'rope_type'
builtin.module attributes {transformer.config = #transformer.config<arch = "llama", vocab = 128, hidden = 64, layers = 2, heads = 4, ffn = 160, context = 256, rope_type = "neox">} {}

// -----

// duplicate field
// CHECK: duplicate #transformer.config field 'vocab'
builtin.module attributes {transformer.config = #transformer.config<arch = "llama", vocab = 128, hidden = 64, layers = 2, heads = 4, ffn = 160, context = 256, vocab = 64>} {}

// -----

// missing required field
// CHECK: #transformer.config is missing required field 'context'
builtin.module attributes {transformer.config = #transformer.config<arch = "llama", vocab = 128, hidden = 64, layers = 2, heads = 4, ffn = 160>} {}

// -----

// integer field given a string
// CHECK: Expected integer literal for 'vocab'
builtin.module attributes {transformer.config = #transformer.config<arch = "llama", vocab = "128", hidden = 64, layers = 2, heads = 4, ffn = 160, context = 256>} {}

// -----

// bool field given a number
// CHECK: expected true or false for 'tied_embeddings'
builtin.module attributes {transformer.config = #transformer.config<arch = "llama", vocab = 128, hidden = 64, layers = 2, heads = 4, ffn = 160, context = 256, tied_embeddings = 1>} {}

// -----

// string field given a number
// CHECK: string literal expected for 'norm'
builtin.module attributes {transformer.config = #transformer.config<arch = "llama", vocab = 128, hidden = 64, layers = 2, heads = 4, ffn = 160, context = 256, norm = 1>} {}

// -----

// empty arch
// CHECK: #transformer.config: arch must not be empty
builtin.module attributes {transformer.config = #transformer.config<arch = "", vocab = 128, hidden = 64, layers = 2, heads = 4, ffn = 160, context = 256>} {}

// -----

// non-positive size
// CHECK: #transformer.config: hidden must be positive, got 0
builtin.module attributes {transformer.config = #transformer.config<arch = "llama", vocab = 128, hidden = 0, layers = 2, heads = 4, ffn = 160, context = 256, head_dim = 16>} {}

// -----

// GQA grouping
// CHECK: #transformer.config: heads (4) must be a multiple of kv_heads (3)
builtin.module attributes {transformer.config = #transformer.config<arch = "llama", vocab = 128, hidden = 64, layers = 2, heads = 4, ffn = 160, context = 256, kv_heads = 3>} {}

// -----

// norm kind
// CHECK: #transformer.config: norm must be one of rms, layer, got 'group'
builtin.module attributes {transformer.config = #transformer.config<arch = "llama", vocab = 128, hidden = 64, layers = 2, heads = 4, ffn = 160, context = 256, norm = "group">} {}

// -----

// norm eps
// CHECK: #transformer.config: norm_eps must be positive, got 0.0
builtin.module attributes {transformer.config = #transformer.config<arch = "llama", vocab = 128, hidden = 64, layers = 2, heads = 4, ffn = 160, context = 256, norm_eps = 0.0>} {}

// -----

// mlp kind
// CHECK: #transformer.config: mlp must be one of swiglu, geglu, gelu, got 'moe'
builtin.module attributes {transformer.config = #transformer.config<arch = "llama", vocab = 128, hidden = 64, layers = 2, heads = 4, ffn = 160, context = 256, mlp = "moe">} {}

// -----

// act kind
// CHECK: #transformer.config: act must be one of silu, gelu_tanh, gelu, got 'relu'
builtin.module attributes {transformer.config = #transformer.config<arch = "llama", vocab = 128, hidden = 64, layers = 2, heads = 4, ffn = 160, context = 256, act = "relu">} {}

// -----

// mlp and act disagree
// CHECK: #transformer.config: mlp 'swiglu' does not go with act 'gelu'
builtin.module attributes {transformer.config = #transformer.config<arch = "llama", vocab = 128, hidden = 64, layers = 2, heads = 4, ffn = 160, context = 256, act = "gelu">} {}

// -----

// attention scale
// CHECK: #transformer.config: attn_scale must be positive, got 0.0
builtin.module attributes {transformer.config = #transformer.config<arch = "llama", vocab = 128, hidden = 64, layers = 2, heads = 4, ffn = 160, context = 256, attn_scale = 0.0>} {}

// -----

// softcap
// CHECK: #transformer.config: final_softcap must be >= 0, got -1.0
builtin.module attributes {transformer.config = #transformer.config<arch = "llama", vocab = 128, hidden = 64, layers = 2, heads = 4, ffn = 160, context = 256, final_softcap = -1.0>} {}

// -----

// rope style
// CHECK: #transformer.config: rope_style must be one of neox, interleaved, none, got 'yarn'
builtin.module attributes {transformer.config = #transformer.config<arch = "llama", vocab = 128, hidden = 64, layers = 2, heads = 4, ffn = 160, context = 256, rope_style = "yarn">} {}

// -----

// rope theta
// CHECK: #transformer.config: rope_theta and rope_local_theta must be positive
builtin.module attributes {transformer.config = #transformer.config<arch = "llama", vocab = 128, hidden = 64, layers = 2, heads = 4, ffn = 160, context = 256, rope_theta = 0.0>} {}

// -----

// rotary dim
// CHECK: #transformer.config: rotary_dim must be even and in (0, head_dim=16], got 17
builtin.module attributes {transformer.config = #transformer.config<arch = "llama", vocab = 128, hidden = 64, layers = 2, heads = 4, ffn = 160, context = 256, rotary_dim = 17>} {}

// -----

// rope scaling
// CHECK: #transformer.config: rope_scaling must be one of none, linear, llama3, got 'ntk'
builtin.module attributes {transformer.config = #transformer.config<arch = "llama", vocab = 128, hidden = 64, layers = 2, heads = 4, ffn = 160, context = 256, rope_scaling = "ntk">} {}

// -----

// rope factor
// CHECK: #transformer.config: rope_factor must be positive, got 0.0
builtin.module attributes {transformer.config = #transformer.config<arch = "llama", vocab = 128, hidden = 64, layers = 2, heads = 4, ffn = 160, context = 256, rope_factor = 0.0>} {}

// -----

// llama3 scaling without original context
// CHECK: #transformer.config: rope_scaling llama3 needs rope_original_context > 0
builtin.module attributes {transformer.config = #transformer.config<arch = "llama", vocab = 128, hidden = 64, layers = 2, heads = 4, ffn = 160, context = 256, rope_scaling = "llama3", rope_factor = 8.0>} {}

// -----

// embedding scale
// CHECK: #transformer.config: embed_scale must be positive, got -8.0
builtin.module attributes {transformer.config = #transformer.config<arch = "llama", vocab = 128, hidden = 64, layers = 2, heads = 4, ffn = 160, context = 256, embed_scale = -8.0>} {}

// -----

// sliding window
// CHECK: #transformer.config: sliding_window must be >= 0, got -1
builtin.module attributes {transformer.config = #transformer.config<arch = "llama", vocab = 128, hidden = 64, layers = 2, heads = 4, ffn = 160, context = 256, sliding_window = -1>} {}

// -----

// sliding layers without a window
// CHECK: #transformer.config: sliding_layers given but sliding_window is 0
builtin.module attributes {transformer.config = #transformer.config<arch = "llama", vocab = 128, hidden = 64, layers = 2, heads = 4, ffn = 160, context = 256, sliding_layers = [0]>} {}

// -----

// sliding layer out of range
// CHECK: #transformer.config: sliding_layers must be increasing layer indices in [0, 2)
builtin.module attributes {transformer.config = #transformer.config<arch = "llama", vocab = 128, hidden = 64, layers = 2, heads = 4, ffn = 160, context = 256, sliding_window = 16, sliding_layers = [0, 2]>} {}
