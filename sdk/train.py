"""Trainer for TTFS surrogate DNNs (Park & Yoon 2021) and the run-directory writer.

Methods (DESIGN.md section 3), each part switchable for ablations:

- ``relu``: the plain ReLU DNN of the same architecture and recipe (baseline; not an SNN).
- ``sm``: surrogate model, the TTFS activation in every hidden layer from the first epoch.
- ``sr``: stochastic relaxation: per hidden layer and training step one r ~ U(0, 1); the layer
  uses the TTFS activation if r < p(e) = (1 - p_b)(e + 1)/E_SR, else ReLU.
- ``+tr``: kernel parameters (tau, td) frozen until epoch E_tk, then trained with CE + R,
  R = lambda_R sum_l [(tau_l - tau_0)^2 + (td_l - td_0)^2]. Without TR (sm, sr) they are
  trained with CE alone from epoch 0.
- ``+tkbn``: from epoch E_tk the loss lambda_BN * L_BN(gamma, beta; x_T) on every hidden BN
  (x_T = exp(-(T - td)/tau) detached, so only gamma and beta see it).

One backward pass of CE + R + L_BN trains both parameter groups: R depends only on (tau, td)
and L_BN only on (gamma, beta), so the weights never see R and the kernel never sees L_BN.
Evaluation always uses the TTFS activation (ReLU for the baseline).

Checkpoint selection: best validation accuracy among the epochs in which every part of the
method is active (e >= E_SR for sr, e >= max(E_SR, E_tk) with tr; all epochs for relu and sm;
the last epoch if none is eligible); ties go to fewer validation spikes. With a spike budget
(`max_spikes`) epochs within it come first (by accuracy), then the others by fewest spikes.
The test accuracy reported is that checkpoint's.

Distributed (`torchrun --nproc_per_node N -m ttfs.sdk.cli ...`, WORLD_SIZE > 1): one process group
(gloo on CPU, nccl on CUDA), the model in DistributedDataParallel (gradients averaged), each
rank takes its shard of the epoch's permutation (`DistributedSampler`, seed + epoch) in
batches of ceil(batch_size / N), so the global batch is batch_size. The SR draws come from a
generator seeded with (seed, epoch), identical on every rank; BN running statistics (the TKBN
path's too) are broadcast from rank 0 with every forward and at the end of every epoch, so all
ranks validate the same model. Rank 0 alone writes checkpoints and the run directory.

Checkpoints: after every epoch rank 0 writes `.<out>.partial/checkpoint.pt` beside the run
directory (model, optimizers, history, best state; loaded with `weights_only=True`);
`--resume OUT` continues from it with the checkpoint's config. Every random draw is seeded by
(seed, epoch), so a resumed run equals an uninterrupted one.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import os
import shutil
import sys
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from safetensors.torch import save_file
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DistributedSampler
from tqdm import tqdm

from ttfs.sdk import outdir
from ttfs.sdk.data import Dataset, load_dataset, split_validation
from ttfs.sdk.floatnet import (CONFIG_FILE, WEIGHTS_FILE, NetworkError, read_config, read_weights)
from ttfs.sdk.functional import firing_floor, sr_probability, tkbn_loss, tr_loss
from ttfs.sdk.model import ARCHITECTURES, TTFSNet, architecture, build_model, classes, parse_arch
from ttfs.sdk.simulate import run_closed_form

METHODS = ("relu", "sm", "sr", "sr+tr", "sr+tr+tkbn")
TKBN_FORMS = ("taylor", "tail")
LR_SCHEDULES = ("constant", "cosine")
METRICS_FILE = "metrics.jsonl"
RESULT_FILE = "result.json"
PLOT_FILE = "training.png"
CHECKPOINT_FILE = "checkpoint.pt"
#: Images per forward pass at evaluation.
EVAL_BATCH = 500
#: Environment variable: a path prefix; every rank appends "epoch step sha256-of-parameters"
#: lines to `<prefix>.rank<r>` after each step (a debug hook for the distributed test).
PARAM_LOG_ENV = "TTFS_DEBUG_PARAM_LOG"


class TrainingError(ValueError):
    """Invalid options, an unusable output directory, or a diverged run (NaN loss)."""


@dataclass
class TrainConfig:
    """Every hyperparameter of a run (CPU-sized defaults; see docs/training.md).

    `sr_epochs` (E_SR) and `tk_epoch` (E_tk) default to a quarter of `epochs`.
    """

    dataset: str = "mnist5k"
    arch: str = "cnn"
    method: str = "sr+tr+tkbn"
    epochs: int = 40
    T: int = 16
    tau0: float = 5.0
    td0: float = 0.0
    q: float = 0.5
    lambda_r: float = 1e-4
    lambda_bn: float = 1e-2
    tkbn_form: str = "taylor"
    sr_epochs: int | None = None
    tk_epoch: int | None = None
    p_bypass: float = 0.0
    batch_size: int = 128
    lr: float = 1e-3
    seed: int = 0
    input_coding: str = "real"
    device: str = "cpu"
    #: custom layer list (docs/architecture.md); replaces `arch` when set
    layers: list | None = None
    #: quantization-aware training with weights of this many bits (None: float weights)
    weight_bits: int | None = None
    #: random shifts of up to this many pixels (zero fill) of training images; 0: none
    augment: int = 0
    #: bfloat16 autocast on CUDA (the TTFS activation stays float32)
    amp: bool = False
    #: learning rate per epoch e: constant, or cosine lr (1 + cos(pi e / epochs)) / 2
    lr_schedule: str = "constant"
    #: checkpoint selection only among epochs with at most this many validation spikes per
    #: hidden neuron (None: no budget)
    max_spikes: float | None = None

    def resolved(self) -> TrainConfig:
        """A validated copy with E_SR and E_tk filled in; raises TrainingError."""
        cfg = copy.copy(self)
        if cfg.sr_epochs is None:
            cfg.sr_epochs = cfg.epochs // 4
        if cfg.tk_epoch is None:
            cfg.tk_epoch = cfg.epochs // 4
        if cfg.layers is None and cfg.arch not in ARCHITECTURES:
            if not any(c.isdigit() for c in cfg.arch):
                raise TrainingError(f"unknown arch {cfg.arch!r}; expected one of "
                                    f"{', '.join(ARCHITECTURES)} or a spec string like "
                                    "c16k5,p2,c32k5,p2,d128")
            parse_arch(cfg.arch, 2)             # syntax errors before any data is loaded
        checks = [
            (cfg.method in METHODS, f"unknown method {cfg.method!r}; expected one of "
                                    f"{', '.join(METHODS)}"),
            (cfg.tkbn_form in TKBN_FORMS, f"unknown TKBN form {cfg.tkbn_form!r}; expected "
                                          f"taylor or tail"),
            (cfg.input_coding in ("real", "ttfs"), f"unknown input coding "
                                                   f"{cfg.input_coding!r}; expected real or ttfs"),
            (cfg.device in ("cpu", "cuda"), f"unknown device {cfg.device!r}; expected cpu or "
                                            "cuda"),
            (cfg.epochs >= 1, f"epochs must be at least 1, got {cfg.epochs}"),
            (cfg.T >= 2, f"T must be at least 2, got {cfg.T}"),
            (cfg.tau0 > 0 and math.isfinite(cfg.tau0), f"tau0 must be > 0, got {cfg.tau0}"),
            (math.isfinite(cfg.td0), f"td0 must be finite, got {cfg.td0}"),
            (0 <= cfg.q < 1, f"q must be in [0, 1), got {cfg.q}"),
            (cfg.sr_epochs >= 0, f"sr-epochs must be >= 0, got {cfg.sr_epochs}"),
            (cfg.tk_epoch >= 0, f"tk-epoch must be >= 0, got {cfg.tk_epoch}"),
            (0 <= cfg.p_bypass <= 1, f"p-bypass must be in [0, 1], got {cfg.p_bypass}"),
            (cfg.lambda_r >= 0, f"lambda-r must be >= 0, got {cfg.lambda_r}"),
            (cfg.lambda_bn >= 0, f"lambda-bn must be >= 0, got {cfg.lambda_bn}"),
            (cfg.batch_size >= 1, f"batch-size must be >= 1, got {cfg.batch_size}"),
            (cfg.lr > 0, f"lr must be > 0, got {cfg.lr}"),
            (cfg.weight_bits is None or 2 <= cfg.weight_bits <= 16,
             f"weight-bits must be in 2..16, got {cfg.weight_bits}"),
            (cfg.augment >= 0, f"augment must be >= 0, got {cfg.augment}"),
            (cfg.max_spikes is None or cfg.max_spikes > 0,
             f"max-spikes must be > 0, got {cfg.max_spikes}"),
            (not cfg.amp or cfg.device == "cuda", "--amp needs --device cuda"),
            (cfg.lr_schedule in LR_SCHEDULES, f"unknown lr-schedule {cfg.lr_schedule!r}; "
                                              f"expected {' or '.join(LR_SCHEDULES)}"),
        ]
        for ok, message in checks:
            if not ok:
                raise TrainingError(message)
        if cfg.device == "cuda" and not torch.cuda.is_available():
            raise TrainingError("device 'cuda' requested but torch sees no CUDA device")
        return cfg

    @property
    def parts(self) -> set[str]:
        """The method's parts: subset of {'relu', 'sr', 'tr', 'tkbn'} ('sm' has none)."""
        return set() if self.method == "sm" else set(self.method.split("+"))

    @property
    def first_eligible_epoch(self) -> int:
        """The first epoch in which every part of the method is active."""
        starts = [0]
        if "sr" in self.parts:
            starts.append(self.sr_epochs)
        if "tr" in self.parts:
            starts.append(self.tk_epoch)
        return max(starts)


