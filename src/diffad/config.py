"""One typed, frozen configuration for the whole pipeline.

`params.yaml` is read once (by the stage scripts and the CLI, never by library code) into
:class:`Params`. Every section is a frozen dataclass owned by the module it configures; this
module only composes them and turns YAML into typed values:

* unknown keys are errors that name the full key (``train_ddim.lerning_rate``),
* values are checked against the field's type annotation (``bool`` is not an ``int``,
  an ``int`` is accepted where a ``float`` is expected),
* ``-S key=value`` overrides (the same syntax as ``dvc exp run -S``) are applied before checking,
* each section's ``__post_init__`` checks ranges and raises :class:`ConfigError`.

The YAML-to-dataclass machinery (type checks, overrides) is :mod:`diffad.typed_yaml`; this module
holds the sections, their defaults (equal to params.yaml's) and ranges.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from diffad.detectors import method_names
from diffad.errors import ConfigError, check_range
from diffad.typed_yaml import apply_override, build, to_plain

DataSource = Literal["synthetic", "mvtec", "folder"]
Transform = Literal["center-crop-dhariwal", "resize"]
OnBadInput = Literal["fail", "skip"]
# false_alarm_rate: target rate on the calibration images; fixed_score: a fixed normalised score;
# miss_rate: target rate on labelled validation defects (source folder validation/<defect>/)
ThresholdPolicy = Literal["false_alarm_rate", "fixed_score", "miss_rate"]
FeedbackGoodSplit = Literal["train", "calibration"]


@dataclass(frozen=True)
class DataConfig:
    """Shared dataset settings: what to import and at which resolution."""

    source: DataSource = "synthetic"  # synthetic (built-in demo) | mvtec | folder
    path: str = "data/raw"  # mvtec/folder: one category folder in MVTec AD layout
    category: str = "fabric"  # name used in outputs; for `synthetic` the demo category
    # the working resolution: side of the square prepared images and masks, of every method's
    # anomaly map and of the pixel metrics; smaller sources are upsampled to it (bicubic)
    resolution: int = 256
    transform: Transform = "center-crop-dhariwal"  # ADM/EDM2 crop, or plain resize
    on_bad_input: OnBadInput = "fail"  # fail: stop naming the file; skip: leave out, count, report
    allow_external_links: bool = False  # follow symbolic links that lead out of `path`

    def __post_init__(self) -> None:
        check_range("data.resolution", self.resolution, 8, 4096)
        if not self.category or "/" in self.category or self.category.startswith("."):
            raise ConfigError(f"data.category: {self.category!r} is not a usable folder name")


@dataclass(frozen=True)
class RuntimeConfig:
    """Where and how fast to compute.

    On CPU, results depend on the torch thread count (reductions sum in a thread-dependent
    order), so ``threads`` is a fixed number and a DVC param of every stage that computes with
    torch: the same ``dvc.lock`` gives the same models on any machine. ``device`` is not: GPU
    runs are reproducible per device type, not bit-identical to CPU runs.
    """

    device: str = "auto"  # auto (cuda if present) | cpu | cuda | cuda:N
    threads: int = 1  # torch intra-op threads; a DVC param (results depend on it); 1 suits a shared box

    def __post_init__(self) -> None:
        if self.threads == 0:
            raise ConfigError(
                "runtime.threads: 0 (all cores) is not allowed: trained models depend on the thread "
                "count, so it must be a fixed number recorded with the run (1 on a shared machine)"
            )
        check_range("runtime.threads", self.threads, 1, 1024)
        if not (self.device in ("auto", "cpu", "cuda") or self.device.startswith("cuda:")):
            raise ConfigError(f"runtime.device: {self.device!r} is not auto, cpu, cuda or cuda:N")


@dataclass(frozen=True)
class ConvertDatasetConfig:
    """`convert_dataset`: the demo generator's sizes and the manifest checks."""

    demo_train_good: int = 240  # synthetic: good training images
    demo_test_good: int = 40  # synthetic: good test images
    demo_test_per_defect: int = 12  # synthetic: test images per defect kind
    demo_test_unknown: int = 4  # synthetic: unlabelled images under test/unknown
    min_train_images: int = 8  # validation fails below this many train images
    min_test_images: int = 2  # ... and below this many labelled test images
    near_duplicate_rms: float = 0.01  # test within this RMS (0..1 pixels) of a train image = leak; 0 = off
    calibration_fraction: float = 0.2  # share of train/good set aside, never fitted on (data/split.py)
    min_calibration_images: int = 20  # at least this many; validation fails below it

    def __post_init__(self) -> None:
        for name in ("demo_train_good", "demo_test_good", "demo_test_per_defect"):
            check_range(f"convert_dataset.{name}", getattr(self, name), 1, 100_000)
        check_range("convert_dataset.demo_test_unknown", self.demo_test_unknown, 0, 100_000)
        check_range("convert_dataset.min_train_images", self.min_train_images, 1, 1_000_000)
        check_range("convert_dataset.min_test_images", self.min_test_images, 1, 1_000_000)
        check_range("convert_dataset.near_duplicate_rms", self.near_duplicate_rms, 0.0, 1.0)
        check_range("convert_dataset.calibration_fraction", self.calibration_fraction, 0.0, 0.9)
        check_range("convert_dataset.min_calibration_images", self.min_calibration_images, 0, 1_000_000)


