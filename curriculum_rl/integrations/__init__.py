"""The session in the training loops people already use.

* :class:`~curriculum_rl.integrations.sampler.TaskBatchSampler`: batches whose task mix
  the controller sets (torch only; also ``curriculum_rl.TaskBatchSampler``);
* :mod:`curriculum_rl.integrations.lightning`: ``CurriculumCallback`` for Lightning
  (``pip install 'curriculum-rl[lightning]'``);
* :mod:`curriculum_rl.integrations.huggingface`: ``CurriculumTrainer``, a Hugging Face
  ``Trainer`` (``pip install 'curriculum-rl[huggingface]'``).

Import the framework modules by name: importing this package imports neither Lightning
nor transformers.
"""

from curriculum_rl.integrations.sampler import TaskBatchSampler

__all__ = ["TaskBatchSampler"]