@dataclass
class Fit:
    """The selected model and the training history."""

    model: TTFSNet
    history: list[dict]
    selected_epoch: int
    #: labels of the validation split (held out of the training set)
    val_labels: np.ndarray


def to_tensor(images: np.ndarray, device: str = "cpu") -> torch.Tensor:
    """uint8 bytes -> float32 byte/255."""
    return torch.from_numpy(images).to(device=device, dtype=torch.float32) / 255.0


def build(cfg: TrainConfig, dataset: Dataset) -> TTFSNet:
    """The untrained model of `cfg` for `dataset` (seeded)."""
    torch.manual_seed(cfg.seed)
    layers = architecture(cfg.arch, dataset.input_shape, dataset.num_classes, cfg.layers)
    if cfg.augment and min(dataset.input_shape[1:]) <= cfg.augment:
        raise TrainingError(f"--augment {cfg.augment}: the {dataset.name} inputs are "
                            f"{list(dataset.input_shape)}, too small to shift")
    return TTFSNet(layers, dataset.input_shape, T=cfg.T, q=cfg.q, tau0=cfg.tau0, td0=cfg.td0,
                   input_coding=cfg.input_coding, weight_bits=cfg.weight_bits).to(cfg.device)


def shift(images: torch.Tensor, max_shift: int, gen: torch.Generator) -> torch.Tensor:
    """Each image [N, C, H, W] moved by its own (dy, dx) ~ U{-max_shift..max_shift}^2, zero
    filled (the random-crop-of-a-padded-image augmentation)."""
    n, c, h, w = images.shape
    a = max_shift
    offsets = torch.randint(0, 2 * a + 1, (2, n), generator=gen).to(images.device)
    padded = F.pad(images, (a, a, a, a))
    rows = (torch.arange(h, device=images.device) + offsets[0][:, None])
    cols = (torch.arange(w, device=images.device) + offsets[1][:, None])
    out = padded.gather(2, rows[:, None, :, None].expand(n, c, h, w + 2 * a))
    return out.gather(3, cols[:, None, None, :].expand(n, c, h, w))


