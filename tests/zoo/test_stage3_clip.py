"""Stage 3 foundation: CLIP, its tokenizer, the captioned zero-shot task and the zero_shot check."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from videozoo.data import captions as cap
from videozoo.data.tokenizer import BPETokenizer, get_tokenizer, tokenize
from videozoo.models import clip as clip_mod
from videozoo.models.clip import CLIP, CLIPConfig, contrastive_loss, load_state_dict_from
from videozoo.registry import create, get_spec, list_names, make_config

open_clip = pytest.importorskip("open_clip")

CAPTIONS = [
    "a red square moving left", "A photo of a CAT.", "it's    don't  we'll I'm you've they'd he's",
    "naïve café résumé Ünïcödé", "日本語のテキスト と 中文", "12345 3.14159 1e-5", "emoji 🎉🐍 test",
    "&amp; &lt;b&gt; html &amp;amp;", "hyphen-ated under_score snake_case CamelCase", "   leading and trailing   ",
    "", "tabs\tand\nnewlines", "mojibake â€œquotedâ€\x9d", "aaaaaaaaaaaaaaaaaaaaaaaaa",
    "supercalifragilisticexpialidocious antidisestablishmentarianism", "<start_of_text> odd <end_of_text> specials",
    "punctuation!!! ??? ... ,,, ;;; -- —", "Ελληνικά русский язык العربية", "$100 @user #hashtag https://x.org/p?q=1",
]


# ----------------------------------------------------------------------------- tokenizer


def test_tokenizer_ids_equal_open_clip():
    ours, ref = tokenize(CAPTIONS), open_clip.tokenize(CAPTIONS)
    assert ours.shape == (len(CAPTIONS), 77) and ours.dtype == torch.long
    assert torch.equal(ours, ref)
    tk = get_tokenizer()
    assert (tk.vocab_size, tk.sot_id, tk.eot_id) == (49408, 49406, 49407)
    assert torch.equal(tokenize(CAPTIONS, context_length=40, truncate=True),
                       open_clip.tokenize(CAPTIONS, context_length=40))


def test_tokenizer_decode_round_trip():
    tk = get_tokenizer()
    for text in ("a red square moving left", "two cats, sleeping!", "café 🎉"):
        assert tk.decode(tokenize(text)[0]) == tk.decode(tk.encode(text))
    assert tk.decode(tokenize("a red square moving left")[0]) == "a red square moving left"


def test_tokenizer_rejects_long_captions_by_name_and_truncates_on_request():
    long = " ".join(["word"] * 100)
    with pytest.raises(ValueError) as err:
        tokenize(["fine", long, "also " * 80])
    msg = str(err.value)
    assert "caption 1" in msg and "caption 2" in msg and "102 tokens" in msg and "77" in msg
    assert "caption 0" not in msg
    assert torch.equal(tokenize(long, truncate=True), open_clip.tokenize(long))
    assert tokenize(long, truncate=True)[0, -1] == 49407


def test_tokenizer_bad_arguments():
    with pytest.raises(ValueError, match="empty"):
        tokenize([])
    with pytest.raises(ValueError, match="context_length"):
        tokenize("a", context_length=1)
    with pytest.raises(TypeError):
        get_tokenizer().encode(3)
    with pytest.raises(ValueError, match="outside the vocabulary"):
        get_tokenizer().decode([5, 49408])


def test_tokenizer_reads_a_given_merges_file(tmp_path):
    import gzip

    path = tmp_path / "merges.txt.gz"
    path.write_bytes(gzip.compress("#version\nr e\nre d</w>\n".encode()))
    tk = BPETokenizer(path, context_length=8)
    ids = tk("red red")
    assert ids.shape == (1, 8) and ids[0, 0] == tk.sot_id and ids[0, 3] == tk.eot_id
    assert ids[0, 1] == ids[0, 2] == tk.encoder["red</w>"]


# ----------------------------------------------------------------------------- model


def test_registered_names_and_paper_params():
    assert {"clip", "clip_vit_b16", "clip_vit_l14", "clip_rn50"} <= set(list_names(stage=3))
    spec = get_spec("radford2021learning")
    evidence = getattr(spec.checks["reference"], "evidence", None) or spec.check_evidence["reference"]
    assert spec.alias == "clip" and spec.stage == 3 and evidence == "independent-reference"
    expected = {"clip": 151_277_313, "clip_vit_b16": 149_620_737, "clip_vit_l14": 427_616_513, "clip_rn50": 102_007_137}
    for name, n in expected.items():
        with torch.device("meta"):
            ours = create(name)
            ref = open_clip.create_model(clip_mod.OPEN_CLIP_NAMES[name], pretrained=None, device="meta")
        assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in ref.parameters()) == n


@pytest.mark.parametrize("arch,library", [("vit", "open_clip"), ("resnet", "open_clip"), ("vit", "hf")])
def test_tiny_parity_with_open_clip_and_hf(arch, library):
    cfg = CLIPConfig.tiny()
    if arch == "resnet":
        cfg = dataclasses.replace(cfg, vision_arch="resnet", vision_width=8, image_size=64)
    diffs = clip_mod._parity(cfg, library)
    assert max(diffs.values()) <= 1e-5, diffs


def test_load_state_dict_from_both_layouts_and_round_trip():
    cfg = CLIPConfig.tiny()
    oc = clip_mod.reference_open_clip(cfg)
    hf = clip_mod.reference_hf(cfg)
    for sd, library in ((oc.state_dict(), "open_clip"), (hf.state_dict(), "hf")):
        converted = load_state_dict_from(sd)  # layout detected from the keys
        assert converted.keys() == load_state_dict_from(sd, library=library).keys()
        model = CLIP(cfg)
        model.load_state_dict(converted)   # strict: every key matched
    ours = CLIP(cfg)
    again = CLIP(cfg)
    again.load_state_dict(load_state_dict_from(ours.state_dict()))
    assert all(torch.equal(a, b) for a, b in zip(ours.state_dict().values(), again.state_dict().values()))
    # HF stores Linear projections (out, in): ours are transposed
    assert torch.equal(load_state_dict_from(hf.state_dict())["visual.proj"], hf.visual_projection.weight.t())
    with pytest.raises(ValueError, match="neither"):
        load_state_dict_from({"foo.weight": torch.zeros(1)})
    with pytest.raises(ValueError, match="library"):
        load_state_dict_from(oc.state_dict(), library="timm")
    with pytest.raises(ValueError, match="unexpected key"):
        load_state_dict_from({**oc.state_dict(), "text_decoder.weight": torch.zeros(1)})


def test_initialisation_follows_open_clip():
    torch.manual_seed(0)
    m = CLIP(dataclasses.replace(CLIPConfig.paper(), vision_layers=1, text_layers=1))  # paper widths
    assert m.logit_scale.item() == pytest.approx(2.6592, abs=1e-4)
    assert m.text.token_embedding.weight.std().item() == pytest.approx(0.02, rel=0.02)
    assert m.text.positional_embedding.std().item() == pytest.approx(0.01, rel=0.05)
    assert m.text.proj.std().item() == pytest.approx(512 ** -0.5, rel=0.05)
    assert m.visual.proj.std().item() == pytest.approx(768 ** -0.5, rel=0.05)
    assert torch.count_nonzero(m.visual.blocks[0].attn.qkv.bias) == 0
    rn = create("clip_rn50", "tiny")
    assert all(torch.count_nonzero(b.bn3.weight) == 0 for layer in (rn.visual.layer1, rn.visual.layer4) for b in layer)


def test_token_level_outputs_and_video_embedding():
    torch.manual_seed(0)
    cfg = CLIPConfig.tiny()
    m = CLIP(cfg).eval()
    video = torch.randn(2, 3, cfg.num_frames, cfg.image_size, cfg.image_size)
    frames, tokens = m.encode_video(video, return_tokens=True)
    n = (cfg.image_size // cfg.patch_size) ** 2
    assert frames.shape == (2, cfg.num_frames, cfg.embed_dim) and tokens.shape == (2, cfg.num_frames, n, cfg.embed_dim)
    with torch.no_grad():
        per_image = m.encode_image(video[:, :, 3])
        assert torch.allclose(frames[:, 3], per_image, atol=1e-5)
        # frame averaging: a clip and its time reversal get the same embedding
        assert torch.allclose(m.video_embedding(video), m.video_embedding(video.flip(2)), atol=1e-6)
    ids = tokenize(["a red square moving left", "a cat"], context_length=cfg.context_length)
    pooled, text_tokens = m.encode_text(ids, return_tokens=True)
    assert text_tokens.shape == (2, cfg.context_length, cfg.embed_dim)
    eot = ids.argmax(1)
    assert torch.allclose(pooled, text_tokens[torch.arange(2), eot], atol=1e-6)
    # causal: what follows the end token does not change the caption's embedding
    padded = ids.clone()
    padded[0, eot[0] + 1:] = 320
    assert torch.allclose(m.encode_text(padded)[0], pooled[0], atol=1e-6)
    rn = create("clip_rn50", "tiny").eval()
    pooled, grid = rn.encode_image(torch.randn(2, 3, 32, 32), return_tokens=True)
    assert pooled.shape == (2, rn.config.embed_dim) and grid.shape == (2, 1, rn.config.embed_dim)


def test_contrastive_loss_is_symmetric_and_matches_its_definition():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(5, 5, generator=g) * 3
    labels = torch.arange(5)
    manual = (torch.nn.functional.cross_entropy(logits, labels) + torch.nn.functional.cross_entropy(logits.t(), labels)) / 2
    assert torch.allclose(contrastive_loss(logits), manual)
    assert torch.allclose(contrastive_loss(logits), contrastive_loss(logits.t()))
    assert contrastive_loss(torch.eye(4) * 100).item() < 1e-6
    assert contrastive_loss(torch.zeros(4, 4)).item() == pytest.approx(torch.log(torch.tensor(4.0)).item())
    with pytest.raises(ValueError, match="square"):
        contrastive_loss(torch.zeros(3, 4))


def test_model_loss_and_temperature_clip():
    torch.manual_seed(0)
    cfg = CLIPConfig.tiny()
    m = CLIP(cfg)
    video = torch.rand(3, 3, cfg.num_frames, cfg.image_size, cfg.image_size)
    ids = tokenize(["a", "b", "c"], context_length=cfg.context_length)
    loss = m.contrastive_loss(video, ids)
    loss.backward()
    assert torch.isfinite(loss) and m.logit_scale.grad is not None
    with torch.no_grad():
        m.logit_scale.fill_(10.0)
    assert m.temperature_scale().item() == pytest.approx(100.0)


def test_bad_input_names_the_argument_and_the_limit():
    cfg = CLIPConfig.tiny()
    m = CLIP(cfg)
    with pytest.raises(ValueError, match=r"caption 0 .* context length is 16"):
        m.encode_captions(["a very long caption " * 5])
    with pytest.raises(ValueError, match="empty"):
        m.encode_captions([])
    with pytest.raises(ValueError, match="empty class list"):
        m.encode_text(torch.zeros(0, 16, dtype=torch.long))
    with pytest.raises(ValueError, match="context length is 16"):
        m.encode_text(torch.zeros(2, 20, dtype=torch.long))
    with pytest.raises(ValueError, match=r"\[0, 49408\)"):
        m.encode_text(torch.full((1, 4), 49408))
    with pytest.raises(ValueError, match="video has 4 frames; config.num_frames is 8"):
        m(torch.rand(1, 3, 4, 32, 32), tokenize("a", context_length=16))
    with pytest.raises(ValueError, match="config.image_size is 32"):
        m.encode_image(torch.rand(1, 3, 64, 64))
    with pytest.raises(ValueError, match="config.image_size is 32"):
        m.encode_video(torch.rand(1, 3, 8, 48, 48))
    with pytest.raises(ValueError, match="one caption per clip"):
        m.contrastive_loss(torch.rand(2, 3, 8, 32, 32), tokenize(["a", "b", "c"], context_length=16))
    with pytest.raises(ValueError, match="vision_arch"):
        CLIP(dataclasses.replace(cfg, vision_arch="convnext"))
    with pytest.raises(ValueError, match="patch_size"):
        CLIP(dataclasses.replace(cfg, patch_size=7))


def test_zoo_standard_input_and_checks_routing():
    from videozoo.verify import check_motion, check_zero_shot

    spec = get_spec("clip")
    cfg = make_config("clip", "tiny")
    video, text = spec.clip_to_input(cfg, torch.rand(2, *cfg.clip_shape()))
    assert video.shape == (2, *cfg.clip_shape()) and text.shape == (cfg.num_classes, cfg.context_length)
    assert create("clip", "tiny")(video, text).shape == (2, cfg.num_classes)
    assert check_motion(spec)["status"] == "not-run"
    assert check_zero_shot(get_spec("tsm"))["status"] == "not-run"


# ----------------------------------------------------------------------------- zero-shot task


def test_caption_split_is_disjoint_and_covers_every_word():
    held, seen = set(cap.heldout_classes()), set(cap.seen_classes())
    assert len(held) == 16 and len(seen) == 48 and not held & seen and held | seen == set(range(64))
    assert all(c ^ 1 in held for c in held)  # held out as whole opposite pairs (twins)
    seen_words = {w for c in seen for w in cap.CLASSES[c].caption.split()}
    assert set(cap.SHAPES) | set(cap.COLOURS) | set(cap.DIRECTIONS) <= seen_words
    held_objects = [cap.CLASSES[c].object for c in held]
    for c in held:  # every held-out object is seen moving along the other axis
        k = cap.CLASSES[c]
        assert any(cap.CLASSES[s].object == k.object and cap.CLASSES[s].axis != k.axis for s in seen)
    shapes = [o[0] for o in held_objects]
    colours = [o[1] for o in held_objects]
    assert all(shapes.count(s) == 4 for s in cap.SHAPES) and all(colours.count(c) == 4 for c in cap.COLOURS)
    assert cap.CLASSES[cap.heldout_classes()[0]].caption == "a red square moving right"
    assert len(set(cap.class_captions())) == 64


def test_opposite_motions_hold_the_same_frames_reversed():
    labels = torch.tensor([0, 3, 22, 41, 60, 63])
    clips = cap.make_caption_clips(labels, frames=8, size=32, seed=7)
    assert clips.shape == (6, 3, 8, 32, 32) and 0 <= clips.min() and clips.max() <= 1
    assert torch.equal(cap.make_caption_clips(cap.opposite(labels), seed=7), clips.flip(2))
    assert torch.equal(cap.make_caption_clips(labels, seed=7), clips)
    # the same multiset of frames: frame averages are identical
    assert torch.allclose(clips.mean(2), cap.make_caption_clips(cap.opposite(labels), seed=7).mean(2), atol=1e-6)
    with pytest.raises(ValueError, match="class indices"):
        cap.make_caption_clips(torch.tensor([64]))


def test_objects_move_as_their_captions_say():
    for label in range(0, 64, 5):
        k = cap.CLASSES[label]
        clip = cap.make_caption_clips(torch.tensor([label]), seed=label)[0]
        colour = torch.tensor(cap.COLOURS[k.colour])
        closeness = -(clip - colour[:, None, None, None]).abs().sum(0)      # (T, H, W)
        mask = closeness > -0.35
        ys, xs = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")
        cx = (xs * mask).sum((1, 2)) / mask.sum((1, 2))
        cy = (ys * mask).sum((1, 2)) / mask.sum((1, 2))
        dx, dy = (cx[-1] - cx[0]).item(), (cy[-1] - cy[0]).item()
        sign = {"right": (dx, 1), "left": (dx, -1), "down": (dy, 1), "up": (dy, -1)}[k.direction]
        assert sign[0] * sign[1] > 5, (k.caption, dx, dy)


def test_zero_shot_training_smoke():
    from videozoo.verify.zero_shot import train_zero_shot

    spec = get_spec("clip")
    cfg = make_config("clip", "tiny")
    r = train_zero_shot(spec, cfg, seed=0, steps=2, batch_size=8, n_twins=1, n_seen_test=1, clip_pretrain_steps=2)
    assert r["n_heldout_test"] == 16 and r["n_seen_test"] == 48
    assert r["clip_pretrain"]["steps"] == 2 and r["tensors_not_from_clip"] == 0  # CLIP starts from CLIP
    for m in ("heldout_top1_pct", "direction_top1_pct", "object_top1_pct", "seen_top1_pct"):
        assert 0.0 <= r[m] <= 100.0
    # frame averaging: the twins of each pair get the same prediction, so at most one is right
    assert r["same_prediction_reversed_pct"] == 100.0
    assert r["direction_top1_pct"] == 50.0 and r["heldout_top1_pct"] <= 50.0


def test_zero_shot_verdict_uses_the_worst_seed(monkeypatch):
    from videozoo.verify import zero_shot as zs

    figures = iter([70.0, 40.0, 90.0])

    def fake(spec, cfg, seed, log=None, **settings):
        v = next(figures)
        return {m: v for m in zs._METRICS}

    monkeypatch.setattr(zs, "train_zero_shot", fake)
    spec = dataclasses.replace(get_spec("clip"), zero_shot={"expect": {"heldout_top1_pct": ">= 50"}})
    out = zs.check_zero_shot(spec)
    assert out["status"] == "failed" and out["measured"]["model"]["heldout_top1_pct"]["min"] == 40.0
    figures = iter([70.0, 40.0, 90.0])
    spec = dataclasses.replace(spec, zero_shot={"expect": {"heldout_top1_pct": "<= 90"}})
    assert zs.check_zero_shot(spec)["status"] == "passed"
    with pytest.raises(ValueError, match="unknown figure"):
        zs._run_seeds(dataclasses.replace(spec, zero_shot={"expect": {"top1": ">= 1"}}), (0,), None)


def test_caption_frames_put_the_object_in_its_cell():
    labels = torch.arange(len(cap.FRAME_CLASSES)).repeat(3)
    frames = cap.make_caption_frames(labels, size=32, seed=3)
    assert frames.shape == (432, 3, 32, 32) and torch.equal(frames, cap.make_caption_frames(labels, size=32, seed=3))
    assert cap.FRAME_CLASSES[5].caption == "a red square in the middle right" and len(set(cap.frame_captions())) == 144
    centres = []
    for i, label in enumerate(labels.tolist()):
        colour = torch.tensor(cap.COLOURS[cap.FRAME_CLASSES[label].colour])
        ys, xs = torch.nonzero((frames[i] - colour[:, None, None]).abs().sum(0) < 0.35, as_tuple=True)
        centres.append((xs.float().mean().item(), ys.float().mean().item()))
    cx, cy = torch.tensor(centres).t()
    col, row = labels % 3, (labels // 3) % 3
    # symmetric shapes only: a triangle's mass centre lies below the centre it is drawn at
    symmetric = torch.tensor([cap.FRAME_CLASSES[i].shape != "triangle" for i in labels.tolist()])
    cx, cy, col, row = cx[symmetric], cy[symmetric], col[symmetric], row[symmetric]
    for coord, cell in ((cx, col), (cy, row)):   # cells are ordered and do not overlap (up to a pixel)
        assert coord[cell == 0].max() < coord[cell == 1].min() + 1.5
        assert coord[cell == 1].max() < coord[cell == 2].min() + 1.5
        assert coord[cell == 0].max() < coord[cell == 2].min()
    with pytest.raises(ValueError, match="class indices"):
        cap.make_caption_frames(torch.tensor([144]))


def test_clip_pretraining_on_frames_and_loading_into_a_model():
    from videozoo.verify import zero_shot as zs

    cfg = make_config("clip", "tiny")
    sd, metrics = zs.pretrain_clip(cfg, seed=0, steps=2, batch_size=8, n_test_per_class=1)
    assert metrics["steps"] == 2 and 0.0 <= metrics["top1_pct"] <= metrics["object_top1_pct"] <= 100.0
    model = create("clip", "tiny")
    assert zs._init_from_clip(model, sd) == 0
    assert all(torch.equal(model.state_dict()[k], v) for k, v in sd.items())
    with pytest.raises(ValueError, match="no place for CLIP weights"):
        zs._init_from_clip(torch.nn.Linear(2, 2), sd)
    with pytest.raises(ValueError, match="batch_size"):
        zs.pretrain_clip(cfg, batch_size=1)
    assert zs.clip_config_of(cfg) is cfg


def test_model_and_control_share_one_pretraining_per_seed(monkeypatch):
    from videozoo.verify import zero_shot as zs

    calls = []
    real = zs.pretrain_clip

    def counting(clip_cfg, seed=0, **kw):
        calls.append(seed)
        return real(clip_cfg, seed=seed, **kw)

    monkeypatch.setattr(zs, "pretrain_clip", counting)
    spec, cfg = get_spec("clip"), make_config("clip", "tiny")
    cache: dict = {}
    small = dict(steps=1, batch_size=4, n_twins=1, n_seen_test=1, clip_pretrain_steps=1, pretrain_cache=cache)
    a = zs.train_zero_shot(spec, cfg, seed=0, **small)
    b = zs.train_zero_shot(spec, cfg, seed=0, **small)
    zs.train_zero_shot(spec, cfg, seed=1, **small)
    assert calls == [0, 1] and a["clip_pretrain"] == b["clip_pretrain"]
