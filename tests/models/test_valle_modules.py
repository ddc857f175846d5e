"""VALL-E's boxes: the prefix-LM mask, the KV cache against the full pass, padding anywhere, the NAR's stage
conditioning and shared output tables, the paper-size parameter count, and token sampling."""
from __future__ import annotations

import pytest
import torch

from ns2.inference.valle import sample_tokens
from ns2.models.valle import VALLE, KVCache, prefix_lm_mask

K, NQ, V = 32, 4, 60


def tiny(**kw) -> VALLE:
    torch.manual_seed(0)
    return VALLE(V, NQ, K, dim=32, heads=2, layers=2, ffn=64, dropout=0.0, **kw).eval()


def perturb_norms(net: VALLE) -> None:
    """AdaLN starts as the identity norm; give the stage projections weights so stages can differ."""
    g = torch.Generator().manual_seed(1)
    for name, p in net.nar.named_parameters():
        if ".proj." in name or name.startswith("norm.proj"):
            p.data.add_(0.3 * torch.randn(p.shape, generator=g))


def test_prefix_lm_mask_text_is_bidirectional_audio_is_causal():
    text = torch.tensor([[True, True, False]])
    audio = torch.tensor([[True, True, True]])
    m = prefix_lm_mask(text, audio)[0, 0]
    assert m[0, 1] and m[1, 0]                        # text <-> text
    assert not m[0, 3] and not m[1, 5]                # text never sees audio
    assert m[3, 0] and m[3, 1] and not m[3, 2]        # audio sees valid text only
    assert m[4, 3] and not m[3, 4] and m[5, 4]        # audio is causal
    assert m[2, 2] and not m[3, 2]                    # a padded query sees itself only; nobody sees it


def test_kv_cache_gives_the_full_pass_logits():
    net = tiny()
    ar = net.ar
    ph = torch.randint(1, V, (2, 7))
    tm = torch.ones(2, 7, dtype=torch.bool)
    tm[1, 5:] = False
    tok = torch.randint(0, K, (2, 12))
    tok[:, 0] = ar.bos
    am = torch.ones(2, 12, dtype=torch.bool)
    am[1, :3] = False  # left padding of the audio prefix, as in batched synthesis
    tok[1, 3] = ar.bos
    full = ar(ph, tm, tok, am)
    cache = KVCache()
    pre = ar(ph, tm, tok[:, :5], am[:, :5], cache=cache)
    torch.testing.assert_close(pre, full[:, :5], atol=1e-5, rtol=1e-5)
    for i in range(5, 12):
        step = ar.step(tok[:, i], cache)
        torch.testing.assert_close(step, full[:, i], atol=1e-5, rtol=1e-5)
    assert cache.length == 7 + 12 and cache.audio_len.tolist() == [12, 9]


