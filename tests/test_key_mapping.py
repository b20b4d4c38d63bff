"""The one key-mapping engine and its LoadReport, on small hand-made tables: what maps, what is dropped, what is
refused in strict mode and reported in lenient mode."""

import json

import pytest
import torch

from vis_mae_hf.weights.key_mapping import ConversionError, KeyRule, map_state_dict
from vis_mae_hf.weights.load_report import LoadReport

RULES = [
    KeyRule(r"enc\.(?P<i>\d+)\.(?P<p>weight|bias)", r"encoder.\g<i>.\g<p>"),
    KeyRule(r"head\.(?P<p>weight|bias)", r"{head}.\g<p>"),
    KeyRule(r"attn\.(?P<part>q|k|v)\.weight", "attention.qkv.weight", concatenate=("q", "k", "v")),
    KeyRule(r"pos_table", dropped_because="absolute positions: the target has none"),
]
EXPECTED = {
    "encoder.0.weight": (4, 2),
    "encoder.0.bias": (4,),
    "classifier.weight": (3, 4),
    "attention.qkv.weight": (6, 4),
    "norm.weight": (4,),
}


def source_state():
    generator = torch.Generator().manual_seed(0)
    shapes = {
        "enc.0.weight": (4, 2), "enc.0.bias": (4,), "head.weight": (3, 4),
        "attn.q.weight": (2, 4), "attn.k.weight": (2, 4), "attn.v.weight": (2, 4), "pos_table": (9, 4),
    }
    return {key: torch.randn(shape, generator=generator) for key, shape in shapes.items()}


def convert(state, strict, rules=RULES):
    return map_state_dict(
        state, rules, EXPECTED, source="ckpt.pth", target="Tiny", strict=strict, template_fields={"head": "classifier"}
    )


def test_lenient_maps_by_the_table_concatenates_parts_in_order_and_accounts_for_every_key():
    state = source_state()
    tensors, report = convert(state, strict=False)
    assert report.loaded == {
        "encoder.0.weight": ["enc.0.weight"],
        "encoder.0.bias": ["enc.0.bias"],
        "classifier.weight": ["head.weight"],  # the `{head}` template field
        "attention.qkv.weight": ["attn.q.weight", "attn.k.weight", "attn.v.weight"],
    }
    assert torch.equal(tensors["attention.qkv.weight"], torch.cat([state[f"attn.{p}.weight"] for p in "qkv"]))
    assert tensors["encoder.0.weight"] is state["enc.0.weight"]
    assert report.dropped == {"pos_table": "absolute positions: the target has none"}
    assert report.fresh == ["norm.weight"] and report.unused == {} and report.ok


def test_strict_refuses_a_target_tensor_no_source_fills():
    message = r"ckpt\.pth does not convert into Tiny: 1 problem\(s\): norm\.weight: no source key fills it"
    with pytest.raises(ConversionError, match=message):
        convert(source_state(), strict=True)


def test_a_key_matching_no_rule_stops_both_modes_by_name():
    state = {**source_state(), "enc.0.scale": torch.ones(4)}
    for strict in (True, False):
        with pytest.raises(ConversionError, match=r"enc\.0\.scale: matches no rule of the key table") as caught:
            convert(state, strict=strict)
        assert caught.value.report.unused["enc.0.scale"].startswith("matches no rule")
        assert not caught.value.report.ok


def test_a_key_matching_two_rules_stops_both_modes_naming_the_key_and_both_rules():
    rules = [*RULES, KeyRule(r"enc\.0\.weight", dropped_because="a rule that overlaps the first one")]
    for strict in (True, False):
        message = r"enc\.0\.weight: matches 2 rules of the key table: enc.*enc\\\.0"
        with pytest.raises(ConversionError, match=message) as caught:
            convert(source_state(), strict=strict, rules=rules)
        assert "enc.0.weight" not in caught.value.report.loaded


