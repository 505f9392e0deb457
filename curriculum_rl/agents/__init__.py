"""The PPO meta-controller: equivariant policy network (:mod:`.network`), its SB3 wrapper
(:mod:`.policy`), PPO training (:mod:`.train`), the safe policy file format
(:mod:`.artifact`), the learned controller (:mod:`.controller`) and the own-loop API
(:mod:`.loop`). Import the submodules directly: this package imports nothing, so that
loading a policy never pulls in stable-baselines3."""
