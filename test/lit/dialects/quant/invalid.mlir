// RUN: ckc-opt %s --split-input-file --verify-diagnostics

// A row must be a whole number of blocks.
// expected-error@+1 {{weight 'w': row length 48 is not a multiple of the q4_1 block (32 values)}}
%w = transformer.weight "w" : tensor<8x48x!quant.q4_1>

// -----

// expected-error@+1 {{weight 'k': row length 500 is not a multiple of the q4_k block}}
%k = transformer.weight "k" : tensor<8x500x!quant.q4_k>
