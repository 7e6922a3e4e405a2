"""TIR findings: root-cause keys that IR names and output names do not split, and numpy as the third opinion."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from fuzzer.store import RunStore
from fuzzer.execution.outcome import Outcome, Stage, Status
from fuzzer.tir.campaign import TirCampaign, TirOptions, third_opinion, tir_root_cause
from fuzzer.tir.case import TirCase, Variant, encode_json
from fuzzer.tir.pipelines import default_pipeline

TE_SCRIPT = '''@T.prim_func(s_tir=True)
def main(A: T.Buffer((4,), "float32"), T_add: T.Buffer((4,), "float32")):
    for i in range(4):
        with T.sblock("T_add"):
            v_i = T.axis.spatial(4, i)
            T_add[v_i] = A[v_i] + T.float32(1)
'''
OTHER_SCRIPT = '''@T.prim_func(s_tir=True)
def main(data: T.Buffer((8, 2), "float64"), compute: T.Buffer((8,), "float64")):
    red = T.alloc_buffer((8,), "float64")
    for ax0, k in T.grid(8, 2):
        with T.sblock("red"):
            v0, v_k = T.axis.remap("SR", [ax0, k])
            red[v0] = red[v0] + data[v0, v_k]
'''


def record(script: str = TE_SCRIPT, primitives: tuple = ("split",), dropped: str = "s_tir.LoopPartition",
           shrunk: bool = True, **fields) -> dict:
    pipeline = default_pipeline()
    pipeline["passes"] = [p for p in pipeline["passes"] if p["name"] != dropped]
    variant = {"trace": [{"primitive": name} for name in primitives], "schedule_seed": 0, "schedule_steps": 0,
               "pipeline": pipeline, "changed": []}
    return {"mode": "tir", "script": script, "variant": variant, "variants": [variant], "shrunk": shrunk,
            "compared_with": "reference", **fields}


def test_failures_of_one_bug_share_a_root_cause_whatever_the_ir_names_and_numbers() -> None:
    first = {"message": "InternalError: Check failed: (it != buffer_map.end()) is false: buffer A_1 of block "
                        "T_add at 0x7f3a is not allocated in lv3"}
    second = {"message": "InternalError: Check failed: (it != buffer_map.end()) is false: buffer compute_local of "
                         "block red_rf at 0x55b1 is not allocated in lv12"}
    key = tir_root_cause("error", first, record())
    assert key == tir_root_cause("error", second, record(OTHER_SCRIPT))
    assert key.startswith("error/internalerror: check failed") and "a_" not in key and "t_add" not in key
    lanes = "TypeError: dtype mismatch on BufferStore: buffer's dtype is `T.uint16`, but RHS's dtype is `T.bfloat16x{}`"
    assert tir_root_cause("error", {"message": lanes.format(2)}, record()) == \
        tir_root_cause("error", {"message": lanes.format(6)}, record())
    assert key != tir_root_cause("error", {"message": "InternalError: Check failed: something else"}, record())
    assert key != tir_root_cause("crash", first, record())
    assert key == tir_root_cause("error", first, record(primitives=("fuse",)))  # one check, whatever the schedule


def test_a_write_outside_a_buffer_is_keyed_by_its_culprit_like_a_mismatch() -> None:
    writes = [tir_root_cause("error", {"error_type": "OutOfBoundsWrite", "message": message},
                             record(primitives=primitives))
              for message, primitives in [("the function wrote outside buffer 'out' (past its end)", ("split",)),
                                          ("the function wrote outside buffer 'B' (before its start)", ("split",))]]
    assert set(writes) == {"error/out-of-bounds write/split|-s_tir.LoopPartition"}
    assert tir_root_cause("error", {"error_type": "OutOfBoundsWrite", "message": "x"},
                          record(primitives=("fuse",))) != writes[0]


def test_a_shrunk_culprit_names_the_pass_settings_it_changed() -> None:
    """A miscompile that needs only a PassContext setting or the LLVM level is keyed by them."""
    changed = record(primitives=(), dropped="")
    changed["variant"]["pipeline"]["config"]["tirx.debug_keep_trivial_loop"] = True
    changed["variant"]["pipeline"]["llvm_opt_level"] = 3
    assert tir_root_cause("mismatch", {}, changed) == \
        "mismatch/|tirx.debug_keep_trivial_loop=True,llvm_opt_level=3"


def test_mismatches_are_keyed_by_culprit_not_by_output_or_dtype() -> None:
    loop_partition = [tir_root_cause("mismatch", {"output": output, "dtype": dtype, "error_class": error_class},
                                     record(primitives=primitives))
                      for output, dtype, error_class, primitives in
                      [("C", "float32", "large", ("split", "fuse")), ("T_add", "int8", "nan", ("fuse", "split")),
                       ("compute", "float16", "small", ("split", "fuse", "split"))]]
    assert set(loop_partition) == {"mismatch/fuse,split|-s_tir.LoopPartition"}
    assert tir_root_cause("mismatch", {}, record(shrunk=False)) == "mismatch/split"  # unshrunk: passes are noise
    assert tir_root_cause("mismatch", {}, record(dropped="")) == "mismatch/split"  # shrunk, no pass edits
    assert tir_root_cause("mismatch", {}, record(primitives=(), dropped="")) == "mismatch/default"
    assert tir_root_cause("mismatch", {"third_opinion": "reference-wrong"}, record()) == "mismatch/reference"
    assert tir_root_cause("mismatch", {}, record(variant=None, variants=[], compared_with="numpy")) == \
        "mismatch/reference"
    assert tir_root_cause("crash", {"message": "worker killed by SIGSEGV"}, record(variant=None, variants=[{}, {}])) \
        == "crash/worker killed by sigsegv"  # a failure is keyed by its message


def test_numpy_decides_which_side_of_a_mismatch_is_wrong() -> None:
    right, wrong, other = np.arange(4.0), np.arange(4.0) + 1, np.arange(4.0) - 1
    outputs = {"numpy/C": right, "reference/C": right, "variant0/C": wrong}
    assert third_opinion(outputs, 0, "C") == "variant-wrong"
    assert third_opinion({**outputs, "reference/C": wrong, "variant0/C": right}, 0, "C") == "reference-wrong"
    assert third_opinion({**outputs, "reference/C": other}, 0, "C") == "both-wrong"
    assert third_opinion({**outputs, "variant0/C": right}, 0, "C") == "both-right"
    assert third_opinion({"reference/C": right, "variant0/C": wrong}, 0, "C") == "unavailable"


@pytest.mark.skipif(importlib.util.find_spec("tvm") is None, reason="apache-tvm is not installed")
def test_a_wrong_reference_is_blamed_not_the_variant_that_agrees_with_numpy(tmp_path) -> None:
    """Variant 0 computes what numpy computes and the reference does not: only the reference is a finding."""
    right, wrong, other = np.arange(4.0), np.arange(4.0) + 1, np.arange(4.0) - 1
    reports = [{"trace": [{"primitive": name}], "pipeline": default_pipeline(), "changed": [], "error": None}
               for name in ("split", "fuse")]
    outputs = {"argument/A": right, "argument/C": right, "numpy/C": right, "reference/C": wrong,
               "variant0/C": right, "variant1/C": other,
               "meta": encode_json({"script": TE_SCRIPT, "mutations": [], "variants": reports})}
    case = TirCase({"source": "te", "family": "broadcast"}, (), (Variant(default_pipeline()),) * 2, seed=0)
    with RunStore.create(tmp_path / "run", {"mode": "tir", "seed": 0, "options": {}}) as store:
        campaign = TirCampaign(store, 0, TirOptions(minimize_per_signature=0))
        campaign.execute = lambda case: Outcome("tvm-tir", Status.OK, Stage.RUN, outputs)
        campaign.judge(case)
        found = {finding.backends: finding.details for finding in store.findings("mismatch")}
    assert found.keys() == {("tvm-tir:default",), ("tvm-tir:schedule",)}
    assert found[("tvm-tir:default",)]["third_opinion"] == "reference-wrong"
    assert found[("tvm-tir:default",)]["root_cause"] == "mismatch/reference"
    assert found[("tvm-tir:schedule",)]["third_opinion"] == "both-wrong"  # variant 1: wrong in its own way
    assert found[("tvm-tir:schedule",)]["root_cause"] == "mismatch/fuse"


@pytest.mark.skipif(importlib.util.find_spec("tvm") is None, reason="apache-tvm is not installed")
def test_the_first_finding_of_a_kind_is_shrunk_even_early_in_a_campaign(tmp_path) -> None:
    """Ten seconds into a 600-s campaign, 20 s of shrinking exceed 15% of the time so far: a
    kind's second finding waits, but the first of a new kind draws on 15% of the 600 s."""
    with RunStore.create(tmp_path / "run", {"mode": "tir", "seed": 0, "options": {}}) as store:
        campaign = TirCampaign(store, 0, TirOptions(minimize_share=0.15, minimize_per_signature=2))
        campaign.planned_seconds, campaign.snapshot.seconds = 600.0, 10.0
        assert campaign.examines("crash in codegen")
        campaign.shrink_seconds = 20.0
        assert not campaign.examines("crash in codegen")
        assert campaign.examines("unknown intrinsic")
        campaign.shrink_seconds = 91.0
        assert not campaign.examines("a third kind")
        campaign.snapshot.seconds = 700.0
        assert campaign.examines("a third kind") and campaign.examines("crash in codegen")
        assert not campaign.examines("crash in codegen")  # two of a kind at most