@dataclass(frozen=True)
class TrainDDIMConfig:
    """`train_ddim`: the EDM denoiser D(x; sigma) and its training run."""

    preset: Literal["xxs", "xs", "s", "m"] = "xs"  # UNet size: xs 2 CPU cores, s/m GPUs, xxs smoke tests
    # the pixel denoiser's input side: prepared images are downscaled to it for training, the MSMA
    # score norms and DDIM's reconstruction (32-64 on a 2-core CPU, up to data.resolution on a GPU)
    resolution: int = 32
    batch_size: int = 32  # images per step
    steps: int = 400  # optimizer steps
    lr: float = 2e-3  # AdamW learning rate (after warm-up)
    lr_warmup_steps: int = 50  # linear warm-up
    weight_decay: float = 0.0  # AdamW
    ema_halflife_images: int = 2000  # EMA half-life, in training images seen (EDM2 style)
    p_mean: float = -1.2  # ln sigma ~ N(p_mean, p_std^2)
    p_std: float = 1.2
    sigma_data: float = 0.5  # std of the data in [-1, 1]
    dropout: float = 0.0
    hflip: bool = True  # augmentations of the good images
    vflip: bool = False
    rot90: bool = False
    checkpoint_every: int = 100  # steps between resumable checkpoints
    log_every: int = 50  # steps per row of loss.csv (mean loss over those steps)
    sample_steps: int = 32  # deterministic sampler steps for the sample grid
    sample_count: int = 16  # images in the sample grid

    def __post_init__(self) -> None:
        check_range("train_ddim.resolution", self.resolution, 8, 4096)
        check_range("train_ddim.batch_size", self.batch_size, 1, 65536)
        check_range("train_ddim.steps", self.steps, 1, 10_000_000)
        check_range("train_ddim.lr", self.lr, 1e-8, 1.0)
        check_range("train_ddim.weight_decay", self.weight_decay, 0.0, 10.0)
        # ln sigma ~ N(p_mean, p_std^2): beyond +-6 the noise levels leave float32's useful range
        check_range("train_ddim.p_mean", self.p_mean, -6.0, 6.0)
        check_range("train_ddim.p_std", self.p_std, 1e-3, 10.0)
        check_range("train_ddim.sigma_data", self.sigma_data, 1e-3, 10.0)
        check_range("train_ddim.dropout", self.dropout, 0.0, 0.9)
        check_range("train_ddim.checkpoint_every", self.checkpoint_every, 1, 10_000_000)
        check_range("train_ddim.log_every", self.log_every, 1, 10_000_000)
        check_range("train_ddim.lr_warmup_steps", self.lr_warmup_steps, 0, 10_000_000)
        check_range("train_ddim.ema_halflife_images", self.ema_halflife_images, 0, 10**12)
        check_range("train_ddim.sample_steps", self.sample_steps, 1, 10_000)
        check_range("train_ddim.sample_count", self.sample_count, 1, 1024)


