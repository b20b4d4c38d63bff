# Copyright 2026 The vis-mae-hf developers. Licensed under the Apache License, Version 2.0.
"""The one key-mapping engine: a table of `KeyRule`s turns a foreign state dict into a VIS-MAE model's keys.

    tensors, report = map_state_dict(state_dict, RULES, expected_shapes, source="ckpt.pth", target="VisMaeModel",
                                     strict=True)

A rule is data: a regular expression the whole source key must match, and either the target key template or the
reason the key is dropped on purpose. Every source key must match exactly one rule, in both modes: a key no rule
matches means the source format changed (or the table is wrong), and carrying on would leave weights behind without
a word. Several source keys feeding one target (Swin's separate query, key and value into our fused `qkv`) are data
too: the rule names the values of its `part` group in the order their tensors are concatenated.

What happens to the rest depends on the mode:
- strict (the published converter): a target the model lacks, a shape that differs, an incomplete concatenation or
  a model tensor no source key fills stops the conversion with every problem named;
- lenient (the Swin transfer): the same cases are reported, the source keys as unused and the model tensors as
  fresh, and the load goes on with what fits.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property

import torch

from .load_report import LoadReport

CONCATENATED_PART_GROUP = "part"


class ConversionError(ValueError):
    """Weights do not convert; the message names every key at fault, and `report` holds the whole `LoadReport`."""

    def __init__(self, message: str, report: LoadReport | None = None):
        super().__init__(message)
        self.report = report


@dataclass(frozen=True)
class KeyRule:
    """One line of a key table.

    Args:
        pattern: regular expression the whole source key must match.
        target: the target key template: `\\g<name>` inserts a group of `pattern`, `{field}` a template field of the
            conversion (e.g. the head's name, which differs per task). None drops the key on purpose.
        dropped_because: why a key is dropped; given exactly when `target` is None.
        concatenate: for rules that map several source keys onto one target: the values of the pattern's `part`
            group, in the order their tensors are concatenated along the first dimension.
    """

    pattern: str
    target: str | None = None
    dropped_because: str | None = None
    concatenate: tuple[str, ...] = ()

    def __post_init__(self):
        if (self.target is None) == (self.dropped_because is None):
            raise ValueError(
                f"KeyRule {self.pattern!r} needs either a target or dropped_because (the reason it drops the key), "
                f"not {'both' if self.target else 'neither'}."
            )
        if self.concatenate and CONCATENATED_PART_GROUP not in self.regex.groupindex:
            raise ValueError(
                f"KeyRule {self.pattern!r} concatenates {self.concatenate} but has no "
                f"(?P<{CONCATENATED_PART_GROUP}>...) group to tell the parts apart."
            )

    @cached_property
    def regex(self) -> re.Pattern:
        return re.compile(self.pattern)


@dataclass
class _TargetSources:
    """The source keys one target key is built from, by part (None for a one-to-one rule)."""

    rule: KeyRule
    parts: dict[str | None, str]


def map_state_dict(
    state_dict: Mapping[str, torch.Tensor],
    rules: Sequence[KeyRule],
    expected: Mapping[str, Sequence[int]],
    *,
    source: str,
    target: str,
    strict: bool,
    template_fields: Mapping[str, str] | None = None,
) -> tuple[dict[str, torch.Tensor], LoadReport]:
    """Apply `rules` to `state_dict` against the target's `expected` keys and shapes.

    Args:
        state_dict: the source tensors under their source names.
        rules: the key table; every source key must match exactly one rule.
        expected: target key -> shape (the target model's state dict shapes).
        source, target: names for the report (the file or repo; the model class).
        strict: raise `ConversionError` on any problem (see the module docstring) instead of reporting it.
        template_fields: values for the `{field}` placeholders of the rule targets.

    Returns:
        `(tensors under target keys, LoadReport)`; the tensors are the source tensors (or their concatenation).

    Raises:
        ConversionError: naming every key at fault, with the report attached.
    """
    report = LoadReport(source=source, target=target)
    by_target, coverage_problems = _route_keys(state_dict, rules, template_fields or {}, report)
    tensors: dict[str, torch.Tensor] = {}
    target_problems = []
    for target_key, sources in by_target.items():
        tensor, why_not = _assemble(target_key, sources, state_dict, expected)
        source_keys = list(sources.parts.values()) if why_not else [sources.parts[part] for part in _order(sources)]
        if why_not:
            report.unused.update(dict.fromkeys(source_keys, why_not))
            target_problems.append(f"{', '.join(source_keys)} -> {target_key}: {why_not}")
            continue
        tensors[target_key] = tensor
        report.loaded[target_key] = source_keys
    report.fresh = sorted(set(expected) - set(tensors))
    target_problems.extend(f"{key}: no source key fills it" for key in report.fresh)
    report.problems = coverage_problems + (target_problems if strict else [])
    if report.problems:
        # One line naming every problem (the command prints it as its error); `error.report.format()` has the rest.
        problems = "; ".join(report.problems)
        raise ConversionError(
            f"{source} does not convert into {target}: {len(report.problems)} problem(s): {problems}", report
        )
    return tensors, report


def _route_keys(
    state_dict: Mapping[str, torch.Tensor], rules: Sequence[KeyRule], fields: Mapping[str, str], report: LoadReport
) -> tuple[dict[str, _TargetSources], list[str]]:
    """Source key -> the one rule it matches -> its target key. Dropped keys go into the report; keys matching no
    rule or several, and table conflicts, come back as problems (with the keys marked unused)."""
    by_target: dict[str, _TargetSources] = {}
    problems = []
    for key in state_dict:
        matches = [rule for rule in rules if rule.regex.fullmatch(key)]
        if len(matches) != 1:
            why = (
                "matches no rule of the key table (add a rule if the source format changed)"
                if not matches
                else f"matches {len(matches)} rules of the key table: {', '.join(rule.pattern for rule in matches)}"
            )
            report.unused[key] = why
            problems.append(f"{key}: {why}")
            continue
        rule = matches[0]
        if rule.target is None:
            report.dropped[key] = rule.dropped_because
            continue
        match = rule.regex.fullmatch(key)
        target_key = match.expand(rule.target.format_map(fields))
        part = match.group(CONCATENATED_PART_GROUP) if rule.concatenate else None
        sources = by_target.setdefault(target_key, _TargetSources(rule, {}))
        if sources.rule is not rule or part in sources.parts:
            why = f"{target_key} is already filled from {', '.join(sources.parts.values())}"
            report.unused[key] = why
            problems.append(f"{key}: {why}")
            continue
        sources.parts[part] = key
    return by_target, problems


def _order(sources: _TargetSources) -> tuple[str | None, ...]:
    return sources.rule.concatenate or (None,)


def _assemble(
    target_key: str,
    sources: _TargetSources,
    state_dict: Mapping[str, torch.Tensor],
    expected: Mapping[str, Sequence[int]],
) -> tuple[torch.Tensor | None, str | None]:
    """(the tensor for `target_key`, None) or (None, why the sources cannot fill it)."""
    if target_key not in expected:
        return None, "no such parameter in this model"
    order = _order(sources)
    if set(sources.parts) != set(order):
        return None, f"incomplete {'/'.join(order)} set for {target_key} (found {'/'.join(sorted(sources.parts))})"
    tensors = [state_dict[sources.parts[part]] for part in order]
    tensor = tensors[0] if len(tensors) == 1 else torch.cat(tensors, dim=0)
    if tuple(tensor.shape) != tuple(expected[target_key]):
        concatenated = " concatenated" if len(tensors) > 1 else ""
        return None, f"shape {tuple(tensor.shape)}{concatenated} != {tuple(expected[target_key])} of {target_key}"
    return tensor, None


__all__ = ["ConversionError", "KeyRule", "map_state_dict"]
