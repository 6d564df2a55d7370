"""VideoAgent (tiny configs, random weights): detection, re-identification, SQLite memory, tools, controllers."""

from __future__ import annotations

import dataclasses
import io
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("transformers")
pytest.importorskip("scipy")

from videozoo.data.long_video import CountingVideo  # noqa: E402
from videozoo.data.shape_detection import box_iou, detect_shapes, track  # noqa: E402
from videozoo.data.synthetic import COLOUR_NAMES, SHAPE_NAMES  # noqa: E402
from videozoo.models.videoagent import (  # noqa: E402
    AgentMemory,
    FinalAnswer,
    LLMController,
    MemoryQueryError,
    RuleController,
    SegmentMemory,
    ToolCall,
    VideoAgent,
    VideoAgentConfig,
    VideoAgentTools,
    run_agent,
)
from videozoo.registry import get_spec, make_config  # noqa: E402
from videozoo.verify import run_check  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def agent() -> VideoAgent:
    torch.manual_seed(0)
    return VideoAgent(VideoAgentConfig.tiny()).eval()


@pytest.fixture(scope="module")
def built(agent, tmp_path_factory):
    """Three scenes with their memories (with and without re-identification)."""
    out = []
    d = tmp_path_factory.mktemp("memory")
    for seed in (3, 4, 5):
        video = CountingVideo(seed=seed)
        memory = agent.build_memory(iter(video), video.segment_frames, d / f"{seed}.sqlite")
        control = agent.build_memory(iter(video), video.segment_frames, d / f"{seed}_noreid.sqlite", use_reid=False)
        out.append((video, memory, control))
    return out


def test_detector_finds_every_shape_with_its_colour():
    for seed in range(4):
        video = CountingVideo(seed=seed)
        for t in range(0, video.num_frames, 3):
            dets = detect_shapes(video.frame(t), t)
            truth = sorted((SHAPE_NAMES[o.shape], COLOUR_NAMES[o.colour]) for _, o, _, _ in video.visible(t))
            assert sorted((d.category, d.colour) for d in dets) == truth


def test_tracks_follow_appearances_and_iou():
    assert box_iou((0, 0, 4, 4), (2, 0, 6, 4)) == pytest.approx(1 / 3) and box_iou((0, 0, 1, 1), (5, 5, 6, 6)) == 0
    video = CountingVideo(seed=1)
    tracks = track([detect_shapes(video.frame(t), t) for t in range(video.num_frames)])
    assert len(tracks) == video.appearances
    assert all(tr.frames == list(range(tr.frames[0], tr.frames[-1] + 1)) for tr in tracks)


def test_counting_is_exact_with_reidentification_and_not_without(built):
    wrong_without = 0
    for video, memory, control in built:
        tools, ctools = VideoAgentTools(memory), VideoAgentTools(control)
        for question, answer in video.counting_questions():
            assert run_agent(question, tools, RuleController()).answer == answer, question
            wrong_without += run_agent(question, ctools, RuleController()).answer != answer
        assert memory.query("SELECT COUNT(*) FROM Objects")[0][0] == len(video.objects)
        assert control.query("SELECT COUNT(*) FROM Objects")[0][0] == video.appearances
    assert wrong_without > 0          # objects that come back are counted twice without re-identification
    video, memory, _ = built[0]
    assert run_agent("how many objects appear?", VideoAgentTools(memory), RuleController()).answer is not None


def test_memory_file_survives_a_restart(built):
    video, memory, _ = built[1]
    questions = [q for q, _ in video.counting_questions()]
    code = ("import json, sys; from videozoo.verify.memory import _answer_counts; "
            "print(json.dumps(_answer_counts([sys.argv[1]], [json.loads(sys.argv[2])])))")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, "-c", code, str(memory.path), json.dumps(questions)], capture_output=True,
                         text=True, env=env, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1])[0] == [a for _, a in video.counting_questions()]


def test_queries_are_read_only_and_parameterised(built):
    _, memory, _ = built[0]
    for sql in ("DROP TABLE Objects", "DELETE FROM Objects", "INSERT INTO Objects VALUES (99, 'x', 'y')",
                "PRAGMA writable_schema = ON", "ATTACH DATABASE ':memory:' AS other", "CREATE TABLE t(x)",
                "SELECT 1; DROP TABLE Objects", "SELEC nonsense"):
        with pytest.raises(MemoryQueryError):
            memory.query(sql)
    assert memory.query("SELECT COUNT(*) FROM Objects WHERE colour = ?", ["red' OR '1'='1"]) == [(0,)]
    with pytest.raises(MemoryQueryError, match="rows"):
        memory.query("WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n LIMIT 500) SELECT x FROM n")
    with pytest.raises(MemoryQueryError):
        memory.query("WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n) SELECT COUNT(*) FROM n",
                     timeout_s=0.2)
    assert memory.query("SELECT COUNT(*) FROM Objects")[0][0] > 0        # the tables are intact
    with pytest.raises(FileNotFoundError):
        AgentMemory(memory.path.with_name("missing.sqlite"))
    bad = memory.path.with_name("not_memory.sqlite")
    sqlite3.connect(bad).close()
    with pytest.raises(MemoryQueryError, match="not a VideoAgent memory"):
        AgentMemory(bad)


