"""The WARM merge: average M reward models fine-tuned from one shared init into one HF model directory.

Flow: check everything that can be checked from headers and small files (weights, names, shapes, dtypes,
configs, tokenizers, lineage) before writing anything; then stream tensor by tensor (read one tensor from each
member, combine with the chosen method, hand it to the shard writer, drop it), so memory holds one tensor per
member plus one output shard, never M models (model soups keeps a running sum for the same reason; mergekit
streams the same way). The output goes through `atomic_directory`: a failure mid-stream (a NaN found in member 3's
last layer) leaves no output and no temporary directory behind.
"""

from __future__ import annotations

import datetime
import math
import shutil
import warnings
from fnmatch import fnmatch
from pathlib import Path

from tqdm.auto import tqdm

import warm
from warm.errors import WarmError
from warm.fileio import atomic_directory, read_json, sha256_file, sha256_json, write_json
from warm.merge.card import render_model_card
from warm.merge.methods import MERGE_METHODS
from warm.merge.tensor_io import CheckpointReader, CheckpointWriter, dtype_name

MEMBER_FILE = "warm_member.json"
INIT_FILE = "warm_init.json"
MERGE_FILE = "warm_merge.json"

# Files that define the tokenizer, i.e. the map from text to the ids the embeddings are indexed by. Averaging
# members whose ids mean different strings silently produces garbage, so any difference here refuses the merge.
# Vocabulary and model files are compared byte for byte. tokenizer_config.json is compared as JSON without the
# keys below: they change truncation, padding or chat formatting but not which id a token gets, and trainers
# rewrite them freely (transformers 5 keeps the special tokens, which do matter, in this file).
TOKENIZER_FILES = (
    "tokenizer.json", "vocab.txt", "vocab.json", "merges.txt", "added_tokens.json", "special_tokens_map.json",
    "tokenizer_config.json", "*.model", "*.tiktoken",
)
_TOKENIZER_CONFIG_IGNORED = (
    "model_max_length", "name_or_path", "chat_template", "padding_side", "truncation_side",
    "clean_up_tokenization_spaces", "processor_class", "transformers_version",
)
# Non-weight files copied from the first member: what from_pretrained and AutoTokenizer need, nothing from
# training (training_args.bin, optimizer states, warm_member.json describe one member, not the merge).
COPIED_FILES = (
    "config.json", "generation_config.json", "tokenizer*.json", "vocab*", "merges.txt", "added_tokens.json",
    "special_tokens_map.json", "*.model", "*.tiktoken", "chat_template.jinja", "chat_template.json",
)


