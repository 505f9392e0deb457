"""N independent multitask networks held as stacked parameters and run as one computation.

Every parameter has a leading run dimension N; run ``n`` only ever touches slice ``n``,
so N networks train side by side with no interaction, in single batched kernels.

Network of one run: ``body -> shared projection + ReLU -> one linear head per task``.
The projection is the *last shared layer*: per-task gradients are measured on it (as
GradNorm does, Chen et al. 2018), which costs one small einsum instead of K backward
passes through the whole body.
"""

from __future__ import annotations

import copy
import itertools
import math

import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from curriculum_rl.suites.base import Body, MLPBody, ModuleBody


class BatchedLinear(nn.Module):
    """N linear maps ``x @ W_n + b_n`` as one ``baddbmm``; initialised like ``nn.Linear``."""

    def __init__(self, num_runs: int, in_features: int, out_features: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(num_runs, in_features, out_features))
        self.bias = nn.Parameter(torch.empty(num_runs, 1, out_features))

    def reset_run(self, run: int, gen: torch.Generator) -> None:
        bound = 1.0 / math.sqrt(self.weight.shape[1])
        with torch.no_grad():
            for p in (self.weight, self.bias):
                noise = torch.rand(p.shape[1:], generator=gen, device=gen.device)
                p[run].copy_(noise.to(p.device) * 2 * bound - bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 3:
            # No reshape here: a reshaped output is a view, and an in-place op on a view
            # (the ReLU after this layer) makes autograd copy whole gradients around.
            return torch.baddbmm(self.bias, x, self.weight)
        shape = x.shape
        out = torch.baddbmm(self.bias, x.reshape(shape[0], -1, shape[-1]), self.weight)
        return out.reshape(*shape[:-1], out.shape[-1])


class BatchedMLP(nn.Module):
    """The fast path for :class:`MLPBody`: stacked ``baddbmm`` layers with ReLU."""

    def __init__(self, num_runs: int, spec: MLPBody) -> None:
        super().__init__()
        dims = (spec.in_dim, *spec.hidden)
        self.layers = nn.ModuleList(
            BatchedLinear(num_runs, a, b) for a, b in itertools.pairwise(dims)
        )

    def reset_run(self, run: int, gen: torch.Generator) -> None:
        for layer in self.layers:
            layer.reset_run(run, gen)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x).relu_()  # in place: baddbmm's backward does not need its output
        return x


class VmappedModule(nn.Module):
    """The general path for :class:`ModuleBody`: N copies of any module, stacked with
    ``torch.func.stack_module_state`` and evaluated with ``vmap(functional_call)``."""

    def __init__(self, num_runs: int, spec: ModuleBody) -> None:
        super().__init__()
        self.factory = spec.factory
        copies = [spec.factory() for _ in range(num_runs)]
        params, buffers = stack_module_state(copies)
        self._names = list(params)
        self.stacked = nn.ParameterList(nn.Parameter(params[k]) for k in self._names)
        self._buffers_stacked = buffers
        self._base = [copy.deepcopy(copies[0]).to("meta")]  # a list hides it from .to()

    def reset_run(self, run: int, gen: torch.Generator) -> None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(torch.randint(2**62, (1,), generator=gen)))
            fresh = dict(self.factory().named_parameters())
        with torch.no_grad():
            for name, p in zip(self._names, self.stacked, strict=True):
                p[run].copy_(fresh[name].to(p.device))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        base = self._base[0]
        buffers = {k: v.to(x.device) for k, v in self._buffers_stacked.items()}

        def one_run(params: dict, bufs: dict, xs: torch.Tensor) -> torch.Tensor:
            return functional_call(base, (params, bufs), (xs,))

        params = dict(zip(self._names, self.stacked, strict=True))
        return vmap(one_run)(params, buffers, x)


def build_body(num_runs: int, spec: Body) -> nn.Module:
    if isinstance(spec, MLPBody):
        return BatchedMLP(num_runs, spec)
    if isinstance(spec, ModuleBody):
        return VmappedModule(num_runs, spec)
    raise TypeError(f"unknown body {spec!r}; use MLPBody or ModuleBody")


class MultitaskNet(nn.Module):
    """Body, shared projection (last shared layer) and K_max heads of width ``out_max``.

    ``forward`` returns the projection's input and pre-activation output (both kept for
    per-task gradients); ``heads`` maps the latter to every task's output.
    """

    def __init__(
        self, num_runs: int, body: Body, proj_dim: int, max_tasks: int, out_max: int
    ) -> None:
        super().__init__()
        self.body = build_body(num_runs, body)
        self.proj = BatchedLinear(num_runs, body.out_dim, proj_dim)
        self.head_weight = nn.Parameter(torch.empty(num_runs, max_tasks, proj_dim, out_max))
        self.head_bias = nn.Parameter(torch.empty(num_runs, max_tasks, out_max))

    def reset_run(self, run: int, gen: torch.Generator, out_dims: list[int]) -> None:
        """Fresh parameters for run ``run`` whose tasks have ``out_dims`` outputs.

        Heads are drawn task by task at their true width, and padding stays zero, so a
        run's initialisation (and every random number drawn after it) does not depend on
        how many tasks or how wide the heads of the other runs in the batch are."""
        self.body.reset_run(run, gen)
        self.proj.reset_run(run, gen)
        proj_dim = self.head_weight.shape[2]
        bound = 1.0 / math.sqrt(proj_dim)
        with torch.no_grad():
            self.head_weight[run].zero_()
            self.head_bias[run].zero_()
            for k, width in enumerate(out_dims):
                weight = torch.rand(proj_dim, width, generator=gen, device=gen.device)
                bias = torch.rand(width, generator=gen, device=gen.device)
                self.head_weight[run, k, :, :width] = (weight * 2 - 1).to(self.head_weight) * bound
                self.head_bias[run, k, :width] = (bias * 2 - 1).to(self.head_bias) * bound

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return the projection's input and its pre-activation output."""
        proj_in = self.body(x)
        return proj_in, self.proj(proj_in)

    def heads(self, proj_out: torch.Tensor, pool_tokens: bool = False) -> torch.Tensor:
        """Every head on every row: ``(N, B, K, out_max)``, or ``(N, B, L, K, out_max)``
        for per-token features unless ``pool_tokens`` averages them first."""
        features = torch.relu(proj_out)
        if features.dim() == 4 and pool_tokens:
            features = features.mean(dim=2)
        if features.dim() == 3:
            out = torch.einsum("nbh,nkho->nbko", features, self.head_weight)
            return out + self.head_bias[:, None]
        out = torch.einsum("nblh,nkho->nblko", features, self.head_weight)
        return out + self.head_bias[:, None, None]


def seeded_generator(seed: int, device: torch.device | str = "cpu") -> torch.Generator:
    gen = torch.Generator(device=device)
    gen.manual_seed(int(seed) % (2**63))
    return gen
