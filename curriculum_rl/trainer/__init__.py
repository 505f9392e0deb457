"""The batched multitask trainer and the signals it reports (torch only)."""

from curriculum_rl.trainer.trainer import (
    BatchedMultitaskTrainer,
    Measurement,
    StepContext,
    StepHook,
    TrainerConfig,
    resolve_device,
)

__all__ = [
    "BatchedMultitaskTrainer",
    "Measurement",
    "StepContext",
    "StepHook",
    "TrainerConfig",
    "resolve_device",
]