@dataclass(frozen=True)
class Ranks:
    """This process's place in a torchrun job (rank 0 of 1 without one)."""

    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def ranks(device: str = "cpu") -> Ranks:
    """Join the process group that torchrun describes (WORLD_SIZE > 1), once; gloo on CPU,
    nccl on CUDA (each rank on the GPU of its LOCAL_RANK)."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return Ranks()
    if not dist.is_initialized():
        if device == "cuda":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group("nccl" if device == "cuda" else "gloo")
    return Ranks(dist.get_rank(), dist.get_world_size())


def _seeded(seed: int, epoch: int, stream: int) -> torch.Generator:
    """A generator for one epoch's draws of one stream (0: SR, 1 + rank: augmentation)."""
    return torch.Generator().manual_seed(((seed * 1_000_003 + epoch) * 1_009 + stream) % 2**63)


def _log_parameters(model: TTFSNet, rank: int, epoch: int, step: int) -> None:
    prefix = os.environ.get(PARAM_LOG_ENV)
    if prefix:
        digest = hashlib.sha256()
        for p in model.parameters():
            digest.update(p.detach().cpu().contiguous().numpy().tobytes())
        with open(f"{prefix}.rank{rank}", "a") as f:
            f.write(f"{epoch} {step} {digest.hexdigest()}\n")