def test_a_shape_mismatch_is_refused_in_strict_mode_and_reported_in_lenient_mode():
    state = {**source_state(), "enc.0.weight": torch.zeros(4, 3)}
    expected = {key: shape for key, shape in EXPECTED.items() if key != "norm.weight"}  # strict would refuse that too
    fields = {"head": "classifier"}
    message = r"enc\.0\.weight -> encoder\.0\.weight: shape \(4, 3\) != \(4, 2\)"
    with pytest.raises(ConversionError, match=message) as caught:
        map_state_dict(state, RULES, expected, source="s", target="t", strict=True, template_fields=fields)
    assert len(caught.value.report.problems) == 2  # the mismatch, and the target it leaves unfilled
    tensors, report = map_state_dict(
        state, RULES, expected, source="s", target="t", strict=False, template_fields=fields
    )
    assert report.unused == {"enc.0.weight": "shape (4, 3) != (4, 2) of encoder.0.weight"}
    assert report.fresh == ["encoder.0.weight"] and "encoder.0.weight" not in tensors
    assert report.ok  # lenient: the mismatch is reported, not a failure


def test_a_concatenation_of_the_wrong_total_shape_names_it():
    state = {**source_state(), "attn.v.weight": torch.zeros(3, 4)}
    _, report = convert(state, strict=False)
    assert report.unused["attn.v.weight"] == "shape (7, 4) concatenated != (6, 4) of attention.qkv.weight"
    assert set(report.unused) == {"attn.q.weight", "attn.k.weight", "attn.v.weight"}


def test_a_target_the_model_lacks_is_unused_with_the_reason():
    state = {**source_state(), "enc.1.bias": torch.zeros(4)}
    _, report = convert(state, strict=False)
    assert report.unused == {"enc.1.bias": "no such parameter in this model"}
    with pytest.raises(ConversionError, match=r"enc\.1\.bias -> encoder\.1\.bias: no such parameter in this model"):
        convert(state, strict=True)


def test_rules_must_say_where_a_key_goes_or_why_it_is_dropped():
    with pytest.raises(ValueError, match="needs either a target or dropped_because"):
        KeyRule(r"x")
    with pytest.raises(ValueError, match="needs either a target or dropped_because"):
        KeyRule(r"x", "y", dropped_because="z")
    with pytest.raises(ValueError, match=r"no \(\?P<part>...\) group"):
        KeyRule(r"attn\.(q|k|v)", "qkv", concatenate=("q", "k", "v"))


def test_the_report_reads_and_serialises():
    _, report = convert(source_state(), strict=False)
    report.notes = ["a fact about the architectures"]
    text = report.format()
    assert text.splitlines()[0] == (
        "ckpt.pth -> Tiny: 4 tensors loaded; source keys: 1 dropped on purpose, 0 unused; 1 model tensors fresh."
    )
    assert "Dropped on purpose:\n  pos_table (1): absolute positions: the target has none" in text
    assert "Fresh (kept their initialisation):\n  norm (1)" in text and "  - a fact about the architectures" in text
    data = json.loads(json.dumps(report.to_json_dict()))
    assert data["ok"] is True and data["source"] == "ckpt.pth" and data["target"] == "Tiny"
    assert data["loaded"]["attention.qkv.weight"] == ["attn.q.weight", "attn.k.weight", "attn.v.weight"]
    assert data["fresh"] == ["norm.weight"]
    assert data["dropped"] == {"pos_table": "absolute positions: the target has none"}


class TinyModel(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = torch.nn.Linear(2, 4)
        self.classifier = torch.nn.Linear(4, 3)


def test_a_report_from_transformers_loading_info_counts_loaded_fresh_and_unused():
    model = TinyModel()
    info = {
        "missing_keys": {"classifier.weight", "classifier.bias"},
        "unexpected_keys": {"decoder.weight"},
        "mismatched_keys": set(),
        "error_msgs": [],
    }
    report = LoadReport.from_loading_info("vismae:run", model, info)
    assert report.loaded == {"encoder.weight": ["encoder.weight"], "encoder.bias": ["encoder.bias"]}
    assert report.fresh == ["classifier.bias", "classifier.weight"]
    assert report.unused == {"decoder.weight": "no such parameter in this model"} and report.ok
    mismatched = {**info, "mismatched_keys": {("encoder.weight", (4, 3), (4, 2))}}
    report = LoadReport.from_loading_info("vismae:run", model, mismatched)
    assert "encoder.weight" in report.fresh
    assert report.unused["encoder.weight"] == "shape (4, 3) != (4, 2) of encoder.weight"


def test_a_model_that_loaded_nothing_says_so_in_one_line():
    report = LoadReport.all_fresh("random", TinyModel())
    assert report.fresh == ["classifier.bias", "classifier.weight", "encoder.bias", "encoder.weight"]
    assert report.format().splitlines()[1] == "Every tensor keeps its fresh initialisation."
