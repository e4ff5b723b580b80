#!/usr/bin/env python3
"""Independent float64 reference for a Qwen2 (Qwen2ForCausalLM) forward pass, in numpy only.

Written from the HF transformers Qwen2 modelling semantics (RMSNorm, q/k/v biases, rotate-half RoPE, GQA,
causal softmax attention, SwiGLU MLP), not from ristretto's code. Reads an HF folder (config.json +
model.safetensors, F32) and prints the logits of every position for the given ids as JSON.

  python3 scripts/reference/qwen2_numpy.py DIR 1,2,3 > logits.json
"""
import json
import struct
import sys

import numpy as np


def read_safetensors(path):
    with open(path, 'rb') as f:
        n = struct.unpack('<Q', f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, t in header.items():
        if name == '__metadata__':
            continue
        assert t['dtype'] == 'F32', t['dtype']
        a, b = t['data_offsets']
        out[name] = np.frombuffer(data[a:b], dtype='<f4').astype(np.float64).reshape(t['shape'])
    return out


def rmsnorm(x, w, eps):
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * w


def rotate_half(x):
    h = x.shape[-1] // 2
    return np.concatenate([-x[..., h:], x[..., :h]], axis=-1)


def forward(cfg, W, ids):
    T = len(ids)
    D = cfg['hidden_size']
    H = cfg['num_attention_heads']
    KV = cfg.get('num_key_value_heads', H)
    hd = D // H
    eps = cfg.get('rms_norm_eps', 1e-6)
    theta = cfg.get('rope_theta', 10000.0)
    inv = 1.0 / theta ** (np.arange(0, hd, 2, dtype=np.float64) / hd)
    ang = np.outer(np.arange(T, dtype=np.float64), inv)
    emb = np.concatenate([ang, ang], axis=-1)
    cos, sin = np.cos(emb), np.sin(emb)
    h = W['model.embed_tokens.weight'][ids]
    mask = np.triu(np.full((T, T), -np.inf), 1)
    for l in range(cfg['num_hidden_layers']):
        p = f'model.layers.{l}.'
        x = rmsnorm(h, W[p + 'input_layernorm.weight'], eps)
        q = x @ W[p + 'self_attn.q_proj.weight'].T + W[p + 'self_attn.q_proj.bias']
        k = x @ W[p + 'self_attn.k_proj.weight'].T + W[p + 'self_attn.k_proj.bias']
        v = x @ W[p + 'self_attn.v_proj.weight'].T + W[p + 'self_attn.v_proj.bias']
        q = q.reshape(T, H, hd).transpose(1, 0, 2)
        k = k.reshape(T, KV, hd).transpose(1, 0, 2)
        v = v.reshape(T, KV, hd).transpose(1, 0, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        k = np.repeat(k, H // KV, axis=0)
        v = np.repeat(v, H // KV, axis=0)
        s = q @ k.transpose(0, 2, 1) / np.sqrt(hd) + mask
        s = np.exp(s - s.max(axis=-1, keepdims=True))
        s /= s.sum(axis=-1, keepdims=True)
        a = (s @ v).transpose(1, 0, 2).reshape(T, D)
        h = h + a @ W[p + 'self_attn.o_proj.weight'].T
        x = rmsnorm(h, W[p + 'post_attention_layernorm.weight'], eps)
        g = x @ W[p + 'mlp.gate_proj.weight'].T
        u = x @ W[p + 'mlp.up_proj.weight'].T
        h = h + ((g / (1 + np.exp(-g))) * u) @ W[p + 'mlp.down_proj.weight'].T
    h = rmsnorm(h, W['model.norm.weight'], eps)
    head = W['model.embed_tokens.weight'] if cfg.get('tie_word_embeddings') else W['lm_head.weight']
    return h @ head.T


if __name__ == '__main__':
    d, ids = sys.argv[1], [int(t) for t in sys.argv[2].split(',')]
    cfg = json.load(open(f'{d}/config.json'))
    W = read_safetensors(f'{d}/model.safetensors')
    logits = forward(cfg, W, ids)
    json.dump({'ids': ids, 'logits': [[float(v) for v in row] for row in logits]}, sys.stdout)