@dataclass(frozen=True)
class DDIMReconstructionConfig:
    """The DDIM reconstruction detector (DDAD-style guidance), used by `evaluate` and `predict`."""

    sigma_start: float = 0.5  # noise level the test image is pushed to (VE sigma)
    steps: int = 10  # deterministic DDIM steps from sigma_start to 0
    eta: float = 0.0  # 0 = deterministic; 1 = DDPM-like fresh noise each step
    guidance: float = 1.0  # DDAD's w: pull toward the noised input
    feature_blocks: tuple[int, ...] = (1, 2)  # EfficientNet-Lite0 blocks compared (strides 4, 8)
    feature_size: int = 0  # images resized to this side before the backbone; 0 = as they are
    pixel_weight: float = 1.0  # DDAD's v in A = D_f + v r D_p
    pixel_scale: float = 2.0  # r: fixed (scores independent of the batch); 0 = max D_f / max D_p per image
    blur_sigma: float = 4.0  # Gaussian smoothing of the map, pixels at 256 px (scaled)
    tile: bool = False  # larger-than-resolution images: score a grid of tiles, stitch
    domain_adaptation_steps: int = 0  # >0: adapt a copy of the backbone (DDAD), in steps
    adapt_lr: float = 1e-4  # domain adaptation: AdamW learning rate (DDAD)
    adapt_lambda: float = 0.1  # domain adaptation: weight of staying close to the frozen backbone (DDAD)
    adapt_guidance: float = 3.0  # domain adaptation: w of the reconstruction toward another image (DDAD)
    batch_size: int = 16  # images (or tiles) reconstructed at once

    def __post_init__(self) -> None:
        check_range("evaluate.ddim.sigma_start", self.sigma_start, 1e-3, 100.0)
        check_range("evaluate.ddim.steps", self.steps, 1, 1000)
        check_range("evaluate.ddim.eta", self.eta, 0.0, 1.0)
        check_range("evaluate.ddim.guidance", self.guidance, 0.0, 100.0)
        check_range("evaluate.ddim.feature_size", self.feature_size, 0, 4096)
        check_range("evaluate.ddim.pixel_weight", self.pixel_weight, 0.0, 1000.0)
        check_range("evaluate.ddim.pixel_scale", self.pixel_scale, 0.0, 1e6)
        check_range("evaluate.ddim.blur_sigma", self.blur_sigma, 0.0, 100.0)
        check_range("evaluate.ddim.domain_adaptation_steps", self.domain_adaptation_steps, 0, 1_000_000)
        check_range("evaluate.ddim.batch_size", self.batch_size, 1, 65536)
        check_range("evaluate.ddim.adapt_lr", self.adapt_lr, 1e-8, 1.0)
        check_range("evaluate.ddim.adapt_lambda", self.adapt_lambda, 0.0, 100.0)
        check_range("evaluate.ddim.adapt_guidance", self.adapt_guidance, 0.0, 100.0)
        if not self.feature_blocks or any(not 0 <= b <= 6 for b in self.feature_blocks):
            raise ConfigError(f"evaluate.ddim.feature_blocks: {self.feature_blocks!r} needs values in 0..6")


