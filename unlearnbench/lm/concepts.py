"""Concept vectors: parametric knowledge traces in the MLP value vectors.

ConceptVectors (Hong et al., 2024, "Intrinsic Evaluation of Unlearning Using Parametric
Knowledge Traces") reads the MLP of a transformer block as a key-value memory,
``MLP(x) = sum_j m_j(x) v_j``: ``m_j(x)`` is the activation entering the down projection at
feature ``j`` and ``v_j`` the j-th value vector (a column of ``down_proj.weight`` for a
``Linear``, a row of GPT-2's ``Conv1D``). Projecting ``v_j`` onto the vocabulary,
``E v_j`` with ``E`` the output embedding and no final norm, shows which tokens it promotes;
a *concept vector* is one whose top-k tokens are the tokens of a concept.

This module locates such vectors (:func:`vocab_topk`, :func:`concept_token_ids`,
:func:`locate`), reads them (:func:`value_vector`), measures how strongly inputs use them
(:func:`coefficients`) and perturbs them (:func:`noised`, :func:`add_noise`) to validate that
a located vector matters for its concept. Intrinsic metrics compare a vector before and after
unlearning; the ``needle`` method edits only the located vectors.

The vocabulary projection is computed in chunks of value vectors so that only a
``[vocab, chunk]`` block of logits exists at a time: a 7B model's 32 x 11008 value vectors
against a 32k vocabulary would otherwise need 45 GB.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch

# (path components the module name ends with) for the down projection of each layout.
# A Linear stores value vectors as columns (axis 1), a transformers Conv1D as rows (axis 0).
_SUFFIXES: tuple[tuple[str, ...], ...] = (
    ("mlp", "down_proj"),  # Llama, Mistral, Qwen, Gemma
    ("mlp", "c_proj"),  # GPT-2 (Conv1D); GPT-BigCode (Linear). attn.c_proj never matches
    ("mlp", "dense_4h_to_h"),  # GPT-NeoX, Falcon, Bloom
    ("fc2",),  # OPT (layers.N.fc2), Phi (mlp.fc2)
    ("mlp", "fc_out"),  # GPT-J, CodeGen
)
_SUPPORTED = (
    "mlp.down_proj (Llama, Mistral, Qwen, Gemma), mlp.c_proj (GPT-2), mlp.dense_4h_to_h "
    "(GPT-NeoX, Falcon, Bloom), fc2 (OPT, Phi), mlp.fc_out (GPT-J)"
)


@dataclass(frozen=True)
class ValueMatrix:
    """The down projection of one MLP: value vector ``j`` is ``weight.select(axis, j)``."""

    layer: int
    name: str  # module path, e.g. "model.layers.1.mlp.down_proj"
    axis: int


def _conv1d_type() -> type | None:
    try:
        from transformers.pytorch_utils import Conv1D
    except ImportError:  # transformers is a dependency, but keep this module importable alone
        return None
    return Conv1D


def _axis(module: torch.nn.Module) -> int | None:
    """Which axis of the weight indexes value vectors, or None for an unsupported module type."""
    conv1d = _conv1d_type()
    if conv1d is not None and isinstance(module, conv1d):
        return 0  # weight [inter, hidden]
    if isinstance(module, torch.nn.Linear):
        return 1  # weight [hidden, inter]
    return None


def _layer_index(name: str) -> int | None:
    """The block index: the first all-digit component of the module path."""
    for part in name.split("."):
        if re.fullmatch(r"\d+", part):
            return int(part)
    return None


def value_matrices(model) -> list[ValueMatrix]:
    """The MLP down projections of ``model`` in layer order.

    Detected by module type (``Linear`` or transformers' ``Conv1D``) and name suffix (path
    components, so GPT-2's ``attn.c_proj`` does not match ``mlp.c_proj``). When the model has
    an output embedding, only projections that write into its hidden size are kept, so an
    encoder tower of another width (a vision tower's ``fc2``) is not mistaken for the LM's.
    """
    out_emb = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    hidden = out_emb.weight.shape[1] if out_emb is not None else None
    found = []
    for name, module in model.named_modules():
        parts = tuple(name.split("."))
        if not any(parts[-len(s) :] == s for s in _SUFFIXES):
            continue
        axis, layer = _axis(module), _layer_index(name)
        if axis is None or layer is None:
            continue
        if hidden is not None and module.weight.shape[1 - axis] != hidden:
            continue
        found.append(ValueMatrix(layer=layer, name=name, axis=axis))
    if not found:
        raise ValueError(
            f"No MLP down projection found in {type(model).__name__}. Supported layouts: {_SUPPORTED}, "
            "as torch.nn.Linear or transformers Conv1D modules inside numbered layers."
        )
    return sorted(found, key=lambda vm: (vm.layer, vm.name))


def _weight(model, vm: ValueMatrix) -> torch.Tensor:
    return model.get_submodule(vm.name).weight


def value_vector(model, vm: ValueMatrix, index: int) -> torch.Tensor:
    """A detached float32 copy of value vector ``index`` on the CPU, shape [hidden]
    (a snapshot: it does not change when the model is edited afterwards)."""
    return _weight(model, vm).detach().select(vm.axis, index).to("cpu", torch.float32, copy=True)


def n_value_vectors(model, vm: ValueMatrix) -> int:
    """How many value vectors the matrix holds (the MLP's intermediate size)."""
    return int(_weight(model, vm).shape[vm.axis])


def default_k(vocab_size: int) -> int:
    """Top-k size for a vocabulary: 200 for LLaMA-2's 32000 tokens as in the paper, scaled
    with the vocabulary and kept within [10, 200]."""
    return max(10, min(200, round(vocab_size / 160)))


# ---------------------------------------------------------------------------- concept tokens

STOPWORDS: frozenset[str] = frozenset(
    """
    a about above after again against all am an and any are as at be because been before being
    below between both but by can could did do does doing down during each few for from further
    had has have having he her here hers herself him himself his how i if in into is it its itself
    just me more most my myself no nor not now of off on once only or other our ours ourselves out
    over own same she should so some such than that the their theirs them themselves then there
    these they this those through to too under until up very was we were what when where which
    while who whom why will with would you your yours yourself yourselves also s t d ll m re ve
    """.split()
)


def _is_content_token(text: str) -> bool:
    """True unless the decoded token is empty, a stopword, or has no letter or digit."""
    word = text.strip().lower()
    return bool(word) and word not in STOPWORDS and any(c.isalnum() for c in word)


def concept_token_ids(tokenizer, words: Iterable[str]) -> set[int]:
    """The token ids that spell ``words`` (words or phrases), with and without a leading space.

    Special tokens, stopwords and punctuation-only or empty tokens are dropped: they occur in
    every text and would let any vector "match" any concept.
    """
    special = set(tokenizer.all_special_ids)
    ids: set[int] = set()
    for word in words:
        for text in (word, " " + word):
            ids.update(tokenizer(text, add_special_tokens=False)["input_ids"])
    return {i for i in ids if i not in special and _is_content_token(tokenizer.decode([i]))}


# ---------------------------------------------------------------------------- vocabulary projection


def _output_embedding(model) -> torch.Tensor:
    emb = model.get_output_embeddings()
    if emb is None:
        raise ValueError(f"{type(model).__name__} has no output embedding to project value vectors onto.")
    return emb.weight.detach()


def _project_topk(emb: torch.Tensor, vectors: torch.Tensor, k: int) -> torch.Tensor:
    """Top-k token ids of ``emb @ v`` for each row v of ``vectors`` [n, hidden] -> [n, k] (CPU)."""
    logits = emb @ vectors.to(emb.device, emb.dtype).T  # [V, n]: the only vocabulary-sized block
    return logits.topk(k, dim=0).indices.T.to("cpu", torch.long)


def _check_k(k: int, vocab: int) -> None:
    if not 1 <= k <= vocab:
        raise ValueError(f"k={k} must be between 1 and the vocabulary size {vocab}.")


@torch.no_grad()
def vocab_topk(model, k: int, *, chunk: int = 1024) -> dict[int, torch.LongTensor]:
    """For each value matrix (key: its position in :func:`value_matrices`), the top-k token ids
    of ``E v_j`` for every value vector, shape [n_vectors, k] on the CPU.

    Computed on the model's device and in its dtype, ``chunk`` vectors at a time.
    """
    emb = _output_embedding(model)
    _check_k(k, emb.shape[0])
    out = {}
    for m, vm in enumerate(value_matrices(model)):
        weight = _weight(model, vm).detach()
        n = weight.shape[vm.axis]
        parts = []
        for start in range(0, n, chunk):
            block = weight.narrow(vm.axis, start, min(chunk, n - start))
            parts.append(_project_topk(emb, block.T if vm.axis == 1 else block, k))
        out[m] = torch.cat(parts)
    return out


@torch.no_grad()
def topk_of(model, vectors: torch.Tensor, k: int, *, chunk: int = 1024) -> torch.LongTensor:
    """Top-k token ids of ``E v`` for given vectors [n, hidden] (e.g. a vector after
    unlearning), the same projection as :func:`vocab_topk`; [n, k] on the CPU."""
    emb = _output_embedding(model)
    _check_k(k, emb.shape[0])
    vectors = vectors.detach().reshape(-1, emb.shape[1])
    parts = [_project_topk(emb, vectors[s : s + chunk], k) for s in range(0, vectors.shape[0], chunk)]
    return torch.cat(parts) if parts else torch.empty((0, k), dtype=torch.long)


def locate(
    topk: Mapping[int, torch.Tensor],
    concept_ids: Mapping[str, set[int]],
    *,
    matrices: Sequence[ValueMatrix],
    min_overlap: int = 2,
    per_concept: int = 1,
) -> list[dict]:
    """The concept vectors: for each concept, the value vectors whose top-k shares most tokens
    with the concept's ids.

    ``topk`` is :func:`vocab_topk`'s output and ``matrices`` the :func:`value_matrices` list
    it was computed from (its keys index into it; the list supplies the layer). Each
    ``(matrix, j)`` scores ``|top-k ∩ concept_ids|``; a concept gets its best ``per_concept``
    candidates scoring at least ``min_overlap``, ties broken by lower matrix then lower index
    so the choice is deterministic. Returns dicts ``{"concept", "matrix", "layer", "index",
    "score"}``, concepts in the given order, best first; a concept with no candidate is absent.
    """
    found = []
    for concept, ids in concept_ids.items():
        if not ids:
            continue
        wanted = torch.tensor(sorted(ids), dtype=torch.long)
        candidates: list[tuple[int, int, int]] = []  # (-score, matrix, index)
        for m in sorted(topk):
            scores = torch.isin(topk[m], wanted).sum(dim=1)  # top-k ids are distinct per row
            # the best per_concept of this matrix, lower index first among equal scores
            order = torch.sort(-scores, stable=True).indices[:per_concept]
            candidates.extend((-int(scores[j]), m, int(j)) for j in order if scores[j] >= min_overlap)
        for neg_score, m, j in sorted(candidates)[:per_concept]:
            found.append({"concept": concept, "matrix": m, "layer": matrices[m].layer, "index": j, "score": -neg_score})
    return found


# ---------------------------------------------------------------------------- activations and noise


@torch.no_grad()
def coefficients(model, vm: ValueMatrix, indices: Sequence[int], batches: Iterable[Mapping[str, torch.Tensor]]) -> np.ndarray:
    """Mean activation coefficient ``m_j(x)`` of each value vector in ``indices``, shape [len(indices)].

    ``m_j`` is the input of the down projection at feature ``j``, read by a forward pre-hook,
    averaged over the positions where ``attention_mask`` is 1 and, when a batch has
    ``labels``, where the label is not -100 (the answer tokens). The model runs in eval
    mode (no dropout) and is put back in its previous mode. NaN when no position counts.
    """
    module = model.get_submodule(vm.name)
    cols = torch.as_tensor(list(indices), dtype=torch.long)
    total = torch.zeros(len(cols), dtype=torch.float64)
    count = 0
    selected: list[torch.Tensor] = []  # the boolean position mask of the batch being run

    def hook(_module, args):
        nonlocal total, count
        x = args[0]  # [batch, seq, intermediate]
        picked = x[selected[0]][:, cols.to(x.device)]
        total += picked.double().sum(0).cpu()
        count += picked.shape[0]

    device = next(model.parameters()).device
    was_training = model.training
    handle = module.register_forward_pre_hook(hook)
    try:
        model.eval()
        for batch in batches:
            input_ids = batch["input_ids"].to(device)
            mask = batch["attention_mask"].to(device)
            keep = mask == 1
            if batch.get("labels") is not None:
                keep = keep & (batch["labels"].to(device) != -100)
            selected[:] = [keep]
            model(input_ids=input_ids, attention_mask=mask)
    finally:
        handle.remove()
        model.train(was_training)
    if count == 0:
        return np.full(len(cols), np.nan)
    return (total / count).numpy()


def _unique(vectors: Iterable[tuple[ValueMatrix, int]]) -> list[tuple[ValueMatrix, int]]:
    return list(dict.fromkeys((vm, int(j)) for vm, j in vectors))


@torch.no_grad()
def add_noise(model, vectors: Iterable[tuple[ValueMatrix, int]], scale: float, seed: int) -> list[torch.Tensor]:
    """Add Gaussian noise of norm ``scale * ||v_j||`` to each listed value vector, in place.

    Each distinct ``(matrix, index)`` is noised once. The noise is drawn in float32 on the CPU
    from a generator seeded with ``seed`` (reproducible on any device). Returns the original
    vectors (clones in the weight's dtype and device), in the order of the distinct pairs.
    """
    gen = torch.Generator().manual_seed(seed)
    originals = []
    for vm, j in _unique(vectors):
        column = _weight(model, vm).select(vm.axis, j)
        originals.append(column.detach().clone())
        v = column.detach().float().cpu()
        noise = torch.randn(v.shape, generator=gen, dtype=torch.float32)
        noise *= scale * v.norm() / noise.norm().clamp(min=1e-12)
        column.add_(noise.to(column.device, column.dtype))
    return originals


@contextlib.contextmanager
def noised(model, vectors: Iterable[tuple[ValueMatrix, int]], scale: float, seed: int) -> Iterator[None]:
    """Within the block, the listed value vectors carry noise of norm ``scale * ||v_j||``
    (see :func:`add_noise`); on exit, even on an exception, the exact original values are
    copied back (bit-identical)."""
    pairs = _unique(vectors)
    originals = [_weight(model, vm).detach().select(vm.axis, j).clone() for vm, j in pairs]
    try:
        add_noise(model, pairs, scale, seed)
        yield
    finally:
        with torch.no_grad():
            for (vm, j), original in zip(pairs, originals):
                _weight(model, vm).select(vm.axis, j).copy_(original)


# ------------------------------------------------------------------ locate and validate
NOISE_SCALE = 10.0  # validation noise norm relative to the vector's norm
MIN_OVERLAP = 2  # concept tokens a candidate's top-k must contain
CANDIDATES = 3  # the most concept-specific candidates of each concept that are validated
VALIDATION_RATIO = 2.0  # concept NLL must rise this many times more than unrelated NLL
MIN_VALIDATION_DELTA = 0.02  # ... and by at least this many nats per token


def qa_batches(tokenizer, fmt, pairs, batch_size: int = 16):
    from unlearnbench.lm.modeling import QABatches, encode_rows

    rows = [{"question": q, "answer": a} for q, a in pairs]
    return QABatches(encode_rows(tokenizer, fmt, rows), batch_size, tokenizer.pad_token_id, seed=0).epoch(0)


@torch.no_grad()
def mean_answer_nll(model, tokenizer, fmt, pairs) -> float:
    """Mean over (question, answer) pairs of the mean per-token answer NLL."""
    device = next(model.parameters()).device
    per_example = []
    for batch in qa_batches(tokenizer, fmt, pairs):
        batch = {k: v.to(device) for k, v in batch.items()}
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, :-1].float()
        labels = batch["labels"][:, 1:]
        mask = labels != -100
        nll = torch.nn.functional.cross_entropy(logits.transpose(1, 2), labels.clamp(min=0), reduction="none")
        per_example += ((nll * mask).sum(1) / mask.sum(1).clamp(min=1)).tolist()
    return float(np.mean(per_example))


def all_coefficients(model, tokenizer, fmt, vm: ValueMatrix, pairs) -> np.ndarray:
    """Mean activation coefficient of every value vector of ``vm`` on the answers of ``pairs``."""
    return coefficients(model, vm, list(range(n_value_vectors(model, vm))), qa_batches(tokenizer, fmt, pairs))


def find_concept_vectors(model, tokenizer, fmt, concepts: Sequence[Mapping], unrelated: Sequence[tuple[str, str]], *,
                         k: int | None = None, min_overlap: int = MIN_OVERLAP, candidates: int = CANDIDATES,
                         noise_scale: float = NOISE_SCALE, validate: bool = True, seed: int = 0) -> dict:
    """Locate and causally validate one value vector per concept.

    ``concepts``: ``{"name", "words", "prompts": [(question, answer), ...]}``, optionally with
    ``"layer"`` and ``"index"`` (a vector given by a ConceptVectors file: validated, not
    searched). Candidates share at least ``min_overlap`` tokens of their top-k vocabulary
    projection with the concept's words; the ``candidates`` most specific ones (mean
    |coefficient| on the concept's answers minus that on ``unrelated`` answers: a vector the
    concept never activates cannot hold it) get noise of norm ``noise_scale`` x their own,
    and count as validated when the concept's NLL rises by more than
    ``MIN_VALIDATION_DELTA`` and ``VALIDATION_RATIO`` times the unrelated NLL's rise. Each
    concept keeps its validated candidate with the largest margin. With ``validate=False``
    (cheaper; for vectors known to be right) each concept keeps its candidate with the
    largest overlap, then specificity, untested.

    Returns ``{"k", "candidates": [...every tested candidate...], "vectors": [...]}``; each
    vector has ``concept, matrix, layer, index, module, score, specificity,
    delta_concept, delta_unrelated, topk`` (its top-k token ids) and ``concept_ids``.
    """
    model = model.eval()
    matrices = value_matrices(model)
    k = k or default_k(_output_embedding(model).shape[0])
    by_name = {c["name"]: c for c in concepts}
    found: list[dict] = []
    given = [c for c in concepts if "layer" in c and "index" in c]
    if given:
        by_layer = {vm.layer: m for m, vm in enumerate(matrices)}
        for c in given:
            if int(c["layer"]) not in by_layer:
                raise ValueError(f"concept {c['name']!r}: layer {c['layer']} has no MLP value matrix "
                                 f"(layers {sorted(by_layer)})")
            found.append({"concept": c["name"], "matrix": by_layer[int(c["layer"])], "layer": int(c["layer"]),
                          "index": int(c["index"]), "score": None, "specificity": None})
    else:
        topk = vocab_topk(model, k)
        background = [all_coefficients(model, tokenizer, fmt, vm, unrelated) for vm in matrices]
        for c in concepts:
            hits = locate(topk, {c["name"]: concept_token_ids(tokenizer, c["words"])}, matrices=matrices,
                          min_overlap=min_overlap, per_concept=sum(len(t) for t in topk.values()))
            own = {m: all_coefficients(model, tokenizer, fmt, matrices[m], c["prompts"]) for m in {h["matrix"] for h in hits}}
            for h in hits:
                h["specificity"] = float(abs(own[h["matrix"]][h["index"]]) - abs(background[h["matrix"]][h["index"]]))
            found += sorted(hits, key=lambda h: -h["specificity"])[:candidates] if validate else hits
    if not validate:
        best_hit: dict[str, dict] = {}
        for h in found:
            key = (h["score"] or 0, h["specificity"] or 0.0)
            if h["concept"] not in best_hit or key > (best_hit[h["concept"]]["score"] or 0, best_hit[h["concept"]]["specificity"] or 0.0):
                best_hit[h["concept"]] = h
        found = [{**h, "delta_concept": None, "delta_unrelated": None, "valid": None, "margin": None}
                 for h in best_hit.values()]
        return {"k": k, "candidates": found, "vectors": [_describe(model, tokenizer, matrices, h, k, by_name) for h in found]}
    base_unrelated = mean_answer_nll(model, tokenizer, fmt, unrelated)
    tested = []
    for n, cand in enumerate(found):
        prompts = by_name[cand["concept"]]["prompts"]
        base = mean_answer_nll(model, tokenizer, fmt, prompts)
        with noised(model, [(matrices[cand["matrix"]], cand["index"])], noise_scale, seed=seed + n):
            d_concept = mean_answer_nll(model, tokenizer, fmt, prompts) - base
            d_unrelated = mean_answer_nll(model, tokenizer, fmt, unrelated) - base_unrelated
        valid = d_concept > MIN_VALIDATION_DELTA and d_concept > VALIDATION_RATIO * max(d_unrelated, 0.0)
        tested.append({**cand, "delta_concept": d_concept, "delta_unrelated": d_unrelated, "valid": bool(valid)})
    best: dict[str, dict] = {}
    for t in tested:
        margin = t["delta_concept"] - t["delta_unrelated"]
        if t["valid"] and (t["concept"] not in best or margin > best[t["concept"]]["margin"]):
            best[t["concept"]] = {**t, "margin": margin}
    return {"k": k, "candidates": tested, "vectors": [_describe(model, tokenizer, matrices, v, k, by_name) for v in best.values()]}


def _describe(model, tokenizer, matrices, hit: dict, k: int, by_name: Mapping) -> dict:
    vm = matrices[hit["matrix"]]
    v0 = value_vector(model, vm, hit["index"])
    return {**hit, "module": vm.name, "topk": topk_of(model, v0[None], k)[0].tolist(),
            "concept_ids": sorted(concept_token_ids(tokenizer, by_name[hit["concept"]]["words"]))}


# ------------------------------------------------------------------ ConceptVectors files
CONCEPT_VECTORS_HUB = "hub:YihuaiHong/ConceptVectors/llama2-7b_concepts.json"  # the benchmark's release (LLaMA-2-7B)
_PROMPT_CHARS = 400  # each concept prompt: a slice of the concept's Wikipedia text


def read_concept_vectors(source: str) -> list[dict]:
    """Concepts from a ConceptVectors benchmark file (Hong et al., 2024): a JSON list of
    ``{"Concept", "Layer", "Dim", "QA": [questions], "wikipedia_content": text, ...}``.

    ``source`` is a local path or ``hub:<owner>/<dataset>/<file>`` (a dataset file on the
    Hugging Face hub, fetched through the hub cache). Each concept keeps its name's words,
    the given layer and column (validated, never searched), and as prompts the first slices
    of its Wikipedia text (text format: empty question), or its questions if it has no text."""
    import json
    from pathlib import Path

    from unlearnbench.errors import DataError

    if source.startswith("hub:"):
        repo, _, filename = source[4:].rpartition("/")
        try:
            from huggingface_hub import hf_hub_download

            from unlearnbench.task import hub_unreachable

            path = Path(hf_hub_download(repo, filename, repo_type="dataset", local_files_only=hub_unreachable()))
        except Exception as exc:  # offline, unreachable, gated
            raise DataError(f"Could not fetch {filename!r} from the hub dataset {repo!r} ({type(exc).__name__}); "
                            "download the ConceptVectors JSON and pass its local path.") from None
    else:
        path = Path(source).expanduser()
        if not path.is_file():
            raise DataError(f"ConceptVectors file {str(path)!r} does not exist.")
    try:
        rows = json.loads(path.read_text())
    except ValueError as exc:
        raise DataError(f"{path}: not valid JSON ({exc}).") from None
    if not isinstance(rows, list) or not rows:
        raise DataError(f"{path}: expected a non-empty JSON list of concepts.")
    concepts = []
    for i, row in enumerate(rows):
        missing = [key for key in ("Concept", "Layer", "Dim") if not isinstance(row, dict) or key not in row]
        if missing:
            raise DataError(f"{path}: concept {i} lacks {', '.join(missing)} (a ConceptVectors entry has "
                            "Concept, Layer, Dim, QA and wikipedia_content).")
        text = str(row.get("wikipedia_content") or "")
        prompts = [("", text[j: j + _PROMPT_CHARS]) for j in range(0, min(len(text), 3 * _PROMPT_CHARS), _PROMPT_CHARS)]
        prompts = prompts or [("", str(q).strip()) for q in row.get("QA") or []]
        if not prompts:
            raise DataError(f"{path}: concept {row['Concept']!r} has neither wikipedia_content nor QA to prompt with.")
        concepts.append({"name": str(row["Concept"]), "words": str(row["Concept"]).split(),
                         "layer": int(row["Layer"]), "index": int(row["Dim"]), "prompts": prompts})
    return concepts
