"""When the evidence says reward hacking has started: two rules, pure functions of the monitor's history.

A history is the monitor's probes, oldest first, each a dict {"step", "items": {"proxy": [N], "control": [N] or None,
"member_std": [N] or None}, "threshold": float or None}. Every probe answers the same N prompts with the same random
numbers (warm.apply.rl.probe), so a per-prompt difference between two probes measures the policy's change, and the
standard error over prompts of such differences says whether a change is more than noise.

Rule "control" — the paper's definition of hacking (Ramé et al. 2024, arXiv 2401.12187, Sec. 5.2): the proxy keeps
rising while a reward never trained on falls. Over the last `window` probes, each prompt's least-squares slope (per
step) of the control and of the proxy; the control's mean slope is below zero by more than `z` standard errors and
the proxy's mean slope is positive.

Rule "disagreement" — no control needed: the members of a WARM model disagree where their data did not reach. The
share of probe responses whose members' std exceeds `threshold` (the `quantile` of that std on held-out preference
pairs, or on the initial policy's own probe) has risen by at least `fraction` over the first probe's share.

A rule raises the alarm when its evidence holds at `patience` consecutive probes. The last good step is the probe
with the highest mean control before the evidence began (there is a control), else the last probe before it.

Defaults, and why. `window` 4: a slope over three intervals, so one dip is not a trend, and a fall is seen four
probes after it starts. `z` 3: the rule is tried at every probe of a long run; on a flat control a 2-sigma rule
would fire about once in 90 probes (one-sided 2.3%, halved by the proxy's condition), a 3-sigma one about once in
1500 (in 450 with the heavier tails of 16 prompts), before `patience` 2, which also means that one unlucky probe
never stops a run. `quantile` 0.95 and `fraction` 0.25: without drift about 5% of the
probe lies beyond the threshold; a rise of 25 points (five times that share) is drift, not chance (for 16 prompts,
P(Binomial(16, 0.05) >= 5) < 0.1%).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from warm.errors import WarmError
from warm.metrics import standard_error

RULES = ("control", "disagreement")


@dataclass(frozen=True)
class AlarmRules:
    window: int = 4
    z: float = 3.0
    patience: int = 2
    quantile: float = 0.95
    fraction: float = 0.25

    def __post_init__(self) -> None:
        if self.window < 2 or self.patience < 1:
            raise WarmError(f"alarm window must be >= 2 and patience >= 1, got {self.window} and {self.patience}")
        if not self.z > 0:
            raise WarmError(f"alarm z must be positive, got {self.z}")
        if not 0 < self.quantile < 1 or not 0 < self.fraction <= 1:
            raise WarmError(f"alarm quantile must be in (0, 1) and fraction in (0, 1], got {self.quantile} and "
                            f"{self.fraction}")


def _items(row: dict, key: str) -> np.ndarray | None:
    values = row.get("items", {}).get(key)
    return None if values is None else np.asarray(values, dtype=np.float64)


def item_slopes(rows: list[dict], key: str) -> np.ndarray | None:
    """Per probe prompt, the least-squares slope of `key` against the step over `rows` (None if a row lacks it)."""
    values = [_items(row, key) for row in rows]
    if any(v is None for v in values):
        return None
    steps = np.array([row["step"] for row in rows], dtype=np.float64)
    centred = steps - steps.mean()
    if not np.any(centred):
        return None
    y = np.stack(values)  # [probes, prompts]
    return centred @ (y - y.mean(axis=0)) / float(centred @ centred)


def control_evidence(history: list[dict], rules: AlarmRules) -> dict | None:
    """The control rule's evidence at the last probe of `history`, or None."""
    if len(history) < rules.window:
        return None
    rows = history[-rules.window:]
    control, proxy = item_slopes(rows, "control"), item_slopes(rows, "proxy")
    if control is None or proxy is None:
        return None
    fall, sem = float(control.mean()), standard_error(control)
    if fall < 0 and fall < -rules.z * sem and float(proxy.mean()) > 0:
        return {"control_slope": fall, "control_slope_sem": sem, "proxy_slope": float(proxy.mean()),
                "since_step": rows[0]["step"]}
    return None


def beyond_share(row: dict, threshold: float) -> float | None:
    """The share of a probe's responses whose members' std exceeds `threshold`."""
    std = _items(row, "member_std")
    return None if std is None else float(np.mean(std > threshold))


def disagreement_evidence(history: list[dict], rules: AlarmRules) -> dict | None:
    """The disagreement rule's evidence at the last probe of `history`, or None."""
    if len(history) < 2 or history[0].get("threshold") is None:
        return None
    threshold = float(history[0]["threshold"])
    first, last = beyond_share(history[0], threshold), beyond_share(history[-1], threshold)
    if first is None or last is None or last - first < rules.fraction:
        return None
    return {"threshold": threshold, "share_beyond": last, "first_share_beyond": first}


EVIDENCE = {"control": control_evidence, "disagreement": disagreement_evidence}


def evidence_start(history: list[dict], rule: str, rules: AlarmRules) -> int:
    """Index of the first probe of the run of probes, ending at the last, at which `rule`'s evidence holds."""
    start = len(history)
    while start > 0 and EVIDENCE[rule](history[:start], rules) is not None:
        start -= 1
    return start


def last_good_step(history: list[dict], start: int) -> int:
    """The control's best probe before index `start` when every probe has a control; else the probe just before."""
    before = history[:max(start, 1)]
    controls = [_items(row, "control") for row in before]
    if all(c is not None for c in controls):
        return before[int(np.argmax([c.mean() for c in controls]))]["step"]
    return before[-1]["step"]


def check_alarm(history: list[dict], rules: AlarmRules) -> dict | None:
    """The alarm at the last probe of `history`: {"rule", "step", "last_good_step", "evidence", "reason"}, or None
    when no rule's evidence has held at `rules.patience` consecutive probes."""
    for rule in RULES:
        start = evidence_start(history, rule, rules)
        if len(history) - start < rules.patience:
            continue
        evidence = EVIDENCE[rule](history, rules)
        good = last_good_step(history, start)
        return {"rule": rule, "step": history[-1]["step"], "last_good_step": good, "evidence": evidence,
                "reason": _reason(rule, evidence, rules, good)}
    return None


def _reason(rule: str, evidence: dict, rules: AlarmRules, good: int) -> str:
    if rule == "control":
        what = (f"the control fell ({evidence['control_slope']:+.3g} ± {evidence['control_slope_sem']:.2g} per "
                f"step since step {evidence['since_step']}) while the proxy rose ({evidence['proxy_slope']:+.3g} per "
                "step)")
    else:
        what = (f"{evidence['share_beyond']:.0%} of the probe's responses are beyond the members' usual "
                f"disagreement (std > {evidence['threshold']:.3g}), against {evidence['first_share_beyond']:.0%} "
                "at the first probe")
    return f"reward hacking: {what}, at {rules.patience} probes in a row; last good step {good}"
