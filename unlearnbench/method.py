"""What a method is, as the runner sees it, and the base for loss-defined LLM methods.

A method turns the target model into an unlearned one. It knows nothing about metrics.
``unlearn(model, data, params, ctx) -> model``; hyperparameters are a dataclass with types
and defaults; ``needs`` says which data it uses. For language models, a method is a loss
over a forget batch (and optionally a retain batch and a frozen reference model) plus
hyperparameters: subclass :class:`LossMethod` and write ``loss``; the training loop is shared.
"""

from __future__ import annotations

import abc
import dataclasses
import math
import re
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from pydantic import ConfigDict, PydanticSchemaGenerationError, PydanticUserError, TypeAdapter, ValidationError

from unlearnbench.errors import UnknownNameError, UserError
from unlearnbench.lm.modeling import PromptFormat, QABatches, TrainConfig, encode_rows, train_loop


@dataclass
class UnlearnData:
    forget: Any  # rows (datasets.Dataset or list of dicts) with question, answer
    retain: Any
    tokenizer: Any
    prompt_format: PromptFormat
    concepts: list[dict] | None = None  # [{"name", "words", "prompts"}] for concept-vector methods (needle)


@dataclass
class ClassifierData:
    """What a classifier method sees: arrays (float32 ``[N, C, H, W]`` images, int64 labels),
    the task's architecture and training recipe (for methods that retrain, like SISA), and
    where the forget rows sit in the training set."""

    x_forget: Any
    y_forget: Any
    x_retain: Any
    y_retain: Any
    num_classes: int
    model_config: dict
    train_config: Any  # unlearnbench.vision.classifier.ClassifierTrainConfig
    x_train: Any = None
    y_train: Any = None
    forget_indices: Any = None
    forget_class: int | None = None


@dataclass
class RegressionData:
    """What a regression method sees: float32 features ``[N, D]`` and targets ``[N]`` (original
    units), the task's architecture and training recipe (for methods that train a proxy)."""

    x_forget: Any
    y_forget: Any
    x_retain: Any
    y_retain: Any
    model_config: dict
    train_config: Any  # unlearnbench.tabular.regression.RegressionTrainConfig


@dataclass
class RunContext:
    seed: int
    device: torch.device
    quiet: bool = False
    task_name: str = ""
    recipe: Any = None  # unlearnbench.task.Recipe or None
    log: Callable[[str], None] = lambda message: None
    info: dict = dataclasses.field(default_factory=dict)  # what a method reports (e.g. SISA's retrained share); kept in the record
    # what a method leaves for --save-model beside the weights (a LoRA adapter: {"lora": ...})
    artifacts: dict = dataclasses.field(default_factory=dict)
    # loads a model unlearned elsewhere through the task's family (the external method)
    load_unlearned: Callable[[str], Any] | None = None
    # --eval-every: scores the model every N optimisation steps (unlearnbench.trajectory.Trajectory)
    trajectory: Any = None


class Method(abc.ABC):
    """Base class: one class per task kind. Subclasses set ``kinds`` (the task kinds the class
    serves, usually one), ``Params`` (a dataclass of hyperparameters with defaults) and
    implement ``unlearn``. A user-facing name that serves several kinds (``ga``) is one small
    class per kind, each registered under that name (``methods/lm/ga.py``, ``methods/vision/ga.py``, ...)."""

    name: ClassVar[str] = ""
    needs: ClassVar[tuple[str, ...]] = ("forget",)
    kinds: ClassVar[tuple[str, ...]] = ("language_model",)
    loads_model: ClassVar[bool] = False  # True: unlearn() is given no model and loads its own (external)

    @dataclass(frozen=True)
    class Params:
        pass

    def unlearn(self, model, data, params, ctx: RunContext):
        """Return the unlearned model (the runner passes a copy of the target). ``data`` is what
        the kind's family gives a method: :class:`UnlearnData` for language models,
        :class:`ClassifierData` for classifiers, :class:`RegressionData` for regression."""
        raise NotImplementedError(f"{type(self).__name__} ({self.name}) does not implement unlearn")

    @classmethod
    def params_class(cls, kind: str) -> type:
        """The hyperparameters' dataclass (``kind`` is the task kind the runner asks for; a
        class serves its own kinds with one ``Params``)."""
        return cls.Params


