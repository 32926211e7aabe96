"""Checks a merge runs before writing anything: weights, output path, tensors, configs, tokenizers, lineage.

Each refusal is a WarmError naming the file or tensor at fault; everything here reads headers and small files
only, so a merge that is going to fail fails in seconds, before streaming gigabytes.
"""

from __future__ import annotations

import math
import warnings
from fnmatch import fnmatch
from pathlib import Path

from warm.errors import WarmError
from warm.fileio import read_json, sha256_file, sha256_json
from warm.merge.tensor_io import CheckpointReader, dtype_name
from warm.rundir import INIT_FILE, MEMBER_FILE


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
    if not math.isfinite(total):
        raise WarmError(f"weights {', '.join(f'{w:g}' for w in weights)} overflow: their sum is not a finite number; "
                        "give smaller weights (only their ratios matter)")
    if total == 0:
        raise WarmError("all weights are zero")
    return [w / total for w in weights]


def check_out(out: Path, members: list[Path], force: bool) -> None:
    """Refuse an existing output (unless `force`), a file as output, and any output that is, contains or lies in an
    input."""
    if out.exists() and not out.is_dir():
        raise WarmError(f"{out}: exists and is not a directory; the merged model is a directory (choose another --out)")
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