def test_outputs_do_not_depend_on_padding_or_batch_neighbours():
    net = tiny()
    perturb_norms(net)
    ph = torch.randint(1, V, (1, 6))
    codes = torch.randint(0, K, (1, NQ, 9))
    tok = torch.cat([torch.tensor([[net.ar.bos]]), codes[:, 0]], 1)
    alone_ar = net.ar(ph, ph > 0, tok, torch.ones_like(tok, dtype=torch.bool))
    alone_nar = net.nar(ph, ph > 0, codes, torch.ones(1, 9, dtype=torch.bool), torch.tensor([3]), 2)
    # the same item padded (text +3, frames +5) beside a longer random neighbour
    ph2 = torch.zeros(2, 9, dtype=torch.long)
    ph2[0, :6], ph2[1] = ph[0], torch.randint(1, V, (9,))
    codes2 = torch.randint(0, K, (2, NQ, 14))
    codes2[0, :, :9] = codes[0]
    fm = torch.ones(2, 14, dtype=torch.bool)
    fm[0, 9:] = False
    tok2 = torch.cat([torch.full((2, 1), net.ar.bos), codes2[:, 0]], 1)
    am2 = torch.cat([torch.ones(2, 1, dtype=torch.bool), fm], 1)
    batch_ar = net.ar(ph2, ph2 > 0, tok2, am2)
    batch_nar = net.nar(ph2, ph2 > 0, codes2, fm, torch.tensor([3, 4]), 2)
    torch.testing.assert_close(batch_ar[0, :10], alone_ar[0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(batch_nar[0, :9], alone_nar[0], atol=1e-5, rtol=1e-5)


def test_nar_stage_embedding_and_shared_output_tables():
    net = tiny()
    perturb_norms(net)
    nar = net.nar
    ph = torch.randint(1, V, (1, 5))
    codes = torch.randint(0, K, (1, NQ, 8))
    fm = torch.ones(1, 8, dtype=torch.bool)
    pl = torch.tensor([2])
    out2 = nar(ph, ph > 0, codes, fm, pl, 2)
    with torch.no_grad():  # stage 2 reading stage 1's embedding: the AdaLN conditioning alone changes outputs
        saved = nar.stage_emb.weight[1].clone()
        nar.stage_emb.weight[1] = nar.stage_emb.weight[0]
        swapped = nar(ph, ph > 0, codes, fm, pl, 2)
        nar.stage_emb.weight[1] = saved
    assert (out2 - swapped).abs().max() > 1e-3
    # codes of stages >= 2 outside the prompt are not inputs of stage 2; inside the prompt they are
    later = codes.clone()
    later[:, 2:, 2:] = torch.randint(0, K, later[:, 2:, 2:].shape)
    torch.testing.assert_close(nar(ph, ph > 0, later, fm, pl, 2), out2)
    in_prompt = codes.clone()
    in_prompt[:, 3, :2] = (in_prompt[:, 3, :2] + 1) % K
    assert (nar(ph, ph > 0, in_prompt, fm, pl, 2) - out2).abs().max() > 1e-4
    # the prediction layer of stage j is stage j's embedding table: without prompt frames that table is an
    # input of no frame at stage 2, yet it gets the gradient of stage 2's logits; stage 3's table gets none
    nar.zero_grad()
    nar(ph, ph > 0, codes, fm, torch.tensor([0]), 2).logsumexp(-1).sum().backward()
    assert nar.audio_embs[2].weight.grad.abs().sum() > 0
    assert nar.audio_embs[3].weight.grad is None or nar.audio_embs[3].weight.grad.abs().sum() == 0
    with pytest.raises(ValueError, match="stage"):
        nar(ph, ph > 0, codes, fm, pl, 0)


def test_paper_sizes_count():
    with torch.device("meta"):
        net = VALLE(512, 8, 1024)  # the paper's: 12 layers, 16 heads, 1024 wide, FFN 4096; EnCodec 8 x 1024
    h, f = 1024, 4096
    layer = 4 * h * h + 4 * h + 2 * h * f + f + h
    ar = sum(p.numel() for p in net.ar.parameters())
    nar = sum(p.numel() for p in net.nar.parameters())
    assert abs(ar - 12 * layer) / (12 * layer) < 0.05          # 151M of Transformer layers + embeddings
    adaln = 12 * 2 * (2 * h * h + 2 * h) + (2 * h * h + 2 * h)
    assert abs(nar - 12 * layer - adaln) / (12 * layer + adaln) < 0.05
    print(f"VALL-E paper sizes: AR {ar / 1e6:.1f}M, NAR {nar / 1e6:.1f}M")


def test_sampling_rules():
    logits = torch.tensor([[0.0, 3.0, 1.0, 2.0]] * 2)
    gens = lambda s: [torch.Generator().manual_seed(s), torch.Generator().manual_seed(s + 1)]  # noqa: E731
    assert sample_tokens(logits, gens(0), temperature=0).tolist() == [1, 1]
    assert sample_tokens(logits, gens(0), top_k=1).tolist() == [1, 1]
    assert sample_tokens(logits, gens(0), top_p=1e-3).tolist() == [1, 1]
    draws = torch.stack([sample_tokens(logits, gens(s), top_k=2) for s in range(200)])
    assert set(draws.flatten().tolist()) == {1, 3}              # only the two best tokens
    draws_p = torch.stack([sample_tokens(logits, gens(s), top_p=0.8) for s in range(200)])
    assert set(draws_p.flatten().tolist()) <= {1, 2, 3} and 0 not in draws_p
    torch.testing.assert_close(sample_tokens(logits, gens(5)), sample_tokens(logits, gens(5)))  # seeded