def _convert(value: str, annotation: Any, key: str) -> Any:
    """One ``--param key=value`` string as its field's annotation says, or a UserError that
    names the parameter, the value and the type. bool, int, float, str and Optional keep their
    command-line spellings (true/false/yes/no/on/off/1/0; none/null); every other annotation is
    converted by pydantic: from the text itself (a Literal, an Enum, a Path), else from the text
    as JSON (``layers=[64,32]``), else, for a list / tuple / set, from comma-separated items."""
    origin = typing.get_origin(annotation)
    if annotation is bool:
        lowered = value.lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise UserError(f"Parameter {key}={value!r}: expected true or false.")
    if origin is typing.Union or origin is getattr(__import__("types"), "UnionType", None):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if type(None) in typing.get_args(annotation) and value.lower() in ("none", "null"):
            return None
        if len(args) == 1:
            return _convert(value, args[0], key)
    try:
        if annotation in (int, float, str):
            return annotation(value)
    except ValueError:
        raise UserError(f"Parameter {key}={value!r}: expected a {annotation.__name__}.") from None
    return _convert_typed(value, annotation, key)


def _type_name(annotation: Any, article: bool = True) -> str:
    """A type in words, without square brackets (the CLI prints messages as rich markup)."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    a = "a " if article else ""
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(arg) for arg in args)
    if origin is typing.Union or origin is getattr(__import__("types"), "UnionType", None):
        return " or ".join(_type_name(arg, article) for arg in args if arg is not type(None))
    if origin in (list, set, frozenset) or (origin is tuple and len(args) == 2 and args[1] is Ellipsis):
        return f"{a}{origin.__name__} of {_type_name(args[0], False)}" if args else f"{a}{origin.__name__}"
    if origin is tuple:
        return f"{a}tuple of ({', '.join(_type_name(arg, False) for arg in args)})"
    if origin is dict and len(args) == 2:
        return f"{a}dict of {_type_name(args[0], False)} to {_type_name(args[1], False)}"
    if isinstance(annotation, type) and origin is None:
        return f"{a}{annotation.__name__}"
    return str(annotation).replace("typing.", "").replace("[", "(").replace("]", ")")


def _convert_typed(value: str, annotation: Any, key: str) -> Any:
    expected = _type_name(annotation)
    try:
        adapter = TypeAdapter(annotation, config=ConfigDict(arbitrary_types_allowed=True))
    except PydanticSchemaGenerationError:
        raise UserError(f"Parameter {key}={value!r}: its type ({expected}) cannot be given as text on the "
                        "command line; set it from Python instead.") from None
    except PydanticUserError:  # a pydantic model or dataclass brings its own config
        adapter = TypeAdapter(annotation)
    container = typing.get_origin(annotation) in (list, tuple, set, frozenset, dict)
    attempts = [lambda: adapter.validate_python(value), lambda: adapter.validate_json(value)]
    if typing.get_origin(annotation) in (list, tuple, set, frozenset):
        attempts.append(lambda: adapter.validate_python([item.strip() for item in value.split(",")]))
    reasons = []
    for attempt in attempts:
        try:
            return attempt()
        except ValidationError as exc:
            error = exc.errors(include_url=False)[0]
            where = ".".join(str(part) for part in error["loc"])
            reasons.append(f"{'item ' + where + ': ' if where else ''}{error['msg']}")
    # a container's last attempt says what was wrong inside it; a scalar's first attempt, what the text is not
    example = '{"a": 1}' if typing.get_origin(annotation) is dict else "[1, 2]"
    reason, hint = (reasons[-1], f"; write it as JSON, e.g. {example}") if container else (reasons[0], "")
    raise UserError(f"Parameter {key}={value!r}: expected {expected} ({reason}{hint}).")


# Hyperparameters that mean the same thing in every method, by name: (test, what it must be).
# Checked for every method's Params (its own fields or the shared bases'), so that a value no
# optimiser can use fails before any work instead of deep inside training.
_DOMAINS: tuple[tuple[re.Pattern, Callable[[float], bool], str], ...] = (
    (re.compile(r"^(lr|.*_lr|lr_.*)$"), lambda v: v > 0, "a learning rate > 0"),
    (re.compile(r"^(.*_)?epochs$"), lambda v: v >= 0, "a number of epochs >= 0"),
    (re.compile(r"^(.*_)?(batch_size|grad_accum)$"), lambda v: v >= 1, "at least 1"),
    (re.compile(r"^(.*_)?(weight_decay|grad_clip|lora_r|lora_alpha)$"), lambda v: v >= 0, ">= 0"),
    (re.compile(r"^(.*_)?(momentum|dropout|lora_dropout)$"), lambda v: 0 <= v < 1, "in [0, 1)"),
    (re.compile(r"^(.*_)?fraction$"), lambda v: 0 <= v <= 1, "in [0, 1]"),
)


def check_param_value(key: str, value: Any) -> None:
    """A :class:`UserError` for a value no method can use: a float that is not finite (NaN
    and infinities would also be written as null in the record, so ``lr=nan`` and ``lr=inf``
    could not be told apart), or a conventional hyperparameter outside its domain (see
    :data:`_DOMAINS`). ``None`` (a field's "not set") is always accepted."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return
    if isinstance(value, float) and not math.isfinite(value):
        raise UserError(f"Parameter {key}={value!r}: expected a finite number.")
    for pattern, ok, words in _DOMAINS:
        if pattern.match(key) and not ok(value):
            raise UserError(f"Parameter {key}={value!r}: {key} must be {words}.")


def parse_params(params_cls: type, raw: dict[str, str]) -> Any:
    """Typed hyperparameters from ``key=value`` strings, each converted by its field's annotation
    (see :func:`_convert`) or refused naming the parameter, the value and the type; unknown keys
    list the known ones. Every value (given, from a preset, or a default) is checked by
    :func:`check_param_value`."""
    fields = {f.name: f for f in dataclasses.fields(params_cls)}
    hints = typing.get_type_hints(params_cls)
    values = {}
    for key, value in raw.items():
        if key not in fields:
            raise UnknownNameError("parameter", key, fields)
        values[key] = _convert(value, hints[key], key) if isinstance(value, str) else value
    try:
        params = params_cls(**values)
    except (TypeError, ValueError) as exc:  # a Params class's own __post_init__ check
        raise UserError(f"Parameters {', '.join(f'{k}={v!r}' for k, v in raw.items()) or '(defaults)'}: {exc}") from None
    for name in fields:
        check_param_value(name, getattr(params, name))
    return params


@dataclass(frozen=True)
class LLMParams:
    """Shared hyperparameters of loss-defined LLM methods. The defaults suit the synthetic
    worlds' tiny models; a task's preset (``unlearnbench list methods --task T``) carries what
    its literature uses (real TOFU and MUSE: open-unlearning's recipe, lr 1e-5).

    ``batch_size`` rows per forward pass, ``grad_accum`` passes per optimiser step (the
    effective batch is their product); ``gradient_checkpointing`` recomputes activations in
    the backward pass (much less memory, about a third more time); ``lora_r > 0`` trains a
    LoRA adapter of that rank (peft) instead of every weight, on ``lora_targets``
    (``all-linear`` or comma-separated module names)."""

    lr: float = 1e-3
    epochs: int = 5
    batch_size: int = 32
    warmup_fraction: float = 0.0
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    schedule: str = "constant"  # "constant" | "linear" (decay to 0, open-unlearning's) | "cosine"
    grad_accum: int = 1
    gradient_checkpointing: bool = False
    lora_r: int = 0
    lora_alpha: int = 32
    lora_dropout: float = 0.0
    lora_targets: str = "all-linear"


class ReferenceLogprobs:
    """The frozen reference's sequence log-probabilities of every forget batch, computed once
    before training from the model as it was (no resident copy of the model: for an 8B model
    that copy is 16 GB in bf16). ``of(batch)`` looks each row up by its token ids."""

    def __init__(self, model, encoded, device, batch_size: int, pad_id: int, quiet: bool = True):
        from unlearnbench.lm.modeling import collate, sequence_logprobs

        unique = list(dict.fromkeys((tuple(ids), n) for ids, n in encoded))
        self.values: dict[tuple[int, ...], float] = {}
        was_training = model.training
        model.eval()
        with torch.no_grad():
            for start in range(0, len(unique), batch_size):
                chunk = unique[start : start + batch_size]
                batch = _to(collate([(list(ids), n) for ids, n in chunk], pad_id), device)
                logp, _ = sequence_logprobs(model, batch)
                self.values.update({ids: float(v) for (ids, _), v in zip(chunk, logp.tolist())})
        model.train(was_training)

    def of(self, batch: dict) -> torch.Tensor:
        ids, lengths = batch["input_ids"], batch["attention_mask"].sum(-1).tolist()
        rows = ids.tolist()
        return torch.tensor([self.values[tuple(row[:n])] for row, n in zip(rows, lengths)], device=ids.device)


class ReferenceStates:
    """The model's own teacher, without a resident copy of it: its last hidden states at every
    forget row's answer positions, computed once before training, and a copy of its output
    layer, so that ``logits(batch)`` gives the logits the model had at those positions before
    unlearning (UNDIAL's teacher). Memory: answer tokens x hidden size in the model's dtype,
    plus one V x H output layer; for a model whose head is not a plain linear layer
    (:func:`unlearnbench.lm.modeling.decoder_and_head`) the logits themselves are stored
    (answer tokens x V)."""

    def __init__(self, model, encoded, device, batch_size: int, pad_id: int):
        from unlearnbench.lm.modeling import answer_states, collate

        unique = list(dict.fromkeys((tuple(ids), n) for ids, n in encoded))
        self.values: dict[tuple[int, ...], torch.Tensor] = {}
        was_training = model.training
        model.eval()
        with torch.no_grad():
            for start in range(0, len(unique), batch_size):
                chunk = unique[start : start + batch_size]
                states = answer_states(model, _to(collate([(list(ids), n) for ids, n in chunk], pad_id), device))
                for row, (ids, _) in enumerate(chunk):
                    self.values[ids] = states.hidden[states.rows == row].clone()
            self.weight = None if states.weight is None else states.weight.detach().clone()
            self.bias = None if states.bias is None else states.bias.detach().clone()
        model.train(was_training)

    def of(self, batch: dict) -> torch.Tensor:
        """The stored states of the batch's answer positions, row by row ([N, H], or [N, V])."""
        ids, lengths = batch["input_ids"], batch["attention_mask"].sum(-1).tolist()
        return torch.cat([self.values[tuple(row[:n])] for row, n in zip(ids.tolist(), lengths)]).to(ids.device)

    def logits(self, states: torch.Tensor) -> torch.Tensor:
        """The reference's float32 logits from stored ``states`` (a chunk of :meth:`of`)."""
        if self.weight is None:
            return states.float()
        return torch.nn.functional.linear(states, self.weight, self.bias).float()


class LossMethod(Method):
    """An LLM method defined by ``loss(model, forget, retain, reference, params)``.

    One optimiser step per ``grad_accum`` forget batches; when the method needs retain data,
    a retain batch of the same size is drawn alongside each forget batch. ``reference`` is
    what :meth:`prepare` returns: with ``"reference"`` in ``needs``, a :class:`ReferenceLogprobs`
    (the log-probabilities the model gave each forget batch before unlearning,
    ``reference.of(batch)``).
    """

    @abc.abstractmethod
    def loss(self, model, forget: dict, retain: dict | None, reference, params) -> torch.Tensor:
        """The objective minimised at each step."""

    def forget_batches(self, data: UnlearnData, params, seed: int):
        """Batches of the forget set; a method that needs more per step (e.g. IdkDPO's
        alternative answers) returns an object with the same ``forever()``, ``len()`` and ``pad_id``."""
        return QABatches(encode_rows(data.tokenizer, data.prompt_format, data.forget), params.batch_size,
                         data.tokenizer.pad_token_id, seed=seed)

    def reference_examples(self, forget) -> list:
        """The encoded examples whose reference log-probabilities the loss asks for."""
        return list(forget.encoded)

    def prepare(self, model, params, ctx: RunContext, forget=None) -> Any:
        """What the loss is given as ``reference``, computed from the model before training
        starts (``forget``: the forget batches). Default: with ``"reference"`` in ``needs``, a
        :class:`ReferenceLogprobs` of :meth:`reference_examples`; else nothing. A method
        overrides it for other state (RMU: a copy of the weights it updates and its steering
        vector; UNDIAL: the teacher's answer states; PDU: its dual variable)."""
        if "reference" in self.needs:
            return ReferenceLogprobs(model, self.reference_examples(forget), ctx.device, params.batch_size, forget.pad_id)
        return None

    def trainable(self, model, params) -> list | None:
        """The parameters training updates (None: every trainable one); the others are frozen
        for the run (no gradients, no optimiser state) and trainable again afterwards."""
        return None

    def unlearn(self, model, data: UnlearnData, params, ctx: RunContext):
        pad = data.tokenizer.pad_token_id
        forget = self.forget_batches(data, params, ctx.seed)
        retain = None
        if "retain" in self.needs:
            retain = QABatches(encode_rows(data.tokenizer, data.prompt_format, data.retain), params.batch_size, pad, seed=ctx.seed + 1)
        model = model.to(ctx.device)
        accum = max(1, int(params.grad_accum))
        try:
            reference = self.prepare(model, params, ctx, forget)
            chosen = self.trainable(model, params)
            if chosen is not None:
                keep = {id(p) for p in chosen}
                for p in model.parameters():
                    p.requires_grad_(id(p) in keep)
            model = _trainable(model, params, ctx)
            n_steps = math.ceil(params.epochs * len(forget) / accum)
            retain_iter = retain.forever() if retain is not None else None

            def steps():
                for batch in forget.forever():
                    yield _to(batch, ctx.device), (_to(next(retain_iter), ctx.device) if retain_iter else None)

            def step_loss(m, item):
                f, r = item
                return self.loss(m, f, r, reference, params)

            config = TrainConfig(
                lr=params.lr, epochs=params.epochs, batch_size=params.batch_size, warmup_fraction=params.warmup_fraction,
                weight_decay=params.weight_decay, grad_clip=params.grad_clip, schedule=params.schedule,
            )
            train_loop(model, steps(), n_steps, step_loss, config, description=f"unlearning ({self.name})",
                       quiet=ctx.quiet, accumulate=accum)
        except torch.OutOfMemoryError:
            raise UserError(
                f"Out of {ctx.device.type.upper()} memory while unlearning with {self.name} (batch_size "
                f"{params.batch_size}). Lower --param batch_size and raise grad_accum (the effective batch is "
                "their product), set --param gradient_checkpointing=true, or train a LoRA adapter "
                "(--param lora_r=16).") from None
        finally:
            for p in model.parameters():  # every weight trainable again, as the target was
                p.requires_grad_(True)
        return _finished(model, params, ctx)


def _trainable(model, params, ctx: RunContext):
    """The model as training sees it: gradient checkpointing on, and wrapped in a LoRA
    adapter (peft) when ``lora_r > 0`` (only the adapter's weights then train)."""
    if params.gradient_checkpointing:
        model.config.use_cache = False
        _checkpointing(model, True)
    if params.lora_r > 0:
        try:
            from peft import LoraConfig, get_peft_model
        except ImportError:
            raise UserError("--param lora_r needs the peft library: pip install 'unlearnbench[lora]'.") from None
        targets = params.lora_targets if params.lora_targets == "all-linear" else [
            t.strip() for t in params.lora_targets.split(",") if t.strip()]
        config = LoraConfig(r=params.lora_r, lora_alpha=params.lora_alpha, lora_dropout=params.lora_dropout,
                            target_modules=targets, task_type="CAUSAL_LM")
        import torch

        # peft draws the adapter's initial weights from torch's global generator: seeded from the
        # run's seed (and the caller's stream left as it was), so a LoRA run is the same in a fresh
        # process and in a sweep's process after other jobs
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(ctx.seed)
            model = get_peft_model(model, config)
        trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
        ctx.info["lora"] = {"r": params.lora_r, "alpha": params.lora_alpha, "targets": params.lora_targets,
                            "trainable_parameters": trainable}
    return model


def _checkpointing(model, on: bool) -> None:
    """Activation (gradient) checkpointing on or off, non-reentrant, by the name the installed
    transformers gives it (5.x renamed ``gradient_checkpointing_*`` to ``activation_checkpointing_*``
    and warns on the old names)."""
    if hasattr(model, "activation_checkpointing_enable"):
        if on:
            model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
        else:
            model.activation_checkpointing_disable()
    elif on:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    else:
        model.gradient_checkpointing_disable()


def _finished(model, params, ctx: RunContext):
    """After training: gradient checkpointing off; a LoRA adapter kept for --save-model
    (``ctx.artifacts["lora"]``, a CPU copy of the adapter alone) and merged into the weights,
    so that everything downstream scores a plain model."""
    if params.lora_r > 0:
        from unlearnbench.lm.modeling import LoraAdapter

        ctx.artifacts["lora"] = LoraAdapter.of(model)
        model = model.merge_and_unload()
        for p in model.parameters():  # as the target was: every weight trainable (GradNorm, relearning)
            p.requires_grad_(True)
    if params.gradient_checkpointing:
        _checkpointing(model, False)
        model.config.use_cache = True
    return model.eval()


def _to(batch: dict, device) -> dict:
    return {k: _to(v, device) if isinstance(v, dict) else v.to(device) for k, v in batch.items()}