@dataclass(frozen=True)
class CacheScoresConfig:
    """`cache_scores`: multiscale scores s_i = D(x; sigma_i) - c_skip(sigma_i) x."""

    num_sigmas: int = 20  # L noise levels on a Karras (rho) spacing
    sigma_min: float = 0.1
    sigma_max: float = 64.0
    rho: float = 7.0
    input: Literal["clean", "noised"] = "clean"  # clean image (reference) or mean D(x + sigma n) - c_skip x
    noise_draws: int = 1  # noised input: draws averaged per level
    patch_window: int = 3  # local window of the per-patch norm, pixels
    patch_stride: int = 2  # patch map is H/stride x W/stride
    batch_size: int = 64
    bf16: bool = True  # CUDA only: bf16 autocast of the denoiser (norms are always summed in float32)

    def __post_init__(self) -> None:
        check_range("cache_scores.num_sigmas", self.num_sigmas, 2, 1000)
        check_range("cache_scores.sigma_max", self.sigma_max, 1e-5, 1e4)
        check_range("cache_scores.sigma_min", self.sigma_min, 1e-5, self.sigma_max)
        check_range("cache_scores.rho", self.rho, 0.1, 100.0)
        check_range("cache_scores.noise_draws", self.noise_draws, 1, 1000)
        check_range("cache_scores.patch_window", self.patch_window, 1, 64)
        check_range("cache_scores.patch_stride", self.patch_stride, 1, 64)
        check_range("cache_scores.batch_size", self.batch_size, 1, 65536)


@dataclass(frozen=True)
class FitGMMConfig:
    """`fit_gmm`: Gaussian mixture over per-image score norms."""

    n_components: int = 7
    covariance: Literal["full", "diag"] = "full"
    search: bool = False  # grid search n_components with cross-validated held-out likelihood
    search_components: tuple[int, ...] = (2, 3, 4, 5, 6, 7, 8, 9, 10)
    cv_folds: int = 5
    reg_covar: float = 1e-3  # added to covariance diagonals, in scaled units (sklearn's 1e-6 overfits)
    features: Literal["raw", "log"] = "raw"  # fit the norms (reference) or their logarithm

    def __post_init__(self) -> None:
        check_range("fit_gmm.n_components", self.n_components, 1, 1000)
        check_range("fit_gmm.cv_folds", self.cv_folds, 2, 100)
        check_range("fit_gmm.reg_covar", self.reg_covar, 0.0, 1.0)
        if not self.search_components or min(self.search_components) < 1:
            raise ConfigError(f"fit_gmm.search_components: {self.search_components!r} needs values >= 1")


@dataclass(frozen=True)
class TrainFlowConfig:
    """`train_flow`: PatchFlow, a position-conditioned flow over per-patch score norms."""

    num_flows: int = 4  # spline coupling + LU linear blocks
    hidden: int = 128  # MLP width
    blocks: int = 2  # residual blocks in each coupling's conditioner
    bins: int = 8  # rational-quadratic spline bins
    tail_bound: float = 3.0  # spline on [-tail_bound, tail_bound], identity outside
    pos_dim: int = 128  # 2-D sinusoidal position code size (multiple of 4: half rows, half columns)
    epochs: int = 10
    batch_size: int = 16  # images per step (reference 128; more, smaller steps fit 10 CPU epochs)
    positions_per_step: int = 128  # random positions shared across the batch
    lr: float = 3e-4
    weight_decay: float = 1e-5
    val_fraction: float = 0.1
    patience: int = 3  # early stopping, in epochs without a new best

    def __post_init__(self) -> None:
        check_range("train_flow.num_flows", self.num_flows, 1, 64)
        check_range("train_flow.hidden", self.hidden, 1, 65536)
        check_range("train_flow.blocks", self.blocks, 0, 64)
        check_range("train_flow.bins", self.bins, 1, 256)
        check_range("train_flow.tail_bound", self.tail_bound, 1e-3, 1e3)
        check_range("train_flow.pos_dim", self.pos_dim, 4, 65536)
        if self.pos_dim % 4:
            raise ConfigError(f"train_flow.pos_dim: {self.pos_dim} is not a multiple of 4")
        check_range("train_flow.epochs", self.epochs, 1, 100_000)
        check_range("train_flow.batch_size", self.batch_size, 1, 1_000_000)
        check_range("train_flow.positions_per_step", self.positions_per_step, 1, 10_000_000)
        check_range("train_flow.lr", self.lr, 1e-8, 1.0)
        check_range("train_flow.weight_decay", self.weight_decay, 0.0, 10.0)
        check_range("train_flow.val_fraction", self.val_fraction, 0.0, 0.9)
        check_range("train_flow.patience", self.patience, 1, 100_000)


