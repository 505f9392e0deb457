"""Shared test settings."""

import torch

# The test networks are tiny: one thread avoids oversubscribing a 2-core machine (and
# other processes on it); results do not depend on the thread count beyond float noise.
torch.set_num_threads(1)
