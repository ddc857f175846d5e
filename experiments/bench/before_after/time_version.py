"""One version's NS2 small training step and denoiser call (fp32, batch 2 x 400 frames, 60 phonemes,
240-frame prompt), each timed in pairs with the 1024^2 matmul reference, appended to a JSON-lines file.

Run from outside the repository on a checkout of each commit (git worktree add /tmp/bw/<v> <commit>), alternating:
    python time_version.py /tmp/bw/<v> <label> ns2_small_cpu.jsonl
argv: repo_root label out.jsonl

It restates ns2.eval.bench.paired_throughput and bench_ns2's batch because the older commits it times
have neither; only their models are imported from the checkout."""
import sys, json, time, statistics
root, label, out = sys.argv[1:4]
sys.path.insert(0, root)
import torch
torch.set_num_threads(2)
import ns2
assert ns2.__file__.startswith(root), ns2.__file__
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from torch.utils.flop_counter import FlopCounterMode
with initialize_config_dir(config_dir=f"{root}/configs", version_base="1.3"):
    cfg = compose("bench", ["model=ns2", "model/scale=small", "codec=ns2_paper"])
torch.manual_seed(0)
extra = {"codec": None} if "codec" in cfg.model.net else {}
net = instantiate(cfg.model.net, latent_dim=cfg.codec.latent_dim, **extra).train()
g = torch.Generator().manual_seed(0)
B, L, T, Tp, D = 2, 60, 400, 240, net.latent_dim
ph = torch.randint(1, net.vocab_size, (B, L), generator=g)
base = torch.full((B, L), T // L, dtype=torch.long); base[:, : T - int(base[0].sum())] += 1
batch = dict(phonemes=ph, phoneme_mask=torch.ones(B, L, dtype=torch.bool), durations=base,
    log_f0=(5.0 + 0.1 * torch.randn(B, T, generator=g)), z_t=torch.randn(B, D, T, generator=g),
    t=torch.rand(B, generator=g), z_prompt=torch.randn(B, D, Tp, generator=g), prompt_mask=torch.ones(B, Tp, dtype=torch.bool))
def step():
    net.zero_grad(set_to_none=True)
    o = net(**batch)
    (o.z0_hat.pow(2).mean() + o.log_duration.mean() + o.log_f0.mean()).backward()
net.eval()
with torch.inference_mode():
    cond = net.infer_condition(ph, batch["phoneme_mask"], batch["z_prompt"], batch["prompt_mask"], durations=base, log_f0=batch["log_f0"])
    if hasattr(net, "denoiser"):
        den = net.denoiser(cond.cond, cond.frame_mask, cond.prompt_hidden, cond.prompt_mask)
    else:
        den = None
z = torch.randn(B, D, int(cond.cond.shape[-1]), generator=g); tt = torch.full((B,), 0.5)
def call():
    with torch.inference_mode():
        return den(z, tt) if den is not None else net.diffusion(z, tt, cond.cond, cond.frame_mask, cond.prompt_hidden, cond.prompt_mask)
net.train()
def flops(fn):
    with FlopCounterMode(display=False) as c: fn()
    return c.get_total_flops()
a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
def peak():
    ts = []
    for _ in range(3):
        t0 = time.perf_counter(); a @ b; ts.append(time.perf_counter() - t0)
    return 2 * 1024**3 / statistics.median(ts)
def paired(fn, fl, n):
    for _ in range(2): fn()
    t, f = [], []
    for _ in range(n):
        t0 = time.perf_counter(); fn(); dt = time.perf_counter() - t0
        p = peak(); t.append(dt); f.append(fl / dt / p)
    return statistics.median(t), statistics.median(f)
fs = flops(step); ts, frs = paired(step, fs, 5)
net.eval(); fd = flops(call); td, frd = paired(call, fd, 9)
r = dict(label=label, params=sum(p.numel() for p in net.parameters()), train_s=ts, train_gflop=fs / 1e9, train_frac=frs,
         denoise_ms=td * 1e3, denoise_gflop=fd / 1e9, denoise_frac=frd)
print(r); open(out, "a").write(json.dumps(r) + "\n")