@dataclass(frozen=True)
class FeatureMsmaConfig:
    """`msma_features`: an EDM denoiser on the baselines' patch features; MSMA score norms per cell.

    Fitted in `fit_baselines` (it is fitted on good images, like PatchCore) on the same embedding.
    """

    hidden: int = 256  # width of the per-cell network (1 x 1 convolutions)
    blocks: int = 2  # residual blocks of the network
    steps: int = 1000  # Adam steps
    batch_cells: int = 2048  # feature cells (grid positions of training images) per step
    lr: float = 2e-3  # peak learning rate (5 % warm-up, cosine decay)
    p_mean: float = -1.0  # ln sigma ~ N(p_mean, p_std^2) in training (features standardised: sigma_data 1)
    p_std: float = 1.0
    sigma_min: float = 0.1  # score-norm levels: geometric from sigma_min to sigma_max
    sigma_max: float = 1.0
    num_sigmas: int = 6

    def __post_init__(self) -> None:
        check_range("fit_baselines.msma_features.hidden", self.hidden, 8, 65536)
        if self.hidden % 8:
            raise ConfigError(f"fit_baselines.msma_features.hidden: {self.hidden} is not a multiple of 8")
        check_range("fit_baselines.msma_features.blocks", self.blocks, 0, 64)
        check_range("fit_baselines.msma_features.steps", self.steps, 1, 10_000_000)
        check_range("fit_baselines.msma_features.batch_cells", self.batch_cells, 1, 10_000_000)
        check_range("fit_baselines.msma_features.lr", self.lr, 1e-8, 1.0)
        check_range("fit_baselines.msma_features.p_mean", self.p_mean, -10.0, 10.0)
        check_range("fit_baselines.msma_features.p_std", self.p_std, 1e-3, 10.0)
        check_range("fit_baselines.msma_features.sigma_min", self.sigma_min, 1e-4, 1e4)
        check_range("fit_baselines.msma_features.sigma_max", self.sigma_max, self.sigma_min, 1e4)
        check_range("fit_baselines.msma_features.num_sigmas", self.num_sigmas, 1, 1000)


