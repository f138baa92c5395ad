// PyTorch on the device's own Python as the peer for the CUDA kernels: bf16 matmul (cuBLAS) and SDPA
// at the benchmark shapes, timed with CUDA events. Used only by the GPU check, where torch is installed.
import type { spawnSync as SpawnSync } from 'node:child_process';
import type { Row } from './results.js';

const script = String.raw`
import json, torch
dev = torch.device('cuda')
def t(fn, iters=50):
    for _ in range(5): fn()
    torch.cuda.synchronize()
    s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    s.record()
    for _ in range(iters): fn()
    e.record(); torch.cuda.synchronize()
    return s.elapsed_time(e) / iters / 1e3
rows = []
for (model, hidden, inter, nh, nkv, hd) in [('0.6b', 1024, 3072, 16, 8, 128), ('8b', 4096, 12288, 32, 8, 128)]:
    for (name, n, k) in [('q_proj', nh*hd, hidden), ('gate_proj', inter, hidden), ('down_proj', hidden, inter), ('lm_head', 151936, hidden)]:
        w = torch.randn(n, k, device=dev, dtype=torch.bfloat16)
        for m in [1, 16, 64, 512, 4096]:
            x = torch.randn(m, k, device=dev, dtype=torch.bfloat16)
            s = t(lambda: x @ w.t())
            rows.append({'op': 'torch matmul bf16 ' + name, 'shape': f'{model} M={m} N={n} K={k}', 'us': s*1e6,
                         'GB/s': n*k*2/s/1e9, 'TFLOP/s': 2*m*n*k/s/1e12})
    for ctx in [512, 4096, 32768]:
        q = torch.randn(1, nh, 1, hd, device=dev, dtype=torch.bfloat16)
        kk = torch.randn(1, nkv, ctx, hd, device=dev, dtype=torch.bfloat16)
        v = torch.randn(1, nkv, ctx, hd, device=dev, dtype=torch.bfloat16)
        s = t(lambda: torch.nn.functional.scaled_dot_product_attention(q, kk, v, enable_gqa=True))
        rows.append({'op': 'torch sdpa decode bf16', 'shape': f'{model} ctx={ctx} heads={nh}', 'us': s*1e6,
                     'GB/s': 2*ctx*nkv*hd*2/s/1e9, 'TFLOP/s': ''})
    for p in [512, 2048, 8192]:
        q = torch.randn(1, nh, p, hd, device=dev, dtype=torch.bfloat16)
        kk = torch.randn(1, nkv, p, hd, device=dev, dtype=torch.bfloat16)
        v = torch.randn(1, nkv, p, hd, device=dev, dtype=torch.bfloat16)
        s = t(lambda: torch.nn.functional.scaled_dot_product_attention(q, kk, v, is_causal=True, enable_gqa=True))
        rows.append({'op': 'torch sdpa prefill causal bf16', 'shape': f'{model} P={p} heads={nh}', 'us': s*1e6,
                     'GB/s': '', 'TFLOP/s': 2*hd*nh*p*(p+1)/s/1e12})
print(json.dumps({'device': torch.cuda.get_device_name(0), 'torch': torch.__version__, 'rows': rows}))
`;

export function torchBaseline(spawnSync: typeof SpawnSync): { ok: true; device: string; rows: Row[] } | { ok: false; reason: string } {
  const r = spawnSync('python3', ['-c', script], { encoding: 'utf8', timeout: 300_000 });
  if (r.error) return { ok: false, reason: `python3 not runnable: ${r.error.message}` };
  if (r.status !== 0) return { ok: false, reason: (r.stderr || '').trim().split('\n').pop() ?? 'python3 failed' };
  const out = JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}');
  return { ok: true, device: `${out.device} (torch ${out.torch})`, rows: out.rows };
}
