"""Render decided claims as Markdown (``claims.md``).

>>> from harness.evidence.claims import judge_claims, load_claims  # doctest: +SKIP
>>> print(claims_markdown(claims, judge_claims(claims, evidence), "3 runs"))  # doctest: +SKIP
## Merge confirmation: REFUTED: claim(s) 1, 2 of 5

Displays only: the outcomes come from :mod:`harness.evidence.claims`.
"""

from __future__ import annotations

from collections.abc import Sequence

from harness.evidence.claims import ClaimResult, ClaimsFile
from reports._markup import md_code, md_escape, md_text

__all__ = ["claims_markdown"]


def claims_markdown(claims: ClaimsFile, results: Sequence[ClaimResult], source: str) -> str:
    """``claims.md``: the outcome of each promise, then its atoms and first witness."""
    refuted = [r.claim.id for r in results if r.outcome == "REFUTED"]
    head = (
        f"REFUTED: claim(s) {', '.join(refuted)} of {len(results)}"
        if refuted
        else "ALL CONFIRMED"
        if all(r.outcome == "CONFIRMED" for r in results)
        else "INCONCLUSIVE: nothing refuted, not everything decided"
    )
    out = [f"## {md_text(claims.title)}: {md_text(head)}", "", md_text(source), ""]
    out += ["| # | claim | predicate | outcome |", "|---|---|---|---|"]
    for r in results:
        out.append(
            f"| {md_text(r.claim.id)} | {md_text(r.claim.statement)} | "
            f"{md_code(r.claim.predicate_text, in_table=True)} | **{r.outcome}** |"
        )
    out.append("")
    for r in results:
        out += [f"### {md_text(r.claim.id)}. {md_text(r.claim.statement)}: {r.outcome}", ""]
        out += [f"- {md_escape(a.evidence)}" for a in r.atoms]
        if r.witness:
            # md_escape, not md_text: the whole sentence, unclipped (it names ids, not markup)
            out.append(f"- First witness ({md_code(r.witness_class)}): {md_escape(r.witness)}")
        out += [f"- Note: {md_escape(n)}" for n in r.notes]
        out.append("")
    return "\n".join(out)