@torch.no_grad()
def predict(model: TTFSNet, x: torch.Tensor, *, relu: bool = False
            ) -> tuple[np.ndarray, np.ndarray]:
    """(scores float64 [N, classes], fired neurons int64 [N, kernel layers]) in eval mode."""
    model.eval()
    mask = [relu] * len(model.kernels)
    scores, fired = [], []
    for i in range(0, len(x), EVAL_BATCH):
        z, activations = model.run(x[i:i + EVAL_BATCH], mask)
        scores.append(z.double().cpu().numpy())
        fired.append(torch.stack([(a > 0).flatten(1).sum(1) for a in activations], 1)
                     .cpu().numpy())
    return np.concatenate(scores), np.concatenate(fired).astype(np.int64)


def fit(cfg: TrainConfig, dataset: Dataset, *, quiet: bool = False,
        init_state: dict | None = None, checkpoint: str | Path | None = None) -> Fit:
    """Train `cfg.method` on the training split of `dataset`, select on the validation split.

    `init_state`: a state_dict (tensors or numpy arrays, e.g. `read_weights` of a run) to start
    from instead of the seeded initialization (fine-tuning); its keys must match the model's
    (`num_batches_tracked` may be absent). `checkpoint`: a file that rank 0 rewrites after every
    epoch; when it exists at the start, training continues from it (resume). Under torchrun
    every rank calls this (see the module docstring).
    """
    cfg = cfg.resolved()
    job = ranks(cfg.device)
    train_x, train_y, val_x, val_y = split_validation(dataset.train_images,
                                                      dataset.train_labels)
    x, y = to_tensor(train_x, cfg.device), torch.from_numpy(train_y).to(cfg.device)
    xv = to_tensor(val_x, cfg.device)
    model = build(cfg, dataset)
    if init_state is not None:
        load_state(model, init_state, what="init_state")
    parts, relu = cfg.parts, cfg.method == "relu"
    opt_w = torch.optim.Adam(model.weight_parameters(), lr=cfg.lr)
    opt_k = torch.optim.Adam(model.kernel_parameters(), lr=cfg.lr)
    n_kernels = len(model.kernels)
    neurons = np.array(model.kernel_neurons)
    hidden = slice(1, None) if cfg.input_coding == "ttfs" else slice(None)
    history, best, best_key, first = [], None, None, 0
    checkpoint = None if checkpoint is None else Path(checkpoint)
    if checkpoint is not None and checkpoint.is_file():
        saved = torch.load(checkpoint, map_location=cfg.device, weights_only=True)
        model.load_state_dict(saved["model"])
        opt_w.load_state_dict(saved["opt_w"])
        opt_k.load_state_dict(saved["opt_k"])
        history, best, best_key = saved["history"], saved["best"], saved["best_key"]
        best = None if best is None else (best[0], best[1])
        best_key = None if best_key is None else tuple(best_key)
        first = len(history)
    net = model
    if job.world > 1:
        net = DistributedDataParallel(model, device_ids=None if cfg.device == "cpu" else
                                      [torch.cuda.current_device()])
    sampler = DistributedSampler(range(len(x)), num_replicas=job.world, rank=job.rank,
                                 shuffle=True, seed=cfg.seed)
    batch_size = -(-cfg.batch_size // job.world)
    quiet = quiet or not job.main
    for epoch in range(first, cfg.epochs):
        gen, aug_gen = _seeded(cfg.seed, epoch, 0), _seeded(cfg.seed, epoch, 1 + job.rank)
        p_ttfs = 1.0                    # chance that a hidden layer uses TTFS in a step
        if relu:
            p_ttfs = 0.0
        elif "sr" in parts:
            p_ttfs = sr_probability(epoch, sr_epochs=cfg.sr_epochs, p_bypass=cfg.p_bypass)
        train_kernel = not relu and ("tr" not in parts or epoch >= cfg.tk_epoch)
        use_tr = "tr" in parts and epoch >= cfg.tk_epoch
        use_tkbn = "tkbn" in parts and epoch >= cfg.tk_epoch
        # frozen kernel parameters need no gradient: the activation's backward then skips the
        # reductions for tau and td (opt_k would not step them anyway); DDP keeps the set of
        # parameters it reduces fixed
        for p in model.kernel_parameters():
            p.requires_grad_(train_kernel or job.world > 1)
        for opt in (opt_w, opt_k):
            for group in opt.param_groups:
                group["lr"] = epoch_lr(cfg, epoch)
        model.train()
        sampler.set_epoch(epoch)
        order = torch.tensor(list(sampler), dtype=torch.long, device=cfg.device)
        batches = range(0, len(order), batch_size)
        total_loss, correct = 0.0, 0
        start, start_cpu = time.perf_counter(), time.process_time()
        for step, i in enumerate(tqdm(batches, desc=f"epoch {epoch + 1}/{cfg.epochs}",
                                      file=sys.stderr, disable=quiet, leave=False)):
            idx = order[i:i + batch_size]
            xb = x[idx] if not cfg.augment else shift(x[idx], cfg.augment, aug_gen)
            # one r ~ U(0, 1) per kernel layer (the same draws as one rand(1) per layer)
            mask = [True] * n_kernels if relu else \
                (torch.rand(n_kernels, generator=gen) >= p_ttfs).tolist()
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=cfg.amp):
                scores = net(xb, mask)
            loss = F.cross_entropy(scores.float(), y[idx])
            if use_tr:
                loss = loss + tr_loss([k.tau for k in model.kernels],
                                      [k.td for k in model.kernels],
                                      tau0=cfg.tau0, td0=cfg.td0, lambda_r=cfg.lambda_r)
            if use_tkbn:
                loss = loss + tkbn_loss(
                    [(h.bn.weight, h.bn.bias, firing_floor(h.tau, h.td, T=cfg.T).detach())
                     for h in model.hidden], lambda_bn=cfg.lambda_bn, form=cfg.tkbn_form)
            if job.world > 1:
                # DDP reduces every parameter each step: tau and td of layers that SR relaxed
                # to ReLU join the graph with a zero gradient
                loss = loss + 0.0 * sum(p.sum() for p in model.kernel_parameters())
            if not torch.isfinite(loss):
                raise TrainingError(f"loss became {loss.item()} at epoch {epoch}, step "
                                    f"{step}; lower --lr or --lambda-bn")
            opt_w.zero_grad()
            opt_k.zero_grad()
            loss.backward()
            opt_w.step()
            if train_kernel:
                opt_k.step()
            _log_parameters(model, job.rank, epoch, step)
            total_loss += loss.item() * len(idx)
            correct += int((scores.argmax(1) == y[idx]).sum())
        seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - start_cpu
        if job.world > 1:
            for buffer in model.buffers():
                dist.broadcast(buffer, 0)
        val_scores, val_fired = predict(model, xv, relu=relu)
        val_acc = float((classes(val_scores) == val_y).mean())
        spikes = val_fired.mean(0) / neurons
        val_hidden = float(val_fired[:, hidden].sum(1).mean() / neurons[hidden].sum())
        history.append({
            "epoch": epoch, "loss": total_loss / len(order),
            "train_accuracy": correct / len(order),
            "val_accuracy": val_acc, "val_spikes_per_hidden_neuron": val_hidden,
            "val_spikes_per_neuron": dict(zip(model.kernel_names, spikes.tolist())),
            "tau": {n: k.tau.item() for n, k in zip(model.kernel_names, model.kernels)},
            "td": {n: k.td.item() for n, k in zip(model.kernel_names, model.kernels)},
            "p_ttfs": p_ttfs, "train_seconds": seconds, "train_cpu_seconds": cpu_seconds})
        # within the spike budget (none for the ReLU DNN) first, then accuracy, then fewer
        # spikes
        within = relu or cfg.max_spikes is None or val_hidden <= cfg.max_spikes
        key = (within, val_acc if within else -val_hidden, -val_hidden)
        if epoch >= cfg.first_eligible_epoch and (best_key is None or key > best_key):
            best, best_key = (epoch, copy.deepcopy(model.state_dict())), key
        if checkpoint is not None and job.main:
            save_checkpoint(checkpoint, {"config": asdict(cfg), "model": model.state_dict(),
                                         "opt_w": opt_w.state_dict(),
                                         "opt_k": opt_k.state_dict(), "history": history,
                                         "best": best, "best_key": best_key})
    for p in model.kernel_parameters():
        p.requires_grad_(True)
    if best is None:
        best = (cfg.epochs - 1, copy.deepcopy(model.state_dict()))
    model.load_state_dict(best[1])
    return Fit(model, history, best[0], val_y)


