"""Training the meta-controller with stable-baselines3: the batched ``VecEnv``
(:mod:`.vec_env`), the SB3 policy wrapper (:mod:`.policy`), the training config
(:mod:`.config`), callbacks (:mod:`.callbacks`), plots (:mod:`.plots`) and PPO training
(:mod:`.train`). The only package that imports stable-baselines3; applying a trained
policy needs none of it (:mod:`curriculum_rl.controllers.learned`). Import the submodules
directly: this package imports nothing."""