@dataclass(frozen=True)
class BaselinesConfig:
    """`fit_baselines`: every detector fitted on good images (PatchCore, PaDiM, msma_features) on
    the same EfficientNet-Lite0 backbone."""

    feature_blocks: tuple[int, ...] = (1, 2)  # EfficientNet-Lite0 blocks (0..6), increasing, concatenated
    input_size: int = 256  # the backbone's input side: images are resized to it before the backbone
    # reflect padding (px at input_size) around the backbone input, its features cropped off: maps
    # without the zero-padding frame; 0 = the backbone's own zero padding
    border_pad: int = 32
    coreset_ratio: float = 0.01  # PatchCore memory bank fraction (greedy k-center; paper: 1% ~ 25%)
    projection_dim: int = 128  # PatchCore: random projection for coreset selection if wider; 0 = never
    num_neighbors: int = 1  # PatchCore image score re-weighting neighbours (<= 1: plain max)
    padim_dims: int = 100  # PaDiM random channel subset (all channels if fewer)
    blur_sigma: float = 4.0  # Gaussian smoothing of the maps, pixels at 256 px (scaled)
    batch_size: int = 8  # images per backbone batch (peak memory ~ batch; raise it on a GPU)
    msma_features: FeatureMsmaConfig = field(default_factory=FeatureMsmaConfig)

    def __post_init__(self) -> None:
        if not self.feature_blocks or any(not 0 <= b <= 6 for b in self.feature_blocks):
            raise ConfigError(f"fit_baselines.feature_blocks: {self.feature_blocks!r} needs values in 0..6")
        if list(self.feature_blocks) != sorted(set(self.feature_blocks)):
            raise ConfigError(f"fit_baselines.feature_blocks: {self.feature_blocks!r} must be increasing")
        check_range("fit_baselines.input_size", self.input_size, 32, 4096)
        check_range("fit_baselines.border_pad", self.border_pad, 0, 1024)
        if self.border_pad >= self.input_size:
            raise ConfigError(
                f"fit_baselines.border_pad: {self.border_pad} must be below input_size {self.input_size}"
            )
        check_range("fit_baselines.coreset_ratio", self.coreset_ratio, 1e-4, 1.0)
        check_range("fit_baselines.projection_dim", self.projection_dim, 0, 1_000_000)
        check_range("fit_baselines.num_neighbors", self.num_neighbors, 1, 10_000)
        check_range("fit_baselines.padim_dims", self.padim_dims, 1, 1_000_000)
        check_range("fit_baselines.blur_sigma", self.blur_sigma, 0.0, 100.0)
        check_range("fit_baselines.batch_size", self.batch_size, 1, 65536)


@dataclass(frozen=True)
class EvaluateConfig:
    """`evaluate`: methods, thresholds and report contents."""

    # registered methods to evaluate (diffad.detectors: one module each), in report order
    methods: tuple[str, ...] = (
        "msma_gmm",
        "msma_flow",
        "msma_features",
        "ddim",
        "ensemble",
        "fused",
        "patchcore",
        "padim",
    )
    ddim: DDIMReconstructionConfig = field(default_factory=DDIMReconstructionConfig)
    # The operating point, chosen on the calibration images (never on test labels; thresholds.py):
    threshold_policy: ThresholdPolicy = "false_alarm_rate"
    target_false_alarm_rate: float = 0.05  # false_alarm_rate: share of calibration images above
    fixed_score: float = 100.0  # fixed_score: threshold on the 0-1000 scale whose 100 is the target-rate one
    target_miss_rate: float = 0.05  # miss_rate: share of the labelled validation defects below
    flow_topk: int = 10  # msma_flow image score = mean of the k highest patch NLLs
    fused_image_score: Literal["weighted", "map_max"] = (
        "map_max"  # fused: max of its map | weighted part scores
    )
    max_overlays: int = 400  # heatmap overlays written
    worst_per_method: int = 8  # mistakes in the montage

    def __post_init__(self) -> None:
        check_range("evaluate.target_false_alarm_rate", self.target_false_alarm_rate, 0.0, 0.5)
        check_range("evaluate.fixed_score", self.fixed_score, 1e-6, 1000.0)
        check_range("evaluate.target_miss_rate", self.target_miss_rate, 0.0, 0.5)
        check_range("evaluate.flow_topk", self.flow_topk, 1, 1_000_000)
        check_range("evaluate.max_overlays", self.max_overlays, 0, 10_000_000)
        check_range("evaluate.worst_per_method", self.worst_per_method, 0, 10_000)
        if self.fused_image_score not in ("weighted", "map_max"):
            raise ConfigError(f"evaluate.fused_image_score: {self.fused_image_score!r} (weighted | map_max)")
        known = method_names()
        for method in self.methods:
            if method not in known:
                raise ConfigError(f"evaluate.methods: unknown method {method!r} (known: {', '.join(known)})")
        if not self.methods:
            raise ConfigError("evaluate.methods: at least one method is needed")


