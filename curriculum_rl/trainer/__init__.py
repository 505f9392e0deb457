"""The batched multitask trainer and the signals it reports (torch only)."""

from curriculum_rl.trainer.objective import (
    CRITERIA,
    mean_log_loss,
    validation_potential,
    validation_values,
)
from curriculum_rl.trainer.trainer import (
    DIVERGENCE_RISE,
    BatchedMultitaskTrainer,
    BatchKey,
    Measurement,
    StepContext,
    StepHook,
    TrainerConfig,
    batch_key,
    head_width,
    resolve_device,
    target_width,
)

__all__ = [
    "CRITERIA",
    "DIVERGENCE_RISE",
    "BatchKey",
    "BatchedMultitaskTrainer",
    "Measurement",
    "StepContext",
    "StepHook",
    "TrainerConfig",
    "batch_key",
    "head_width",
    "mean_log_loss",
    "resolve_device",
    "target_width",
    "validation_potential",
    "validation_values",
]
