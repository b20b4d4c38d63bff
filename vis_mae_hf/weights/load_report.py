# Copyright 2026 The vis-mae-hf developers. Licensed under the Apache License, Version 2.0.
"""`LoadReport`: what loading weights from somewhere into a VIS-MAE model did, key by key.

One report for every way weights reach a model: the published-checkpoint converter (`weights.published`), the
Swin transfer (`weights.swin`), and the fine-tuning initialisations (`vismae:` through Transformers'
`from_pretrained(..., output_loading_info=True)`, `random`, `swin:`). Every source key ends up in exactly one of
`loaded` (under the target key it filled), `dropped` (on purpose, by a rule that says why) or `unused` (it could not
be used, and why); every target key not loaded is `fresh`. `problems` are what make a strict conversion fail.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_MAX_GROUPS = 12


@dataclass
class LoadReport:
    """What a load did, key by key.

    Attributes:
        source: where the weights came from (a file, a Hub repo id, an initialisation such as `vismae:<dir>`).
        target: what they were loaded into (the model class name).
        loaded: target key -> the source key(s) it was filled from (several when they are concatenated, as Swin's
            query, key and value are into our fused `qkv`).
        dropped: source key -> why it is dropped on purpose (the reason its rule gives).
        unused: source key -> why it could not be used (no such parameter in this model, a shape that differs).
        fresh: target keys that kept their initialisation.
        problems: what makes a strict conversion fail, each naming its keys; empty when the load is complete.
        notes: facts about the two architectures that matter for this load.
    """

    source: str
    target: str
    loaded: dict[str, list[str]] = field(default_factory=dict)
    dropped: dict[str, str] = field(default_factory=dict)
    unused: dict[str, str] = field(default_factory=dict)
    fresh: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @classmethod
    def all_fresh(cls, source: str, model) -> LoadReport:
        """The report of a model that loaded nothing: every tensor of its state dict keeps its initialisation."""
        return cls(source=source, target=type(model).__name__, fresh=sorted(model.state_dict()))

    @classmethod
    def from_loading_info(cls, source: str, model, loading_info: dict) -> LoadReport:
        """The report of `model, loading_info = X.from_pretrained(source, output_loading_info=True)`.

        Transformers loads by name, so a loaded key is its own source key. Checkpoint keys a model declares it
        ignores (`_keys_to_ignore_on_load_unexpected`, e.g. the MAE pixel head under a segmenter) are not in the
        loading info and so not in the report either.
        """
        mismatched = {
            key: (tuple(found), tuple(wanted)) for key, found, wanted in loading_info.get("mismatched_keys", ())
        }
        fresh = set(loading_info["missing_keys"]) | set(mismatched)
        unused = {key: "no such parameter in this model" for key in loading_info["unexpected_keys"]}
        unused.update({key: f"shape {found} != {wanted} of {key}" for key, (found, wanted) in mismatched.items()})
        return cls(
            source=source,
            target=type(model).__name__,
            loaded={key: [key] for key in model.state_dict() if key not in fresh},
            unused=unused,
            fresh=sorted(fresh),
            problems=[f"the loader reported: {message}" for message in loading_info.get("error_msgs", ())],
        )

    @property
    def complete(self) -> bool:
        """Every model tensor was filled from the source and every source key was used or dropped on purpose: what
        a model saved with `save_pretrained` and loaded back gives, and what prediction requires."""
        return not (self.fresh or self.unused or self.problems)

    def gaps(self, max_groups: int = 6) -> str:
        """What keeps the load from being complete, on one line grouped by module (empty when it is complete): the
        model tensors no source key filled, the source keys that could not be used (with why), the problems."""
        # A key whose shape differs is both unused and fresh; its unused reason (the two shapes) says it all.
        unfilled = {key: "" for key in self.fresh if key not in self.unused}
        parts = [
            f"{_count(len(keys), 'tensor')} {what}: {_grouped_on_one_line(keys, max_groups)}"
            for what, keys in (("of the model not in the weights", unfilled), ("of the weights unused", self.unused))
            if keys
        ]
        return "; ".join(parts + self.problems)

    def format(self, max_groups: int = _MAX_GROUPS) -> str:
        """A readable summary: the counts, then the keys grouped by module with one reason each, then the problems
        in full (every key named) and the notes."""
        lines = [
            f"{self.source} -> {self.target}: {len(self.loaded)} tensors loaded; source keys: {len(self.dropped)} "
            f"dropped on purpose, {len(self.unused)} unused; {len(self.fresh)} model tensors fresh."
        ]
        if self.fresh and not (self.loaded or self.dropped or self.unused):
            lines.append("Every tensor keeps its fresh initialisation.")
        else:
            # Dropped keys come from rules, so they group by the key with every index starred; the others by module,
            # which keeps the stage a block belongs to.
            for title, keys_with_reasons, group_of in (
                ("Dropped on purpose", self.dropped, _indices_starred),
                ("Unused", self.unused, _module_of),
                ("Fresh (kept their initialisation)", dict.fromkeys(self.fresh, ""), _module_of),
            ):
                if keys_with_reasons:
                    lines.append(f"{title}:")
                    lines.extend(_grouped(keys_with_reasons, group_of, max_groups))
        if self.problems:
            lines.append(f"Problems ({len(self.problems)}):")
            lines.extend(f"  - {problem}" for problem in self.problems)
        if self.notes:
            lines.append("Notes:")
            lines.extend(f"  - {note}" for note in self.notes)
        return "\n".join(lines)

    def to_json_dict(self) -> dict:
        """The report as JSON-ready data, in a stable order (the converter writes it to `conversion_report.json`,
        fine-tuning into `finetuning_summary.json`)."""
        return {
            "source": self.source,
            "target": self.target,
            "ok": self.ok,
            "loaded": dict(sorted(self.loaded.items())),
            "dropped": dict(sorted(self.dropped.items())),
            "unused": dict(sorted(self.unused.items())),
            "fresh": sorted(self.fresh),
            "problems": list(self.problems),
            "notes": list(self.notes),
        }


def _module_of(key: str) -> str:
    """`decoder.stages.0.blocks.3.mlp.fc1.weight` -> `decoder.stages.0.blocks.*`; `classifier.bias` -> `classifier`."""
    module = re.sub(r"\.blocks\.\d+\..*$", ".blocks.*", key)
    return re.sub(r"\.(weight|bias|relative_position_bias_table)$", "", module)


def _indices_starred(key: str) -> str:
    """`layers.2.blocks.5.attn.relative_position_index` -> `layers.*.blocks.*.attn.relative_position_index`."""
    return re.sub(r"(?<=\.)\d+(?=\.)", "*", key)


def _grouped_on_one_line(keys_with_reasons: dict[str, str], max_groups: int) -> str:
    """`module (count): reason of its first key`, for at most `max_groups` modules, on one line."""
    groups: dict[str, list] = {}
    for key, reason in sorted(keys_with_reasons.items()):
        groups.setdefault(_module_of(key), [0, reason])[0] += 1
    shown = [f"{module} ({count}){': ' + reason if reason else ''}" for module, (count, reason) in groups.items()]
    if len(shown) > max_groups:
        shown = shown[:max_groups] + [f"... and {len(shown) - max_groups} more modules"]
    return " | ".join(shown)


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def _grouped(keys_with_reasons: dict[str, str], group_of, max_groups: int) -> list[str]:
    """One line per (group, reason) with a count, at most `max_groups` lines."""
    groups: dict[tuple[str, str], int] = {}
    for key, reason in sorted(keys_with_reasons.items()):
        groups[(group_of(key), reason)] = groups.get((group_of(key), reason), 0) + 1
    lines = [f"  {group} ({count}){': ' + reason if reason else ''}" for (group, reason), count in groups.items()]
    if len(lines) > max_groups:
        lines = lines[:max_groups] + [f"  ... and {len(lines) - max_groups} more groups"]
    return lines


__all__ = ["LoadReport"]