def merge_models(
    member_dirs: list[str | Path],
    out: str | Path,
    weights: list[float] | None = None,
    method: str = "linear",
    force: bool = False,
    allow_mixed_init: bool = False,
    max_shard_bytes: int | None = None,
    progress: bool = True,
) -> dict:
    """Average `member_dirs` (HF reward-model dirs with safetensors weights) into the HF dir `out`.

    `weights` default to uniform (WARM's choice) and are normalised to sum to 1. Lineage: each member names its
    init in warm_member.json (`init_fingerprint`) or is the init itself (warm_init.json `fingerprint`). Weight
    averaging is only meaningful between fine-tunings of one init (linear mode connectivity), so members whose
    known fingerprints differ are refused unless `allow_mixed_init` (then a warning); members without a
    fingerprint only warn, since lineage cannot be checked for checkpoints made outside warm.
    Returns the warm_merge.json payload. Every refusal is a WarmError naming the file or tensor at fault.
    """
    if not member_dirs:
        raise WarmError("merge needs at least one member directory")
    if method not in MERGE_METHODS:
        raise WarmError(f"unknown merge method {method!r} (choose from {', '.join(sorted(MERGE_METHODS))})")
    members = [Path(d) for d in member_dirs]
    norm_weights = normalise_weights(weights, len(members))
    out = Path(out)
    _check_out(out, members, force)
    readers: list[CheckpointReader] = []
    try:
        readers = [CheckpointReader(d) for d in members]
        _check_configs(members)  # first: a different architecture explains any tensor mismatch that follows
        names = check_tensors(readers)
        check_tokenizers(members)
        fingerprints, common = check_lineage(members, allow_mixed_init)
        with atomic_directory(out, force=force) as tmp:
            stats = _stream(readers, names, norm_weights, MERGE_METHODS[method], tmp, max_shard_bytes, progress)
            _copy_files(members[0], tmp)
            info = {
                "method": method,
                "members": [str(m.resolve()) for m in members],
                "weights": norm_weights,
                "init_fingerprint": common,
                "member_fingerprints": fingerprints,
                **stats,
                "warm_version": warm.__version__,
                "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            }
            write_json(tmp / MERGE_FILE, info)
            metrics = [_member_record(m).get("metrics") for m in members]
            metrics = [m if isinstance(m, dict) else None for m in metrics]
            (tmp / "README.md").write_text(render_model_card(info, metrics), encoding="utf-8")
    finally:
        for reader in readers:
            reader.close()
    return info


def normalise_weights(weights: list[float] | None, count: int) -> list[float]:
    """Uniform when None; otherwise checked (count, finite, non-negative, not all zero) and scaled to sum 1."""
    if weights is None:
        return [1.0 / count] * count
    weights = [float(w) for w in weights]
    if len(weights) != count:
        raise WarmError(f"{len(weights)} weights given for {count} members")
    for i, w in enumerate(weights):
        if not math.isfinite(w) or w < 0:
            raise WarmError(f"weight {i} is {w}; weights must be finite and non-negative")
    total = sum(weights)
    if total == 0:
        raise WarmError("all weights are zero")
    return [w / total for w in weights]


def _check_out(out: Path, members: list[Path], force: bool) -> None:
    if out.exists() and not force:
        raise WarmError(f"{out}: already exists (pass --force to overwrite)")
    target = out.resolve()
    for member in members:
        source = member.resolve()
        if target == source:
            raise WarmError(f"{out}: the output is member {member}; inputs are never overwritten")
        if target in source.parents:  # --force would delete the member with the old output
            raise WarmError(f"{out}: the output contains member {member}")
        if source in target.parents:
            raise WarmError(f"{out}: the output lies inside member {member}; inputs are never modified")


def check_tensors(readers: list[CheckpointReader]) -> list[str]:
    """Same tensor names, shapes and dtypes in every member (from headers only); return the sorted names."""
    ref = readers[0]
    names = ref.names()
    for reader in readers[1:]:
        other = reader.names()
        if other != names:
            missing = sorted(set(names) - set(other))
            if missing:
                raise WarmError(f"{reader.path}: missing tensor {missing[0]} (present in {ref.path})")
            extra = sorted(set(other) - set(names))[0]
            raise WarmError(f"{ref.path}: missing tensor {extra} (present in {reader.path})")
        for name in names:
            if reader.shape(name) != ref.shape(name):
                raise WarmError(
                    f"{name}: shape {list(ref.shape(name))} in {ref.path} "
                    f"but {list(reader.shape(name))} in {reader.path}"
                )
            if reader.dtype(name) != ref.dtype(name):
                raise WarmError(
                    f"{name}: dtype {dtype_name(ref.dtype(name))} in {ref.path} "
                    f"but {dtype_name(reader.dtype(name))} in {reader.path}"
                )
    return names


def _check_configs(members: list[Path]) -> None:
    configs = [read_json(m / "config.json") for m in members]
    for key in ("architectures", "model_type"):
        for member, config in zip(members[1:], configs[1:]):
            if config.get(key) != configs[0].get(key):
                raise WarmError(
                    f"{member / 'config.json'}: {key} is {config.get(key)!r} but {configs[0].get(key)!r} "
                    f"in {members[0] / 'config.json'}"
                )


def _tokenizer_digests(member: Path) -> dict[str, str]:
    digests = {}
    for path in sorted(member.iterdir()):
        if not path.is_file() or not any(fnmatch(path.name, pattern) for pattern in TOKENIZER_FILES):
            continue
        if path.name == "tokenizer_config.json":
            config = read_json(path)
            digests[path.name] = sha256_json({k: v for k, v in config.items() if k not in _TOKENIZER_CONFIG_IGNORED})
        else:
            digests[path.name] = sha256_file(path)
    return digests


def check_tokenizers(members: list[Path]) -> None:
    """Refuse members whose tokenizer files differ (see TOKENIZER_FILES).

    Only files every member has are compared; a file some members lack (a slow save without tokenizer.json, say)
    is skipped for all of them with a warning, so the rule does not depend on member order.
    """
    digests = [_tokenizer_digests(m) for m in members]
    present = set().union(*digests)
    common = set.intersection(*(set(d) for d in digests))
    for name in sorted(present - common):
        lacking = next(m for m, d in zip(members, digests) if name not in d)
        warnings.warn(f"{lacking}: has no {name} that other members have; not compared", stacklevel=3)
    if present and not common:
        raise WarmError(f"{members[0]}: members share no tokenizer file, so their tokenizers cannot be compared")
    for name in sorted(common):
        for member, digest in zip(members[1:], digests[1:]):
            if digest[name] != digests[0][name]:
                raise WarmError(f"{member / name}: tokenizer differs from {members[0] / name}")


def _member_record(member: Path) -> dict:
    path = member / MEMBER_FILE
    return read_json(path) if path.is_file() else {}


def check_lineage(members: list[Path], allow_mixed_init: bool) -> tuple[list[str | None], str | None]:
    """Each member's init fingerprint (None when unknown) and the common one (None unless all known and equal)."""
    fingerprints: list[str | None] = []
    for member in members:
        record = _member_record(member)
        if "init_fingerprint" in record:
            fingerprints.append(record["init_fingerprint"])
        elif (member / INIT_FILE).is_file():  # the member is the init itself
            fingerprints.append(read_json(member / INIT_FILE).get("fingerprint"))
        else:
            fingerprints.append(None)
    known = {fp for fp in fingerprints if fp is not None}
    if len(known) > 1:
        first = next(i for i, fp in enumerate(fingerprints) if fp is not None)
        other = next(i for i, fp in enumerate(fingerprints) if fp is not None and fp != fingerprints[first])
        message = (
            f"{members[other]}: init fingerprint {fingerprints[other]} differs from {fingerprints[first]} "
            f"of {members[first]}; averaging models from different inits is not WARM"
        )
        if not allow_mixed_init:
            raise WarmError(message + " (pass --allow-mixed-init to merge anyway)")
        warnings.warn(message, stacklevel=3)
    unknown = [str(m) for m, fp in zip(members, fingerprints) if fp is None]
    if unknown:
        warnings.warn(
            f"{unknown[0]}: no init fingerprint ({MEMBER_FILE} or {INIT_FILE}); "
            f"cannot check that {len(unknown)} member(s) share the others' init",
            stacklevel=3,
        )
    common = known.pop() if len(known) == 1 and not unknown else None
    return fingerprints, common


def _human_bytes(size: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TB"


def _stream(readers, names, weights, combine, out_dir: Path, max_shard_bytes, progress) -> dict:
    """Merge tensor by tensor; NaN/Inf in a member is found here, before its tensor reaches the writer."""
    writer = CheckpointWriter(out_dir, max_shard_bytes=max_shard_bytes)
    done, float_dtypes = 0, set()
    with tqdm(names, desc="merging", unit="tensor", disable=not progress) as bar:
        for name in bar:
            tensors = [reader.get(name) for reader in readers]
            _check_finite(readers, tensors, name)
            try:
                merged = combine(tensors, weights)
            except WarmError as exc:
                raise WarmError(f"{name}: {exc}") from None
            if merged.is_floating_point():
                float_dtypes.add(dtype_name(merged.dtype))
            done += merged.numel() * merged.element_size()
            writer.add(name, merged)
            del tensors, merged  # at most one tensor per member alive between iterations
            bar.set_postfix_str(_human_bytes(done), refresh=False)
    files = writer.finalize()
    return {
        "n_tensors": len(names),
        "total_bytes": writer.total_size,
        "dtype": ",".join(sorted(float_dtypes)) or None,
        "weight_files": files,
    }


def _check_finite(readers: list[CheckpointReader], tensors: list, name: str) -> None:
    # A function of its own so that no loop variable keeps a member's tensor alive into the next iteration.
    for reader, tensor in zip(readers, tensors):
        if tensor.is_floating_point() and not bool(tensor.isfinite().all()):
            kind = "NaN" if bool(tensor.isnan().any()) else "Inf"
            raise WarmError(f"{reader.path}: tensor {name} contains {kind}")


def _copy_files(source: Path, dest: Path) -> None:
    for path in sorted(source.iterdir()):
        if path.is_file() and any(fnmatch(path.name, pattern) for pattern in COPIED_FILES):
            shutil.copy2(path, dest / path.name)
