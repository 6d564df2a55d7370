"""Stage 4 shared layers: LLM assembly, tokenizer, prompt building, splicing, generation."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("transformers")

from videozoo.layers.generation import greedy_generate, greedy_generate_uncached, time_generation  # noqa: E402
from videozoo.layers.llm import LLMConfig, build_llm  # noqa: E402
from videozoo.layers.projector import Projector  # noqa: E402
from videozoo.layers.prompt import (  # noqa: E402
    IGNORE_INDEX, VIDEO_TOKEN, ConversationTemplate, build_prompt, collate, encode_conversation, splice_video_embeds)
from videozoo.layers.qformer import QFormerConfig, QueryTransformer  # noqa: E402
from videozoo.layers.tokenizer import build_word_tokenizer  # noqa: E402
from videozoo.layers.vision import VisionTowerConfig, build_vision_tower, frame_tokens, normalise_frames  # noqa: E402

TEMPLATE = ConversationTemplate(name="test", system="a test system", roles=("USER", "BOT"), sep=" ", stop="</s>",
                                video_turns=("{question} <vid_start><video><vid_end>",), markers=("<vid_start>", "<vid_end>"))


@pytest.fixture(scope="module")
def tok():
    return build_word_tokenizer([*TEMPLATE.texts(), "what colour is the square? red green"],
                                [VIDEO_TOKEN, *TEMPLATE.markers])


def test_llama_paper_configs_have_the_papers_parameter_counts():
    # LLaMA (arXiv 2302.13971, Table 2): 6.7 B and 13.0 B parameters
    for cfg, expected in ((LLMConfig.vicuna_7b(), 6.74e9), (LLMConfig.vicuna_13b(), 13.02e9)):
        with torch.device("meta"):
            llm = build_llm(cfg, 100, 0, 1, 2)
        n = sum(p.numel() for p in llm.parameters())
        assert abs(n - expected) / expected < 0.005
        assert llm.config.vocab_size == 32000 and llm.device.type == "meta"


def test_tiny_llm_takes_the_tokenizers_vocabulary(tok):
    llm = build_llm(LLMConfig.tiny(), len(tok), tok.pad_token_id, tok.bos_token_id, tok.eos_token_id)
    assert llm.config.vocab_size == len(tok)
    assert llm.get_input_embeddings().weight.shape == (len(tok), 64)
    with pytest.raises(ValueError, match="divisible"):
        build_llm(LLMConfig(hidden_size=30, num_heads=4), 10, 0, 1, 2)


def test_word_tokenizer_is_deterministic_and_keeps_markers_whole(tok):
    again = build_word_tokenizer([*TEMPLATE.texts(), "what colour is the square? red green"],
                                 [VIDEO_TOKEN, *TEMPLATE.markers])
    assert tok.get_vocab() == again.get_vocab()
    assert [tok.pad_token_id, tok.unk_token_id, tok.bos_token_id, tok.eos_token_id] == [0, 1, 2, 3]
    ids = tok("What colour<vid_start><video><vid_end> zebra", add_special_tokens=False).input_ids
    assert tok.convert_ids_to_tokens(ids) == ["what", "colour", "<vid_start>", "<video>", "<vid_end>", "<unk>"]
    assert tok.decode(tok("red green", add_special_tokens=False).input_ids) == "red green"


def test_prompt_text_and_labels(tok):
    text = build_prompt(TEMPLATE, "what colour is the square?")
    assert text == "a test system USER: what colour is the square? <vid_start><video><vid_end> BOT:"
    two = build_prompt(TEMPLATE, "and now?", history=[("what colour is the square?", "red")])
    assert two == text + " red</s>USER: and now? BOT:"
    ids, labels = encode_conversation(tok, TEMPLATE, "what colour is the square?", 5, answer="red")
    video = tok.convert_tokens_to_ids(VIDEO_TOKEN)
    assert ids[0] == tok.bos_token_id and ids.count(video) == 5
    start = ids.index(video)
    assert ids[start:start + 5] == [video] * 5                            # expanded in place, contiguous
    assert ids[-2:] == [tok.convert_tokens_to_ids("red"), tok.eos_token_id]
    assert labels[:-2] == [IGNORE_INDEX] * (len(ids) - 2) and labels[-2:] == ids[-2:]
    with pytest.raises(ValueError, match="once"):
        bad = ConversationTemplate(name="bad", system="", roles=("a", "b"), sep=" ", stop="</s>", video_turns=("{question}",))
        encode_conversation(tok, bad, "q", 3)


def test_collate_pads_left_and_right():
    seqs = [([5, 6, 7], [IGNORE_INDEX, 6, 7]), ([8], [8])]
    right = collate(seqs, pad_token_id=0)
    assert right["input_ids"].tolist() == [[5, 6, 7], [8, 0, 0]]
    assert right["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    assert right["labels"].tolist() == [[IGNORE_INDEX, 6, 7], [8, IGNORE_INDEX, IGNORE_INDEX]]
    left = collate(seqs, pad_token_id=0, padding_side="left")
    assert left["input_ids"].tolist() == [[5, 6, 7], [0, 0, 8]]
    with pytest.raises(ValueError):
        collate(seqs, 0, padding_side="middle")


def test_splice_puts_each_rows_video_tokens_at_its_placeholders():
    ids = torch.tensor([[1, 9, 9, 2, 3], [1, 2, 9, 9, 3]])
    text = torch.zeros(2, 5, 4)
    video = torch.arange(16, dtype=torch.float32).view(2, 2, 4) + 1
    out = splice_video_embeds(text, ids == 9, video)
    assert torch.equal(out[0, 1:3], video[0]) and torch.equal(out[1, 2:4], video[1])
    assert out[0, [0, 3, 4]].abs().sum() == 0 and out[1, [0, 1, 4]].abs().sum() == 0
    with pytest.raises(ValueError, match="video positions"):
        splice_video_embeds(text, ids == 9, video[:, :1])
    meta = splice_video_embeds(text.to("meta"), (ids == 9).to("meta"), video.to("meta"))
    assert meta.shape == (2, 5, 4)


def test_greedy_generation_with_cache_equals_without_and_the_argmax_loop():
    torch.manual_seed(0)
    llm = build_llm(LLMConfig.tiny(), 60, 0, 1, 2).eval()
    embeds = torch.randn(3, 9, 64)
    stops = [2, 7]
    cached = greedy_generate(llm, embeds, None, 10, stops, 0, use_cache=True)
    uncached = greedy_generate(llm, embeds, None, 10, stops, 0, use_cache=False)
    loop = greedy_generate_uncached(llm, embeds, 10, stops, 0)
    assert cached.shape[0] == 3 and 1 <= cached.shape[1] <= 10
    assert torch.equal(cached, uncached) and torch.equal(cached, loop)
    # forced to full length (no stop token), the three still agree token for token
    long = greedy_generate(llm, embeds, None, 10, [59], 0, use_cache=True, min_new_tokens=10)
    assert long.shape == (3, 10)
    assert torch.equal(long, greedy_generate(llm, embeds, None, 10, [59], 0, use_cache=False, min_new_tokens=10))


def test_left_padded_batch_generates_what_each_prompt_generates_alone():
    torch.manual_seed(1)
    llm = build_llm(LLMConfig.tiny(), 60, 0, 1, 2).eval()
    a, b = torch.randn(1, 9, 64), torch.randn(1, 6, 64)
    batch = torch.cat([a, torch.cat([torch.zeros(1, 3, 64), b], dim=1)])
    mask = torch.ones(2, 9, dtype=torch.long)
    mask[1, :3] = 0
    together = greedy_generate(llm, batch, mask, 8, [59], 0, min_new_tokens=8)
    assert torch.equal(together[0], greedy_generate(llm, a, None, 8, [59], 0, min_new_tokens=8)[0])
    assert torch.equal(together[1], greedy_generate(llm, b, None, 8, [59], 0, min_new_tokens=8)[0])


def test_time_generation_reports_first_token_and_speed():
    calls = []

    def fake(max_new, min_new):
        calls.append((max_new, min_new))
        return torch.zeros(2, max_new, dtype=torch.long)

    out = time_generation(fake, new_tokens=5, repeats=3)
    assert out["new_tokens"] == 5 and out["batch_size"] == 2 and out["decode_tokens_per_s"] > 0
    assert calls.count((1, 1)) == 4 and calls.count((5, 5)) == 4


def test_projector_kinds():
    x = torch.randn(2, 7, 16)
    assert Projector(16, 32)(x).shape == (2, 7, 32)
    mlp = Projector(16, 32, "mlp2x_gelu")
    assert mlp(x).shape == (2, 7, 32) and {n for n, _ in mlp.named_parameters()} == {
        "fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"}
    with pytest.raises(ValueError):
        Projector(16, 32, "conv")


@pytest.mark.parametrize("kind", ["clip", "eva"])
def test_vision_tower_frame_tokens_match_the_tower_on_each_frame(kind):
    torch.manual_seed(0)
    cfg = VisionTowerConfig.tiny(kind)
    tower = build_vision_tower(cfg).eval()
    video = normalise_frames(torch.rand(2, 3, 3, 40, 40), cfg.image_size)
    assert video.shape == (2, 3, 3, 32, 32)
    with torch.no_grad():
        last, pen = frame_tokens(tower, video, layers=(-1, -2))
        assert last.shape == (2, 3, 1 + cfg.num_patches, cfg.width)
        for t in range(3):
            hs = tower(pixel_values=video[:, :, t], output_hidden_states=True).hidden_states
            assert torch.allclose(last[:, t], hs[-1], atol=1e-6) and torch.allclose(pen[:, t], hs[-2], atol=1e-6)
    with pytest.raises(ValueError):
        build_vision_tower(VisionTowerConfig(kind="resnet"))


def test_paper_vision_towers_and_qformer_have_the_published_sizes():
    with torch.device("meta"):
        clip = build_vision_tower(VisionTowerConfig.clip_vit_l14())
        eva = build_vision_tower(VisionTowerConfig.eva_vit_g14())
        qf = QueryTransformer(QFormerConfig.blip2(), encoder_width=1408)
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert abs(count(clip) / 1e6 - 303.2) < 0.5            # CLIP ViT-L/14 vision tower
    assert abs(count(eva) / 1e6 - 986.0) < 1.0             # EVA ViT-g/14 without its 40th block (BLIP-2)
    assert qf.query_tokens.shape == (1, 32, 768)


def test_query_transformer_reads_any_number_of_tokens():
    qt = QueryTransformer(QFormerConfig.tiny(), encoder_width=24).eval()
    with torch.no_grad():
        for n in (5, 50):
            assert qt(torch.randn(2, n, 24)).shape == (2, 8, 64)
        assert qt(torch.randn(2, 5, 24), extra_queries=torch.zeros(1, 3, 64)).shape == (2, 11, 64)
