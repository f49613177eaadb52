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
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from pydantic import ConfigDict, PydanticSchemaGenerationError, PydanticUserError, TypeAdapter, ValidationError

from unlearnbench.errors import UnknownNameError, UserError
from unlearnbench.lm.modeling import PromptFormat, QABatches, TrainConfig, clone_model, encode_rows, train_loop


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


def parse_params(params_cls: type, raw: dict[str, str]) -> Any:
    """Typed hyperparameters from ``key=value`` strings, each converted by its field's annotation
    (see :func:`_convert`) or refused naming the parameter, the value and the type; unknown keys
    list the known ones."""
    fields = {f.name: f for f in dataclasses.fields(params_cls)}
    hints = typing.get_type_hints(params_cls)
    values = {}
    for key, value in raw.items():
        if key not in fields:
            raise UnknownNameError("parameter", key, fields)
        values[key] = _convert(value, hints[key], key) if isinstance(value, str) else value
    return params_cls(**values)


@dataclass(frozen=True)
class LLMParams:
    """Shared hyperparameters of loss-defined LLM methods."""

    lr: float = 1e-3
    epochs: int = 5
    batch_size: int = 32
    warmup_fraction: float = 0.0
    weight_decay: float = 0.0
    grad_clip: float = 1.0


class LossMethod(Method):
    """An LLM method defined by ``loss(model, forget, retain, reference, params)``.

    One optimiser step per forget batch; when the method needs retain data, a retain batch of
    the same size is drawn alongside each forget batch. ``reference`` is a frozen copy of the
    model before unlearning (only when ``"reference"`` is in ``needs``).
    """

    @abc.abstractmethod
    def loss(self, model, forget: dict, retain: dict | None, reference, params) -> torch.Tensor:
        """The objective minimised at each step."""

    def forget_batches(self, data: UnlearnData, params, seed: int):
        """Batches of the forget set; a method that needs more per step (e.g. IdkDPO's
        alternative answers) returns an object with the same ``forever()``/``len()``."""
        return QABatches(encode_rows(data.tokenizer, data.prompt_format, data.forget), params.batch_size,
                         data.tokenizer.pad_token_id, seed=seed)

    def unlearn(self, model, data: UnlearnData, params, ctx: RunContext):
        pad = data.tokenizer.pad_token_id
        forget = self.forget_batches(data, params, ctx.seed)
        retain = None
        if "retain" in self.needs:
            retain = QABatches(encode_rows(data.tokenizer, data.prompt_format, data.retain), params.batch_size, pad, seed=ctx.seed + 1)
        model = model.to(ctx.device)  # first, so the frozen reference lives on the same device
        reference = None
        if "reference" in self.needs:
            reference = clone_model(model).eval()
            for p in reference.parameters():
                p.requires_grad_(False)
        n_steps = params.epochs * len(forget)
        retain_iter = retain.forever() if retain is not None else None

        def steps():
            for batch in forget.forever():
                yield _to(batch, ctx.device), (_to(next(retain_iter), ctx.device) if retain_iter else None)

        def step_loss(m, item):
            f, r = item
            return self.loss(m, f, r, reference, params)

        config = TrainConfig(
            lr=params.lr, epochs=params.epochs, batch_size=params.batch_size, warmup_fraction=params.warmup_fraction,
            weight_decay=params.weight_decay, grad_clip=params.grad_clip, schedule="constant",
        )
        train_loop(model, steps(), n_steps, step_loss, config, description=f"unlearning ({self.name})", quiet=ctx.quiet)
        return model


def _to(batch: dict, device) -> dict:
    return {k: _to(v, device) if isinstance(v, dict) else v.to(device) for k, v in batch.items()}
