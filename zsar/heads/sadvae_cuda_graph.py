"""SA-DVAE's training iterations on a CUDA device, replayed from captured CUDA graphs.

At batch 32 one iteration is a few hundred tiny kernels, and launching them from Python costs far more than
running them. So two iterations are captured once, one with the discriminator step and one without, each
reading its batch indices, noise, shuffles and schedule weights from device tables through device counters
that it advances itself; an epoch copies its draws into the tables and replays. The arithmetic is that of
`EagerIterations` except that terms with weight zero are computed and multiplied by zero (exactly the same
gradient), and Adam runs in its capturable form. The first two iterations run eagerly (real steps of the
schedule, they also create the optimiser state) before the capture.
"""

from __future__ import annotations

import math

import torch

from zsar.heads.sadvae_model import (
    EpochDraws,
    LoopSettings,
    SADVAENetwork,
    Schedule,
    discriminator_loss,
    encode_batch,
    sadvae_loss,
    schedule_table,
)


class GraphedIterations:
    def __init__(self, net: SADVAENetwork, features: torch.Tensor, text: torch.Tensor, labels: torch.Tensor,
                 settings: LoopSettings, steps: int, batch: int):
        device = features.device
        self.net, self.features, self.text, self.labels = net, features, text, labels
        self.dis_step, self.steps = settings.dis_step, steps
        self.vae_params = net.vae_parameters()
        self.dis_params = list(net.discriminator.parameters())
        self.vae_opt = torch.optim.Adam(self.vae_params, lr=settings.lr, fused=True, capturable=True)
        self.dis_opt = torch.optim.Adam(self.dis_params, lr=settings.lr, fused=True, capturable=True)
        for p in net.parameters():  # gradients at fixed addresses, zeroed inside the graphs
            p.grad = torch.zeros_like(p)
        noise = 1 if settings.scalar_noise else None
        dis_steps = len(range(0, steps, settings.dis_step))
        self.tables = EpochDraws(
            torch.zeros(steps, batch, dtype=torch.long, device=device),
            torch.zeros(steps, batch, noise or net.latent + net.style, device=device),
            torch.zeros(steps, batch, noise or net.latent, device=device),
            torch.zeros(dis_steps, 4, batch, dtype=torch.long, device=device),
        )
        self.weights = torch.zeros(steps, 3, device=device)
        self.counters = torch.zeros(2, dtype=torch.long, device=device)  # iteration, discriminator step
        self.loss = torch.full((), math.nan, device=device)
        self.graphs: dict[bool, torch.cuda.CUDAGraph] = {}
        self.pool = None

    def _iteration(self, with_discriminator: bool) -> None:
        """One training iteration that reads everything it needs from the tables (capturable: no host sync)."""
        net, it = self.net, self.counters[0:1]
        idx = self.tables.order.index_select(0, it)[0]
        x, y = self.features[idx], self.text[self.labels[idx]]
        weights = self.weights.index_select(0, it)[0]
        w = Schedule(weights[0], weights[1], weights[2])
        lat = encode_batch(net, x, y, self.tables.noise_x.index_select(0, it)[0],
                           self.tables.noise_y.index_select(0, it)[0])
        if with_discriminator:
            shuffles = self.tables.shuffles.index_select(0, self.counters[1:2])[0]
            for p in self.dis_params:
                p.grad.zero_()
            discriminator_loss(net, lat, w.kl_text, shuffles).backward()
            self.dis_opt.step()
            self.counters[1] += 1
        loss = sadvae_loss(net, x, y, lat, w, skip_zero_terms=False)
        for p in self.vae_params:
            p.grad.zero_()
        loss.backward()
        self.vae_opt.step()
        self.counters[0] += 1
        self.loss.copy_(loss.detach())

    def _replay(self, with_discriminator: bool) -> None:
        graph = self.graphs.get(with_discriminator)
        if graph is None:
            graph = self.graphs[with_discriminator] = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph, pool=self.pool):
                self._iteration(with_discriminator)
            self.pool = graph.pool()
        graph.replay()

    def run_epoch(self, epoch: int, draws: EpochDraws) -> float:
        for table, values in zip((self.tables.order, self.tables.noise_x, self.tables.noise_y, self.tables.shuffles),
                                 (draws.order, draws.noise_x, draws.noise_y, draws.shuffles), strict=True):
            table.copy_(values)
        self.weights.copy_(schedule_table(epoch, self.steps))
        self.counters.zero_()
        for i in range(self.steps):
            with_discriminator = i % self.dis_step == 0
            if with_discriminator not in self.graphs and epoch == 0 and i < 2:
                self._warm_up(with_discriminator)
            else:
                self._replay(with_discriminator)
        return float(self.loss)

    def _warm_up(self, with_discriminator: bool) -> None:
        """A real iteration run eagerly on a side stream (as capture requires), creating the optimiser state."""
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            self._iteration(with_discriminator)
        torch.cuda.current_stream().wait_stream(stream)