def epoch_lr(cfg: TrainConfig, epoch: int) -> float:
    """The learning rate of `epoch` under `cfg.lr_schedule` (a function of the epoch alone, so
    a resumed run continues the schedule)."""
    if cfg.lr_schedule == "cosine":
        return cfg.lr * (1 + math.cos(math.pi * epoch / cfg.epochs)) / 2
    return cfg.lr


def save_checkpoint(path: Path, state: dict) -> None:
    """torch.save into a temporary file, then renamed over `path` (never half-written)."""
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def evaluate(model: TTFSNet, config: dict, dataset: Dataset) -> dict:
    """Test metrics of a trained model: surrogate accuracy and, for SNN methods, the float SNN.

    The float SNN is the closed-form simulator on the BN-folded network; `agreement` is the
    share of test images on which its class equals the surrogate's.
    """
    relu = config["method"] == "relu"
    scores, _ = predict(model, to_tensor(dataset.test_images, config["device"]), relu=relu)
    surrogate = classes(scores)
    result = {"test_accuracy": float((surrogate == dataset.test_labels).mean())}
    if relu:
        return result | {"snn_test_accuracy": None, "spikes_per_hidden_neuron": None,
                         "sops": None, "agreement": None}
    net = model.float_network()
    trace = run_closed_form(net, dataset.test_images)
    return result | {
        "snn_test_accuracy": float((trace.classes == dataset.test_labels).mean()),
        "spikes_per_hidden_neuron": trace.spikes_per_hidden_neuron(net),
        "sops": float(trace.sops.mean()),
        "input_spikes": float(trace.input_spikes.mean()),
        "agreement": float((trace.classes == surrogate).mean())}