def test_writing_is_all_or_nothing(tmp_path):
    seg = SegmentMemory(0, 8, "a caption", np.ones(4, np.float32), np.ones(4, np.float32), np.zeros((2, 3, 4, 4)))
    AgentMemory.write(tmp_path / "m.sqlite", [seg], [("square", "red")], [(0, 0)])
    broken = dataclasses.replace(seg, caption=None)                           # violates NOT NULL mid-write
    with pytest.raises(sqlite3.IntegrityError):
        AgentMemory.write(tmp_path / "m.sqlite", [seg, broken], [("circle", "blue")], [(0, 0)])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.sqlite"]        # the old file stays, no temporary left
    assert AgentMemory(tmp_path / "m.sqlite").query("SELECT * FROM Objects") == [(0, "square", "red")]


def test_tools_report_errors_as_observations(built, agent):
    video, memory, _ = built[0]
    tools = VideoAgentTools(memory, agent)
    result, text = tools.call("caption_retrieval", {"start_segment": 0, "end_segment": 2})
    assert set(result) == {"0", "1", "2"} and json.loads(text) == result
    assert tools.call("caption_retrieval", {"start_segment": 0, "end_segment": 40})[1].startswith("error")
    assert tools.call("caption_retrieval", {"start_segment": 9, "end_segment": 12})[1].startswith("error")
    assert tools.call("teleport", {})[1].startswith("error: unknown tool")
    assert tools.call("visual_question_answering", {"question": "what?"})[1].startswith("error")
    result, _ = tools.call("segment_localization", {"description": "a red square"})
    assert len(result) == 5 and all(0 <= int(k) < memory.num_segments for k in result)
    answer, _ = tools.call("visual_question_answering", {"question": "what colour is the square?", "segment_id": 2})
    assert isinstance(answer, str)
    assert VideoAgentTools(memory).call("segment_localization", {"description": "x"})[1].startswith("error")


def test_rule_controller_uses_localisation_then_vqa(built, agent):
    _, memory, _ = built[0]
    result = run_agent("what colour is the square?", VideoAgentTools(memory, agent), RuleController())
    assert [s.call.tool for s in result.steps] == ["segment_localization", "visual_question_answering"]
    assert result.answer == result.steps[-1].result


def test_llm_controller_reads_json_actions(built):
    video, memory, _ = built[0]
    question, answer = next((q, a) for q, a in video.counting_questions() if a != "zero")
    colour, shape = question.split()[2], question.split()[3][:-1]
    call = {"tool": "object_memory_querying", "arguments": {
        "sql": "SELECT COUNT(*) FROM Objects WHERE colour = ? AND category = ?", "params": [colour, shape]}}
    replies = iter(["Thought: let me count.\n" + json.dumps(call), "not json at all", '{"final_answer": "done"}'])
    prompts = []

    def fake_llm(prompt: str) -> str:
        prompts.append(prompt)
        return next(replies)

    result = run_agent(question, VideoAgentTools(memory), LLMController(fake_llm))
    assert result.answer == "done" and len(result.steps) == 2
    assert result.steps[0].result == [[["zero", "one", "two", "three"].index(answer)]]
    assert result.steps[1].call.tool == "invalid" and result.steps[1].observation.startswith("error")
    assert "object_memory_querying" in prompts[0] and "Observation:" in prompts[1]
    final = LLMController(lambda p: '{"final_answer": "x"}')(question, VideoAgentTools.SPECS, [])
    assert isinstance(final, FinalAnswer)
    assert isinstance(LLMController(lambda p: '{"tool": "a", "arguments": {}}')(question, {}, []), ToolCall)
    assert run_agent(question, VideoAgentTools(memory), LLMController(lambda p: "{}"), max_steps=3).answer is None


def test_registration_checks_and_paper_count_on_meta():
    spec = get_spec("videoagent")
    assert spec.key == "fan2024videoagent" and spec.memory["kind"] == "object_counting"
    with torch.device("meta"):
        model = spec.builder(make_config("videoagent", "paper"))
    params = sum(p.numel() for p in model.parameters()) / 1e6
    # Video-LLaVA-7B-sized VQA tool (Vicuna-7B v1.5 6738 M + ViT-L/14 303 M + MLP 21 M) + ViCLIP-L-sized encoder
    assert 7450 < params < 7550
    result = run_check(spec, "reference")
    assert result["status"] == "passed", result["summary"]
    runs = run_check(spec, "runs")
    assert runs["status"] == "passed", runs["summary"]


def test_chat_with_videoagent(tmp_path):
    pytest.importorskip("av")
    from videozoo.chat import main
    from videozoo.data.decode import write_video

    video = CountingVideo(seed=0)
    path = tmp_path / "clip.mp4"
    write_video(path, (video.clip().permute(1, 2, 3, 0) * 255).round().to(torch.uint8), fps=8)
    out = io.StringIO()
    rc = main(["videoagent", "--video", str(path), "--question", "what shape is the object?", "--max-new-tokens", "3"],
              stdin=io.StringIO(""), stdout=out)
    assert rc == 0 and len(out.getvalue().splitlines()) == 1
