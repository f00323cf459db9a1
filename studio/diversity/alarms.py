"""Mode-collapse alarms: which kind of collapse a set shows, measured against the real pages.

A measure *crosses* when the set's value lies outside the real band (beyond the 5th or 95th
percentile of the same measure over random real blocks of the same size, on the side of
collapse) **and** moved from the real median by at least the rule's minimum change. The band
alone would fire on trivial shifts once sets are large (the band narrows with size); the minimum
change alone would fire on noise when sets are small. Both are relative to the real pages, never
absolute values tuned to one corpus.

Each kind of collapse has its own measures, chosen so that one kind does not look like another:

- *topic loss*: the set covers fewer of the real pages' topics (topic entropy over the real
  pages' clusters, recall of the real pages);
- *template collapse*: documents repeat each other's openings, outlines or word sequences, or are
  near-duplicates;
- *tail loss*: surprising pages and rare words vanish (the 90th percentile of perplexity under
  the reference model, the share of rare words).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from studio.diversity.metrics import METRICS

if TYPE_CHECKING:
    from studio.diversity.analysis import Report, SetResult

TOPIC, TEMPLATE, TAIL = "topic loss", "template collapse", "tail loss"
KINDS = (TOPIC, TEMPLATE, TAIL)
EXAMPLES = 8


@dataclass(frozen=True, slots=True)
class Rule:
    metric: str
    kind: str
    min_change: float  # from the real median: a fraction of it when relative, else absolute
    relative: bool
    witness: str = ""  # measures of one witness count once (they read the same evidence)


# The minimum changes are deliberately wide: a synthetic set is expected to differ somewhat from
# web pages, and an alarm must mean "look now", not "synthetic text is synthetic".
RULES = (
    Rule("cluster_entropy", TOPIC, 0.10, True, "topic clusters"),
    Rule("topic_coverage", TOPIC, 0.10, True, "topic clusters"),
    Rule("recall", TOPIC, 0.15, True),
    Rule("vendi", TOPIC, 0.15, True),
    Rule("repeated_openings", TEMPLATE, 0.15, False),
    Rule("repeated_outlines", TEMPLATE, 0.15, False),
    Rule("cross_doc_repetition", TEMPLATE, 0.08, False),
    Rule("near_duplicates", TEMPLATE, 0.05, False),
    Rule("ppl_p90", TAIL, 0.20, True),
    Rule("rare_types", TAIL, 0.20, True),
)
# How many witnesses of a kind must cross. Topic and tail measures move with other changes too (a
# set of typical pages covers fewer topics; a set of few topics may be less surprising), and a
# random set now and then lands beyond the band on one of them, so those kinds need two
# independent witnesses (topic entropy and coverage both read the same clusters: one witness);
# each template measure is specific on its own.
VOTES = {TOPIC: 2, TEMPLATE: 1, TAIL: 2}


@dataclass(slots=True)
class Alarm:
    set: str
    kind: str
    message: str
    evidence: list[dict[str, Any]]
    documents: list[int] = field(default_factory=list)  # the set's pages that show it
    real_documents: list[int] = field(default_factory=list)  # real pages the set lost

    def to_dict(self) -> dict[str, Any]:
        return {
            "set": self.set,
            "kind": self.kind,
            "message": self.message,
            "evidence": self.evidence,
            "documents": self.documents,
            "real_documents": self.real_documents,
        }


def crossing(rule: Rule, value: float, band: dict[str, float]) -> bool:
    """True when ``value`` lies beyond the real band on the side of collapse, far enough."""
    if not np.isfinite(value):
        return False
    sign = METRICS[rule.metric].collapse
    edge = band["p95"] if sign > 0 else band["p5"]
    change = sign * (value - band["p50"])
    needed = rule.min_change * abs(band["p50"]) if rule.relative else rule.min_change
    return sign * (value - edge) > 0 and change >= needed


def diagnose(report: Report) -> list[Alarm]:
    """Every alarm of every measured set of the report."""
    alarms = []
    for result in report.sets:
        crossed: dict[str, list[dict[str, Any]]] = {}
        witnesses: dict[str, set[str]] = {}
        for rule in RULES:
            band = report.band.get(rule.metric)
            value = result.metrics.get(rule.metric)
            if band is None or value is None or not crossing(rule, value, band):
                continue
            witnesses.setdefault(rule.kind, set()).add(rule.witness or rule.metric)
            crossed.setdefault(rule.kind, []).append(
                {
                    "metric": rule.metric,
                    "label": METRICS[rule.metric].label,
                    "value": round(float(value), 4),
                    "real": round(float(band["p50"]), 4),
                    "band": [round(float(band["p5"]), 4), round(float(band["p95"]), 4)],
                }
            )
        for kind in KINDS:
            if len(witnesses.get(kind, ())) >= VOTES[kind]:
                alarms.append(_explain(report, result, kind, crossed[kind]))
    return alarms


def _explain(report: Report, result: SetResult, kind: str, evidence: list[dict]) -> Alarm:
    measures = "; ".join(
        f"{e['label']} {e['value']:.3g} (real pages {e['real']:.3g}, band "
        f"{e['band'][0]:.3g}–{e['band'][1]:.3g})"
        for e in evidence
    )
    explain = {TOPIC: _topic_loss, TEMPLATE: _template_collapse, TAIL: _tail_loss}[kind]
    summary, docs, real_docs = explain(report, result)
    return Alarm(result.name, kind, f"{kind}: {summary} — {measures}", evidence, docs, real_docs)


def _topic_loss(report: Report, result: SetResult) -> tuple[str, list[int], list[int]]:
    docs = report.docs
    assert docs.topic is not None and result.rows is not None and report.real.rows is not None
    mine, real = np.asarray(result.topic_shares), np.asarray(report.real.topic_shares)
    top = int(np.argmax(mine - real))
    lost = [int(t) for t in np.argsort(-real) if real[t] >= 0.03 and mine[t] < real[t] / 4]
    rows = result.rows[docs.topic[result.rows] == top][:EXAMPLES]
    real_rows = report.real.rows[np.isin(docs.topic[report.real.rows], lost)][:EXAMPLES]
    topic = report.topics[top] or f"topic {top + 1}"
    summary = f"{mine[top]:.0%} of the pages are about “{topic}” ({real[top]:.0%} of real pages)"
    if lost:
        names = "; ".join(f"“{report.topics[t]}”" for t in lost[:4])
        summary += f"; topics nearly gone: {names}"
    return summary, docs.ids[rows].tolist(), docs.ids[real_rows].tolist()


def _template_collapse(report: Report, result: SetResult) -> tuple[str, list[int], list[int]]:
    for label, items in (("opening", result.openings), ("outline", result.outlines)):
        if items and float(items[0]["share"]) >= 0.05:
            top = items[0]
            summary = f"{top['share']:.0%} of the pages share the {label} “{top['text']}”"
            return summary, list(top["examples"]), []
    docs = report.docs
    assert docs.nn_similarity is not None and result.rows is not None
    sims = docs.nn_similarity[result.rows]
    rows = result.rows[np.argsort(-np.nan_to_num(sims, nan=-1.0))][:EXAMPLES]
    return "pages repeat each other's wording", docs.ids[rows].tolist(), []


def _tail_loss(report: Report, result: SetResult) -> tuple[str, list[int], list[int]]:
    docs = report.docs
    assert docs.log_ppl is not None and result.rows is not None and report.real.rows is not None
    mine = result.perplexity.get("p90", float("nan"))
    real_lp = docs.log_ppl[report.real.rows]
    lost = report.real.rows[np.nan_to_num(real_lp, nan=-np.inf) > np.log(mine)]
    share = len(lost) / max(int(np.isfinite(real_lp).sum()), 1)
    real_p90 = report.real.perplexity.get("p90", float("nan"))
    summary = (
        f"the surprising pages are gone: perplexity p90 {mine:.0f} (real pages {real_p90:.0f}); "
        f"{share:.0%} of the real pages are more surprising than that"
    )
    lp = docs.log_ppl[result.rows]
    rows = result.rows[np.argsort(np.nan_to_num(lp, nan=np.inf))][:EXAMPLES]
    return summary, docs.ids[rows].tolist(), docs.ids[lost[:EXAMPLES]].tolist()