def partial_dir(out: str | Path) -> Path:
    """`.<name>.partial` beside the run directory `out`: the checkpoint of an unfinished run."""
    out = Path(out)
    return out.parent / f".{out.name}.partial"


def train(cfg: TrainConfig | None, out: str | Path, *, force: bool = False,
          quiet: bool = False, resume: bool = False, data_dir: str | Path | None = None
          ) -> dict | None:
    """Train, select, evaluate and write the run directory `out`; returns result.json's dict
    (None on ranks other than 0 under torchrun).

    The run directory appears atomically at the end (`ttfs.sdk.outdir.replacing`): a failed run
    never leaves a complete-looking one. Until then the last epoch's checkpoint is kept in
    `partial_dir(out)`; `resume=True` continues from it with its config (`cfg` is ignored and
    may be None). `data_dir`: source folder for mnist / fashion-mnist (`ttfs.sdk.data`).
    """
    out = Path(out)
    checkpoint = partial_dir(out) / CHECKPOINT_FILE
    if resume:
        if not checkpoint.is_file():
            raise TrainingError(f"--resume {out}: no checkpoint {checkpoint} (nothing to "
                                "resume: the run finished or never completed an epoch)")
        saved = torch.load(checkpoint, map_location="cpu", weights_only=True)
        cfg, force = TrainConfig(**saved["config"]), True
    elif cfg is None:
        raise TrainingError("a config is needed unless resuming")
    cfg = cfg.resolved()
    outdir.check_replaceable(outdir.check_target(out, what="--out"), force=force,
                             what="--out")
    job = ranks(cfg.device)
    if job.main:
        dataset = load_dataset(cfg.dataset, data_dir=data_dir)
    if job.world > 1:
        dist.barrier()                  # rank 0 has filled the dataset cache
    if not job.main:
        dataset = load_dataset(cfg.dataset, data_dir=data_dir)
    if job.main and not resume:
        shutil.rmtree(partial_dir(out), ignore_errors=True)
        partial_dir(out).mkdir(parents=True)
    try:
        result_fit = fit(cfg, dataset, quiet=quiet, checkpoint=checkpoint)
    except BaseException:
        if job.main and not checkpoint.is_file():      # nothing to resume: leave nothing
            shutil.rmtree(partial_dir(out), ignore_errors=True)
        raise
    if not job.main:
        return None
    config = asdict(cfg) | result_fit.model.config()
    result = evaluate(result_fit.model, config, dataset)
    seconds = [h["train_seconds"] for h in result_fit.history]
    result |= {"selected_epoch": result_fit.selected_epoch,
               "train_seconds_per_epoch": float(np.median(seconds)),
               "train_images": int(len(dataset.train_labels)),
               "fit_images": int(len(dataset.train_labels)) - len(result_fit.val_labels),
               "validation_images": len(result_fit.val_labels),
               "test_images": int(len(dataset.test_labels)), "world_size": job.world}
    with outdir.replacing(out, force=force, what="--out") as tmp:
        write_run(tmp, config, result_fit.model.state_dict(), result,
                  history=result_fit.history, selected_epoch=result_fit.selected_epoch)
        for path in tmp.iterdir():
            path.chmod(0o644)
    shutil.rmtree(partial_dir(out), ignore_errors=True)
    return result


