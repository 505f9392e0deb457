"""Two variants of the auxiliary gate of ``curriculum_rl.controllers.auxiliary``
(benchmarks/RESULTS.md §18b), run through ``curriculum-rl benchmark``.

The shipped gate multiplies each auxiliary's weight by ``max(0, cos)``, the cosine of its
gradient with the target tasks' (Du et al. 2018, "Adapting auxiliary losses using gradient
similarity"). With a small, noisy target that cosine stays near 0 even for a helpful
auxiliary, so the gate also switches helpful auxiliaries off. The variants are gentler:

* ``sign``: ``1[cos > 0]``, the paper's unweighted variant (on or off, not scaled down);
* ``soft``: ``(1 + cos) / 2``: an orthogonal auxiliary keeps half its weight, only an
  opposed one is switched off.

This script registers, for its own process, ``v3-sign`` / ``v3-soft`` (the policy at
``--policy`` with that gate applied to its decisions) and ``sn-sign`` / ``sn-soft`` (the
same on ``scale-normalised``), then runs the benchmark with the flags after ``--``:

    python benchmarks/gate_variants.py --policy runs/cands/v3.json -- --suite \\
        envs/heldout-aux.toml --controller runs/cands/v3.json v3-sign v3-soft sn-sign sn-soft \\
        --seeds 10 --budget 1000 --no-reference --versus v3 --out runs/val-gates
"""

from __future__ import annotations

import argparse
import sys

import torch

from curriculum_rl.cli import main as cli_main
from curriculum_rl.controllers.auxiliary import GradientSimilarity
from curriculum_rl.controllers.load import load_controller
from curriculum_rl.controllers.registry import make_controller, register_controller

GATES = {
    "sign": lambda cos: (cos > 0).float(),
    "soft": lambda cos: (1 + cos) / 2,
}


def register_variants(policy: str) -> None:
    """Register ``v3-<gate>`` and ``sn-<gate>`` for each gate of :data:`GATES`."""
    for gate, gate_of in GATES.items():
        register_controller(
            f"v3-{gate}",
            lambda g=gate, f=gate_of: GradientSimilarity(load_controller(policy), f"v3-{g}", f),
        )
        register_controller(
            f"sn-{gate}",
            lambda g=gate, f=gate_of: GradientSimilarity(
                make_controller("scale-normalised"), f"sn-{g}", f
            ),
        )


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    split = argv.index("--") if "--" in argv else len(argv)
    ours, rest = argv[:split], argv[split + 1 :]
    parser = argparse.ArgumentParser(prog="python benchmarks/gate_variants.py")
    parser.add_argument("--policy", default="runs/cands/v3.json", help="the policy to gate")
    args = parser.parse_args(ours)
    register_variants(args.policy)
    torch.set_num_threads(1)
    return cli_main(["benchmark", *rest])


if __name__ == "__main__":
    sys.exit(main())
