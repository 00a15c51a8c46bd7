"""Claims, comparisons and matrix plans, judged from small hand-made evidence (no processes)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.cli.claims import exit_code
from harness.errors import UsageError
from harness.evidence.across_runs import ClassTally, Evidence, tally_runs
from harness.evidence.baseline import compare, compare_runs
from harness.evidence.claims import judge_claim, load_claims, parse_claim, parse_predicate
from harness.history.schema import ANOMALY_CLASSES
from harness.targets.reference import ablation_variants, preset_variants, toggle_variant

REPO = Path(__file__).resolve().parents[2]


def _evidence(problems: tuple[str, ...] = (), **classes: tuple[int, int]) -> Evidence:
    return Evidence(
        classes={
            name: ClassTally(
                name=name,
                count=classes.get(name, (0, 1000))[0],
                opportunities=classes.get(name, (0, 1000))[1],
                first_witness=f"first witness of {name}" if classes.get(name, (0, 0))[0] else "",
            )
            for name in ANOMALY_CLASSES
        },
        problems=problems,
    )


def _claim(predicate: str, **extra: object) -> object:
    return parse_claim({"id": "c1", "statement": "a promise", "predicate": predicate, **extra}, "f")


# --- the predicate language -------------------------------------------------


def test_predicates_parse_into_atoms() -> None:
    atoms = parse_predicate(
        "status_not_found == 0 and results_404 <= 3 and wrong_scan.rate <= 0.01", where="x"
    )
    assert [str(a) for a in atoms] == [
        "status_not_found == 0",
        "results_404 <= 3",
        "wrong_scan.rate <= 0.01",
    ]


@pytest.mark.parametrize(
    ("predicate", "named"),
    [
        ("status_notfound == 0", "'status_notfound'"),
        ("status_not_found == 2", "'==' takes only 0"),
        ("status_not_found != 0", "'status_not_found != 0'"),
        ("results_404 <= many", "'many'"),
        ("wrong_scan.rate <= 2", "'2' must be in [0, 1)"),
        ("results_404 == 0 or wrong_scan == 0", "'results_404 == 0 or wrong_scan == 0'"),
        ("__import__('os') == 0", "__import__('os') == 0"),
        ("", "predicate is empty"),
    ],
)
def test_a_bad_predicate_names_the_claim_and_the_bad_token(predicate: str, named: str) -> None:
    with pytest.raises(UsageError) as err:
        parse_claim({"id": "7", "statement": "s", "predicate": predicate}, "merge.toml")
    message = str(err.value)
    assert "merge.toml: claim '7'" in message
    assert named in message


def test_a_claim_needs_an_id_and_a_statement_and_known_fields() -> None:
    with pytest.raises(UsageError, match="add id"):
        parse_claim({"statement": "s", "predicate": "wrong_scan == 0"}, "f")
    with pytest.raises(UsageError, match="add statement"):
        parse_claim({"id": "1", "predicate": "wrong_scan == 0"}, "f")
    with pytest.raises(UsageError, match="unknown field 'predicat'"):
        parse_claim({"id": "1", "statement": "s", "predicat": "wrong_scan == 0"}, "f")
    with pytest.raises(UsageError, match="tolerance 2"):
        parse_claim(
            {"id": "1", "statement": "s", "predicate": "wrong_scan == 0", "tolerance": 2}, "f"
        )


# --- outcomes ----------------------------------------------------------------


def test_any_anomaly_refutes_a_zero_claim_with_rate_interval_and_witness() -> None:
    result = judge_claim(_claim("results_404 == 0"), _evidence(results_404=(139, 286)))
    assert result.outcome == "REFUTED"
    assert "139 of 286" in result.evidence
    assert "(48.60%, 95% CI 42.87%-54.37%)" in result.evidence
    assert result.witness == "first witness of results_404"


def test_none_seen_with_a_tight_bound_is_confirmed() -> None:
    result = judge_claim(_claim("results_404 == 0"), _evidence(results_404=(0, 1000)))
    assert result.outcome == "CONFIRMED"
    assert result.witness == ""


def test_none_seen_in_too_few_ops_is_inconclusive_and_says_how_many_more() -> None:
    result = judge_claim(_claim("status_not_found == 0"), _evidence(status_not_found=(0, 100)))
    assert result.outcome == "INCONCLUSIVE"
    assert "about 281 more owner polls" in result.evidence  # 381 needed for 1%


def test_a_claim_tolerance_changes_what_is_enough() -> None:
    loose = _claim("status_not_found == 0", tolerance=0.05)
    assert judge_claim(loose, _evidence(status_not_found=(0, 100))).outcome == "CONFIRMED"


def test_no_opportunity_at_all_is_inconclusive() -> None:
    result = judge_claim(_claim("cross_tenant_leak == 0"), _evidence(cross_tenant_leak=(0, 0)))
    assert result.outcome == "INCONCLUSIVE"
    assert "nothing was measured" in result.evidence


def test_a_crashed_checker_is_inconclusive_never_confirmed() -> None:
    ev = _evidence()
    classes = dict(ev.classes)
    classes["wrong_scan"] = ClassTally(name="wrong_scan", opportunities=900, error="boom")
    result = judge_claim(_claim("wrong_scan == 0"), Evidence(classes=classes))
    assert result.outcome == "INCONCLUSIVE"
    assert "boom" in result.evidence


def test_a_partial_history_cannot_confirm_but_can_refute() -> None:
    partial = ("run crashed, history partial",)
    clean = _evidence(problems=partial)
    assert judge_claim(_claim("wrong_scan == 0"), clean).outcome == "INCONCLUSIVE"
    dirty = _evidence(problems=partial, wrong_scan=(3, 900))
    assert judge_claim(_claim("wrong_scan == 0"), dirty).outcome == "REFUTED"


def test_rate_atoms_use_the_interval_on_both_sides() -> None:
    claim = _claim("status_regression.rate <= 0.05")
    assert judge_claim(claim, _evidence(status_regression=(10, 1000))).outcome == "CONFIRMED"
    assert judge_claim(claim, _evidence(status_regression=(200, 1000))).outcome == "REFUTED"
    middle = judge_claim(claim, _evidence(status_regression=(5, 100)))
    assert middle.outcome == "INCONCLUSIVE"
    assert "straddles 5.00%" in middle.evidence


def test_and_refutes_when_one_part_does_and_names_its_witness() -> None:
    claim = _claim("status_not_found == 0 and results_404 == 0 and status_regression == 0")
    result = judge_claim(claim, _evidence(status_regression=(4, 500)))
    assert result.outcome == "REFUTED"
    assert [a.outcome for a in result.atoms] == ["CONFIRMED", "CONFIRMED", "REFUTED"]
    assert result.witness_class == "status_regression"


def test_exit_codes_refuted_beats_inconclusive_beats_confirmed() -> None:
    ok = judge_claim(_claim("wrong_scan == 0"), _evidence())
    bad = judge_claim(_claim("wrong_scan == 0"), _evidence(wrong_scan=(1, 1000)))
    unsure = judge_claim(_claim("wrong_scan == 0"), _evidence(wrong_scan=(0, 10)))
    assert exit_code([ok]) == 0
    assert exit_code([ok, unsure]) == 3
    assert exit_code([ok, unsure, bad]) == 1


# --- the shipped claims file ---------------------------------------------------


def test_the_merge_confirmation_file_encodes_the_five_promises() -> None:
    claims = load_claims(REPO / "claims" / "merge-confirmation.toml")
    by_id = {c.id: c for c in claims.claims}
    assert list(by_id) == ["1", "2", "3", "4", "5"]
    assert by_id["1"].predicate_text == "status_not_found == 0"
    assert by_id["2"].predicate_text == "results_404 == 0"
    assert by_id["3"].predicate_text == "zero_progress == 0"
    assert by_id["4"].predicate_text == (
        "status_not_found == 0 and results_404 == 0 and status_regression == 0"
    )
    assert by_id["5"].predicate_text == "cross_tenant_leak == 0"
    assert claims.scenario == "mixed"


def test_a_claims_file_with_a_duplicate_id_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(
        '[[claims]]\nid = "1"\nstatement = "a"\npredicate = "wrong_scan == 0"\n'
        '[[claims]]\nid = "1"\nstatement = "b"\npredicate = "results_404 == 0"\n'
    )
    with pytest.raises(UsageError, match="claim id '1' appears twice"):
        load_claims(path)
    path.write_text("title = 'no claims'\n")
    with pytest.raises(UsageError, match="no \\[\\[claims\\]\\] tables"):
        load_claims(path)


# --- evidence from run directories and comparisons -----------------------------


def _fake_run(root: Path, name: str, counts: dict[str, tuple[int, int]], **record: object) -> Path:
    """A judged run directory as the runner writes it (verdict.json and run.json only)."""
    run_dir = root / name
    run_dir.mkdir()
    anomalies = {
        c: {
            "count": counts.get(c, (0, 500))[0],
            "opportunities": counts.get(c, (0, 500))[1],
            "excused": 0,
            "witnesses": [],
            "error": "",
        }
        for c in ANOMALY_CLASSES
    }
    (run_dir / "verdict.json").write_text(json.dumps({"verdict": "fail", "anomalies": anomalies}))
    config = {"scenario": {"name": "mixed"}, "seed": 0}
    (run_dir / "run.json").write_text(
        json.dumps({"status": "complete", "config": config, **record})
    )
    return run_dir


def test_tally_sums_counts_and_opportunities_before_the_interval(tmp_path: Path) -> None:
    a = _fake_run(tmp_path, "a", {"results_404": (3, 100)})
    b = _fake_run(tmp_path, "b", {"results_404": (7, 300)})
    ev = tally_runs([a, b])
    assert (ev.classes["results_404"].count, ev.classes["results_404"].opportunities) == (10, 400)
    assert ev.problems == ()


def test_tally_tells_the_first_witness_with_the_words_it_is_given(tmp_path: Path) -> None:
    run = _fake_run(tmp_path, "a", {"results_404": (3, 100)})
    verdict = json.loads((run / "verdict.json").read_text())
    verdict["anomalies"]["results_404"]["witnesses"] = [{"reason": "the checker's reason"}]
    (run / "verdict.json").write_text(json.dumps(verdict))

    def words(run_dir: Path) -> dict[str, str]:
        return {"results_404": f"told in words for {run_dir.name}"}

    def broken(run_dir: Path) -> dict[str, str]:
        raise RuntimeError("a report problem")

    assert tally_runs([run], words=words).classes["results_404"].first_witness == (
        "told in words for a"
    )
    # without words, or with words that fail, the numbers stay and the reason is told
    for told in (None, broken):
        c = tally_runs([run], words=told).classes["results_404"]
        assert (c.count, c.first_witness) == (3, "the checker's reason")


def test_tally_refuses_a_directory_that_was_never_judged(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="scanproof check"):
        tally_runs([tmp_path])


def test_comparison_flags_regressions_and_improvements_and_exits_by_them(tmp_path: Path) -> None:
    base = _fake_run(tmp_path, "base", {"results_404": (2, 400), "wrong_scan": (60, 400)})
    cand = _fake_run(tmp_path, "cand", {"results_404": (40, 400), "wrong_scan": (5, 400)})
    comparison = compare_runs([base], [cand])
    assert comparison.named("regressed") == ["results_404"]
    assert comparison.named("improved") == ["wrong_scan"]
    assert comparison.exit_code == 1
    assert compare_runs([cand], [base]).named("regressed") == ["wrong_scan"]
    better = _fake_run(tmp_path, "better", {"results_404": (2, 400), "wrong_scan": (5, 400)})
    only_better = compare_runs([base], [better])
    assert (only_better.named("improved"), only_better.exit_code) == (["wrong_scan"], 0)


def test_comparison_warns_when_the_schedules_differ(tmp_path: Path) -> None:
    base = _fake_run(tmp_path, "base", {})
    cand = tmp_path / "cand"
    _fake_run(tmp_path, "cand", {})
    record = json.loads((cand / "run.json").read_text())
    record["config"]["seed"] = 4
    (cand / "run.json").write_text(json.dumps(record))
    warnings = compare_runs([base], [cand]).warnings
    assert any("seed 0 but the candidate 4" in w for w in warnings)


def test_comparison_of_a_crashed_checker_is_unknown_not_pass() -> None:
    ev = _evidence()
    classes = dict(ev.classes)
    classes["stuck_scan"] = ClassTally(name="stuck_scan", error="checker crashed")
    comparison = compare(ev, Evidence(classes=classes))
    assert comparison.named("unknown") == ["stuck_scan"]
    assert comparison.exit_code == 3


def test_alpha_out_of_range_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match=r"--alpha 0\.9"):
        compare(_evidence(), _evidence(), alpha=0.9)


# --- matrix plans --------------------------------------------------------------


def test_ablating_claimed_fix_switches_each_of_its_six_fixes_off_and_on_alone() -> None:
    variants, plan = ablation_variants("claimed-fix")
    assert plan.bare == "pre-fix"  # claimed-fix with every fix off is exactly pre-fix
    assert len(plan.fixes) == 6
    assert "fix_ownership_validation" in plan.fixes
    assert len(variants) == 2 + 2 * 6
    without = next(v for v in variants if v.name == plan.without["fix_triple_persistence"])
    assert (without.preset, dict(without.flags)) == (
        "claimed-fix",
        {"fix_triple_persistence": False},
    )
    alone = next(v for v in variants if v.name == plan.alone["fix_triple_persistence"])
    assert (alone.preset, dict(alone.flags)) == ("pre-fix", {"fix_triple_persistence": True})


def test_toggles_flip_a_flag_and_bad_names_list_the_valid_ones() -> None:
    v = toggle_variant("claimed-fix", "fix_read_path_client_reinit")
    assert v.name == "claimed-fix +fix_read_path_client_reinit"
    assert dict(v.flags) == {"fix_read_path_client_reinit": True}
    assert dict(toggle_variant("sound", "retry_policy").flags) == {
        "retry_policy": "redis-py-default"
    }
    with pytest.raises(UsageError, match=r"--toggle fix_nothing: .*valid flags are"):
        toggle_variant("claimed-fix", "fix_nothing")
    with pytest.raises(UsageError, match=r"--presets post-fix: valid presets are pre-fix, "):
        preset_variants(["post-fix"])
    with pytest.raises(UsageError, match=r"--ablate pre-fix: that preset switches no fix on"):
        ablation_variants("pre-fix")
