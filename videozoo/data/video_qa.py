"""Synthetic video question answering: questions about a moving shape, answered in one word.

The miniature task of Stage 4 (video LLMs).  Each clip of :func:`videozoo.data.synthetic.make_shape_clips`
shows one coloured shape moving right, left, down or up; three questions are asked about it:

==========  ====================================  =====================  ========
kind        question                              answers                chance
==========  ====================================  =====================  ========
direction   ``which way does the {shape} move?``  right, left, down, up  25 %
colour      ``what colour is the {shape}?``       red, green, blue,      25 %
                                                  yellow
shape       ``what shape is the object?``         square, circle,        33.3 %
                                                  triangle
==========  ====================================  =====================  ========

Colour and shape can be read off any single frame; the direction only from the order of
frames (opposite directions hold the same frames in reverse order), so a model shown one frame
stays at chance on direction questions while it can still answer the other two.  Accuracy is
exact match of the generated answer with the true word.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from videozoo.data.synthetic import COLOUR_NAMES, DIRECTION_NAMES, SHAPE_NAMES, make_shape_clips

__all__ = ["QUESTION_KINDS", "QUESTIONS", "ANSWERS", "CHANCE_PCT", "QA_TEXTS", "VideoQASet", "make_video_qa"]

QUESTION_KINDS = ("direction", "colour", "shape")
QUESTIONS = {
    "direction": "which way does the {shape} move?",
    "colour": "what colour is the {shape}?",
    "shape": "what shape is the object?",
}
"""Question template of each kind (``{shape}`` is the shape's name)."""
ANSWERS = {"direction": DIRECTION_NAMES, "colour": COLOUR_NAMES, "shape": SHAPE_NAMES}
"""Possible answers of each kind."""
CHANCE_PCT = {k: 100.0 / len(v) for k, v in ANSWERS.items()}
"""Accuracy (%) of guessing uniformly among a kind's answers."""
QA_TEXTS = tuple(q.replace("{shape}", s) for q in QUESTIONS.values() for s in SHAPE_NAMES) + tuple(
    w for words in ANSWERS.values() for w in words)
"""Every question and answer word of the task (for building a tokenizer's vocabulary)."""


@dataclass
class VideoQASet:
    """Clips and the questions asked about them.

    Attributes:
        clips: ``(n_clips, 3, T, H, W)`` float in [0, 1].
        clip_index: ``(m,)`` long, the clip each question is about.
        kinds: ``m`` question kinds (:data:`QUESTION_KINDS`).
        questions: ``m`` question texts.
        answers: ``m`` true answers (one word each).
    """

    clips: torch.Tensor
    clip_index: torch.Tensor
    kinds: list[str]
    questions: list[str]
    answers: list[str]

    def __len__(self) -> int:
        return len(self.questions)


def make_video_qa(n_clips: int, frames: int = 8, size: int = 32, seed: int = 0) -> VideoQASet:
    """``n_clips`` clips with all three questions each (``3 n_clips`` questions, clip-major order).

    Args:
        n_clips: Number of clips.
        frames, size: Clip length T and frame side in pixels.
        seed: Random seed; the set is a deterministic function of the arguments.

    Raises:
        ValueError: on invalid sizes (see :func:`make_shape_clips`).
    """
    clips, attr = make_shape_clips(n_clips, frames=frames, size=size, seed=seed)
    kinds, questions, answers, index = [], [], [], []
    for i in range(n_clips):
        shape = SHAPE_NAMES[int(attr["shape"][i])]
        truth = {"direction": DIRECTION_NAMES[int(attr["direction"][i])],
                 "colour": COLOUR_NAMES[int(attr["colour"][i])], "shape": shape}
        for kind in QUESTION_KINDS:
            kinds.append(kind)
            questions.append(QUESTIONS[kind].replace("{shape}", shape))
            answers.append(truth[kind])
            index.append(i)
    return VideoQASet(clips, torch.tensor(index, dtype=torch.long), kinds, questions, answers)
