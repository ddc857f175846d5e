"""WER metrics end to end: transformers CTC / Whisper loading paths with small random models saved to a
temporary cache (their transcripts are garbage; the point is that loading and decoding run offline),
and PocketSphinx on espeak speech."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from ns2.metrics import MetricInputError, aggregate_wer, build_metrics
from ns2.metrics import backbones as bb

SR = 16000


@pytest.fixture(scope="module")
def noise():
    return (np.random.default_rng(0).standard_normal(SR) * 0.1).astype(np.float32)


def _check_wer_output(out, name):
    assert set(out) == {name, f"{name}_errors", f"{name}_ref_words"}
    assert out[f"{name}_ref_words"] == 4.0
    assert math.isfinite(out[name]) and out[name] == out[f"{name}_errors"] / 4.0


def test_hubert_ctc_loads_offline_from_cache(tmp_path, checksums, noise):
    from transformers import HubertConfig, HubertForCTC, Wav2Vec2CTCTokenizer, Wav2Vec2FeatureExtractor, Wav2Vec2Processor

    folder = bb.backbone_dir("hubert_large_ls960_ft", tmp_path)
    folder.mkdir(parents=True)
    vocab = {"<pad>": 0, "<s>": 1, "</s>": 2, "<unk>": 3, "|": 4, **{c: i + 5 for i, c in enumerate("ETAONIHSRDLUMWCFGYPBVK'XJQZ")}}
    (folder / "vocab.json").write_text(json.dumps(vocab))
    tok = Wav2Vec2CTCTokenizer(str(folder / "vocab.json"), unk_token="<unk>", pad_token="<pad>", word_delimiter_token="|")
    Wav2Vec2Processor(feature_extractor=Wav2Vec2FeatureExtractor(do_normalize=True), tokenizer=tok).save_pretrained(folder)
    torch.manual_seed(0)
    cfg = HubertConfig(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, conv_dim=(16,) * 7,
        num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2, vocab_size=len(vocab),
        feat_extract_norm="layer", do_stable_layer_norm=True, conv_bias=True,
    )
    HubertForCTC(cfg).save_pretrained(folder)
    bb.record("hubert_large_ls960_ft", tmp_path, checksums=checksums)
    metric = build_metrics(["wer_hubert_large"], tmp_path, checksums=checksums)[0]
    assert metric.name == "wer_hubert_large" and metric.backbone == "hubert_large_ls960_ft"
    assert isinstance(metric.transcribe(noise, SR), str)
    _check_wer_output(metric.score(noise, SR, text="One two, three four."), "wer_hubert_large")


def test_whisper_loads_offline_from_cache(tmp_path, checksums, noise):
    from transformers import (
        GenerationConfig,
        WhisperConfig,
        WhisperFeatureExtractor,
        WhisperForConditionalGeneration,
        WhisperProcessor,
        WhisperTokenizer,
    )
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    folder = bb.backbone_dir("whisper_large_v3", tmp_path)
    vocab = {c: i for i, c in enumerate(bytes_to_unicode().values())}  # byte-level, no merges
    tok = WhisperTokenizer(vocab=vocab, merges=[])
    specials = ["<|startoftranscript|>", "<|en|>", "<|translate|>", "<|transcribe|>", "<|startoflm|>",
                "<|startofprev|>", "<|nospeech|>", "<|notimestamps|>"]
    tok.add_special_tokens({"additional_special_tokens": specials})
    ids = {s: tok.convert_tokens_to_ids(s) for s in ["<|endoftext|>", *specials]}
    WhisperProcessor(feature_extractor=WhisperFeatureExtractor(feature_size=128), tokenizer=tok).save_pretrained(folder)
    torch.manual_seed(0)
    eot, sot = ids["<|endoftext|>"], ids["<|startoftranscript|>"]
    cfg = WhisperConfig(
        vocab_size=len(tok), num_mel_bins=128, d_model=16, encoder_layers=1, decoder_layers=1,
        encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32,
        max_source_positions=1500, max_target_positions=64,
        decoder_start_token_id=sot, eos_token_id=eot, pad_token_id=eot, bos_token_id=eot,
    )
    model = WhisperForConditionalGeneration(cfg)
    model.generation_config = GenerationConfig(
        decoder_start_token_id=sot, eos_token_id=eot, pad_token_id=eot, max_length=16, is_multilingual=True,
        lang_to_id={"<|en|>": ids["<|en|>"]}, no_timestamps_token_id=ids["<|notimestamps|>"],
        task_to_id={"transcribe": ids["<|transcribe|>"], "translate": ids["<|translate|>"]},
    )
    model.save_pretrained(folder)
    bb.record("whisper_large_v3", tmp_path, checksums=checksums)
    metric = build_metrics(["wer_whisper_large_v3"], tmp_path, checksums=checksums)[0]
    assert metric.name == "wer_whisper_large_v3" and metric.normalizer == "seed"
    assert isinstance(metric.transcribe(noise, SR), str)
    _check_wer_output(metric.score(noise, SR, text="One two, three four."), "wer_whisper_large_v3")


def test_pocketsphinx_recognises_speech(speech):
    metric = build_metrics(["wer_pocketsphinx"])[0]
    text = "the weather is nice today and the children are playing outside"
    wav = speech(text, "en-us")
    hyp = metric.transcribe(wav, SR)
    assert isinstance(hyp, str) and len(hyp.split()) >= 3  # it hears words (espeak speech is hard for it)
    we = metric.evaluate(wav, SR, text)
    assert math.isfinite(we.wer) and we.ref_words == 11
    assert math.isfinite(aggregate_wer([we])["corpus_wer"])
    assert isinstance(metric.transcribe(np.zeros(SR, np.float32), SR), str)
    with pytest.raises(MetricInputError, match="text"):
        metric.score(wav, SR)


def test_wer_fallbacks(tmp_path):
    metrics = build_metrics(["wer_hubert_large", "wer_whisper_large_v3"], tmp_path, allow_fallbacks=True)
    assert [m.name for m in metrics] == ["wer_pocketsphinx"]
