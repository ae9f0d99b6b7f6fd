"""Few-shot learning: ProtoNet, MAML and ANIL (learn2learn's core pieces) on CNN-4 with any registry norm."""

from ..registry import register_task

register_task(
    "fewshot",
    "tasks.fewshot.task:FEWSHOT",
    description="Few-shot learning: ProtoNet, MAML and ANIL (learn2learn) on CNN-4, fixed test episodes for all norms.",
    # learn2learn is imported through tasks.fewshot.l2l, which keeps gym's import notice off the terminal.
    requires={"tasks.fewshot.l2l": "learn2learn 0.2.0: build it with scripts/build_learn2learn.sh <venv>"},
)