def write_run(folder: str | Path, config: dict, state_dict: dict, result: dict, *,
              history: list[dict] | None = None, selected_epoch: int | None = None) -> None:
    """Write the files of a run directory into the existing folder `folder`.

    config.json (`config`), model.safetensors (float32 `state_dict`, tensors or numpy arrays,
    without `num_batches_tracked`), result.json (`result`) and, when `history` is given,
    metrics.jsonl and training.png (with `selected_epoch` marked). Callers that replace a
    directory atomically write into a temporary folder and rename it (as `train` does).
    """
    folder = Path(folder)
    (folder / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n")
    state = {k: (v if isinstance(v, torch.Tensor) else torch.from_numpy(np.array(v)))
             .detach().cpu().float().contiguous()
             for k, v in state_dict.items() if not k.endswith("num_batches_tracked")}
    save_file(state, str(folder / WEIGHTS_FILE))
    if history is not None:
        with open(folder / METRICS_FILE, "w") as f:
            for row in history:
                f.write(json.dumps(row) + "\n")
        plot_history(history, history[-1]["epoch"] if selected_epoch is None
                     else selected_epoch, folder / PLOT_FILE)
    (folder / RESULT_FILE).write_text(json.dumps(result, indent=2) + "\n")


def plot_history(history: list[dict], selected: int, path: Path) -> None:
    """training.png: accuracy and validation spikes per hidden neuron against the epoch."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [h["epoch"] for h in history]
    fig, (ax_acc, ax_spk) = plt.subplots(1, 2, figsize=(10, 4))
    ax_acc.plot(epochs, [h["train_accuracy"] for h in history], label="train")
    ax_acc.plot(epochs, [h["val_accuracy"] for h in history], label="validation")
    ax_acc.set(xlabel="epoch", ylabel="accuracy", title="accuracy")
    ax_spk.plot(epochs, [h["val_spikes_per_hidden_neuron"] for h in history])
    ax_spk.set(xlabel="epoch", ylabel="spikes per hidden neuron",
               title="validation spikes per hidden neuron")
    for ax in (ax_acc, ax_spk):
        ax.axvline(selected, color="gray", linestyle="--", label="selected")
    ax_acc.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def load_run(run_dir: str | Path) -> tuple[TTFSNet, dict]:
    """The trained model and config of a run directory; raises NetworkError on a bad one."""
    config = read_config(run_dir)
    for key in ("method", "dataset", "device"):
        if key not in config:
            raise NetworkError(f"{Path(run_dir) / CONFIG_FILE}: missing key '{key}'")
    model = build_model(config)
    load_state(model, read_weights(run_dir), what=f"{Path(run_dir) / WEIGHTS_FILE}",
               against="config.json")
    config["device"] = "cpu"
    return model, config


def load_state(model: TTFSNet, state: dict, *, what: str, against: str = "the model"
               ) -> None:
    """Load `state` (tensors or numpy arrays) into `model`; NetworkError naming `what` when the
    keys or shapes differ (`num_batches_tracked` may be absent)."""
    expected = {k for k in model.state_dict() if not k.endswith("num_batches_tracked")}
    missing, extra = sorted(expected - set(state)), sorted(set(state) - set(model.state_dict()))
    if missing or extra:
        raise NetworkError(f"{what} does not match {against} (missing: "
                           f"{', '.join(missing) or '-'}; unexpected: {', '.join(extra) or '-'})")
    try:
        model.load_state_dict({k: v if isinstance(v, torch.Tensor) else
                               torch.from_numpy(np.array(v)) for k, v in state.items()},
                              strict=False)
    except RuntimeError as err:
        raise NetworkError(f"{what} does not match {against}: "
                           f"{str(err).splitlines()[-1].strip()}") from None


def evaluate_run(run_dir: str | Path) -> dict:
    """Re-evaluate a saved run on its dataset's test split (surrogate and float SNN)."""
    model, config = load_run(run_dir)
    model.float_network()       # validates the checkpoint's values (tau > 0, finite)
    return evaluate(model, config, load_dataset(config["dataset"]))


def config_fields() -> tuple[str, ...]:
    """Names of the TrainConfig options (the keys of a --config TOML file)."""
    return tuple(f.name for f in fields(TrainConfig))
