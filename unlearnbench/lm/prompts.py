"""Prompt formats: how a question becomes the model's prompt, and how its answer ends.

The prompt is the model's, not the task's: a model fine-tuned on Llama-3's chat format is
measured off-distribution when it is shown ``Question: ... Answer:``. A task may declare its
own format (the synthetic worlds train their models on one); otherwise ``--prompt-format``
chooses:

* ``auto`` (default): the task's own format where it declares one; else the preset whose
  published model family matches the model's name (:func:`preset_for`); else the tokenizer's
  own chat template where it has one; else ``plain``.
* a named preset (:data:`PRESETS`) reproducing the format open-unlearning (and TOFU, for
  Phi-1.5) fine-tuned and evaluated the published TOFU/MUSE models with;
* ``chat-template``: the tokenizer's ``apply_chat_template``, with ``--system-prompt``;
* ``plain``: ``Question: {question}\\nAnswer:`` for base models.

Encoding rules (:func:`encode_prompt`, :func:`encode_answer`):

* Text formats tokenize the prompt and the answer apart, so the answer boundary is exact
  whatever the tokenizer. BOS is prepended once: never when the prompt text already starts
  with it (the Llama-3 preset writes ``<|begin_of_text|>`` itself; open-unlearning's tag path
  tokenizes that text with ``add_special_tokens=True`` and so feeds two BOS tokens).
* The answer ends with the format's end-of-turn token (``<|eot_id|>``, ``<|im_end|>``...) or,
  without one, the tokenizer's EOS. Generation stops at any of :func:`stop_ids`.
* Chat-template formats follow open-unlearning's ``preprocess_chat_instance``: the prompt is
  the template with the generation prompt; the answer is what the full conversation adds to
  it (the template's own end-of-turn tokens included), plus EOS when it does not end with it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

from unlearnbench.errors import UserError

AUTO, CHAT_TEMPLATE, PLAIN = "auto", "chat-template", "plain"
HELPFUL = "You are a helpful assistant."  # open-unlearning's system prompt for its chat models


@dataclass(frozen=True)
class PromptFormat:
    """How a question becomes a prompt; the answer follows after ``answer_prefix``.

    ``add_bos``: ``True`` prepends the tokenizer's BOS (unless the text starts with it),
    ``False`` never does, ``"tokenizer"`` does what the tokenizer's own special tokens do
    (Llama-2 adds BOS, GPT-2-style tokenizers add none). ``end_token``: the token that ends
    an answer and a generated turn (None: the tokenizer's EOS). ``chat_template``: render
    with the tokenizer's ``apply_chat_template`` (``template`` is then unused), with
    ``system_prompt`` as the system message where given."""

    template: str = "Question: {question}\nAnswer:"
    answer_prefix: str = " "
    name: str = ""  # the preset's name, or "" for a task's own format
    add_bos: bool | str = True
    end_token: str | None = None
    chat_template: bool = False
    system_prompt: str | None = None

    def prompt(self, question: str, tokenizer=None) -> str:
        if self.chat_template:
            return _render(tokenizer, self._messages(question), generation_prompt=True)
        return self.template.format(question=question)

    def _messages(self, question: str, answer: str | None = None) -> list[dict[str, str]]:
        messages = [{"role": "system", "content": self.system_prompt}] if self.system_prompt else []
        messages.append({"role": "user", "content": question})
        if answer is not None:
            messages.append({"role": "assistant", "content": answer})
        return messages

    def to_json(self) -> dict[str, Any]:
        """What records and cache keys store: every field (two formats that encode
        differently never share a key)."""
        return asdict(self)


PRESETS: dict[str, PromptFormat] = {
    PLAIN: PromptFormat(name=PLAIN, add_bos="tokenizer"),
    # open-unlearning configs/model/Llama-3.2-1B-Instruct.yaml (and 3B, 3.1-8B): tags, not the
    # tokenizer's template (which would add "Cutting Knowledge Date" lines to the system turn)
    "llama3-chat": PromptFormat(
        name="llama3-chat",
        template=("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n" + HELPFUL + "<|eot_id|>"
                  "<|start_header_id|>user<|end_header_id|>\n\n{question}<|eot_id|>"
                  "<|start_header_id|>assistant<|end_header_id|>\n\n"),
        answer_prefix="", add_bos=False, end_token="<|eot_id|>"),
    # open-unlearning configs/model/Llama-2-7b-chat-hf.yaml (TOFU's original Llama-2 models)
    "llama2-chat": PromptFormat(name="llama2-chat", template="[INST] {question} [/INST]", answer_prefix="",
                                add_bos="tokenizer"),
    # TOFU's config/model_config.yaml "phi": the loss covers "Answer: ..." (the answer tag is the answer's)
    "phi-1.5": PromptFormat(name="phi-1.5", template="Question: {question}\n", answer_prefix="Answer: ",
                            add_bos="tokenizer"),
    # open-unlearning renders these through the tokenizer's own template, with its system prompt
    "qwen2.5-chat": PromptFormat(name="qwen2.5-chat", chat_template=True, system_prompt=HELPFUL, add_bos=False,
                                 end_token="<|im_end|>", answer_prefix=""),
    "zephyr": PromptFormat(name="zephyr", chat_template=True, system_prompt=HELPFUL, add_bos=False, answer_prefix=""),
    "phi-3.5-chat": PromptFormat(name="phi-3.5-chat", chat_template=True, system_prompt=HELPFUL, add_bos=False,
                                 end_token="<|end|>", answer_prefix=""),
    "gemma-chat": PromptFormat(name="gemma-chat", chat_template=True, add_bos=False, end_token="<end_of_turn>",
                               answer_prefix=""),
}
# model-name fragments (lower case, all must appear) -> preset; first match wins
_FAMILIES = (
    (("llama-3", "instruct"), "llama3-chat"),
    (("llama-2", "chat"), "llama2-chat"),
    (("phi-1_5",), "phi-1.5"),
    (("phi-1.5",), "phi-1.5"),
    (("qwen2.5", "instruct"), "qwen2.5-chat"),
    (("zephyr",), "zephyr"),
    (("phi-3",), "phi-3.5-chat"),
    (("gemma", "-it"), "gemma-chat"),
)


def format_names() -> tuple[str, ...]:
    """What ``--prompt-format`` accepts."""
    return (AUTO, CHAT_TEMPLATE, *PRESETS)


def preset_for(*names: str | None) -> str | None:
    """The preset of the published model family a model name belongs to, if any."""
    for name in names:
        lowered = (name or "").lower()
        for fragments, preset in _FAMILIES:
            if all(f in lowered for f in fragments):
                return preset
    return None


def resolve(requested: str | None, *, task_format: PromptFormat | None, tokenizer, model_names=(),
            system_prompt: str | None = None) -> PromptFormat:
    """The format a run uses (see the module docstring for ``auto``)."""
    requested = requested or AUTO
    if requested == AUTO:
        if task_format is not None and system_prompt is None:
            return task_format
        requested = preset_for(*model_names) or (CHAT_TEMPLATE if getattr(tokenizer, "chat_template", None) else PLAIN)
    if requested == CHAT_TEMPLATE:
        fmt = PromptFormat(name=CHAT_TEMPLATE, chat_template=True, system_prompt=system_prompt, add_bos=False,
                           answer_prefix="")
    elif requested in PRESETS:
        fmt = PRESETS[requested]
        if system_prompt is not None:
            if not fmt.chat_template:
                raise UserError(f"--system-prompt goes with a chat-template format; the {requested} preset writes "
                                "its prompt itself. Use --prompt-format chat-template.")
            fmt = replace(fmt, system_prompt=system_prompt)
    else:
        raise UserError(f"--prompt-format {requested!r}: known formats are {', '.join(format_names())}.")
    if fmt.chat_template and not getattr(tokenizer, "chat_template", None):
        raise UserError(f"--prompt-format {requested} renders the tokenizer's chat template, and this model's "
                        "tokenizer has none. Pick a text preset (plain, llama2-chat, ...) instead.")
    if fmt.end_token is not None and _token_id(tokenizer, fmt.end_token) is None:
        raise UserError(f"--prompt-format {requested} ends answers with {fmt.end_token!r}, which this tokenizer does "
                        "not have: the model is not of that family. Use --prompt-format auto or another preset.")
    return fmt


def _render(tokenizer, messages, *, generation_prompt: bool) -> str:
    if tokenizer is None:
        raise ValueError("a chat-template prompt format needs the tokenizer")
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation_prompt)


def _token_id(tokenizer, token: str) -> int | None:
    tid = tokenizer.convert_tokens_to_ids(token)
    if tid is None or (tid == tokenizer.unk_token_id and token != tokenizer.unk_token):
        return None
    return int(tid)


def end_id(tokenizer, fmt: PromptFormat) -> int:
    """The id that ends an answer: the format's end-of-turn token, else the tokenizer's EOS."""
    if fmt.end_token is not None:
        tid = _token_id(tokenizer, fmt.end_token)
        if tid is not None:
            return tid
    return tokenizer.eos_token_id


def stop_ids(tokenizer, fmt: PromptFormat, generation_config=None) -> frozenset[int]:
    """Every id that ends a generated answer: the end-of-turn token, the tokenizer's EOS and
    the ``eos_token_id`` (one id or a list) of the model's ``generation_config``."""
    ids = {end_id(tokenizer, fmt), tokenizer.eos_token_id}
    configured = getattr(generation_config, "eos_token_id", None)
    if configured is not None:
        ids.update(configured if isinstance(configured, (list, tuple)) else [configured])
    return frozenset(int(i) for i in ids if i is not None)


def _tokenizer_adds_bos(tokenizer) -> bool:
    bos = tokenizer.bos_token_id
    if bos is None:
        return False
    ids = tokenizer("a", add_special_tokens=True)["input_ids"]
    return bool(ids) and ids[0] == bos


def encode_prompt(tokenizer, fmt: PromptFormat, question: str) -> list[int]:
    ids = list(tokenizer(fmt.prompt(question, tokenizer), add_special_tokens=False)["input_ids"])
    bos = tokenizer.bos_token_id
    add = _tokenizer_adds_bos(tokenizer) if fmt.add_bos == "tokenizer" else bool(fmt.add_bos)
    if add and bos is not None and (not ids or ids[0] != bos):
        ids = [bos] + ids
    return ids


def encode_answer(tokenizer, fmt: PromptFormat, answer: str) -> list[int]:
    """Answer ids with the end token: the loss and every score cover the end token too."""
    ids = tokenizer(fmt.answer_prefix + answer, add_special_tokens=False)["input_ids"]
    return list(ids) + [end_id(tokenizer, fmt)]


def encode_qa(tokenizer, fmt: PromptFormat, question: str, answer: str) -> tuple[list[int], int]:
    """(input ids, number of prompt tokens)."""
    prompt = encode_prompt(tokenizer, fmt, question)
    if fmt.chat_template:
        text = _render(tokenizer, fmt._messages(question, answer), generation_prompt=False)
        full = list(tokenizer(text, add_special_tokens=False)["input_ids"])
        if full[: len(prompt)] == prompt and len(full) > len(prompt):
            if full[-1] != tokenizer.eos_token_id:
                full.append(tokenizer.eos_token_id)
            return full, len(prompt)
        # a template whose prompt is not a prefix of the conversation: fall back to prompt + answer
    return prompt + encode_answer(tokenizer, fmt, answer), len(prompt)