@dataclass(frozen=True)
class FeedbackConfig:
    """`convert_dataset`: how reviewers' verdicts (data/feedback/, diffad.feedback) join the data."""

    good_split: FeedbackGoodSplit = "train"  # confirmed false alarms: fitted on (train) or calibration


@dataclass(frozen=True)
class MonitoringConfig:
    """The monitor flow: production scores (data/monitoring/) against the calibration scores.

    Drift = more alarms (a one-sided Fisher test of the alarm counts rejects at ``p_value`` AND the
    share over the threshold exceeds the calibration share by ``alarm_share_excess``) or moved
    scores (a two-sample KS test rejects at ``p_value`` AND the median moved by ``median_shift``
    calibration standard deviations); diffad.monitoring.drift.
    """

    window: int = 200  # most recent scored images (of the served bundle and method) compared
    min_images: int = 20  # fewer in the window: no drift decision
    p_value: float = 0.01  # of each test: Fisher on the alarm counts, KS on the raw scores
    alarm_share_excess: float = 0.15  # share above threshold minus the calibration share
    median_shift: float = 1.0  # |median - calibration median| / calibration std
    new_verdicts: int = 20  # retrain once this many verdicts arrived since the served model

    def __post_init__(self) -> None:
        check_range("monitoring.window", self.window, 2, 10_000_000)
        check_range("monitoring.min_images", self.min_images, 2, 10_000_000)
        check_range("monitoring.p_value", self.p_value, 0.0, 1.0)
        check_range("monitoring.alarm_share_excess", self.alarm_share_excess, 0.0, 1.0)
        check_range("monitoring.median_shift", self.median_shift, 0.0, 1e6)
        check_range("monitoring.new_verdicts", self.new_verdicts, 1, 10_000_000)


@dataclass(frozen=True)
class Params:
    """The whole of ``params.yaml``. Built by :func:`load_params`."""

    data: DataConfig = field(default_factory=DataConfig)
    seed: int = 0  # one seed for data generation, training and sampling
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
    convert_dataset: ConvertDatasetConfig = field(default_factory=ConvertDatasetConfig)
    train_ddim: TrainDDIMConfig = field(default_factory=TrainDDIMConfig)
    cache_scores: CacheScoresConfig = field(default_factory=CacheScoresConfig)
    fit_gmm: FitGMMConfig = field(default_factory=FitGMMConfig)
    train_flow: TrainFlowConfig = field(default_factory=TrainFlowConfig)
    fit_baselines: BaselinesConfig = field(default_factory=BaselinesConfig)
    evaluate: EvaluateConfig = field(default_factory=EvaluateConfig)
    feedback: FeedbackConfig = field(default_factory=FeedbackConfig)
    monitoring: MonitoringConfig = field(default_factory=MonitoringConfig)

    def __post_init__(self) -> None:
        check_range("seed", self.seed, 0, 2**32 - 1)  # NumPy seeds are unsigned 32-bit
        if self.train_ddim.resolution > self.data.resolution:
            raise ConfigError(
                f"train_ddim.resolution: {self.train_ddim.resolution} is above data.resolution "
                f"{self.data.resolution}: the denoiser reads the prepared images, downscaled, never upsampled"
            )

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (YAML/JSON-safe), e.g. to embed in a checkpoint."""
        return to_plain(self)


def load_params(path: str | Path, overrides: typing.Sequence[str] = ()) -> Params:
    """Read ``path`` (YAML), apply ``key.sub=value`` overrides and build :class:`Params`."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        raise ConfigError(f"{path}: parameter file not found") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    for item in overrides:
        apply_override(raw, item)
    return params_from_dict(raw, source=str(path))


def params_from_dict(raw: dict[str, Any], source: str = "params") -> Params:
    """Build :class:`Params` from a plain dict, checking keys and types."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: expected a mapping at the top level")
    try:
        return build(Params, raw, "")
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None
